//! HTTP routes. Every error is JSON; extractors' own rejections are mapped too.

pub mod chat;
pub mod concepts;
pub mod health;
pub mod learn;
pub mod milestones;
pub mod students;
pub mod voice;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;

use crate::error::ApiError;

/// `axum::Json` with JSON errors: malformed JSON → 400, wrong shape → 422.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A concept's id from the path: a positive ticket number (the OpenAPI bounds).
pub struct ConceptId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ConceptId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(id) = ApiPath::<i64>::from_request_parts(parts, state).await?;
        if id < 1 {
            return Err(ApiError::BadRequest(format!(
                "concept ids are positive ticket numbers, not {id}"
            )));
        }
        Ok(ConceptId(id))
    }
}

/// A user or milestone name from the path: 1 to 255 characters (the OpenAPI bounds).
pub struct PathName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ApiPath(name) = ApiPath::<String>::from_request_parts(parts, state).await?;
        let n = name.chars().count();
        if !(1..=255).contains(&n) {
            return Err(ApiError::BadRequest(format!(
                "names are 1 to 255 characters, this one has {n}"
            )));
        }
        Ok(PathName(name))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge(
                "the request body is larger than the service accepts".into(),
            );
        }
        match r {
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

pub async fn not_found() -> impl IntoResponse {
    ApiError::NotFound("no such endpoint".into())
}

pub async fn openapi() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}
