//! The chat tutor: a model behind an OpenAI-compatible endpoint, grounded in Trac's data
//! (prompt.rs), its conversations and each student's daily use kept in LearnTrac's tables
//! (store.rs). An answer runs to its end in its own task, so a client that goes away does
//! not lose it: the conversation is saved either way and can be read back.

pub mod model;
pub mod prompt;
pub mod store;

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::db::Db;
use model::{Message, Model, ModelConfig, ModelError, Piece};

/// The tutor's settings (CHAT_* variables).
#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub model: ModelConfig,
    /// Chat requests a student may make per UTC day.
    pub daily_requests: i64,
    /// Model tokens (prompt + answer) a student may use per UTC day.
    pub daily_tokens: i64,
}

pub struct Tutor {
    pub model: Model,
    pub settings: ChatSettings,
}

impl Tutor {
    pub fn new(settings: ChatSettings) -> Result<Self, reqwest::Error> {
        Ok(Tutor {
            model: Model::new(settings.model.clone())?,
            settings,
        })
    }
}

/// The earlier turns sent with a question: enough to follow a conversation, bounded so a
/// long one does not grow every prompt without end.
pub const HISTORY: usize = 20;

/// One Server-Sent Event for the student's browser: its name and JSON data.
pub type ClientEvent = (&'static str, serde_json::Value);

/// What to answer, and where to keep it.
pub struct Turn {
    pub conversation_id: i64,
    pub messages: Vec<Message>,
    /// The day's quota the answer was given; settled to the real figure when it ends.
    pub reservation: Reservation,
}

/// A counted request, its answer's worst-case tokens reserved against the student's day,
/// and one of the student's answers-in-flight slots. Settled by [`Reservation::settle`];
/// dropped unsettled (the question failed before the model was asked), its tokens are
/// given back and the request stays counted.
pub struct Reservation {
    pub db: Db,
    pub student: String,
    pub day: i64,
    pub tokens: i64,
    pub _slot: crate::limits::Held,
    settled: bool,
}

impl Reservation {
    pub fn new(db: Db, student: &str, day: i64, tokens: i64, slot: crate::limits::Held) -> Self {
        Reservation {
            db,
            student: student.to_string(),
            day,
            tokens,
            _slot: slot,
            settled: false,
        }
    }

    /// Counts `used` tokens instead of the reservation.
    pub async fn settle(mut self, used: i64) {
        self.settled = true;
        if let Err(e) =
            store::settle_tokens(&self.db, &self.student, self.day, used - self.tokens).await
        {
            tracing::warn!(error = %e, "cannot count the tutor's tokens");
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (db, student, day, tokens) = (
            self.db.clone(),
            std::mem::take(&mut self.student),
            self.day,
            self.tokens,
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store::settle_tokens(&db, &student, day, -tokens).await {
                    tracing::warn!(error = %e, "cannot give back a tutor reservation");
                }
            });
        }
    }
}

/// Where an answer's events go: the student's stream, until it is closed or stops reading
/// for [`CLIENT_WAIT`] — then the answer goes on unsent, and is saved and counted all the
/// same (a frozen tab must not hold the answer, its slot and its reservation for ever).
struct Client {
    tx: mpsc::Sender<ClientEvent>,
    gone: bool,
}

/// How long one event may wait for a client that reads slowly.
const CLIENT_WAIT: Duration = Duration::from_secs(15);

impl Client {
    async fn tell(&mut self, event: ClientEvent) {
        if !self.gone {
            self.gone = !matches!(
                tokio::time::timeout(CLIENT_WAIT, self.tx.send(event)).await,
                Ok(Ok(()))
            );
        }
    }
}

