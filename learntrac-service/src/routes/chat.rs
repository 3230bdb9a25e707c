//! `/api/chat/…`: the tutor. A question is answered as Server-Sent Events — `conversation`
//! (ids), then `delta` (text as it comes), then `done` or `error` — and the conversation is
//! kept, so a page reloaded mid-answer reads it back.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::concepts::{absent_concept, only_their_own};
use super::{ApiJson, ApiPath, ConceptId};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::learning;
use crate::state::AppState;
use crate::trac::{self, Concept};
use crate::tutor::model::Message;
use crate::tutor::{self, HISTORY, KEEP_ALIVE, Turn, Tutor, store};

/// The longest question accepted, in characters.
const MAX_QUESTION: usize = 4000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub message: String,
    /// Continue this conversation; a new one starts without it.
    #[serde(default)]
    pub conversation_id: Option<i64>,
}

pub fn tutor(state: &AppState) -> ApiResult<Arc<Tutor>> {
    state
        .tutor
        .clone()
        .ok_or_else(|| ApiError::NotConfigured("the tutor is not turned on here yet".into()))
}

/// The caller's own concept (as practice: a student talks about their own concepts). Read
/// fresh, not through the concept cache: a concept a teacher has just reassigned is no
/// longer the previous owner's to talk about.
pub async fn own_concept(state: &AppState, caller: &Caller, id: i64) -> ApiResult<Concept> {
    let concept = trac::concept(&state.db, id)
        .await?
        .ok_or_else(|| absent_concept(id))?;
    caller
        .may_read(state, &concept.owner, || absent_concept(id))
        .await?;
    only_their_own(
        &concept,
        caller,
        "talk to the tutor about their own concepts",
    )?;
    Ok(concept)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub async fn ask(
    State(state): State<AppState>,
    caller: Caller,
    ConceptId(id): ConceptId,
    ApiJson(q): ApiJson<Question>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let tutor = tutor(&state)?;
    let concept = own_concept(&state, &caller, id).await?;
    let (turn, question_id) = prepare(
        &state,
        &tutor,
        &caller.user,
        &concept,
        q.conversation_id,
        &q.message,
    )
    .await?;
    let (tx, rx) = mpsc::channel(64);
    let _ = tx
        .send((
            "conversation",
            json!({"conversation_id": turn.conversation_id, "question_id": question_id}),
        ))
        .await;
    tokio::spawn(tutor::answer(state.db.clone(), tutor, turn, tx));
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let (name, data) = rx.recv().await?;
        Some((Ok(Event::default().event(name).data(data.to_string())), rx))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Checks the question and the student's daily limits, finds or starts the conversation,
/// saves the question and assembles what the model is sent: the grounding, the recent
/// history, the question. Returns the turn and the saved question's id.
pub async fn prepare(
    state: &AppState,
    tutor: &Tutor,
    student: &str,
    concept: &Concept,
    conversation_id: Option<i64>,
    question: &str,
) -> ApiResult<(Turn, i64)> {
    let id = concept.id;
    let question = question.trim();
    let n = question.chars().count();
    if n == 0 || n > MAX_QUESTION {
        return Err(ApiError::Unprocessable(format!(
            "a question is 1 to {MAX_QUESTION} characters, this one has {n}"
        )));
    }
    let now = now_secs();
    let day = tutor::day_of(now);
    let usage = store::count_request(&state.db, student, day).await?;
    let over = if usage.requests > tutor.settings.daily_requests {
        Some(format!("{} questions", tutor.settings.daily_requests))
    } else if usage.tokens >= tutor.settings.daily_tokens {
        Some(format!("{} tokens", tutor.settings.daily_tokens))
    } else {
        None
    };
    if let Some(limit) = over {
        return Err(ApiError::TooManyRequests {
            message: format!("today's tutor limit ({limit}) is used up; it resets at midnight UTC"),
            retry_after: tutor::seconds_to_midnight(now),
        });
    }
    let (conversation_id, history) = match conversation_id {
        Some(cid) => {
            let c = store::conversation(&state.db, cid, student)
                .await?
                .filter(|c| c.concept_id == id)
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "no conversation {cid} of yours about concept #{id}"
                    ))
                })?;
            (c.id, c.messages)
        }
        None => (
            store::start(&state.db, id, student, trac::now_micros()).await?,
            Vec::new(),
        ),
    };
    let mastery = learning::student_mastery(&state.db, student).await?;
    let prerequisites = trac::prerequisites(&state.db, concept).await?;
    let mut messages = vec![tutor::prompt::system(
        concept,
        mastery.get(&id),
        &prerequisites,
        &|p| mastery.get(&p).map(|m| m.mastery),
    )];
    let history = tutor::history_for_model(history);
    let skip = history.len().saturating_sub(HISTORY);
    messages.extend(history.into_iter().skip(skip));
    messages.push(Message {
        role: "user",
        content: question.to_string(),
    });
    let question_id = store::add_message(
        &state.db,
        conversation_id,
        "user",
        question,
        "complete",
        trac::now_micros(),
    )
    .await?;
    Ok((
        Turn {
            conversation_id,
            student: student.to_string(),
            day,
            messages,
        },
        question_id,
    ))
}

/// The student's newest conversation about a concept (to pick up where they left off).
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
    ConceptId(id): ConceptId,
) -> ApiResult<Json<store::Conversation>> {
    tutor(&state)?;
    own_concept(&state, &caller, id).await?;
    store::latest(&state.db, id, &caller.user)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no conversation about concept #{id} yet")))
}

/// One conversation of the caller's, every message in order.
pub async fn conversation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<store::Conversation>> {
    tutor(&state)?;
    store::conversation(&state.db, id, &caller.user)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no conversation {id} of yours")))
}
