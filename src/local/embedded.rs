//! The embedded runtime: SQLite with Trac's schema, the service in-process, the router.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sqlx::Connection;
use tower::ServiceExt;

use super::router::route;
use super::state::DataDir;
use crate::config::{Environment, RoutingRule, ServiceName};
use crate::error::{Error, Result};

/// Creates the Trac database from Trac's own schema when it does not exist yet.
/// Returns true when it was created.
pub async fn ensure_trac_db(data: &DataDir) -> Result<bool> {
    let path = data.trac_db();
    if path.exists() {
        return Ok(false);
    }
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let fail = |e: sqlx::Error| Error::Local {
        component: "trac".into(),
        message: format!("cannot create {}: {e}", path.display()),
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.map_err(fail)?;
    let mut tx = conn.begin().await.map_err(fail)?;
    sqlx::raw_sql(super::TRAC_SQLITE_SCHEMA)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(true)
}

pub struct Stack {
    /// The service's router, called in-process.
    pub service: Router,
    pub rules: Vec<RoutingRule>,
}

/// The local router as an HTTP app: rules in ALB order; Trac (absent here) and
/// unmatched paths answered plainly.
pub fn router_app(stack: Arc<Stack>) -> Router {
    Router::new().fallback(proxy).with_state(stack)
}

async fn proxy(State(stack): State<Arc<Stack>>, req: Request<Body>) -> Response {
    match route(&stack.rules, req.uri().path()) {
        Some(ServiceName::Learntrac) => match stack.service.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        },
        Some(ServiceName::Trac) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Trac is not running in the embedded runtime: its UI needs the Docker runtime \
             (learntrac local up on a machine with a Docker Engine).\n",
        )
            .into_response(),
        // The ALB listener's default action.
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

/// Starts the service in-process on the SQLite Trac database.
pub async fn service(data: &DataDir, env: &Environment, token_secret: &str) -> Result<Router> {
    let vars = [
        (
            "DATABASE_URL",
            format!("sqlite://{}", data.trac_db().display()),
        ),
        ("LEARNTRAC_TOKEN_SECRET", token_secret.to_string()),
        ("PORT", env.services.learntrac.port.to_string()),
        ("LOG_FORMAT", "pretty".to_string()),
    ];
    let config = learntrac_service::Config::from_vars(
        &vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    )
    .map_err(|e| Error::Local {
        component: "learntrac".into(),
        message: e.to_string(),
    })?;
    let state = learntrac_service::build_state(&config)
        .await
        .map_err(|e| Error::Local {
            component: "learntrac".into(),
            message: e.to_string(),
        })?;
    Ok(learntrac_service::router(
        state,
        learntrac_service::Limits::from(&config),
    ))
}

/// Waits until the router answers the service's health check through the rules.
pub async fn await_healthy(port: u16, timeout: Duration) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let probe = tokio::task::spawn_blocking(move || {
            learntrac_service::healthcheck::probe(port, Duration::from_secs(2))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match probe {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > timeout => {
                return Err(Error::Local {
                    component: "learntrac".into(),
                    message: format!("not healthy after {timeout:?}: {e}"),
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
