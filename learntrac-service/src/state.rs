use std::sync::Arc;

use jsonwebtoken::DecodingKey;

use crate::cache::Cache;
use crate::db::Db;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub cache: Arc<Cache>,
    /// Trac login cookies checked in the last few seconds.
    pub sessions: Arc<crate::sessions::Sessions>,
    /// The chat tutor, when configured.
    pub tutor: Option<Arc<crate::tutor::Tutor>>,
    /// The voice tutor's speech engines, when configured.
    pub voice: Option<Arc<crate::voice::Voice>>,
    /// What one student and the task may hold at once (answers, sockets, engines).
    pub limits: Arc<crate::limits::Limits>,
    /// Verifies bearer tokens; None when no token secret is configured.
    pub token_key: Option<Arc<DecodingKey>>,
}
