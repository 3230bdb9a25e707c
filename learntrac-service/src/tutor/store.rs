//! Conversations with the tutor and each student's daily use, in LearnTrac's own tables.

use serde::Serialize;

use crate::db::Db;

#[derive(Debug, Serialize)]
pub struct Conversation {
    pub id: i64,
    pub concept_id: i64,
    pub student: String,
    /// The newest messages (before `before`, when asked), oldest first.
    pub messages: Vec<StoredMessage>,
    /// Whether older messages exist: ask again with `before` = the first message's id.
    pub more: bool,
}

/// Which messages of a conversation to read: at most `limit`, older than `before`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub before: Option<i64>,
    pub limit: i64,
}

impl Page {
    /// The most messages one read returns.
    pub const MAX: i64 = 200;

    pub fn newest(limit: i64) -> Self {
        Page {
            before: None,
            limit: limit.clamp(1, Self::MAX),
        }
    }
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

/// The conversation `id` if it is `student`'s, with one page of its messages.
pub async fn conversation(
    db: &Db,
    id: i64,
    student: &str,
    page: Page,
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
        // One more than asked, newest first: whether older ones exist, without a count.
        let mut messages = sqlx::query_as::<_, StoredMessage>(
            "SELECT id, role, content, status, created_at FROM learntrac_chat_message \
             WHERE conversation_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(id)
        .bind(page.before.unwrap_or(i64::MAX))
        .bind(page.limit + 1)
        .fetch_all(c)
        .await?;
        let more = messages.len() > usize::try_from(page.limit).unwrap_or(usize::MAX);
        messages.truncate(usize::try_from(page.limit).unwrap_or(usize::MAX));
        messages.reverse();
        Ok(Some(Conversation {
            id,
            concept_id,
            student,
            messages,
            more,
        }))
    })
    .await
}

/// The student's newest conversation about the concept.
pub async fn latest(
    db: &Db,
    concept_id: i64,
    student: &str,
    page: Page,
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
        Some((id,)) => conversation(db, id, student, page).await,
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

/// Why a question was refused before the model was asked.
#[derive(Debug, PartialEq, Eq)]
pub enum Over {
    Requests,
    Tokens,
}

/// Counts a request against `day` (days since the epoch) and reserves `reserve` tokens for
/// its answer, in one statement, when the day's requests are under `max_requests` and its
/// tokens (answers in flight included, at their reservation) under `max_tokens`. Questions
/// sent at once are each checked against what the others reserved, so together they
/// overshoot the token limit by at most one answer's reservation. Settle the reservation
/// with [`settle_tokens`] when the answer's real figure is known.
pub async fn reserve(
    db: &Db,
    student: &str,
    day: i64,
    reserve: i64,
    max_requests: i64,
    max_tokens: i64,
) -> Result<Result<(), Over>, sqlx::Error> {
    if max_requests < 1 {
        return Ok(Err(Over::Requests));
    }
    if max_tokens < 1 {
        return Ok(Err(Over::Tokens));
    }
    let counted: Option<(i64,)> = db
        .run(async |c| {
            sqlx::query_as(
                "INSERT INTO learntrac_chat_usage (student, day, requests, tokens) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (student, day) DO UPDATE SET \
                   requests = learntrac_chat_usage.requests + 1, \
                   tokens = learntrac_chat_usage.tokens + $3 \
                 WHERE learntrac_chat_usage.requests < $4 AND learntrac_chat_usage.tokens < $5 \
                 RETURNING requests",
            )
            .bind(student)
            .bind(day)
            .bind(reserve)
            .bind(max_requests)
            .bind(max_tokens)
            .fetch_optional(c)
            .await
        })
        .await?;
    if counted.is_some() {
        return Ok(Ok(()));
    }
    let (requests,): (i64,) = db
        .run(async |c| {
            sqlx::query_as(
                "SELECT requests FROM learntrac_chat_usage WHERE student = $1 AND day = $2",
            )
            .bind(student)
            .bind(day)
            .fetch_one(c)
            .await
        })
        .await?;
    Ok(Err(if requests >= max_requests {
        Over::Requests
    } else {
        Over::Tokens
    }))
}

/// Counts `seconds` of speech against the student's day when the day's speech so far is
/// under `max_seconds`; false when it is not. The row exists: the utterance's request was
/// counted first ([`reserve`]).
pub async fn count_audio(
    db: &Db,
    student: &str,
    day: i64,
    seconds: i64,
    max_seconds: i64,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = db
        .run(async |c| {
            sqlx::query_as(
                "UPDATE learntrac_chat_usage SET audio_seconds = audio_seconds + $3 \
                 WHERE student = $1 AND day = $2 AND audio_seconds < $4 RETURNING audio_seconds",
            )
            .bind(student)
            .bind(day)
            .bind(seconds)
            .bind(max_seconds)
            .fetch_optional(c)
            .await
        })
        .await?;
    Ok(row.is_some())
}

/// Whether the student has speech left today (read only: an engine that hears while the
/// student speaks asks before the first frame leaves; the utterance is counted at its end).
pub async fn audio_left(
    db: &Db,
    student: &str,
    day: i64,
    max_seconds: i64,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = db
        .run(async |c| {
            sqlx::query_as(
                "SELECT audio_seconds FROM learntrac_chat_usage WHERE student = $1 AND day = $2",
            )
            .bind(student)
            .bind(day)
            .fetch_optional(c)
            .await
        })
        .await?;
    Ok(row.map_or(0, |(used,)| used) < max_seconds)
}

/// Adds `extra` to a reservation when the day's tokens are still under `max_tokens` (a
/// voice question, reserved before its words were known, whose prompt came out larger).
/// False when the limit has been reached meanwhile.
pub async fn top_up(
    db: &Db,
    student: &str,
    day: i64,
    extra: i64,
    max_tokens: i64,
) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = db
        .run(async |c| {
            sqlx::query_as(
                "UPDATE learntrac_chat_usage SET tokens = tokens + $3 \
                 WHERE student = $1 AND day = $2 AND tokens < $4 RETURNING tokens",
            )
            .bind(student)
            .bind(day)
            .bind(extra)
            .bind(max_tokens)
            .fetch_optional(c)
            .await
        })
        .await?;
    Ok(row.is_some())
}

/// Replaces a reservation by the answer's real figure (`delta` = used − reserved).
pub async fn settle_tokens(
    db: &Db,
    student: &str,
    day: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    db.run(async |c| {
        sqlx::query(
            "UPDATE learntrac_chat_usage SET tokens = tokens + $3 WHERE student = $1 AND day = $2",
        )
        .bind(student)
        .bind(day)
        .bind(delta)
        .execute(c)
        .await
    })
    .await?;
    Ok(())
}
