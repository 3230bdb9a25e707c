//! LearnTrac's own records: practice attempts and each student's mastery of each concept.

use std::collections::BTreeMap;
use std::sync::LazyLock;

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

/// Records one attempt and returns the student's updated mastery of the concept.
pub async fn record_attempt(
    conn: &mut AnyConnection,
    backend: Backend,
    attempt: Attempt<'_>,
) -> Result<Mastery, sqlx::Error> {
    if backend == Backend::Sqlite {
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
    }
    let mut q = sqlx::query_as::<_, (f64, i64, Option<i64>)>(attempt_sql(backend))
        .bind(attempt.student)
        .bind(attempt.concept_id)
        .bind(attempt.threshold)
        .bind(attempt.now)
        .bind(MASTERY_WINDOW);
    if backend == Backend::Postgres {
        q = q.bind(attempt.score);
    }
    let (mastery, attempts, mastered_at) = q.fetch_one(&mut *conn).await?;
    Ok(Mastery {
        mastery,
        attempts,
        mastered_at,
    })
}

/// The statement that records an attempt (PostgreSQL) and updates the mastery: the mean of
/// the recent window, the attempt count, and when mastery was first reached (kept once set).
/// On PostgreSQL the attempt is inserted by the same statement: one round trip. A CTE's
/// insert is invisible to its siblings, so the new row joins the stored window explicitly
/// and is ordered exactly as a stored one would be. The stored side is cut to the window
/// before the union (the latest five of all = the latest five of the stored latest five and
/// the new one), so it is read from the window index in order, not fetched whole and sorted.
/// Built once: it is the hot path's statement, and the driver's statement cache looks it up
/// by its text on every call.
fn attempt_sql(backend: Backend) -> &'static str {
    const WINDOW: &str = "SELECT id, score, created_at FROM learntrac_practice_attempt \
        WHERE student = $1 AND concept_id = $2 ORDER BY created_at DESC, id DESC LIMIT $5";
    fn build(insert_attempt: bool) -> String {
        format!(
            "{insert}INSERT INTO learntrac_mastery (student, concept_id, mastery, attempts, mastered_at, updated_at) \
             SELECT $1, $2, AVG(score), 1, CASE WHEN AVG(score) >= $3 THEN $4 ELSE NULL END, $4 \
             FROM (SELECT score FROM ({stored}{new_row}) AS every \
                   ORDER BY created_at DESC, id DESC LIMIT $5) AS recent \
             WHERE true \
             ON CONFLICT (student, concept_id) DO UPDATE SET mastery = excluded.mastery, \
             attempts = learntrac_mastery.attempts + 1, \
             mastered_at = COALESCE(learntrac_mastery.mastered_at, excluded.mastered_at), \
             updated_at = excluded.updated_at \
             RETURNING mastery, attempts, mastered_at",
            insert = if insert_attempt {
                "WITH attempt AS (INSERT INTO learntrac_practice_attempt (concept_id, student, score, created_at) \
                 VALUES ($2, $1, $6, $4) RETURNING id, score, created_at) "
            } else {
                ""
            },
            stored = if insert_attempt {
                format!("({WINDOW})")
            } else {
                WINDOW.to_string()
            },
            new_row = if insert_attempt {
                " UNION ALL SELECT id, score, created_at FROM attempt"
            } else {
                ""
            },
        )
    }
    static WITH_INSERT: LazyLock<String> = LazyLock::new(|| build(true));
    static MASTERY_ONLY: LazyLock<String> = LazyLock::new(|| build(false));
    match backend {
        Backend::Postgres => &WITH_INSERT,
        Backend::Sqlite => &MASTERY_ONLY,
    }
}

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
