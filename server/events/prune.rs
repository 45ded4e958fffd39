//! Housekeeping of the queue and the change log: a periodic task that deletes finished jobs
//! past their retention (`crate::queue::admin::prune`; one instance at a time) and dispatched
//! changes past the same retention as completed jobs.

use crate::queue::admin::{self, Retention};
use sqlx::PgPool;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The pruning task; dropping this stops it.
pub struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Prunes at start and then every `every`.
pub fn start(db: PgPool, retention: Retention, every: Duration) -> Task {
    Task(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = once(&db, retention).await {
                tracing::warn!(error = %e, "pruning finished jobs failed; retrying later");
            }
        }
    }))
}

/// One pass: jobs in batches until none is left to delete, then the change log.
pub async fn once(db: &PgPool, retention: Retention) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    while let Some(n) = admin::prune(db, retention).await? {
        total += n;
        if n < 10_000 {
            break;
        }
    }
    let changes = super::changes::prune(db, retention.finished).await?;
    if total > 0 || changes > 0 {
        tracing::info!(
            jobs = total,
            changes,
            "pruned finished jobs and dispatched changes"
        );
    }
    Ok(total)
}
