//! The LearnTrac API: Trac tickets as learning concepts, on Trac's own database.
//!
//! A library first (`router`, `serve`, `AppState`) so the `learntrac` CLI can run it
//! in-process for the local stack; `main.rs` is a thin binary around it.

pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod healthcheck;
pub mod learning;
pub mod limits;
pub mod numbers;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod telemetry;
pub mod trac;
pub mod tutor;
pub mod voice;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::{get, post};
use jsonwebtoken::DecodingKey;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::Config;
pub use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("database {url}: {source}")]
    Database { url: String, source: sqlx::Error },
    #[error("creating LearnTrac's tables: {source}{hint}")]
    Migrate {
        source: sqlx::migrate::MigrateError,
        /// What to check, when the cause is recognisable (TLS).
        hint: String,
    },
    #[error("cache: {0}")]
    Cache(#[from] redis::RedisError),
    #[error("chat tutor: {0}")]
    Chat(String),
    #[error("voice tutor (VOICE_ENGINE): {0}")]
    Voice(String),
}

/// Connects (lazily), creates LearnTrac's tables and assembles the shared state.
pub async fn build_state(config: &Config) -> Result<AppState, StartupError> {
    // rediss:// (ElastiCache in-transit encryption) needs a process-wide TLS provider;
    // a second install (another AppState in the same process) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = db::Db::connect_lazy(
        &config.database_url,
        config.db_max_connections,
        config.db_acquire_timeout,
    )
    .map_err(|source| StartupError::Database {
        url: config::redact(&config.database_url),
        source,
    })?;
    db.migrate().await.map_err(|source| StartupError::Migrate {
        hint: db::tls_hint(&config.database_url, &source.to_string()),
        source,
    })?;
    let cache = match &config.redis_url {
        Some(url) => cache::Cache::redis(url, config.cache_ttl, &config.cache_prefix)?,
        None => cache::Cache::memory(config.cache_ttl, &config.cache_prefix),
    };
    Ok(AppState {
        db,
        cache: Arc::new(cache),
        sessions: Arc::new(sessions::Sessions::new(
            config.session_ttl,
            SESSIONS_REMEMBERED,
        )),
        tutor: match &config.chat {
            Some(chat) => Some(Arc::new(
                tutor::Tutor::new(chat.clone()).map_err(|e| StartupError::Chat(e.to_string()))?,
            )),
            None => {
                // For the operator: students are only told the tutor is not turned on.
                tracing::info!(
                    "chat tutor off: set CHAT_BASE_URL and CHAT_MODEL (an OpenAI-compatible endpoint) and, if it needs one, the CHAT_API_KEY secret"
                );
                None
            }
        },
        voice: speech_engines(config).await?,
        limits: Arc::new(limits::Limits::for_this_machine(
            config.voice_idle,
            !matches!(
                config.voice,
                config::VoiceEngine::OpenAi | config::VoiceEngine::Aws
            ),
        )),
        token_key: config
            .token_secret
            .as_ref()
            .map(|s| Arc::new(DecodingKey::from_secret(s.as_bytes()))),
    })
}

/// The speech engines VOICE_ENGINE asks for.
async fn speech_engines(config: &Config) -> Result<Option<Arc<voice::Voice>>, StartupError> {
    use config::VoiceEngine;
    let local = || -> Result<voice::Voice, String> {
        Ok(voice::Voice {
            recognizer: Box::new(voice::local::Pocketsphinx::locate(
                &config.voice_dictionary,
            )?),
            synthesizer: Box::new(voice::local::EspeakNg::locate()?),
            daily_seconds: config.voice_daily_seconds,
        })
    };
    match config.voice {
        VoiceEngine::None => Ok(None),
        VoiceEngine::Local => local()
            .map(|v| Some(Arc::new(v)))
            .map_err(StartupError::Voice),
        VoiceEngine::OpenAi => {
            let c = config.voice_openai.clone().ok_or_else(|| {
                StartupError::Voice("VOICE_ENGINE=openai without its settings".into())
            })?;
            let engine = |c| voice::openai::OpenAiSpeech::new(c).map_err(StartupError::Voice);
            Ok(Some(Arc::new(voice::Voice {
                recognizer: Box::new(engine(c.clone())?),
                synthesizer: Box::new(engine(c)?),
                daily_seconds: config.voice_daily_seconds,
            })))
        }
        VoiceEngine::Aws => {
            let c = config.voice_aws.clone().ok_or_else(|| {
                StartupError::Voice("VOICE_ENGINE=aws without its settings".into())
            })?;
            // One value serves as both traits: its two SDK clients share a connection pool.
            let engine = Arc::new(
                voice::aws::AwsSpeech::new(c)
                    .await
                    .map_err(StartupError::Voice)?,
            );
            Ok(Some(Arc::new(voice::Voice {
                recognizer: Box::new(engine.clone()),
                synthesizer: Box::new(engine),
                daily_seconds: config.voice_daily_seconds,
            })))
        }
        VoiceEngine::Auto => match local() {
            Ok(v) => Ok(Some(Arc::new(v))),
            Err(why) => {
                tracing::info!(%why, "voice tutor off");
                Ok(None)
            }
        },
    }
}

/// Trac login cookies remembered at once (about 100 bytes each).
const SESSIONS_REMEMBERED: usize = 50_000;

/// Limits every request is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: std::time::Duration,
    pub body_limit: usize,
}

impl From<&Config> for Limits {
    fn from(c: &Config) -> Self {
        Limits {
            request_timeout: c.request_timeout,
            body_limit: c.body_limit,
        }
    }
}

/// Every route, with request ids, logging, a timeout and a body limit.
pub fn router(state: AppState, limits: Limits) -> Router {
    use routes::{chat, concepts, health, learn, milestones, students, voice};
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/health", get(health::deep))
        .route("/api/LearnTrac/health", get(health::shallow))
        .route("/api/LearnTrac/openapi.json", get(routes::openapi))
        .route("/api/LearnTrac/me", get(students::me))
        .route("/api/LearnTrac/concepts/{id}", get(concepts::get))
        .route("/api/LearnTrac/concepts/{id}/practice", post(concepts::practice))
        .route("/api/LearnTrac/concepts/{id}/prerequisites", get(concepts::prerequisites))
        .route("/api/LearnTrac/students/{id}/concepts", get(students::concepts))
        .route("/api/LearnTrac/students/{id}/progress", get(students::progress))
        .route("/api/LearnTrac/milestones/{name}/progress", get(milestones::progress))
        .route("/api/analytics/milestones/{name}", get(milestones::analytics))
        .route("/api/chat/concepts/{id}/messages", post(chat::ask))
        .route("/api/chat/concepts/{id}/conversation", get(chat::latest))
        .route("/api/chat/conversations/{id}", get(chat::conversation))
        .route("/api/voice/ws", get(voice::session))
        .route("/learn", get(learn::bare))
        .route("/learn/", get(learn::index))
        .route("/learn/app.js", get(learn::script))
        .route("/learn/style.css", get(learn::style))
        .fallback(routes::not_found)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout))
                .layer(RequestBodyLimitLayer::new(limits.body_limit)),
        )
        // Outermost: sees the 405, 413 and 503 the layers and the router make themselves.
        .layer(axum::middleware::map_response(error::json_error_bodies))
        .with_state(state)
}

/// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
/// finish (ECS sends SIGTERM and waits `stopTimeout` before SIGKILL).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
