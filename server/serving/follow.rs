//! The instance follower: keeps several instances on one database serving the same thing.
//! Every change that affects serving moves the catalog's serving generation and notifies
//! channel `sluice_reload` (triggers of migration 0008, inside the changing transaction). Each
//! instance listens on that channel over one connection of its own, opened with the direct
//! connection options (`SLUICE_DATABASE_DIRECT_URL`: LISTEN needs a session, which a
//! transaction pooler does not keep), reconnecting when it drops, and also checks the
//! generation periodically, so a missed notification heals; both only wake one reloader, so a
//! burst of changes costs one or two reloads, and a reload happens only when the generation
//! moved past what is loaded ([`Serving::reload_if_moved`]).
//! Knows sqlx, not axum.

use super::{Routes, Serving};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The channel the catalog notifies on.
pub const CHANNEL: &str = "sluice_reload";

/// How an instance follows the others.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Listen for notifications (off: only the periodic check).
    pub listen: bool,
    /// Where to listen: a session of its own on the database (not through a transaction
    /// pooler).
    pub direct: PgConnectOptions,
    /// Period of the generation check.
    pub check_every: Duration,
}

/// The background tasks; dropping this stops them.
pub struct SyncTasks(Vec<JoinHandle<()>>);

impl Drop for SyncTasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Starts the reloader, the periodic check and (unless disabled) the listener.
pub fn start<R: Routes>(serving: Arc<Serving<R>>, opts: SyncOptions) -> SyncTasks {
    let mut tasks = vec![tokio::spawn(reloader(serving.clone()))];
    let bell = serving.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(opts.check_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            bell.wake.notify_one();
        }
    }));
    if opts.listen {
        tasks.push(tokio::spawn(listen(serving, opts.direct)));
    }
    SyncTasks(tasks)
}

async fn reloader<R: Routes>(serving: Arc<Serving<R>>) {
    loop {
        serving.wake.notified().await;
        if let Err(e) = serving.reload_if_moved().await {
            tracing::warn!(error = ?e, "could not follow a catalog change; retrying at the next check");
        }
    }
}

async fn listen<R: Routes>(serving: Arc<Serving<R>>, direct: PgConnectOptions) {
    let wake = || serving.wake.notify_one();
    // A connection of its own, outside the request pool: a listener holds its connection for
    // good, which would starve a small pool. Its one-connection pool only serves reconnects.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with(direct);
    loop {
        let mut listener = match PgListener::connect_with(&own).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to listen for catalog changes; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for catalog changes; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Whatever changed while nobody listened.
        wake();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake(),
                // The connection dropped; the next call reconnects and listens again, and the
                // generation check covers what was missed meanwhile.
                Ok(None) => wake(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the catalog change listener; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
