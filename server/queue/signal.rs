//! Telling workers that jobs were enqueued, without making every enqueuing request pay for a
//! `NOTIFY` (docs/EVENTS.md, "Waking workers").
//!
//! A `NOTIFY` in a transaction makes its commit take PostgreSQL's global notification lock, so
//! concurrent enqueuing requests would commit one after another (measured with pgbench: commit
//! rate halved). Instead a run that enqueued calls [`Signal::enqueued`] once its transaction has
//! committed. That wakes this instance's workers at once, in memory, and asks the notifier task
//! for one `NOTIFY` on [`super::CHANNEL`] for the other instances; the notifier sends at most
//! one per [`DEBOUNCE`], however many requests enqueued meanwhile. A job inserted any other way
//! (plain SQL) is found by the workers' poll.

use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The notifier sends at most one `NOTIFY` per this much time.
pub const DEBOUNCE: Duration = Duration::from_millis(5);

/// One per process and database: the wake-up of local workers and the debounced `NOTIFY`.
pub struct Signal {
    db: PgPool,
    local: Arc<Notify>,
    pending: Arc<Notify>,
    notifier: OnceLock<()>,
}

impl Signal {
    pub fn new(db: PgPool) -> Signal {
        Signal {
            db,
            local: Arc::new(Notify::new()),
            pending: Arc::new(Notify::new()),
            notifier: OnceLock::new(),
        }
    }

    /// What this instance's claim loop waits on (the listener of [`super::CHANNEL`] wakes it
    /// too).
    pub fn local(&self) -> Arc<Notify> {
        self.local.clone()
    }

    /// Jobs were enqueued by a transaction that has committed.
    pub fn enqueued(&self) {
        self.local.notify_one();
        self.pending.notify_one();
        self.notifier.get_or_init(|| {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(notify_loop(self.db.clone(), self.pending.clone()));
            }
        });
    }
}

/// Sends one `NOTIFY` per wake-up request, then waits [`DEBOUNCE`]: requests made meanwhile
/// are folded into the next one (a [`Notify`] keeps at most one permit).
async fn notify_loop(db: PgPool, pending: Arc<Notify>) {
    loop {
        pending.notified().await;
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::CHANNEL)
            .execute(&db)
            .await
        {
            tracing::debug!(error = %e, "cannot notify other instances of new jobs; they poll");
        }
        tokio::time::sleep(DEBOUNCE).await;
    }
}
