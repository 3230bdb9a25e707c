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
    /// How they signed in: what a long-lived connection re-checks.
    pub credential: Credential,
}

#[derive(Clone)]
pub enum Credential {
    /// A bearer token, good until `exp` (seconds since the epoch).
    Bearer { exp: u64 },
    /// Trac's login cookie, good while Trac keeps it (a logout deletes it).
    TracCookie(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Bearer { exp } => write!(f, "Bearer {{ exp: {exp} }}"),
            Credential::TracCookie(_) => f.write_str("TracCookie(<hidden>)"),
        }
    }
}

impl Caller {
    /// Whether the sign-in still holds now: the token has not expired, the Trac session
    /// was not logged out (read fresh, not from the few-second cache).
    pub async fn still_signed_in(&self, state: &AppState) -> Result<bool, ApiError> {
        Ok(match &self.credential {
            Credential::Bearer { exp } => now_secs() < *exp,
            Credential::TracCookie(cookie) => {
                permissions::user_for_cookie(&state.db, cookie)
                    .await?
                    .as_deref()
                    == Some(self.user.as_str())
            }
        })
    }

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
fn verify(token: &str, key: &jsonwebtoken::DecodingKey) -> Option<Caller> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_nbf = true;
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .ok()?
        .claims;
    let now = now_secs();
    // From its issue, and from now (an `iat` set in the future must not stretch it).
    let lifetime_ok = claims.exp.saturating_sub(claims.iat.unwrap_or(now)) <= MAX_TOKEN_LIFETIME
        && claims.exp.saturating_sub(now) <= MAX_TOKEN_LIFETIME;
    (lifetime_ok && !claims.sub.is_empty()).then_some(Caller {
        user: claims.sub,
        credential: Credential::Bearer { exp: claims.exp },
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether the request's `Origin` is the site it was sent to (scheme aside: TLS ends at the
/// load balancer). A browser always sends `Origin` on a WebSocket upgrade, and the cookie
/// rides along whatever page opened it, so a cookie-signed upgrade from elsewhere — another
/// site, or a same-site subdomain SameSite would let through — is refused.
fn same_origin(parts: &Parts) -> bool {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let Some(origin) = header("origin") else {
        return false;
    };
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    // The ALB passes Host through; a proxy that rewrites it says the original in
    // X-Forwarded-Host.
    let host = header("x-forwarded-host").or_else(|| header("host"));
    host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
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
            return verify(token, key).ok_or(ApiError::InvalidToken);
        }
        if let Some(token) = websocket_bearer(parts) {
            let key = state.token_key.as_ref().ok_or(ApiError::Unauthenticated)?;
            return verify(&token, key).ok_or(ApiError::InvalidToken);
        }
        if let Some(value) = cookie(parts, "trac_auth").filter(|v| !v.is_empty()) {
            if is_websocket(parts) && !same_origin(parts) {
                return Err(ApiError::Forbidden(
                    "a voice connection signed in by Trac's cookie must come from this site's own pages".into(),
                ));
            }
            let signed_in = |user: String| Caller {
                user,
                credential: Credential::TracCookie(value.to_string()),
            };
            if let Some(user) = state.sessions.get(value) {
                return Ok(signed_in(user));
            }
            if let Some(user) = permissions::user_for_cookie(&state.db, value).await? {
                state.sessions.put(value, &user);
                return Ok(signed_in(user));
            }
        }
        Err(ApiError::Unauthenticated)
    }
}

/// A bearer token offered as the WebSocket subprotocol `bearer.<token>` (a browser cannot
/// set Authorization on a WebSocket, and a token in the URL would land in access logs).
fn websocket_bearer(parts: &Parts) -> Option<String> {
    if !is_websocket(parts) {
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

fn is_websocket(parts: &Parts) -> bool {
    parts
        .headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
