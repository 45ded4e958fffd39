//! The durable job queue's storage (`sluice.jobs`, `sluice.job_attempts`; migration 0013,
//! docs/EVENTS.md). The one place that builds the queue's SQL: every producer (job.enqueue,
//! schedules, table events, the admin API) enqueues through [`enqueue`], inside its own
//! transaction, so a job exists exactly when the writes around it commit. Workers claim,
//! complete and fail jobs through this module too. Depends on sqlx only.

pub mod admin;
pub mod schedules;
pub mod signal;

use serde_json::Value;
use sqlx::PgConnection;

pub mod work;

/// The channel workers LISTEN on. An enqueue does not notify it in its transaction (that would
/// serialize the commits of enqueuing requests); see [`signal`] and [`notify`].
pub const CHANNEL: &str = "sluice_jobs";

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The flow to run (its name).
    pub kind: String,
    /// The flow's input.
    pub args: Value,
    /// Unique among the jobs with this key that are not discarded or cancelled: a second
    /// enqueue with the same key adds nothing.
    pub unique_key: Option<String>,
    /// Run no earlier than this many milliseconds after the enqueue commits (`None`: now).
    pub delay_ms: Option<u64>,
    /// Or at this time (RFC 3339); wins over `delay_ms`.
    pub run_at: Option<String>,
    /// 1 (first) to 4.
    pub priority: i16,
    pub max_attempts: i16,
    pub concurrency_key: Option<String>,
    /// What made it: `{"kind": "enqueue", "flow": ...}`, `{"kind": "schedule", ...}`, ….
    pub source: Value,
}

impl NewJob {
    /// A job for flow `kind` with `args` and the defaults (priority 1, 5 attempts, now).
    pub fn new(kind: impl Into<String>, args: Value, source: Value) -> NewJob {
        NewJob {
            kind: kind.into(),
            args,
            unique_key: None,
            delay_ms: None,
            run_at: None,
            priority: 1,
            max_attempts: 5,
            concurrency_key: None,
            source,
        }
    }
}

const ENQUEUE: &str = "\
WITH j AS (
    INSERT INTO sluice.jobs (kind, args, unique_key, scheduled_at, state, priority, max_attempts,
                             concurrency_key, source)
    SELECT $1, $2, $3, at, CASE WHEN at > now() THEN 'scheduled' ELSE 'available' END, $6, $7,
           $8, $9
    FROM (SELECT COALESCE($5::timestamptz, now() + make_interval(secs => COALESCE($4, 0) / 1000.0))
          AS at) t
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state NOT IN ('discarded', 'cancelled')
    DO NOTHING
    RETURNING id
)
SELECT id FROM j";

/// Inserts `job` on `conn` (inside the caller's transaction). `Some(id)` of the new job, or
/// `None` when a job with the same unique key is already queued, running or completed.
pub async fn enqueue(conn: &mut PgConnection, job: &NewJob) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<i64> = sqlx::query_scalar(ENQUEUE)
        .bind(&job.kind)
        .bind(&job.args)
        .bind(&job.unique_key)
        .bind(job.delay_ms.map(|ms| ms.min(i64::MAX as u64) as i64))
        .bind(&job.run_at)
        .bind(job.priority)
        .bind(job.max_attempts)
        .bind(&job.concurrency_key)
        .bind(&job.source)
        .fetch_optional(conn)
        .await?;
    Ok(row)
}

/// Notifies [`CHANNEL`] when the transaction on `conn` commits: for producers that enqueue a
/// batch in one transaction now and then (the scheduler, the change dispatcher, an admin
/// retry), where one notification per transaction costs nothing.
pub async fn notify(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}
