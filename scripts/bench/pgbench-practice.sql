-- The SQL one POST practice sends (bearer token, the caller's own concept, no status change),
-- in the same order: the concept read (ticket + custom fields), then the attempt and the
-- mastery in one statement inside a transaction. scripts/bench/service runs it with pgbench
-- as the database's ceiling for the endpoint.
\set id random(1, :concepts)
\set score random(0, 9)
SELECT CAST(t.id AS BIGINT) AS id, t.type, t.time, t.changetime, t.component, t.priority, t.owner, t.reporter, t.milestone, t.status, t.resolution, t.summary, t.description, t.keywords, c.name AS custom_name, c.value AS custom_value FROM ticket t LEFT JOIN ticket_custom c ON c.ticket = t.id WHERE t.id = :id;
BEGIN;
WITH attempt AS (INSERT INTO learntrac_practice_attempt (concept_id, student, score, created_at) VALUES (:id, 'student', :score / 10.0, (extract(epoch from clock_timestamp()) * 1000000)::bigint) RETURNING id, score, created_at) INSERT INTO learntrac_mastery (student, concept_id, mastery, attempts, mastered_at, updated_at) SELECT 'student', :id, AVG(score), 1, CASE WHEN AVG(score) >= 0.95 THEN 0 ELSE NULL END, 0 FROM (SELECT score FROM ((SELECT id, score, created_at FROM learntrac_practice_attempt WHERE student = 'student' AND concept_id = :id ORDER BY created_at DESC, id DESC LIMIT 5) UNION ALL SELECT id, score, created_at FROM attempt) AS every ORDER BY created_at DESC, id DESC LIMIT 5) AS recent WHERE true ON CONFLICT (student, concept_id) DO UPDATE SET mastery = excluded.mastery, attempts = learntrac_mastery.attempts + 1, mastered_at = COALESCE(learntrac_mastery.mastered_at, excluded.mastered_at), updated_at = excluded.updated_at RETURNING mastery, attempts, mastered_at;
COMMIT;
