//! Connections kept warm between uses, so that handing one back costs nothing.
//!
//! sqlx's pool checks every connection it takes back with a round trip to the server (a
//! `Sync`, in case a cancelled query left it mid-conversation), from a task it spawns for the
//! purpose: one extra round trip for every read, and one in five for a practice attempt.
//! Measured, that check alone cost a fifth of the service's throughput on POST practice.
//! Here a connection whose use finished cleanly is parked and handed to the next caller as
//! it is; one whose use did not finish (an error, a cancelled request) goes back to sqlx,
//! which checks it, and so does one that sat parked too long or has been lent out for long
//! enough that sqlx should see it again (its lifetime limit, its idle checks).
//!
//! Callers queue here, not in sqlx: a permit per connection, so a parked connection always
//! goes to the next caller in line and none waits on the pool for a connection parked here.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::Semaphore;

/// A parked connection older than this goes back to sqlx (whose `before_acquire` pings one
/// idle this long) instead of being handed out unchecked.
pub const MAX_PARKED: Duration = Duration::from_secs(1);
/// After this long out of sqlx's hands a connection is returned to it once, so its
/// lifetime limit and release check still apply under constant load.
const MAX_LENT: Duration = Duration::from_secs(60);

pub struct Warm {
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    parked: Mutex<Vec<Parked>>,
    sweeper: OnceLock<()>,
}

struct Parked {
    conn: PoolConnection<Any>,
    since: Instant,
    lent_at: Instant,
}

impl Warm {
    pub fn new(max_connections: u32, acquire_timeout: Duration) -> Self {
        Warm {
            permits: Arc::new(Semaphore::new(max_connections as usize)),
            acquire_timeout,
            parked: Mutex::new(Vec::new()),
            sweeper: OnceLock::new(),
        }
    }

    /// Runs `work` on one connection: a warm one if there is one, else one from `pool`.
    /// The connection is parked again only if `work` succeeded.
    pub async fn run<T, E>(
        self: &Arc<Self>,
        pool: &AnyPool,
        work: impl AsyncFnOnce(&mut AnyConnection) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<sqlx::Error>,
    {
        // Started here, inside the runtime, on first use.
        self.sweeper.get_or_init(|| {
            tokio::spawn(sweep(Arc::downgrade(self)));
        });
        // One deadline for the queue and for opening a connection: a request that finds the
        // database down fails within `acquire_timeout`, not twice that.
        let (permit, mut conn, lent_at) = tokio::time::timeout(self.acquire_timeout, async {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            let (conn, lent_at) = match self.unpark() {
                Some(p) => (p.conn, p.lent_at),
                None => (pool.acquire().await?, Instant::now()),
            };
            Ok::<_, sqlx::Error>((permit, conn, lent_at))
        })
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let out = work(&mut conn).await;
        if out.is_ok() && lent_at.elapsed() < MAX_LENT {
            self.park(Parked {
                conn,
                since: Instant::now(),
                lent_at,
            });
        }
        // Otherwise `conn` drops here, back to sqlx, which checks it.
        drop(permit);
        out
    }

    /// The most recently parked connection (the one most likely still warm), if it has not
    /// sat too long; those that have are handed back to sqlx.
    fn unpark(&self) -> Option<Parked> {
        let (newest, stale) = {
            let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
            let stale = take_stale(&mut parked);
            (parked.pop(), stale)
        };
        // Dropped outside the lock: each goes back to sqlx.
        drop(stale);
        newest
    }

    fn park(&self, p: Parked) {
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(p);
    }
}

/// Hands connections parked when traffic stops back to sqlx (and its idle timeout) instead
/// of keeping them out of its hands; a pool shutting down waits for every connection.
async fn sweep(warm: Weak<Warm>) {
    let mut tick = tokio::time::interval(MAX_PARKED);
    loop {
        tick.tick().await;
        let Some(warm) = warm.upgrade() else { return };
        let stale = take_stale(&mut warm.parked.lock().unwrap_or_else(|p| p.into_inner()));
        // Dropped outside the lock: each goes back to sqlx.
        drop(stale);
    }
}

/// Removes the connections parked `MAX_PARKED` or longer. Parking pushes and unparking pops
/// at the end, so the list runs oldest first and the stale ones are a prefix.
fn take_stale(parked: &mut Vec<Parked>) -> Vec<Parked> {
    let fresh_from = parked.partition_point(|p| p.since.elapsed() >= MAX_PARKED);
    parked.drain(..fresh_from).collect()
}
