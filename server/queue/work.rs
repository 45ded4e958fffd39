//! What workers do to jobs (docs/EVENTS.md, "Workers and the queue"): claim ready jobs under
//! a lease, keep the lease alive, complete a job inside its flow's own transaction, fail it
//! (retry with backoff, or discard), and rescue the jobs of workers that died. Every change to
//! a claimed job is fenced by `(id, attempt, state = 'running')`: a worker whose lease ended
//! and whose job was handed on changes nothing.
//!
//! Concurrency limits (`settings.concurrency`): the jobs of a limited flow are claimed one
//! (kind, concurrency key) group at a time, in a transaction that first takes an advisory
//! transaction lock on the group, then counts the group's running jobs and claims at most the
//! rest of the limit. The lock serializes the count-then-claim of all instances for that group,
//! and the count runs after the lock is granted (READ COMMITTED: a fresh snapshot per
//! statement), so it sees every claim committed before; two instances can never both take the
//! last slot. Jobs of flows without a limit are claimed in one statement.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

/// A job this worker now owns until `lease_until` (kept alive by [`heartbeat`]).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    /// The flow to run.
    pub kind: String,
    pub args: Value,
    /// 1 for the first attempt; the fence of every later change.
    pub attempt: i16,
    pub max_attempts: i16,
    /// When it was due (RFC 3339, UTC).
    pub scheduled_at: String,
}

/// What a worker may claim: the flows it can run, and the concurrency limits of those that
/// have one.
#[derive(Debug, Clone, Default)]
pub struct Claimable {
    /// Flows without a concurrency limit.
    pub free: Vec<String>,
    /// Flows with `settings.concurrency.limit`, and the limit.
    pub limited: Vec<(String, i64)>,
}

/// The returned columns of a claim.
const CLAIMED: &str = "id, kind, args, attempt, max_attempts, \
    to_char(scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// Takes up to `$3` ready jobs of the flows in `$2` (priority, then due time, then id), marks
/// them running under a lease of `$4` seconds, and opens their attempt rows. `$5`/`$6`, when
/// set, restrict it to one concurrency group (`$6` null: the group without a key).
fn claim_sql(group: bool) -> String {
    let filter = if group {
        "kind = $5 AND concurrency_key IS NOT DISTINCT FROM $6"
    } else {
        "kind = ANY($2)"
    };
    format!(
        "WITH picked AS (
    SELECT id FROM sluice.jobs
    WHERE state IN ('available', 'scheduled', 'retryable') AND scheduled_at <= now()
      AND {filter}
    ORDER BY priority, scheduled_at, id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE sluice.jobs j
    SET state = 'running', attempt = j.attempt + 1, attempted_at = now(),
        attempted_by = array_append(j.attempted_by, $1::text),
        lease_until = now() + make_interval(secs => $4::float8)
    FROM picked WHERE j.id = picked.id
    RETURNING j.*
), opened AS (
    INSERT INTO sluice.job_attempts (job_id, attempt, worker)
    SELECT id, attempt, $1 FROM claimed
    ON CONFLICT (job_id, attempt) DO UPDATE
    SET worker = EXCLUDED.worker, started_at = now(), finished_at = NULL, outcome = NULL,
        error = NULL, trace = NULL
)
SELECT {CLAIMED} FROM claimed ORDER BY priority, scheduled_at, id"
    )
}

type Row = (i64, String, Value, i16, i16, String);

fn claimed(rows: Vec<Row>) -> Vec<Claimed> {
    rows.into_iter()
        .map(
            |(id, kind, args, attempt, max_attempts, scheduled_at)| Claimed {
                id,
                kind,
                args,
                attempt,
                max_attempts,
                scheduled_at,
            },
        )
        .collect()
}

/// Claims up to `limit` ready jobs of the flows in `what` for worker `worker`, each under a
/// lease of `lease`. See the module comment for how concurrency limits stay exact.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    limit: usize,
    lease: Duration,
    what: &Claimable,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let secs = lease.as_secs_f64();
    if !what.free.is_empty() {
        let rows: Vec<Row> = sqlx::query_as(&claim_sql(false))
            .bind(worker)
            .bind(&what.free)
            .bind(limit as i64)
            .bind(secs)
            .fetch_all(pool)
            .await?;
        out = claimed(rows);
    }
    if out.len() >= limit || what.limited.is_empty() {
        return Ok(out);
    }
    let kinds: Vec<&str> = what.limited.iter().map(|(k, _)| k.as_str()).collect();
    let maxes: Vec<i64> = what.limited.iter().map(|(_, m)| *m).collect();
    // The groups with ready jobs and room (read without locks: the claim below checks again
    // under the group's lock), so full groups do not hide the others.
    let groups: Vec<(String, Option<String>)> = sqlx::query_as(
        "WITH lim AS (SELECT * FROM unnest($1::text[], $2::int8[]) AS l(kind, max))
         SELECT j.kind, j.concurrency_key FROM sluice.jobs j JOIN lim ON lim.kind = j.kind
         WHERE j.state IN ('available', 'scheduled', 'retryable') AND j.scheduled_at <= now()
         GROUP BY j.kind, j.concurrency_key, lim.max
         HAVING (SELECT count(*) FROM sluice.jobs r
                 WHERE r.state = 'running' AND r.kind = j.kind
                   AND r.concurrency_key IS NOT DISTINCT FROM j.concurrency_key) < lim.max
         ORDER BY min(j.priority), min(j.scheduled_at)
         LIMIT $3",
    )
    .bind(&kinds)
    .bind(&maxes)
    .bind((limit - out.len()) as i64)
    .fetch_all(pool)
    .await?;
    for (kind, key) in groups {
        let room = limit - out.len();
        if room == 0 {
            break;
        }
        let Some(&(_, max)) = what.limited.iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        out.extend(claim_group(pool, worker, room, secs, &kind, key.as_deref(), max).await?);
    }
    Ok(out)
}

