use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::PathName;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::learning;
use crate::state::AppState;
use crate::trac::{self, MilestoneProgress};

async fn require_milestone(state: &AppState, name: &str) -> ApiResult<()> {
    if trac::milestone_exists(&state.db, name).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no milestone `{name}`")))
    }
}

/// Aggregate counts only, so any signed-in user may see them.
pub async fn progress(
    State(state): State<AppState>,
    _caller: Caller,
    PathName(name): PathName,
) -> ApiResult<Json<MilestoneProgress>> {
    require_milestone(&state, &name).await?;
    Ok(Json(trac::milestone_progress(&state.db, &name).await?))
}

#[derive(Debug, Serialize)]
pub struct StudentMastery {
    pub student: String,
    pub concepts: i64,
    pub practised: i64,
    pub mastered: i64,
    #[serde(serialize_with = "crate::numbers::ser_opt")]
    pub average_mastery: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct MilestoneAnalytics {
    pub milestone: String,
    pub concepts: i64,
    pub students: Vec<StudentMastery>,
}

/// Mastery per student: everyone's data, so TICKET_ADMIN only.
pub async fn analytics(
    State(state): State<AppState>,
    caller: Caller,
    PathName(name): PathName,
) -> ApiResult<Json<MilestoneAnalytics>> {
    caller.require_admin(&state).await?;
    require_milestone(&state, &name).await?;
    let concepts = trac::milestone_concepts(&state.db, &name).await?;
    let ids: Vec<i64> = concepts.iter().map(|c| c.id).collect();
    let mastery = learning::mastery_of_concepts(&state.db, &ids).await?;
    let mut students: BTreeMap<String, (i64, Vec<f64>, i64)> = BTreeMap::new();
    for c in &concepts {
        if !c.owner.is_empty() {
            students.entry(c.owner.clone()).or_default().0 += 1;
        }
    }
    for ((student, concept), m) in &mastery {
        let threshold = concepts
            .iter()
            .find(|c| c.id == *concept)
            .map_or(trac::DEFAULT_THRESHOLD, |c| c.mastery_threshold);
        let e = students.entry(student.clone()).or_default();
        e.1.push(m.mastery);
        e.2 += i64::from(m.mastery >= threshold);
    }
    Ok(Json(MilestoneAnalytics {
        milestone: name,
        concepts: concepts.len() as i64,
        students: students
            .into_iter()
            .map(|(student, (owned, scores, mastered))| StudentMastery {
                student,
                concepts: owned,
                practised: scores.len() as i64,
                mastered,
                average_mastery: (!scores.is_empty())
                    .then(|| scores.iter().sum::<f64>() / scores.len() as f64),
            })
            .collect(),
    }))
}
