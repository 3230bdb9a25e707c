//! LearnTrac's own records: practice attempts and each student's mastery of each concept.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::db::{Backend, Db};

/// Mastery is the mean score of a student's most recent attempts at a concept: recent
/// enough to reflect learning, several so one lucky score is not mastery.
pub const MASTERY_WINDOW: i64 = 5;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Mastery {
    #[serde(serialize_with = "crate::numbers::ser")]
    pub mastery: f64,
    pub attempts: i64,
    /// When the student first reached the concept's threshold (µs), if ever.
    pub mastered_at: Option<i64>,
}

/// Records one attempt and returns the student's updated mastery of the concept. Part of a
/// transaction that may go on to move Trac's ticket.
pub async fn record_attempt(
    conn: &mut AnyConnection,
    backend: Backend,
    attempt: &Attempt<'_>,
) -> Result<Mastery, sqlx::Error> {
    match backend {
        Backend::Postgres => Ok(postgres_attempt(conn, attempt, true)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?),
        Backend::Sqlite => {
            // SQLite has no data-modifying CTE: the attempt first, then the mastery.
            sqlx::query(
                "INSERT INTO learntrac_practice_attempt (concept_id, student, score, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(attempt.concept_id)
            .bind(attempt.student)
            .bind(attempt.score)
            .bind(attempt.now)
            .execute(&mut *conn)
            .await?;
            let (mastery, attempts, mastered_at) =
                sqlx::query_as::<_, (f64, i64, Option<i64>)>(SQLITE_MASTERY)
                    .bind(attempt.student)
                    .bind(attempt.concept_id)
                    .bind(attempt.threshold)
                    .bind(attempt.now)
                    .bind(MASTERY_WINDOW)
                    .fetch_one(&mut *conn)
                    .await?;
            Ok(Mastery {
                mastery,
                attempts,
                mastered_at,
            })
        }
    }
}

/// The common attempt, in one statement that is its own transaction (PostgreSQL): one that
/// leaves mastery below the threshold, or is at a concept that is already complete, moves
/// no ticket. An attempt that would master a concept still open writes nothing and gives
/// `None`: it must be recorded in the same transaction as Trac's change (`record_attempt`).
pub async fn record_attempt_alone(
    conn: &mut AnyConnection,
    attempt: &Attempt<'_>,
    concept_complete: bool,
) -> Result<Option<Mastery>, sqlx::Error> {
    postgres_attempt(conn, attempt, concept_complete).await
}

async fn postgres_attempt(
    conn: &mut AnyConnection,
    attempt: &Attempt<'_>,
    even_if_it_masters: bool,
) -> Result<Option<Mastery>, sqlx::Error> {
    let row = sqlx::query_as::<_, (f64, i64, Option<i64>)>(POSTGRES_ATTEMPT)
        .bind(attempt.student)
        .bind(attempt.concept_id)
        .bind(attempt.threshold)
        .bind(attempt.now)
        .bind(MASTERY_WINDOW)
        .bind(attempt.score)
        .bind(even_if_it_masters)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|(mastery, attempts, mastered_at)| Mastery {
        mastery,
        attempts,
        mastered_at,
    }))
}

