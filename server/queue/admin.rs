//! The queue's admin operations (docs/API.md, "Jobs"): list and read jobs with their
//! attempts, retry and cancel one, the numbers `/metrics` shows, and pruning of finished jobs.
//! Jobs are read as JSON built by Postgres (`to_jsonb` of the row), so the answer has every
//! column of `sluice.jobs` (migration 0013) under its own name, plus `flow` (= `kind`).

use serde_json::Value;
use sqlx::{PgPool, Row};
use std::time::Duration;

/// Every job state, in the order of the lifecycle.
pub const STATES: [&str; 7] = [
    "available",
    "scheduled",
    "running",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
];

/// Key of the advisory lock held by the instance that prunes.
const PRUNE_LOCK: i64 = 0x0051_1ce7_9b0e;

/// Why an admin operation on a job did not happen.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("there is no job {0}")]
    NotFound(i64),
    #[error("job {id} is {state}; only discarded, cancelled or retryable jobs can be retried")]
    NotRetryable { id: i64, state: String },
    #[error("job {id} is {state}; only available, scheduled or retryable jobs can be cancelled")]
    NotCancellable { id: i64, state: String },
    #[error("another job with the same unique key is queued, running or completed")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// One of [`STATES`].
    pub state: Option<String>,
    /// The flow's name (the job's `kind`).
    pub flow: Option<String>,
    /// 1 to 200.
    pub limit: i64,
    /// Jobs with an id below this one (the `next_cursor` of the previous page).
    pub before: Option<i64>,
}

/// One page, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub jobs: Vec<Value>,
    /// The id to pass as `before` for the next page; `None` on the last page.
    pub next: Option<i64>,
    /// Jobs per state (of `flow`, when given; every state present, zeros included).
    pub counts: Value,
}

const JOB_JSON: &str = "to_jsonb(j) || jsonb_build_object('flow', j.kind)";

/// A page of jobs, newest first, and the counts per state.
pub async fn list(db: &PgPool, q: &ListQuery) -> Result<Page, sqlx::Error> {
    let rows: Vec<(i64, Value)> = sqlx::query_as(&format!(
        "SELECT j.id, {JOB_JSON} FROM sluice.jobs j \
         WHERE ($1::text IS NULL OR j.state = $1) AND ($2::text IS NULL OR j.kind = $2) \
           AND ($3::bigint IS NULL OR j.id < $3) \
         ORDER BY j.id DESC LIMIT $4"
    ))
    .bind(&q.state)
    .bind(&q.flow)
    .bind(q.before)
    .bind(q.limit + 1)
    .fetch_all(db)
    .await?;
    let more = rows.len() as i64 > q.limit;
    let rows: Vec<(i64, Value)> = rows.into_iter().take(q.limit as usize).collect();
    let next = if more {
        rows.last().map(|(id, _)| *id)
    } else {
        None
    };
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, count(*) FROM sluice.jobs WHERE ($1::text IS NULL OR kind = $1) GROUP BY state",
    )
    .bind(&q.flow)
    .fetch_all(db)
    .await?;
    let mut counts = serde_json::Map::new();
    for s in STATES {
        let n = counted.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n);
        counts.insert(s.to_string(), Value::from(n));
    }
    Ok(Page {
        jobs: rows.into_iter().map(|(_, j)| j).collect(),
        next,
        counts: Value::Object(counts),
    })
}

