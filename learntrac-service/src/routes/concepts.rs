use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Connection};

use super::{ApiJson, ConceptId};
use crate::auth::Caller;
use crate::db::Backend;
use crate::error::{ApiError, ApiResult};
use crate::learning;
use crate::state::AppState;
use crate::trac::{self, Concept, LearningChange, MASTERED, Prerequisites};

/// A concept through the cache: Redis (or memory) first, then Trac's tables.
pub async fn load(state: &AppState, id: i64) -> ApiResult<Concept> {
    let key = state.cache.concept_key(id);
    if let Some(hit) = state.cache.get(&key).await
        && let Ok(c) = serde_json::from_str::<Concept>(&hit)
    {
        return Ok(c);
    }
    let concept = trac::concept(&state.db, id)
        .await?
        .ok_or_else(|| absent_concept(id))?;
    if let Ok(json) = serde_json::to_string(&concept) {
        state.cache.set(&key, &json).await;
    }
    Ok(concept)
}

/// Refuses (403) a concept the caller may see but does not own: students `act_on` their own.
pub fn only_their_own(concept: &Concept, caller: &Caller, act_on: &str) -> ApiResult<()> {
    if concept.owner == caller.user {
        return Ok(());
    }
    let owner = if concept.owner.is_empty() {
        "nobody"
    } else {
        &concept.owner
    };
    Err(ApiError::Forbidden(format!(
        "concept #{} belongs to {owner}; students {act_on}",
        concept.id
    )))
}

pub fn absent_concept(id: i64) -> ApiError {
    ApiError::NotFound(format!("no concept (ticket) #{id}"))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ConceptId(id): ConceptId,
) -> ApiResult<Json<Concept>> {
    let concept = load(&state, id).await?;
    caller
        .may_read(&state, &concept.owner, || absent_concept(id))
        .await?;
    Ok(Json(concept))
}

pub async fn prerequisites(
    State(state): State<AppState>,
    caller: Caller,
    ConceptId(id): ConceptId,
) -> ApiResult<Json<Prerequisites>> {
    let concept = load(&state, id).await?;
    caller
        .may_read(&state, &concept.owner, || absent_concept(id))
        .await?;
    Ok(Json(trac::prerequisites(&state.db, &concept).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PracticeRequest {
    /// 0.0 (nothing right) to 1.0 (all right).
    pub score: f64,
}

#[derive(Debug, Serialize)]
pub struct PracticeResult {
    pub concept_id: i64,
    pub student: String,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub score: f64,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub mastery: f64,
    pub attempts: i64,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub mastery_threshold: f64,
    pub mastered: bool,
    /// The ticket's status after this attempt.
    pub status: String,
    /// True when this attempt moved the ticket to `mastered`.
    pub status_changed: bool,
}

pub async fn practice(
    State(state): State<AppState>,
    caller: Caller,
    ConceptId(id): ConceptId,
    ApiJson(req): ApiJson<PracticeRequest>,
) -> ApiResult<Json<PracticeResult>> {
    if !(0.0..=1.0).contains(&req.score) {
        return Err(ApiError::Unprocessable(format!(
            "score {} is outside 0..1",
            req.score
        )));
    }
    // Fresh from the database, not the cache: who owns it, and whether it is still open.
    let concept = trac::concept(&state.db, id)
        .await?
        .ok_or_else(|| absent_concept(id))?;
    // Someone else's concept: absent to a student, refused (it exists) to an admin.
    caller
        .may_read(&state, &concept.owner, || absent_concept(id))
        .await?;
    only_their_own(&concept, &caller, "practise their own concepts")?;
    let backend = state.db.backend;
    let attempt = learning::Attempt {
        concept_id: id,
        student: &caller.user,
        score: req.score,
        threshold: concept.mastery_threshold,
        now: trac::now_micros(),
    };
    // Most attempts move no ticket: one statement, its own transaction. One that would
    // master the concept is recorded with Trac's change, in one transaction.
    let alone = match backend {
        Backend::Postgres => {
            state
                .db
                .run(async |conn| {
                    learning::record_attempt_alone(conn, &attempt, concept.is_complete()).await
                })
                .await?
        }
        Backend::Sqlite => None,
    };
    let (m, status, status_changed) = match alone {
        Some(m) => (m, concept.status.clone(), false),
        None => {
            state
                .db
                .run(async |conn| record_with_trac_change(conn, backend, &attempt).await)
                .await?
        }
    };
    let reached = m.mastery >= concept.mastery_threshold;
    state.cache.invalidate(&state.cache.concept_key(id)).await;
    if status_changed {
        tracing::info!(concept = id, student = %caller.user, mastery = m.mastery, "concept mastered");
    }
    Ok(Json(PracticeResult {
        concept_id: id,
        student: caller.user,
        score: req.score,
        mastery: m.mastery,
        attempts: m.attempts,
        mastery_threshold: concept.mastery_threshold,
        mastered: reached,
        status,
        status_changed,
    }))
}

/// Records an attempt and, when it masters a concept still open, moves Trac's ticket to
/// `mastered` with a comment saying why, all in one transaction. Whether the ticket is open
/// is read under its row lock: of two attempts that master it at once, one changes it.
async fn record_with_trac_change(
    conn: &mut AnyConnection,
    backend: Backend,
    attempt: &learning::Attempt<'_>,
) -> ApiResult<(learning::Mastery, String, bool)> {
    let mut tx = conn.begin().await?;
    let m = learning::record_attempt(&mut tx, backend, attempt).await?;
    // Deleted in Trac since it was read: the transaction, and the attempt, are dropped.
    let mut status = trac::status_for_update(&mut tx, backend, attempt.concept_id)
        .await?
        .ok_or_else(|| absent_concept(attempt.concept_id))?;
    let mut status_changed = false;
    if m.mastery >= attempt.threshold && !trac::is_complete(&status) {
        let comment = format!(
            // `!` keeps Trac's wiki formatting from linking the CamelCase word to a
            // page that does not exist.
            "!LearnTrac: mastery {:.2} reached the threshold {:.2} after {} practice attempt(s).",
            m.mastery, attempt.threshold, m.attempts
        );
        let change = LearningChange {
            ticket: attempt.concept_id,
            author: attempt.student,
            status: Some(MASTERED),
            custom: &[],
            comment: &comment,
        };
        if trac::update_learning_status(&mut tx, backend, &change)
            .await?
            .is_some()
        {
            status = MASTERED.to_string();
            status_changed = true;
        }
    }
    tx.commit().await?;
    Ok((m, status, status_changed))
}