/// Claims from one concurrency group under its advisory lock (module comment).
async fn claim_group(
    pool: &PgPool,
    worker: &str,
    room: usize,
    lease_secs: f64,
    kind: &str,
    key: Option<&str>,
    max: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('sluice.jobs concurrency ' || $1 || ' ' || COALESCE($2, ''), 0))",
    )
    .bind(kind)
    .bind(key)
    .execute(&mut *tx)
    .await?;
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sluice.jobs
         WHERE state = 'running' AND kind = $1 AND concurrency_key IS NOT DISTINCT FROM $2",
    )
    .bind(kind)
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    let take = (max - running).clamp(0, room as i64);
    if take == 0 {
        tx.rollback().await?;
        return Ok(Vec::new());
    }
    let rows: Vec<Row> = sqlx::query_as(&claim_sql(true))
        .bind(worker)
        .bind(Vec::<String>::new())
        .bind(take)
        .bind(lease_secs)
        .bind(kind)
        .bind(key)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(claimed(rows))
}

/// Extends the lease of a job this worker still owns; `false` when it lost it.
pub async fn heartbeat(
    pool: &PgPool,
    id: i64,
    attempt: i16,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sluice.jobs SET lease_until = now() + make_interval(secs => $3::float8)
         WHERE id = $1 AND attempt = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(attempt)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks job `$1` at attempt `$2` completed, if this worker still owns it, and stores the
/// attempt's trace `$3` (when given).
const COMPLETE: &str = "\
WITH j AS (
    UPDATE sluice.jobs SET state = 'completed', finalized_at = now(), lease_until = NULL
    WHERE id = $1 AND attempt = $2 AND state = 'running'
    RETURNING id
), a AS (
    UPDATE sluice.job_attempts SET finished_at = now(), outcome = 'completed',
      trace = COALESCE($3, trace)
    FROM j WHERE job_id = j.id AND attempt = $2
)
SELECT id FROM j";

/// Marks the job completed on `conn`, the job flow's own transaction, before it commits, and
/// stores the attempt's trace (when given). `false`: this worker no longer owns the job
/// (rescued and handed on); the caller must roll the flow's writes back, so the job's database
/// effects happen once.
pub async fn complete_in(
    conn: &mut PgConnection,
    id: i64,
    attempt: i16,
    trace: Option<&Value>,
) -> Result<bool, sqlx::Error> {
    let done: Option<i64> = sqlx::query_scalar(COMPLETE)
        .bind(id)
        .bind(attempt)
        .bind(trace)
        .fetch_optional(conn)
        .await?;
    Ok(done.is_some())
}

/// Marks a job whose flow wrote nothing completed (there was no transaction to fence it in);
/// `false` when this worker no longer owns it.
pub async fn complete(
    pool: &PgPool,
    id: i64,
    attempt: i16,
    trace: &Value,
) -> Result<bool, sqlx::Error> {
    let done: Option<i64> = sqlx::query_scalar(COMPLETE)
        .bind(id)
        .bind(attempt)
        .bind(trace)
        .fetch_optional(pool)
        .await?;
    Ok(done.is_some())
}

/// Stores the trace of a finished attempt (the debug-run trace format, secrets redacted).
pub async fn store_trace(
    pool: &PgPool,
    id: i64,
    attempt: i16,
    trace: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sluice.job_attempts SET trace = $3 WHERE job_id = $1 AND attempt = $2")
        .bind(id)
        .bind(attempt)
        .bind(trace)
        .execute(pool)
        .await?;
    Ok(())
}

/// How a failed job is retried: at most `max_attempts` runs in all (the flow's
/// `settings.retry`, which wins over the value the job was enqueued with, so a published
/// change applies to queued jobs; `None`: the job's own), waiting `base_ms` doubling per
/// attempt, capped at `max_ms`, less up to 25% jitter (so runs that failed together do not
/// retry together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub max_attempts: Option<i16>,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            max_attempts: None,
            base_ms: 1_000,
            max_ms: 3_600_000,
        }
    }
}

