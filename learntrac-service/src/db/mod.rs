//! The shared database: PostgreSQL in AWS (RDS), SQLite where Trac uses its default
//! backend. One pool type for both (sqlx `Any`); the few statements that differ ask
//! `backend()`.

pub mod roles;
mod warm;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, AnyPool, Connection};

use warm::{MAX_PARKED, Warm};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
pub struct Db {
    /// sqlx's pool. The service's queries go through [`Db::run`]; this is for migrations
    /// and tests, before any `run`: connections parked warm are not in it, so once the
    /// service has served, taking one here can wait for the sweep (up to a second).
    pub pool: AnyPool,
    pub backend: Backend,
    warm: Arc<Warm>,
}

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Explains a TLS failure in terms of the settings that caused it: the CA file the
/// certificate was checked against, or the server's demand for TLS. Empty otherwise.
pub fn tls_hint(url: &str, error: &str) -> String {
    let param = |name: &str| {
        crate::config::query_param(url, name).map(|v| v.replace("%2F", "/").replace("%2f", "/"))
    };
    let mode = param("sslmode").unwrap_or_else(|| "prefer".into());
    if error.contains("certificate") {
        match param("sslrootcert") {
            Some(ca) => format!(
                " (sslmode={mode}: the database's TLS certificate is not vouched for by the CA bundle {ca}, or does not name the host dialled; check DATABASE_SSLROOTCERT and DATABASE_HOST)"
            ),
            None => format!(
                " (sslmode={mode} without a CA bundle: set DATABASE_SSLROOTCERT to the RDS CA bundle)"
            ),
        }
    } else if error.contains("no encryption") || error.contains("SSL off") {
        format!(
            " (sslmode={mode}: the server requires TLS, as RDS does; set DATABASE_SSLMODE=verify-full and DATABASE_SSLROOTCERT)"
        )
    } else {
        String::new()
    }
}

impl Db {
    /// Opens a lazy pool: start-up never waits for the database, and requests that find
    /// it down fail within `acquire_timeout` instead of hanging.
    pub fn connect_lazy(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let max_connections = if backend == Backend::Sqlite {
            1
        } else {
            max_connections
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            // sqlx pings every connection it hands out: a round trip per acquire, as costly as
            // the query itself under load. Only a connection that sat idle long enough for the
            // server, a failover or a NAT to have dropped it is checked; a busy one is not.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= MAX_PARKED {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy(url)?;
        Ok(Db {
            pool,
            backend,
            warm: Arc::new(Warm::new(max_connections, acquire_timeout)),
        })
    }

    /// Creates LearnTrac's own tables (never Trac's).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
        }
    }

    /// Runs `work` on one connection, handed back warm if `work` succeeds (see [`warm`]).
    /// Queue here rather than on `pool`.
    pub async fn run<T, E: From<sqlx::Error>>(
        &self,
        work: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        self.warm.run(&self.pool, work).await
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.run(async |c| sqlx::query("SELECT 1").execute(c).await.map(|_| ()))
            .await
    }
}
