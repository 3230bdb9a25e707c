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
    /// Issued at; bounds the token's lifetime (see [`MAX_TOKEN_LIFETIME`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before: the token is refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// The longest a bearer token may live, counted from its `iat` (or from now, for a token
/// without one): a leaked long-lived token is refused even if correctly signed.
pub const MAX_TOKEN_LIFETIME: u64 = 7 * 24 * 3600;

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
        iat: Some(now),
        nbf: None,
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
    /// To a caller who may not see it, someone else's data is answered as absent (`absent`),
    /// so the API never tells who owns what.
    pub async fn may_read(
        &self,
        state: &AppState,
        owner: &str,
        absent: impl FnOnce() -> ApiError,
    ) -> Result<(), ApiError> {
        if self.user == owner || self.is_admin(state).await? {
            Ok(())
        } else {
            Err(absent())
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

/// The user a bearer token names: HS256 only, `exp` required, `nbf` honoured, lifetime at
/// most [`MAX_TOKEN_LIFETIME`].
fn verify(token: &str, key: &jsonwebtoken::DecodingKey) -> Option<String> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_nbf = true;
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .ok()?
        .claims;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // From its issue, and from now (an `iat` set in the future must not stretch it).
    let lifetime_ok = claims.exp.saturating_sub(claims.iat.unwrap_or(now)) <= MAX_TOKEN_LIFETIME
        && claims.exp.saturating_sub(now) <= MAX_TOKEN_LIFETIME;
    (lifetime_ok && !claims.sub.is_empty()).then_some(claims.sub)
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
            // RFC 9110: the scheme is case-insensitive, then one or more spaces.
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim_start_matches(' '))
                .ok_or(ApiError::Unauthenticated)?;
            let key = state.token_key.as_ref().ok_or(ApiError::Unauthenticated)?;
            let user = verify(token, key).ok_or(ApiError::InvalidToken)?;
            return Ok(Caller { user });
        }
        if let Some(token) = websocket_bearer(parts) {
            let key = state.token_key.as_ref().ok_or(ApiError::Unauthenticated)?;
            let user = verify(&token, key).ok_or(ApiError::InvalidToken)?;
            return Ok(Caller { user });
        }
        if let Some(value) = cookie(parts, "trac_auth").filter(|v| !v.is_empty()) {
            if let Some(user) = state.sessions.get(value) {
                return Ok(Caller { user });
            }
            if let Some(user) = permissions::user_for_cookie(&state.db, value).await? {
                state.sessions.put(value, &user);
                return Ok(Caller { user });
            }
        }
        Err(ApiError::Unauthenticated)
    }
}

/// A bearer token offered as the WebSocket subprotocol `bearer.<token>` (a browser cannot
/// set Authorization on a WebSocket, and a token in the URL would land in access logs).
fn websocket_bearer(parts: &Parts) -> Option<String> {
    let upgrade = parts
        .headers
        .get(axum::http::header::UPGRADE)?
        .to_str()
        .ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    parts
        .headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("bearer.").map(str::to_string))
}
