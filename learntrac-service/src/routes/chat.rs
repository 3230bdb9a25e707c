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
use super::{ApiJson, ApiPath, ApiQuery, ConceptId};
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

pub(super) fn now_secs() -> u64 {
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
        None,
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

/// Tokens reserved for a voice question's prompt before it is heard (its words unknown):
/// the grounding and a full history, generously. Settled to the real figure after.
pub const VOICE_PROMPT_RESERVE: i64 = 4000;

/// Takes one of the student's answers-in-flight slots, counts the request and reserves the
/// answer's worst case (`prompt_tokens` + the model's `max_tokens`) against the day's
/// limits, in that order and before any costly work is done for it.
pub async fn reserve(
    state: &AppState,
    tutor: &Tutor,
    student: &str,
    prompt_tokens: i64,
) -> ApiResult<tutor::Reservation> {
    let now = now_secs();
    let slot = state
        .limits
        .answer(student)
        .ok_or_else(|| ApiError::TooManyRequests {
            message: format!(
                "you already have {} answers on the way; wait for one to finish",
                crate::limits::ANSWERS_PER_STUDENT
            ),
            retry_after: 5,
        })?;
    let day = tutor::day_of(now);
    let tokens = prompt_tokens + i64::from(tutor.settings.model.max_tokens);
    let settings = &tutor.settings;
    match store::reserve(
        &state.db,
        student,
        day,
        tokens,
        settings.daily_requests,
        settings.daily_tokens,
    )
    .await?
    {
        Ok(()) => Ok(tutor::Reservation::new(
            state.db.clone(),
            student,
            day,
            tokens,
            slot,
        )),
        Err(over) => {
            let limit = match over {
                store::Over::Requests => format!("{} questions", settings.daily_requests),
                store::Over::Tokens => format!("{} tokens", settings.daily_tokens),
            };
            Err(ApiError::TooManyRequests {
                message: format!(
                    "today's tutor limit ({limit}) is used up; it resets at midnight UTC"
                ),
                retry_after: tutor::seconds_to_midnight(now),
            })
        }
    }
}

/// Checks the question, finds or starts the conversation, assembles what the model is sent
/// (the grounding, the recent history, the question), counts the request against the
/// student's daily limits — or takes `reserved`, counted earlier — and saves the question.
/// Returns the turn and the saved question's id.
pub async fn prepare(
    state: &AppState,
    tutor: &Tutor,
    student: &str,
    concept: &Concept,
    conversation_id: Option<i64>,
    question: &str,
    reserved: Option<tutor::Reservation>,
) -> ApiResult<(Turn, i64)> {
    let id = concept.id;
    let question = question.trim();
    let n = question.chars().count();
    if n == 0 || n > MAX_QUESTION {
        return Err(ApiError::Unprocessable(format!(
            "a question is 1 to {MAX_QUESTION} characters, this one has {n}"
        )));
    }
    let (conversation, history) = match conversation_id {
        Some(cid) => {
            // Enough for the history sent (HISTORY turns of two messages, and a failed
            // turn or two that history_for_model leaves out).
            let recent = store::Page::newest(i64::try_from(2 * HISTORY + 4).unwrap_or(44));
            let c = store::conversation(&state.db, cid, student, recent)
                .await?
                .filter(|c| c.concept_id == id)
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "no conversation {cid} of yours about concept #{id}"
                    ))
                })?;
            (Some(c.id), c.messages)
        }
        None => (None, Vec::new()),
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
    // A token is rarely under three bytes of text; reserving by that errs high.
    let bytes: usize = messages.iter().map(|m| m.content.len()).sum();
    let estimate = i64::try_from(bytes / 3 + 1).unwrap_or(i64::MAX);
    let reservation = match reserved {
        // Reserved before the words were known (voice): topped up to this prompt's worst
        // case, under the same limit, so a long history cannot ride on a small reservation.
        Some(mut r) => {
            let needed = estimate.saturating_add(i64::from(tutor.settings.model.max_tokens));
            if needed > r.tokens {
                let extra = needed - r.tokens;
                if !store::top_up(
                    &state.db,
                    student,
                    r.day,
                    extra,
                    tutor.settings.daily_tokens,
                )
                .await?
                {
                    return Err(ApiError::TooManyRequests {
                        message: format!(
                            "today's tutor limit ({} tokens) is used up; it resets at midnight UTC",
                            tutor.settings.daily_tokens
                        ),
                        retry_after: tutor::seconds_to_midnight(now_secs()),
                    });
                }
                r.tokens = needed;
            }
            r
        }
        None => reserve(state, tutor, student, estimate).await?,
    };
    let conversation_id = match conversation {
        Some(cid) => cid,
        None => store::start(&state.db, id, student, trac::now_micros()).await?,
    };
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
            messages,
            reservation,
        },
        question_id,
    ))
}

/// `?before=MESSAGE_ID&limit=N`: a page of a conversation's messages, the newest first
/// chosen, oldest first returned (`limit` 1–200, default 100).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

impl PageQuery {
    fn page(&self) -> ApiResult<store::Page> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=store::Page::MAX).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit is 1 to {}, not {limit}",
                store::Page::MAX
            )));
        }
        Ok(store::Page {
            before: self.before,
            limit,
        })
    }
}

/// The student's newest conversation about a concept (to pick up where they left off).
pub async fn latest(
    State(state): State<AppState>,
    caller: Caller,
    ConceptId(id): ConceptId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<store::Conversation>> {
    tutor(&state)?;
    own_concept(&state, &caller, id).await?;
    store::latest(&state.db, id, &caller.user, q.page()?)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no conversation about concept #{id} yet")))
}

/// One conversation of the caller's, every message in order.
pub async fn conversation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<store::Conversation>> {
    tutor(&state)?;
    store::conversation(&state.db, id, &caller.user, q.page()?)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no conversation {id} of yours")))
}