/// How a failed attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 5xx, an error: retry while attempts are left.
    Retry,
    /// The flow's timeout: retry while attempts are left; the attempt's outcome is `timeout`.
    Timeout,
    /// A 4xx `fail`: discard now.
    Discard,
}

/// The state a failed job is left in: `retryable` or `discarded`, or `None` when this worker no
/// longer owns it (nothing changed).
pub async fn fail(
    pool: &PgPool,
    id: i64,
    attempt: i16,
    error: &Value,
    trace: Option<&Value>,
    failure: Failure,
    backoff: Backoff,
) -> Result<Option<String>, sqlx::Error> {
    let retry = failure != Failure::Discard;
    let outcome = if failure == Failure::Timeout {
        "timeout"
    } else {
        ""
    };
    sqlx::query_scalar(
        "WITH j AS (
            UPDATE sluice.jobs SET
              max_attempts = COALESCE($9, max_attempts),
              state = CASE WHEN $4 AND attempt < COALESCE($9, max_attempts)
                THEN 'retryable' ELSE 'discarded' END,
              scheduled_at = CASE WHEN $4 AND attempt < COALESCE($9, max_attempts)
                THEN now() + make_interval(secs => least($6::float8,
                       $5::float8 * power(2::float8, least(attempt - 1, 40)))
                     * (1 - 0.25 * random()) / 1000.0)
                ELSE scheduled_at END,
              finalized_at = CASE WHEN $4 AND attempt < COALESCE($9, max_attempts)
                THEN NULL ELSE now() END,
              errors = array_append(errors,
                $3 || jsonb_build_object('attempt', attempt, 'at', now())),
              lease_until = NULL
            WHERE id = $1 AND attempt = $2 AND state = 'running'
            RETURNING id, state
        ), a AS (
            UPDATE sluice.job_attempts SET finished_at = now(), error = $3, trace = $8,
              outcome = CASE WHEN $7 <> '' THEN $7
                             WHEN j.state = 'retryable' THEN 'failed' ELSE 'discarded' END
            FROM j WHERE job_id = j.id AND attempt = $2
        )
        SELECT state FROM j",
    )
    .bind(id)
    .bind(attempt)
    .bind(error)
    .bind(retry)
    .bind(backoff.base_ms as f64)
    .bind(backoff.max_ms.max(backoff.base_ms) as f64)
    .bind(outcome)
    .bind(trace)
    .bind(backoff.max_attempts)
    .fetch_optional(pool)
    .await
}

/// Hands on the jobs whose worker's lease ended (it died, or lost the database): retryable
/// now, or discarded when it was their last attempt; their attempt row says `rescued`.
/// Returns how many. Run by every worker periodically; rows another rescuer or their worker
/// holds are skipped.
pub async fn rescue(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "WITH j AS (
            UPDATE sluice.jobs SET
              state = CASE WHEN attempt < max_attempts THEN 'retryable' ELSE 'discarded' END,
              scheduled_at = now(),
              finalized_at = CASE WHEN attempt < max_attempts THEN NULL ELSE now() END,
              errors = array_append(errors, jsonb_build_object('attempt', attempt, 'at', now(),
                'code', 'job.rescued',
                'message', 'the worker''s lease ended before the job finished')),
              lease_until = NULL
            WHERE id IN (SELECT id FROM sluice.jobs
                         WHERE state = 'running' AND lease_until < now()
                         FOR UPDATE SKIP LOCKED)
            RETURNING id, attempt
        ), a AS (
            UPDATE sluice.job_attempts SET finished_at = now(), outcome = 'rescued'
            FROM j WHERE job_id = j.id AND job_attempts.attempt = j.attempt
        )
        SELECT count(*) FROM j",
    )
    .fetch_one(pool)
    .await?;
    Ok(n as u64)
}

/// Discards the ready jobs of flows that no instance can run (not published, or published
/// without a trigger), once they have been due for `grace` (so a flow published a moment ago
/// on another instance is not mistaken for a missing one). Their error says why; an admin
/// can retry them after publishing the flow. Returns how many.
pub async fn discard_unrunnable(
    pool: &PgPool,
    runnable: &[String],
    grace: Duration,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sluice.jobs SET state = 'discarded', finalized_at = now(),
           errors = array_append(errors, jsonb_build_object('attempt', attempt, 'at', now(),
             'code', 'job.no_flow',
             'message', 'no published flow `' || kind || '` with a trigger runs this job'))
         WHERE id IN (SELECT id FROM sluice.jobs
                      WHERE state IN ('available', 'scheduled', 'retryable')
                        AND scheduled_at <= now() - make_interval(secs => $2::float8)
                        AND kind <> ALL($1)
                      FOR UPDATE SKIP LOCKED)",
    )
    .bind(runnable)
    .bind(grace.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The job holding unique key `key` (queued, running or completed), on the caller's
/// transaction: what a deduplicated enqueue answers with.
pub async fn id_by_key(conn: &mut PgConnection, key: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM sluice.jobs
         WHERE unique_key = $1 AND state NOT IN ('discarded', 'cancelled')",
    )
    .bind(key)
    .fetch_optional(conn)
    .await
}
