//! Why `local up` stops: Ctrl-C or SIGTERM (`learntrac local down`, a supervisor). The
//! handlers are installed before `up` does anything else — a process started in the
//! background by a non-interactive shell begins with SIGINT ignored, and a signal that
//! arrives while images build or containers start must stop `up`, not be lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Stop {
    asked: watch::Receiver<Option<&'static str>>,
    /// Set once the router serves: from then on, stopping is the router's graceful
    /// shutdown, no longer an interruption of the start.
    serving: Arc<AtomicBool>,
}

impl Stop {
    /// Installs the handlers now; must run inside the runtime.
    pub fn install() -> Result<Self> {
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Error::io("install the Ctrl-C handler", e))?;
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::io("install the SIGTERM handler", e))?;
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let why = tokio::select! {
                _ = int.recv() => "Ctrl-C",
                _ = term.recv() => "SIGTERM (`learntrac local down`, or another process)",
            };
            let _ = tx.send(Some(why));
        });
        Ok(Stop {
            asked: rx,
            serving: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The router serves: stopping from now on is `serve`'s to handle.
    pub fn serving(&self) {
        self.serving.store(true, Ordering::SeqCst);
    }

    /// Completes when a stop is asked for before the router serves; never after.
    pub async fn while_starting(&self) -> &'static str {
        let why = self.requested().await;
        if self.serving.load(Ordering::SeqCst) {
            return std::future::pending().await;
        }
        why
    }

    /// Completes with the reason once a stop was asked for.
    pub async fn requested(&self) -> &'static str {
        let mut rx = self.asked.clone();
        loop {
            if let Some(why) = *rx.borrow_and_update() {
                return why;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The reason, if a stop was asked for.
    pub fn reason(&self) -> Option<&'static str> {
        *self.asked.borrow()
    }
}
