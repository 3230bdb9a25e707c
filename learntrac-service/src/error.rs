//! One error type for every route: logs the cause chain, answers with a clean JSON body.

use axum::Json;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthenticated,
    #[error("the bearer token is invalid, expired, not yet valid or too long-lived")]
    InvalidToken,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unprocessable(String),
    /// A feature this deployment has not configured (what to set is in the message).
    #[error("{0}")]
    NotConfigured(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("the database is unavailable")]
    DatabaseUnavailable(#[source] sqlx::Error),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::DatabaseUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Down, unreachable or saturated: the client may retry; say so with 503.
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => ApiError::DatabaseUnavailable(e),
            other => ApiError::Internal(format!("database: {other}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::DatabaseUnavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            ApiError::Internal(e) => tracing::error!(error = %e, "request failed"),
            _ => {}
        }
        let mut resp = body(status, code, &self.to_string());
        // RFC 9110 §11.6.1 / RFC 6750: a 401 names the scheme that would work.
        let challenge = match self {
            ApiError::Unauthenticated => Some("Bearer realm=\"LearnTrac\""),
            ApiError::InvalidToken => Some("Bearer realm=\"LearnTrac\", error=\"invalid_token\""),
            _ => None,
        };
        if let Some(c) = challenge {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(retry_after.to_string()),
            // Not configured: retrying will not help until an operator acts.
            ApiError::NotConfigured(_) => None,
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some("2".into()),
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The documented error body.
fn body(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// Gives the error responses the framework makes itself (405 from the router, 413 from the
/// body limit, 503 from the timeout) the same JSON body as every other error, keeping their
/// headers (`Allow`, `Retry-After`).
pub async fn json_error_bodies(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method (see Allow)",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the service accepts",
        ),
        StatusCode::SERVICE_UNAVAILABLE => ("timeout", "the request took too long; retry"),
        _ => ("error", status.canonical_reason().unwrap_or("error")),
    };
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(CONTENT_TYPE);
    let mut out = body(status, code, message);
    for (k, v) in &parts.headers {
        out.headers_mut().insert(k, v.clone());
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !out.headers().contains_key("retry-after") {
        out.headers_mut()
            .insert("retry-after", HeaderValue::from_static("2"));
    }
    out
}
