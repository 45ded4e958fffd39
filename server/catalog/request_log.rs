//! The request log: one row per sampled generated-API request (errors always), written by a
//! background task in batches through a bounded channel so that a request never waits for it,
//! and pruned by age and row count. Knows sqlx and tokio, not axum.

use serde_json::Value;
use sqlx::PgPool;
use sqlx::types::Json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// Most entries waiting to be written; past it, entries are dropped and counted.
pub const QUEUE: usize = 4096;
/// Most rows of one insert.
const BATCH: usize = 500;
/// How long an entry may wait for its batch.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// How often old rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

pub use crate::config::LogConfig;

/// One request.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: SystemTime,
    pub flow: String,
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub duration_ms: f64,
    pub error_code: Option<String>,
    pub request_id: String,
    /// The captured request of an endpoint with `settings.capture` (already redacted and
    /// capped by `http::capture`), else `None`.
    pub request: Option<Value>,
}

/// Counters of the writer, for `/metrics`.
#[derive(Debug, Default)]
pub struct LogStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// The sending side, held by the request path.
pub struct RequestLog {
    tx: mpsc::Sender<Entry>,
    threshold: u64,
    counter: AtomicU64,
    pub stats: Arc<LogStats>,
    stop: std::sync::Mutex<Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>>,
}

impl RequestLog {
    /// Starts the writer task.
    pub fn start(db: PgPool, config: LogConfig) -> RequestLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let stats = Arc::new(LogStats::default());
        let task = tokio::spawn(writer(db, config, rx, stop_rx, stats.clone()));
        let sample = config.sample.clamp(0.0, 1.0);
        RequestLog {
            tx,
            threshold: if sample >= 1.0 {
                u64::MAX
            } else {
                (sample * u64::MAX as f64) as u64
            },
            counter: AtomicU64::new(0),
            stats,
            stop: std::sync::Mutex::new(Some((stop_tx, task))),
        }
    }

    /// Whether a request with this status is logged: errors always, others by sample.
    pub fn keeps(&self, status: u16) -> bool {
        if status >= 400 || self.threshold == u64::MAX {
            return true;
        }
        // An even spread without a random source: the golden-ratio sequence, mixed.
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        splitmix(n) < self.threshold
    }

    /// Queues an entry without waiting; a full queue drops it and counts the drop.
    pub fn push(&self, entry: Entry) {
        if self.tx.try_send(entry).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes what is queued and stops the writer, waiting at most `wait`.
    pub async fn shutdown(&self, wait: Duration) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((tx, task)) = stop {
            let _ = tx.send(());
            if tokio::time::timeout(wait, task).await.is_err() {
                tracing::warn!("the request log did not finish writing in time");
            }
        }
    }
}

fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn writer(
    db: PgPool,
    config: LogConfig,
    mut rx: mpsc::Receiver<Entry>,
    mut stop: oneshot::Receiver<()>,
    stats: Arc<LogStats>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<tokio::time::Instant> = None;
    // Rows only need pruning after new ones arrive, so an idle instance touches nothing.
    let mut unpruned = false;
    loop {
        let stopping = tokio::select! {
            got = rx.recv() => match got {
                Some(e) => {
                    batch.push(e);
                    if batch.len() < BATCH {
                        continue;
                    }
                    false
                }
                None => true,
            },
            _ = tick.tick() => false,
            _ = &mut stop => true,
        };
        if stopping {
            while let Ok(e) = rx.try_recv() {
                batch.push(e);
            }
        }
        for chunk in batch.chunks(BATCH) {
            match insert(&db, chunk).await {
                Ok(()) => {
                    unpruned = true;
                    stats
                        .written
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    stats
                        .failed
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    tracing::warn!(error = %e, rows = chunk.len(), "cannot write the request log");
                }
            }
        }
        batch.clear();
        if stopping {
            return;
        }
        if unpruned && last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            unpruned = false;
            if let Err(e) = prune(&db, config.max_age, config.max_rows).await {
                tracing::warn!(error = %e, "cannot prune the request log");
            }
        }
    }
}

/// Inserts entries in one statement.
pub async fn insert(db: &PgPool, entries: &[Entry]) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let at: Vec<f64> = entries
        .iter()
        .map(|e| {
            e.at.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        })
        .collect();
    sqlx::query(
        "INSERT INTO sluice.request_log \
             (at, flow, method, path, status, duration_ms, error_code, request_id, request) \
         SELECT to_timestamp(a), f, m, p, s, d, e, r, q::jsonb \
         FROM UNNEST($1::float8[], $2::text[], $3::text[], $4::text[], $5::int2[], \
                     $6::float8[], $7::text[], $8::text[], $9::text[]) \
              AS t(a, f, m, p, s, d, e, r, q)",
    )
    .bind(at)
    .bind(entries.iter().map(|e| e.flow.as_str()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.method).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.status as i16)
            .collect::<Vec<i16>>(),
    )
    .bind(entries.iter().map(|e| e.duration_ms).collect::<Vec<_>>())
    .bind(
        entries
            .iter()
            .map(|e| e.error_code.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|e| e.request_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        entries
            .iter()
            .map(|e| e.request.as_ref().map(Value::to_string))
            .collect::<Vec<_>>(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes rows older than `max_age`, then all but the newest `max_rows`.
pub async fn prune(db: &PgPool, max_age: Duration, max_rows: u64) -> Result<u64, sqlx::Error> {
    let old = sqlx::query(
        "DELETE FROM sluice.request_log WHERE at < now() - make_interval(secs => $1::float8)",
    )
    .bind(max_age.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected();
    let over = sqlx::query(
        "DELETE FROM sluice.request_log WHERE id <= \
         (SELECT id FROM sluice.request_log ORDER BY id DESC OFFSET $1 LIMIT 1)",
    )
    .bind(i64::try_from(max_rows).unwrap_or(i64::MAX))
    .execute(db)
    .await?
    .rows_affected();
    Ok(old + over)
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub flow: Option<String>,
    /// An exact status.
    pub status: Option<u16>,
    /// A class: 1 to 5 for 1xx to 5xx.
    pub class: Option<u16>,
    /// Only rows with a smaller id (the cursor of the previous page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Rows matching `filter`, newest first, as JSON objects.
pub async fn list(db: &PgPool, filter: &Filter) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<Json<Value>> = sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id, 'at', at, 'flow', flow, 'method', method, \
                'path', path, 'status', status, 'duration_ms', duration_ms, \
                'error_code', error_code, 'request_id', request_id, 'request', request) \
         FROM sluice.request_log \
         WHERE ($1::text IS NULL OR flow = $1) \
           AND ($2::int IS NULL OR status = $2) \
           AND ($3::int IS NULL OR status / 100 = $3) \
           AND ($4::bigint IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $5",
    )
    .bind(filter.flow.as_deref())
    .bind(filter.status.map(i32::from))
    .bind(filter.class.map(i32::from))
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|Json(v)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_keeps_about_the_configured_share_and_every_error() {
        let rate = |n: u64, threshold: u64| (0..n).filter(|i| splitmix(*i) < threshold).count();
        let kept = rate(100_000, (0.1 * u64::MAX as f64) as u64);
        assert!((9_000..11_000).contains(&kept), "{kept}");
    }
}
