//! Concept reads cached in Redis (or in-process without one). The cache is an
//! optimisation, never a dependency: every Redis call is bounded by a short timeout, and
//! after a failure Redis is skipped for a while so a dead cache costs requests nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

/// Longest a request waits on Redis before going to the database instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// How long Redis is left alone after it failed.
const BACKOFF: Duration = Duration::from_secs(5);

pub struct Cache {
    ttl: Duration,
    prefix: String,
    store: Store,
}

enum Store {
    Redis(Box<RedisStore>),
    Memory(Mutex<HashMap<String, (Instant, String)>>),
}

struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    down_until: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheHealth {
    Up,
    Down,
    /// In-process cache: nothing to be down.
    Local,
}

impl Cache {
    pub fn redis(url: &str, ttl: Duration, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(Cache {
            ttl,
            prefix: prefix.to_string(),
            store: Store::Redis(Box::new(RedisStore {
                client: redis::Client::open(url)?,
                conn: OnceCell::new(),
                down_until: Mutex::new(None),
            })),
        })
    }

    pub fn memory(ttl: Duration, prefix: &str) -> Self {
        Cache {
            ttl,
            prefix: prefix.to_string(),
            store: Store::Memory(Mutex::new(HashMap::new())),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.store {
            Store::Redis(_) => "redis",
            Store::Memory(_) => "memory",
        }
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        match &self.store {
            Store::Memory(m) => {
                let mut m = m.lock().ok()?;
                match m.get(key) {
                    Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
                    Some(_) => {
                        m.remove(key);
                        None
                    }
                    None => None,
                }
            }
            Store::Redis(_) => {
                let mut conn = self.redis_conn().await?;
                let r: Option<Result<Option<String>, _>> =
                    tokio::time::timeout(REDIS_TIMEOUT, conn.get(key))
                        .await
                        .ok();
                self.settle(r)?
            }
        }
    }

    pub async fn set(&self, key: &str, value: &str) {
        match &self.store {
            Store::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    m.insert(key.to_string(), (Instant::now(), value.to_string()));
                }
            }
            Store::Redis(_) => {
                let Some(mut conn) = self.redis_conn().await else {
                    return;
                };
                let ttl = self.ttl.as_secs().max(1);
                let r: Option<Result<(), _>> =
                    tokio::time::timeout(REDIS_TIMEOUT, conn.set_ex(key, value, ttl))
                        .await
                        .ok();
                self.settle(r);
            }
        }
    }

    pub async fn invalidate(&self, key: &str) {
        match &self.store {
            Store::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    m.remove(key);
                }
            }
            Store::Redis(_) => {
                let Some(mut conn) = self.redis_conn().await else {
                    return;
                };
                let r: Option<Result<(), _>> = tokio::time::timeout(REDIS_TIMEOUT, conn.del(key))
                    .await
                    .ok();
                self.settle(r);
            }
        }
    }

    /// Asks Redis directly (ignoring the back-off), for `/health`.
    pub async fn health(&self) -> CacheHealth {
        let Store::Redis(r) = &self.store else {
            return CacheHealth::Local;
        };
        if let Ok(mut d) = r.down_until.lock() {
            *d = None;
        }
        let Some(mut conn) = self.redis_conn().await else {
            return CacheHealth::Down;
        };
        let pong: Option<Result<String, _>> =
            tokio::time::timeout(REDIS_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                .await
                .ok();
        match self.settle(pong) {
            Some(_) => CacheHealth::Up,
            None => CacheHealth::Down,
        }
    }

    /// The connection, unless Redis recently failed or cannot be reached now.
    async fn redis_conn(&self) -> Option<ConnectionManager> {
        let Store::Redis(r) = &self.store else {
            return None;
        };
        let (client, conn, down_until) = (&r.client, &r.conn, &r.down_until);
        if down_until
            .lock()
            .ok()
            .and_then(|d| *d)
            .is_some_and(|until| Instant::now() < until)
        {
            return None;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let made = tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            conn.get_or_try_init(|| client.get_connection_manager_with_config(config)),
        )
        .await;
        match made {
            Ok(Ok(c)) => Some(c.clone()),
            _ => {
                self.mark_down();
                None
            }
        }
    }

    /// Turns a timed Redis result into a value, backing off after any failure.
    fn settle<T>(&self, r: Option<Result<T, redis::RedisError>>) -> Option<T> {
        match r {
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cache unavailable; reading from the database");
                self.mark_down();
                None
            }
            None => {
                tracing::warn!("cache timed out; reading from the database");
                self.mark_down();
                None
            }
        }
    }

    fn mark_down(&self) {
        if let Store::Redis(r) = &self.store
            && let Ok(mut d) = r.down_until.lock()
        {
            *d = Some(Instant::now() + BACKOFF);
        }
    }
}

impl Cache {
    pub fn concept_key(&self, id: i64) -> String {
        format!("{}:concept:{id}", self.prefix)
    }
}