/// Streams the model's answer to `client` as `delta` events and saves it, complete or as far
/// as it got; the last event is `done` or `error`. Runs to the end even when the client has
/// gone or stopped reading.
pub async fn answer(
    db: Db,
    tutor: std::sync::Arc<Tutor>,
    turn: Turn,
    client: mpsc::Sender<ClientEvent>,
) {
    let mut client = Client {
        tx: client,
        gone: false,
    };
    let (pieces_tx, mut pieces) = mpsc::channel::<Piece>(64);
    let model = tutor.model.clone();
    let Turn {
        conversation_id,
        messages,
        reservation,
    } = turn;
    let prompt_chars: usize = messages.iter().map(|m| m.content.len()).sum();
    let asking = tokio::spawn(async move { model.answer(&messages, &pieces_tx).await });
    let mut text = String::new();
    let mut counted = None;
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Text(t) => {
                client.tell(("delta", json!({ "text": t }))).await;
                text.push_str(&t);
            }
            Piece::Usage(n) => counted = Some(n),
        }
    }
    let outcome = match asking.await {
        Ok(r) => r,
        Err(e) => Err(ModelError::Malformed(format!(
            "the answer's task failed: {e}"
        ))),
    };
    // Servers that send no usage: a token per three bytes, erring high (as the reservation
    // does; four is nearer for English, one character for Chinese is three bytes).
    let tokens = counted
        .unwrap_or_else(|| i64::try_from((prompt_chars + text.len()) / 3).unwrap_or(i64::MAX));
    let status = if outcome.is_ok() {
        "complete"
    } else {
        "incomplete"
    };
    // A turn that failed before a word arrived is saved too, empty and incomplete: the
    // student sees it failed after a reload, and the next turn's history leaves the
    // unanswered question out (history_for_model).
    let saved = store::add_message(
        &db,
        conversation_id,
        "assistant",
        &text,
        status,
        crate::trac::now_micros(),
    )
    .await
    .map(Some);
    reservation.settle(tokens).await;
    let message_id = match saved {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, conversation = conversation_id, "cannot save the tutor's answer");
            client
                .tell(("error", json!({"code": "not_saved", "message": "the answer could not be saved; ask again"})))
                .await;
            return;
        }
    };
    match outcome {
        Ok(()) => {
            tracing::info!(conversation = conversation_id, tokens, "tutor answered");
            client
                .tell(("done", json!({"message_id": message_id, "tokens": tokens})))
                .await;
        }
        Err(e) => {
            // The model's own words (its error body, a connection error) are for the
            // operator's log; the student is told what to do. The student's words are never
            // logged.
            tracing::warn!(conversation = conversation_id, error = %e, "tutor answer stopped");
            let retry_after = match e {
                ModelError::RateLimited { retry_after } => Some(retry_after),
                _ => None,
            };
            client
                .tell((
                    "error",
                    json!({
                        "code": e.code(),
                        "message": for_student(&e, !text.is_empty()),
                        "retry_after": retry_after,
                        "message_id": message_id,
                    }),
                ))
                .await;
        }
    }
}

/// What a student is told when the model failed: no upstream text, no operator settings.
pub fn for_student(e: &ModelError, partial: bool) -> String {
    let what = match e {
        ModelError::RateLimited { retry_after } => format!(
            "The tutor is busy right now; try again in {}.",
            if *retry_after < 90 {
                format!("{retry_after} seconds")
            } else {
                format!("{} minutes", retry_after.div_ceil(60))
            }
        ),
        _ => "The tutor could not answer just now; try again in a moment.".to_string(),
    };
    if partial {
        format!("{what} The part of the answer that arrived is kept.")
    } else {
        what
    }
}

/// The conversation as the model is sent it: user and assistant turns alternating. A
/// question whose answer failed before a word arrived (saved empty) or never came is left
/// out, with its empty answer, so a retried question is not a second user turn in a row.
pub fn history_for_model(history: Vec<store::StoredMessage>) -> Vec<Message> {
    let mut out = Vec::new();
    let mut it = history.into_iter().peekable();
    while let Some(m) = it.next() {
        if m.role == "assistant" {
            continue; // an answer without its question (the question was cut off)
        }
        let answered = it
            .peek()
            .is_some_and(|next| next.role == "assistant" && !next.content.is_empty());
        if !answered {
            continue;
        }
        if let Some(answer) = it.next() {
            out.push(Message {
                role: "user",
                content: m.content,
            });
            out.push(Message {
                role: "assistant",
                content: answer.content,
            });
        }
    }
    out
}

/// Seconds until the next UTC day, when a student's daily limits start again.
pub fn seconds_to_midnight(now_secs: u64) -> u64 {
    86_400 - now_secs % 86_400
}

/// The day (since the epoch, UTC) a time in seconds falls on.
pub fn day_of(now_secs: u64) -> i64 {
    i64::try_from(now_secs / 86_400).unwrap_or(i64::MAX)
}

/// How long an idle SSE stream waits before a keep-alive comment, below every idle
/// timeout between the browser and the service (the ALB's is 60 s by default).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
