//! Keeping several instances on one database serving the same thing. Every change that affects
//! serving moves the catalog's serving generation and notifies channel `sluice_reload` (triggers
//! of migration 0008, inside the changing transaction). Each instance listens on that channel
//! over one connection of its own (reconnecting when it drops) and also checks the generation periodically, so a
//! missed notification heals; both only wake one reloader, so a burst of changes costs one or two
//! reloads, and a reload happens only when the generation moved past what is loaded.

use super::AppState;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The channel the catalog notifies on.
pub const CHANNEL: &str = "sluice_reload";

/// What this instance has loaded, and the bell that wakes its reloader.
#[derive(Debug, Default)]
pub struct Serving {
    loaded: AtomicI64,
    wake: Notify,
}

impl Serving {
    /// Records that the catalog at `generation` (or later) is being served.
    pub fn loaded(&self, generation: i64) {
        self.loaded.fetch_max(generation, Ordering::AcqRel);
    }

    /// The generation served.
    pub fn generation(&self) -> i64 {
        self.loaded.load(Ordering::Acquire)
    }
}

/// How an instance follows the others.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Listen for notifications (off: only the periodic check).
    pub listen: bool,
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
pub fn start(state: AppState, opts: SyncOptions) -> SyncTasks {
    let mut tasks = vec![tokio::spawn(reloader(state.clone()))];
    let serving = state.serving.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(opts.check_every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            serving.wake.notify_one();
        }
    }));
    if opts.listen {
        tasks.push(tokio::spawn(listen(state)));
    }
    SyncTasks(tasks)
}

async fn reloader(state: AppState) {
    let serving: Arc<Serving> = state.serving.clone();
    loop {
        serving.wake.notified().await;
        if let Err(e) = reload_if_moved(&state).await {
            tracing::warn!(error = ?e, "could not follow a catalog change; retrying at the next check");
        }
    }
}

/// Reloads everything a change elsewhere can affect (environment values, the token keys, routes
/// and groups) if the catalog's generation is ahead of the one served.
pub async fn reload_if_moved(state: &AppState) -> Result<bool, super::error::ApiError> {
    let current = crate::catalog::groups::generation(&state.db).await?;
    if current <= state.serving.generation() {
        return Ok(false);
    }
    super::env::reload(state).await?;
    // The route reload also reloads the token key ring.
    let served = super::routes::reload(state).await?;
    tracing::info!(
        generation = current,
        endpoints = served,
        "reloaded after a change in the catalog"
    );
    Ok(true)
}

async fn listen(state: AppState) {
    let wake = || state.serving.wake.notify_one();
    // A connection of its own, outside the request pool: a listener holds its connection for
    // good, which would starve a small pool. Its one-connection pool only serves reconnects.
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*state.db.connect_options()).clone());
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