/// Records an attempt ($6) and updates the mastery in one statement: the mean of the recent
/// window, the attempt count, and when mastery was first reached (kept once set). The window
/// is the new attempt and the latest stored ones, cut to five: the stored side is read from
/// the window index in order, five entries, not the student's whole history. The new row
/// is not inserted yet when the window is read, so it stands in with a NULL id, which sorts
/// first among equal times exactly as its id will (every visible row's id is older). Unless
/// $7, an attempt that brings the mean to the threshold ($3) is not written at all and the
/// statement returns no row.
const POSTGRES_ATTEMPT: &str = "WITH recent AS (\
        SELECT score FROM (\
            SELECT NULL::bigint AS id, $6::double precision AS score, $4::bigint AS created_at \
            UNION ALL (SELECT id, score, created_at FROM learntrac_practice_attempt \
                       WHERE student = $1 AND concept_id = $2 ORDER BY created_at DESC, id DESC LIMIT $5)\
        ) AS every ORDER BY created_at DESC, id DESC NULLS FIRST LIMIT $5), \
    window_mean AS (SELECT AVG(score) AS mean FROM recent), \
    attempt AS (INSERT INTO learntrac_practice_attempt (concept_id, student, score, created_at) \
        SELECT $2, $1, $6, $4 FROM window_mean WHERE $7 OR mean < $3 RETURNING id) \
    INSERT INTO learntrac_mastery (student, concept_id, mastery, attempts, mastered_at, updated_at) \
    SELECT $1, $2, mean, 1, CASE WHEN mean >= $3 THEN $4 ELSE NULL END, $4 \
    FROM window_mean WHERE EXISTS (SELECT 1 FROM attempt) \
    ON CONFLICT (student, concept_id) DO UPDATE SET mastery = excluded.mastery, \
    attempts = learntrac_mastery.attempts + 1, \
    mastered_at = COALESCE(learntrac_mastery.mastered_at, excluded.mastered_at), \
    updated_at = excluded.updated_at \
    RETURNING mastery, attempts, mastered_at";

/// SQLite's mastery update, after the attempt was inserted: as `POSTGRES_ATTEMPT`, reading
/// the window with the new row in it. (`WHERE true` settles SQLite's upsert-after-SELECT
/// parsing ambiguity.)
const SQLITE_MASTERY: &str = "INSERT INTO learntrac_mastery (student, concept_id, mastery, attempts, mastered_at, updated_at) \
    SELECT $1, $2, AVG(score), 1, CASE WHEN AVG(score) >= $3 THEN $4 ELSE NULL END, $4 \
    FROM (SELECT score FROM learntrac_practice_attempt WHERE student = $1 AND concept_id = $2 \
          ORDER BY created_at DESC, id DESC LIMIT $5) AS recent \
    WHERE true \
    ON CONFLICT (student, concept_id) DO UPDATE SET mastery = excluded.mastery, \
    attempts = learntrac_mastery.attempts + 1, \
    mastered_at = COALESCE(learntrac_mastery.mastered_at, excluded.mastered_at), \
    updated_at = excluded.updated_at \
    RETURNING mastery, attempts, mastered_at";

/// One practice attempt to record.
pub struct Attempt<'a> {
    pub concept_id: i64,
    pub student: &'a str,
    pub score: f64,
    /// The concept's mastery threshold.
    pub threshold: f64,
    /// Trac's time: microseconds since the epoch.
    pub now: i64,
}

/// A student's mastery of every concept they practised.
pub async fn student_mastery(
    db: &Db,
    student: &str,
) -> Result<BTreeMap<i64, Mastery>, sqlx::Error> {
    let rows: Vec<(i64, f64, i64, Option<i64>)> = db
        .run(async |c| {
            sqlx::query_as(
                "SELECT concept_id, mastery, attempts, mastered_at FROM learntrac_mastery WHERE student = $1",
            )
            .bind(student)
            .fetch_all(c)
            .await
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|(c, mastery, attempts, mastered_at)| {
            (
                c,
                Mastery {
                    mastery,
                    attempts,
                    mastered_at,
                },
            )
        })
        .collect())
}

/// Everyone's mastery of the given concepts: (student, concept) → mastery.
pub async fn mastery_of_concepts(
    db: &Db,
    concepts: &[i64],
) -> Result<BTreeMap<(String, i64), Mastery>, sqlx::Error> {
    if concepts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ph: Vec<String> = (1..=concepts.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT student, concept_id, mastery, attempts, mastered_at FROM learntrac_mastery WHERE concept_id IN ({})",
        ph.join(", ")
    );
    let rows = db
        .run(async |conn| {
            let mut q =
                sqlx::query_as::<_, (String, i64, f64, i64, Option<i64>)>(AssertSqlSafe(sql));
            for c in concepts {
                q = q.bind(*c);
            }
            q.fetch_all(conn).await
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|(s, c, mastery, attempts, mastered_at)| {
            (
                (s, c),
                Mastery {
                    mastery,
                    attempts,
                    mastered_at,
                },
            )
        })
        .collect())
}
