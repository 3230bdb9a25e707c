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

/// Creates the Trac database from Trac's own schema when it does not exist yet, or when
/// what is there is an empty file (an `up` killed while creating it once left one; SQLite
/// reads it as a database without tables, and every API call would fail). The schema is
/// written to a side file and renamed into place, so a crash leaves no half a database.
/// Returns true when it was created.
pub async fn ensure_trac_db(data: &DataDir) -> Result<bool> {
    let path = data.trac_db();
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::Local {
        component: "trac".into(),
        message: format!("{what} {}: {e}", path.display()),
    };
    sqlx::any::install_default_drivers();
    if path.exists() {
        match trac_version(&path).await {
            Ok(Some(_)) => return Ok(false),
            Ok(None) => {
                // No tables at all: nothing to lose.
                std::fs::remove_file(&path).map_err(|e| fail("cannot remove", &e))?;
            }
            Err(why) => {
                return Err(Error::Local {
                    component: "trac".into(),
                    message: format!(
                        "{} is not a Trac database ({why}): move it away to keep it, or \
                         start afresh with `learntrac local down --volumes`",
                        path.display()
                    ),
                });
            }
        }
    }
    let partial = path.with_extension("db.partial");
    let _ = std::fs::remove_file(&partial);
    let url = format!("sqlite://{}?mode=rwc", partial.display());
    let create = async {
        let mut conn = sqlx::AnyConnection::connect(&url).await?;
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(super::TRAC_SQLITE_SCHEMA)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        conn.close().await
    };
    create.await.map_err(|e| fail("cannot create", &e))?;
    std::fs::rename(&partial, &path).map_err(|e| fail("cannot create", &e))?;
    Ok(true)
}

/// Trac's `database_version` in an existing SQLite file: Some when it is Trac's, None when
/// the file holds no tables, an error when it holds something else.
async fn trac_version(path: &std::path::Path) -> std::result::Result<Option<String>, String> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = sqlx::AnyConnection::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if tables == 0 {
        return Ok(None);
    }
    let version: Option<String> =
        sqlx::query_scalar("SELECT value FROM system WHERE name = 'database_version'")
            .fetch_optional(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    let _ = conn.close().await;
    version
        .map(Some)
        .ok_or_else(|| "it has tables but no Trac database_version".to_string())
}

pub struct Stack {
    /// The service's router, called in-process; None when it runs as a container.
    pub service: Option<Router>,
    /// The service container's published address, when it runs as one.
    pub learntrac: Option<String>,
    pub rules: Vec<RoutingRule>,
    /// Trac's address (`http://127.0.0.1:PORT`): its container's, or the embedded `tracd`'s.
    pub trac: Option<String>,
    /// Why Trac is not running, when it is not.
    pub trac_absent: Option<String>,
    pub http: reqwest::Client,
}

/// The local router as an HTTP app: rules in ALB order; Trac (absent here) and
/// unmatched paths answered plainly.
pub fn router_app(stack: Arc<Stack>) -> Router {
    Router::new().fallback(proxy).with_state(stack)
}

async fn proxy(State(stack): State<Arc<Stack>>, req: Request<Body>) -> Response {
    match route(&stack.rules, req.uri().path()) {
        ServiceName::Learntrac => match (&stack.service, &stack.learntrac) {
            (Some(service), _) => match service.clone().oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            },
            (None, Some(base)) => forward(&stack.http, base, req).await,
            (None, None) => StatusCode::BAD_GATEWAY.into_response(),
        },
        ServiceName::Trac => match &stack.trac {
            Some(base) => forward(&stack.http, base, req).await,
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Trac is not running here: {}\n",
                    stack
                        .trac_absent
                        .as_deref()
                        .unwrap_or("no Trac was started")
                ),
            )
                .into_response(),
        },
    }
}

/// Passes a request on to a container, as the ALB passes it to its target group.
async fn forward(http: &reqwest::Client, base: &str, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut upstream = http
        .request(parts.method, format!("{base}{path}"))
        .body(body);
    // The Host header passes through, as the ALB passes it: Trac builds its links and
    // redirects from it.
    for (k, v) in &parts.headers {
        if !is_hop_by_hop(k.as_str()) {
            upstream = upstream.header(k, v);
        }
    }
    match upstream.send().await {
        Ok(r) => {
            let mut builder = Response::builder().status(r.status());
            // Hop-by-hop headers describe Trac's connection, not ours (the body is whole here).
            for (k, v) in r
                .headers()
                .iter()
                .filter(|(k, _)| !is_hop_by_hop(k.as_str()))
            {
                builder = builder.header(k, v);
            }
            // A body cut short is the upstream failing, never a 200 with less in it.
            match r.bytes().await {
                Ok(bytes) => builder
                    .body(Body::from(bytes))
                    .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()),
                Err(e) => (
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream's answer was cut short: {e}\n"),
                )
                    .into_response(),
            }
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("{base} did not answer: {e}\n"),
        )
            .into_response(),
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "content-length"
    )
}

/// Starts the service in-process on the SQLite Trac database.
pub async fn service(data: &DataDir, env: &Environment, token_secret: &str) -> Result<Router> {
    service_on(
        env,
        &format!("sqlite://{}", data.trac_db().display()),
        None,
        token_secret,
    )
    .await
}

/// Starts the service in-process on a Trac database (and Redis, when given).
pub async fn service_on(
    env: &Environment,
    database_url: &str,
    redis_url: Option<&str>,
    token_secret: &str,
) -> Result<Router> {
    let mut vars = vec![
        ("DATABASE_URL", database_url.to_string()),
        ("LEARNTRAC_TOKEN_SECRET", token_secret.to_string()),
        ("PORT", env.services.learntrac.port.to_string()),
        ("LOG_FORMAT", "pretty".to_string()),
    ];
    if let Some(url) = redis_url {
        vars.push(("REDIS_URL", url.to_string()));
    }
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