/// The job with every attempt (worker, times, outcome, error, trace), oldest attempt first.
pub async fn get(db: &PgPool, id: i64) -> Result<Value, JobError> {
    let row: Option<Value> = sqlx::query_scalar(&format!(
        "SELECT {JOB_JSON} || jsonb_build_object('attempts', \
           (SELECT coalesce(jsonb_agg(to_jsonb(a) - 'job_id' ORDER BY a.attempt), '[]'::jsonb) \
            FROM sluice.job_attempts a WHERE a.job_id = j.id)) \
         FROM sluice.jobs j WHERE j.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.ok_or(JobError::NotFound(id))
}

async fn state_of(db: &PgPool, id: i64) -> Result<String, JobError> {
    sqlx::query_scalar("SELECT state FROM sluice.jobs WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(JobError::NotFound(id))
}

/// A discarded, cancelled or retryable job becomes available now, with at least one attempt
/// left. Notifies the workers.
pub async fn retry(db: &PgPool, id: i64) -> Result<Value, JobError> {
    let done = sqlx::query(
        "WITH j AS ( \
           UPDATE sluice.jobs SET state = 'available', scheduled_at = now(), finalized_at = NULL, \
             max_attempts = GREATEST(max_attempts, attempt + 1) \
           WHERE id = $1 AND state IN ('discarded', 'cancelled', 'retryable') RETURNING id) \
         SELECT id, pg_notify('sluice_jobs', '') IS NULL FROM j",
    )
    .bind(id)
    .fetch_optional(db)
    .await;
    match done {
        Ok(Some(_)) => get(db, id).await,
        Ok(None) => Err(JobError::NotRetryable {
            id,
            state: state_of(db, id).await?,
        }),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(JobError::Duplicate)
        }
        Err(e) => Err(e.into()),
    }
}

/// An available, scheduled or retryable job becomes cancelled; its errors record that an admin
/// cancelled it.
pub async fn cancel(db: &PgPool, id: i64) -> Result<Value, JobError> {
    let done = sqlx::query(
        "UPDATE sluice.jobs SET state = 'cancelled', finalized_at = now(), \
           errors = array_append(coalesce(errors, '{}'), jsonb_build_object( \
             'attempt', attempt, 'at', now(), 'code', 'job.cancelled', \
             'message', 'cancelled through the admin API')) \
         WHERE id = $1 AND state IN ('available', 'scheduled', 'retryable')",
    )
    .bind(id)
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(JobError::NotCancellable {
            id,
            state: state_of(db, id).await?,
        });
    }
    get(db, id).await
}

/// What `/metrics` shows of the queue, read in one statement when scraped.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Jobs per state (every state).
    pub states: Vec<(String, i64)>,
    /// Seconds since the oldest available job became ready (0 when none waits).
    pub oldest_available_secs: f64,
    /// Per flow: attempts and failed attempts among the jobs kept (see pruning).
    pub flows: Vec<(String, i64, i64)>,
}

/// Reads [`Stats`] in one statement.
pub async fn stats(db: &PgPool) -> Result<Stats, sqlx::Error> {
    let row = sqlx::query(
        "SELECT \
           (SELECT coalesce(jsonb_object_agg(state, n), '{}'::jsonb) \
              FROM (SELECT state, count(*) AS n FROM sluice.jobs GROUP BY state) s) AS states, \
           (SELECT coalesce(extract(epoch FROM now() - min(scheduled_at)), 0)::float8 \
              FROM sluice.jobs WHERE state = 'available' AND scheduled_at <= now()) AS oldest, \
           (SELECT coalesce(jsonb_agg(jsonb_build_array(kind, attempts, failures) ORDER BY kind), '[]'::jsonb) \
              FROM (SELECT j.kind, count(*) AS attempts, \
                           count(*) FILTER (WHERE a.outcome IN ('failed', 'discarded', 'timeout', 'rescued')) AS failures \
                    FROM sluice.job_attempts a JOIN sluice.jobs j ON j.id = a.job_id \
                    GROUP BY j.kind) f) AS flows",
    )
    .fetch_one(db)
    .await?;
    let states: Value = row.try_get("states")?;
    let flows: Value = row.try_get("flows")?;
    Ok(Stats {
        states: STATES
            .iter()
            .map(|s| (s.to_string(), states[s].as_i64().unwrap_or(0)))
            .collect(),
        oldest_available_secs: row.try_get::<f64, _>("oldest")?.max(0.0),
        flows: flows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f[0].as_str()?.to_string(), f[1].as_i64()?, f[2].as_i64()?)))
            .collect(),
    })
}

/// How long finished jobs are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Completed and cancelled jobs (`SLUICE_JOB_RETENTION`, default 7 days).
    pub finished: Duration,
    /// Discarded jobs, the dead-letter list (30 days).
    pub discarded: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            finished: Duration::from_secs(7 * 24 * 3600),
            discarded: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Deletes completed and cancelled jobs finalized longer than `r.finished` ago and discarded
/// ones longer than `r.discarded` ago (their attempts go with them), at most 10,000 per call.
/// One instance at a time: returns `None` when another holds the lock.
pub async fn prune(db: &PgPool, r: Retention) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(PRUNE_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(None);
    }
    let done = sqlx::query(
        "DELETE FROM sluice.jobs WHERE id IN ( \
           SELECT id FROM sluice.jobs WHERE \
             (state IN ('completed', 'cancelled') AND finalized_at < now() - make_interval(secs => $1)) \
             OR (state = 'discarded' AND finalized_at < now() - make_interval(secs => $2)) \
           LIMIT 10000)",
    )
    .bind(r.finished.as_secs_f64())
    .bind(r.discarded.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(done.rows_affected()))
}
