//! Who is asking. Trac and LearnTrac share one domain, so a browser logged in to Trac sends
//! Trac's `trac_auth` cookie, checked against Trac's `auth_cookie` table. API clients send
//! `Authorization: Bearer <HS256 JWT>` signed with LEARNTRAC_TOKEN_SECRET (`sub` = user).

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;
use crate::trac::permissions;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: u64,
}

/// Signs a bearer token for `user`, valid `ttl_secs` (for API clients, tests, tooling).
pub fn issue_token(
    secret: &str,
    user: &str,
    ttl_secs: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = Claims {
        sub: user.to_string(),
        exp: now + ttl_secs,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
}

impl Caller {
    /// Students see and change only their own data; TICKET_ADMIN holders may read anyone's.
    pub async fn may_read(&self, state: &AppState, owner: &str) -> Result<(), ApiError> {
        if self.user == owner || self.is_admin(state).await? {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "{} may not read data of {owner}",
                self.user
            )))
        }
    }

    pub async fn is_admin(&self, state: &AppState) -> Result<bool, ApiError> {
        Ok(permissions::is_ticket_admin(&state.db, &self.user).await?)
    }

    pub async fn require_admin(&self, state: &AppState) -> Result<(), ApiError> {
        if self.is_admin(state).await? {
            Ok(())
        } else {
            Err(ApiError::Forbidden("TICKET_ADMIN is required".into()))
        }
    }
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.headers.get(AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or(ApiError::Unauthenticated)?;
            let key = state.token_key.as_ref().ok_or(ApiError::Unauthenticated)?;
            let data =
                jsonwebtoken::decode::<Claims>(token, key, &Validation::new(Algorithm::HS256))
                    .map_err(|_| ApiError::Unauthenticated)?;
            if data.claims.sub.is_empty() {
                return Err(ApiError::Unauthenticated);
            }
            return Ok(Caller {
                user: data.claims.sub,
            });
        }
        if let Some(value) = cookie(parts, "trac_auth").filter(|v| !v.is_empty())
            && let Some(user) = permissions::user_for_cookie(&state.db, value).await?
        {
            return Ok(Caller { user });
        }
        Err(ApiError::Unauthenticated)
    }
}
