use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::cache::CacheHealth;
use crate::db::Backend;
use crate::state::AppState;

/// Deep check for operators: the database must answer; a dead cache only degrades.
pub async fn deep(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let started = Instant::now();
    let db = tokio::time::timeout(Duration::from_secs(2), state.db.ping()).await;
    let db_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (db_ok, db_error) = match db {
        Ok(Ok(())) => (true, None),
        Ok(Err(e)) => (false, Some(e.to_string())),
        Err(_) => (false, Some("no answer within 2 s".to_string())),
    };
    let cache = state.cache.health().await;
    let (status, code, failing) = match (db_ok, cache) {
        (false, _) => (
            "unhealthy",
            StatusCode::SERVICE_UNAVAILABLE,
            vec!["database"],
        ),
        (true, CacheHealth::Down) => ("degraded", StatusCode::OK, vec!["cache"]),
        _ => ("healthy", StatusCode::OK, vec![]),
    };
    let backend = match state.db.backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let body = json!({
        "status": status,
        "failing": failing,
        "checks": {
            "database": {
                "status": if db_ok { "up" } else { "down" },
                "backend": backend,
                "latency_ms": (db_ms * 10.0).round() / 10.0,
                "error": db_error,
            },
            "cache": {
                "status": match cache { CacheHealth::Up => "up", CacheHealth::Down => "down", CacheHealth::Local => "local" },
                "kind": state.cache.kind(),
            },
        },
    });
    (code, Json(body))
}

/// Shallow check for the load balancer: the process serves HTTP. Never touches the
/// database, so a database blip does not take every task out of the target group.
pub async fn shallow(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "service": "learntrac",
        "version": env!("CARGO_PKG_VERSION"),
        "features": {
            "learning": "enabled",
            "analytics": "enabled",
            "chat": if state.tutor.is_some() { "enabled" } else { "disabled" },
            // Voice asks the chat tutor, so it needs both.
            "voice": if state.voice.is_some() && state.tutor.is_some() { "enabled" } else { "disabled" },
        },
    }))
}
