//! Conversations with the tutor and each student's daily use, in LearnTrac's own tables.

use serde::Serialize;

use crate::db::Db;

#[derive(Debug, Serialize)]
pub struct Conversation {
    pub id: i64,
    pub concept_id: i64,
    pub student: String,
    pub messages: Vec<StoredMessage>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct StoredMessage {
    pub id: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// `complete`, or `incomplete` when the model stopped mid-answer.
    pub status: String,
    /// Microseconds since the epoch, like Trac's times.
    pub created_at: i64,
}

/// The conversation `id` if it is `student`'s about `concept_id`.
pub async fn conversation(
    db: &Db,
    id: i64,
    student: &str,
) -> Result<Option<Conversation>, sqlx::Error> {
    // One connection for the head and its messages.
    db.run(async |c| {
        let head: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT id, concept_id, student FROM learntrac_chat_conversation \
             WHERE id = $1 AND student = $2",
        )
        .bind(id)
        .bind(student)
        .fetch_optional(&mut *c)
        .await?;
        let Some((id, concept_id, student)) = head else {
            return Ok(None);
        };
        let messages = sqlx::query_as::<_, StoredMessage>(
            "SELECT id, role, content, status, created_at FROM learntrac_chat_message \
             WHERE conversation_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(c)
        .await?;
        Ok(Some(Conversation {
            id,
            concept_id,
            student,
            messages,
        }))
    })
    .await
}

/// The student's newest conversation about the concept.
pub async fn latest(
    db: &Db,
    concept_id: i64,
    student: &str,
) -> Result<Option<Conversation>, sqlx::Error> {
    let id: Option<(i64,)> = db
        .run(async |c| {
            sqlx::query_as(
                "SELECT id FROM learntrac_chat_conversation WHERE concept_id = $1 AND student = $2 \
         ORDER BY id DESC LIMIT 1",
            )
            .bind(concept_id)
            .bind(student)
            .fetch_optional(c)
            .await
        })
        .await?;
    match id {
        Some((id,)) => conversation(db, id, student).await,
        None => Ok(None),
    }
}

pub async fn start(db: &Db, concept_id: i64, student: &str, now: i64) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = db
        .run(async |c| {
            sqlx::query_as(
                "INSERT INTO learntrac_chat_conversation (concept_id, student, created_at) \
                 VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(concept_id)
            .bind(student)
            .bind(now)
            .fetch_one(c)
            .await
        })
        .await?;
    Ok(id)
}

pub async fn add_message(
    db: &Db,
    conversation_id: i64,
    role: &str,
    content: &str,
    status: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = db
        .run(async |c| {
            sqlx::query_as(
                "INSERT INTO learntrac_chat_message (conversation_id, role, content, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(conversation_id)
            .bind(role)
            .bind(content)
            .bind(status)
            .bind(now)
            .fetch_one(c)
            .await
        })
        .await?;
    Ok(id)
}

/// A student's use today (UTC), after counting one more request.
pub struct Usage {
    pub requests: i64,
    pub tokens: i64,
}

/// Counts a request against `day` (days since the epoch) and returns the day's totals.
pub async fn count_request(db: &Db, student: &str, day: i64) -> Result<Usage, sqlx::Error> {
    // One statement on both backends: the count cannot be lost between two requests.
    let (requests, tokens): (i64, i64) = db
        .run(async |c| {
            sqlx::query_as(
                "INSERT INTO learntrac_chat_usage (student, day, requests, tokens) VALUES ($1, $2, 1, 0) \
                 ON CONFLICT (student, day) DO UPDATE SET requests = learntrac_chat_usage.requests + 1 \
                 RETURNING requests, tokens",
            )
            .bind(student)
            .bind(day)
            .fetch_one(c)
            .await
        })
        .await?;
    Ok(Usage { requests, tokens })
}

pub async fn count_tokens(
    db: &Db,
    student: &str,
    day: i64,
    tokens: i64,
) -> Result<(), sqlx::Error> {
    db.run(async |c| {
        sqlx::query(
            "UPDATE learntrac_chat_usage SET tokens = tokens + $3 WHERE student = $1 AND day = $2",
        )
        .bind(student)
        .bind(day)
        .bind(tokens)
        .execute(c)
        .await
    })
    .await?;
    Ok(())
}
