-- LearnTrac's own tables. Trac's tables are never altered; concepts are Trac tickets.
CREATE TABLE IF NOT EXISTS learntrac_practice_attempt (
    id          BIGSERIAL PRIMARY KEY,
    concept_id  BIGINT NOT NULL,
    student     TEXT NOT NULL,
    score       DOUBLE PRECISION NOT NULL CHECK (score >= 0 AND score <= 1),
    -- microseconds since the epoch, like Trac's own times
    created_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS learntrac_practice_attempt_student_concept
    ON learntrac_practice_attempt (student, concept_id, created_at);

CREATE TABLE IF NOT EXISTS learntrac_mastery (
    student     TEXT NOT NULL,
    concept_id  BIGINT NOT NULL,
    mastery     DOUBLE PRECISION NOT NULL,
    attempts    BIGINT NOT NULL,
    mastered_at BIGINT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (student, concept_id)
);
