use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiQuery, PathName};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::learning;
use crate::state::AppState;
use crate::trac;

#[derive(Debug, Deserialize)]
pub struct ConceptsQuery {
    /// Comma-separated ticket statuses, e.g. `new,accepted`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StudentConcept {
    pub id: i64,
    pub summary: String,
    pub status: String,
    pub milestone: String,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub learning_difficulty: f64,
    #[serde(serialize_with = "crate::numbers::ser")]
    pub mastery_threshold: f64,
    pub prerequisites: Vec<i64>,
    #[serde(serialize_with = "crate::numbers::ser_opt")]
    pub mastery: Option<f64>,
    pub attempts: i64,
}

#[derive(Debug, Serialize)]
pub struct StudentConcepts {
    pub student: String,
    pub concepts: Vec<StudentConcept>,
}

/// `status=new,accepted`: names of letters, digits, `_` and `-` (1–64), separated by commas,
/// nothing else (the grammar the OpenAPI document gives).
fn statuses(q: &ConceptsQuery) -> ApiResult<Vec<String>> {
    let Some(list) = &q.status else {
        return Ok(vec![]);
    };
    list.split(',')
        .map(|s| {
            if (1..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                Ok(s.to_string())
            } else {
                Err(ApiError::BadRequest(format!(
                    "status={list:?}: ticket statuses are letters, digits, _ and - (1 to 64), \
                     separated by commas"
                )))
            }
        })
        .collect()
}

pub async fn concepts(
    State(state): State<AppState>,
    caller: Caller,
    PathName(student): PathName,
    ApiQuery(q): ApiQuery<ConceptsQuery>,
) -> ApiResult<Json<StudentConcepts>> {
    caller
        .may_read(&state, &student, || {
            ApiError::NotFound(format!("no student {student}"))
        })
        .await?;
    let statuses = statuses(&q)?;
    let tickets = trac::student_concepts(&state.db, &student, &statuses).await?;
    let mastery = learning::student_mastery(&state.db, &student).await?;
    let concepts = tickets
        .into_iter()
        .map(|c| {
            let m = mastery.get(&c.id);
            StudentConcept {
                id: c.id,
                mastery: m.map(|m| m.mastery),
                attempts: m.map_or(0, |m| m.attempts),
                summary: c.summary,
                status: c.status,
                milestone: c.milestone,
                learning_difficulty: c.learning_difficulty,
                mastery_threshold: c.mastery_threshold,
                prerequisites: c.prerequisites,
            }
        })
        .collect();
    Ok(Json(StudentConcepts { student, concepts }))
}

#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub total: i64,
    pub completed: i64,
}

#[derive(Debug, Serialize)]
pub struct StudentProgress {
    pub student: String,
    pub total_concepts: i64,
    /// Closed or mastered.
    pub completed_concepts: i64,
    pub practised_concepts: i64,
    #[serde(serialize_with = "crate::numbers::ser_opt")]
    pub average_mastery: Option<f64>,
    pub by_milestone: BTreeMap<String, Tally>,
}

pub async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    PathName(student): PathName,
) -> ApiResult<Json<StudentProgress>> {
    caller
        .may_read(&state, &student, || {
            ApiError::NotFound(format!("no student {student}"))
        })
        .await?;
    let tickets = trac::student_concepts(&state.db, &student, &[]).await?;
    let mastery = learning::student_mastery(&state.db, &student).await?;
    let mut by_milestone: BTreeMap<String, Tally> = BTreeMap::new();
    for c in &tickets {
        let t = by_milestone.entry(c.milestone.clone()).or_default();
        t.total += 1;
        t.completed += i64::from(c.is_complete());
    }
    let practised: Vec<f64> = tickets
        .iter()
        .filter_map(|c| mastery.get(&c.id))
        .map(|m| m.mastery)
        .collect();
    Ok(Json(StudentProgress {
        student,
        total_concepts: tickets.len() as i64,
        completed_concepts: tickets.iter().filter(|c| c.is_complete()).count() as i64,
        practised_concepts: practised.len() as i64,
        average_mastery: (!practised.is_empty())
            .then(|| practised.iter().sum::<f64>() / practised.len() as f64),
        by_milestone,
    }))
}

/// Who the request is signed in as.
pub async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "user": caller.user }))
}
