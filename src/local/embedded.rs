//! The embedded runtime: SQLite with Trac's schema, the service in-process.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use sqlx::Connection;

use super::state::DataDir;
use crate::config::Environment;
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

/// The in-process service and what it offers, for `up` to say.
pub struct InProcess {
    pub router: Router,
    /// "chat tutor on: …" / "chat tutor off: …" and the same for voice.
    pub features: Vec<String>,
}

/// Variables the operator's shell may set for a local stack, over environments/local.yaml
/// (as SSM and the task definition would in AWS): the model to use and its key.
const FROM_SHELL: &[&str] = &[
    "CHAT_BASE_URL",
    "CHAT_MODEL",
    "CHAT_API_KEY",
    "VOICE_ENGINE",
];

/// The service's own variables on a local stack: the task's environment from the YAML
/// (CHAT_BASE_URL, CHAT_MODEL, …), then the operator's shell (the model's key arrives so,
/// as it would from SSM); and which came from the shell. What the stack decides (database,
/// port, token secret) is added by the caller.
pub fn task_variables(env: &Environment) -> (HashMap<String, String>, Vec<&'static str>) {
    let mut all: HashMap<String, String> = env
        .services
        .learntrac
        .environment
        .clone()
        .into_iter()
        .collect();
    let mut from_shell = Vec::new();
    for name in FROM_SHELL {
        if let Ok(value) = std::env::var(name) {
            all.insert((*name).to_string(), value);
            from_shell.push(*name);
        }
    }
    (all, from_shell)
}

/// Starts the service in-process on the SQLite Trac database.
pub async fn service(data: &DataDir, env: &Environment, token_secret: &str) -> Result<InProcess> {
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
) -> Result<InProcess> {
    let mut vars = vec![
        ("DATABASE_URL", database_url.to_string()),
        ("LEARNTRAC_TOKEN_SECRET", token_secret.to_string()),
        ("PORT", env.services.learntrac.port.to_string()),
        ("LOG_FORMAT", "pretty".to_string()),
    ];
    if let Some(url) = redis_url {
        vars.push(("REDIS_URL", url.to_string()));
    }
    let (mut all, from_shell) = task_variables(env);
    all.extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
    let config = learntrac_service::Config::from_vars(&all).map_err(|e| Error::Local {
        component: "learntrac".into(),
        message: format!(
            "{e} (from {})",
            if from_shell.iter().any(|v| e.to_string().contains(v)) {
                "your shell"
            } else {
                "environments/local.yaml"
            }
        ),
    })?;
    let state = learntrac_service::build_state(&config)
        .await
        .map_err(|e| Error::Local {
            component: "learntrac".into(),
            message: e.to_string(),
        })?;
    let source = |var: &str| {
        if from_shell.contains(&var) {
            "your shell"
        } else {
            "environments/local.yaml"
        }
    };
    let chat = match &config.chat {
        Some(c) => format!(
            "  chat tutor   on: model {} at {} (from {})",
            c.model.model,
            c.model.base_url,
            source("CHAT_BASE_URL")
        ),
        None => "  chat tutor   off: set CHAT_BASE_URL and CHAT_MODEL (an OpenAI-compatible endpoint) in environments/local.yaml or your shell".into(),
    };
    let voice = match (&state.voice, &state.tutor) {
        (Some(_), Some(_)) => {
            "  voice tutor  on: espeak-ng and PocketSphinx on this machine".into()
        }
        (Some(_), None) => {
            "  voice tutor  off: it answers through the chat tutor, which is off".into()
        }
        (None, _) => format!(
            "  voice tutor  off: VOICE_ENGINE is {} (auto needs espeak-ng and pocketsphinx on this machine)",
            all.get("VOICE_ENGINE").map_or("none", String::as_str)
        ),
    };
    Ok(InProcess {
        router: learntrac_service::router(state, learntrac_service::Limits::from(&config)),
        features: vec![chat, voice],
    })
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
