//! The scheduler (docs/EVENTS.md, "Schedules"): turns the occurrences of published schedule
//! triggers into jobs, exactly once across any number of instances.
//!
//! Every instance runs one loop. Each tick (at most [`TICK`] apart, sooner when a schedule is
//! due sooner):
//! 1. When what is served changed (a publish, unpublish, rename or delete), `sluice.schedules`
//!    is brought in step with the published schedule triggers ([`reconcile`]): new ones start
//!    at their next occurrence, removed ones stop, and a republish that keeps cron and time
//!    zone keeps `next_fire_at`. It is skipped while the catalog is ahead of this instance's
//!    snapshot, so an instance that has not reloaded yet never undoes a newer publish.
//! 2. For each due schedule, one transaction moves `next_fire_at` from the value read to the
//!    next one (0 rows: another instance did it first) and enqueues the occurrences to run
//!    (`queue::enqueue`, unique key `schedule:<flow>:<occurrence>`) and records the skipped
//!    ones. What runs and what is skipped is decided by the pure [`super::schedule::due`].
//!
//! Time is the database's `now()`, one clock for every instance. Nothing here is parsed per
//! tick: the cron and zone come compiled in the served snapshot.

use super::schedule::{self, Due, SkipReason, Skipped};
use crate::flow::trigger::{CatchUp, Overlap, Schedule, Trigger};
use crate::queue::{self, NewJob};
use crate::serving::{Routes, Serving};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest sleep between two ticks.
pub const TICK: Duration = Duration::from_secs(1);

/// The running loop; stops when dropped.
pub struct Scheduler {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// This instance's schedule figures, for `/metrics`.
#[derive(Default)]
pub struct ScheduleStats {
    flows: Mutex<BTreeMap<String, FlowStats>>,
}

/// One flow's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowStats {
    /// Occurrences this instance enqueued.
    pub fired: u64,
    /// Occurrences this instance recorded as skipped.
    pub skipped: u64,
    /// Seconds between the last occurrence this instance enqueued and its enqueue.
    pub lateness_s: f64,
}

impl ScheduleStats {
    /// Every flow's figures, by name.
    pub fn snapshot(&self) -> Vec<(String, FlowStats)> {
        self.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FlowStats>> {
        self.flows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts the loop of this instance.
pub fn start<R: Routes>(
    serving: Arc<Serving<R>>,
    db: PgPool,
    stats: Arc<ScheduleStats>,
) -> Scheduler {
    let task = tokio::spawn(async move {
        let mut in_step_at: Option<i64> = None;
        let mut schedules: (Option<i64>, Arc<BTreeMap<String, Schedule>>) = (None, Arc::default());
        loop {
            let snapshot = serving.load();
            if schedules.0 != Some(snapshot.generation) {
                schedules = (
                    Some(snapshot.generation),
                    Arc::new(published(&snapshot.live.triggered)),
                );
            }
            let schedules = schedules.1.clone();
            if in_step_at != Some(snapshot.generation) {
                match reconcile(&db, snapshot.generation, &schedules).await {
                    Ok(true) => in_step_at = Some(snapshot.generation),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot bring the schedules in step"),
                }
            }
            let wait = match tick(&db, &schedules, &stats).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler tick failed");
                    TICK
                }
            };
            tokio::time::sleep(wait.min(TICK)).await;
        }
    });
    Scheduler { task }
}

/// A timestamp column as microseconds since the epoch (the pool has no chrono mapping; bound
/// back as `timestamptz 'epoch' + $n * interval '1 microsecond'`, exact to the microsecond,
/// which the conditional update compares with).
fn micros(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000000)::bigint")
}

fn instant(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The published schedule triggers, by flow name.
fn published(
    functions: &std::collections::HashMap<String, Arc<crate::engine::Program>>,
) -> BTreeMap<String, Schedule> {
    functions
        .iter()
        .filter_map(|(name, p)| match &p.plan.trigger {
            Some(Trigger::Schedule(s)) => Some((name.clone(), (**s).clone())),
            _ => None,
        })
        .collect()
}

/// The trigger as stored in `sluice.schedules.trigger`.
fn stored(s: &Schedule) -> Value {
    json!({
        "cron": s.cron,
        "timezone": s.timezone.name(),
        "catch_up": match s.catch_up {
            CatchUp::Skip => "skip",
            CatchUp::Latest => "latest",
            CatchUp::All => "all",
        },
        "catch_up_max": s.catch_up_max,
        "max_lateness_ms": s.max_lateness_ms,
        "overlap": match s.overlap {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        },
    })
}

const UPSERT: &str = "\
INSERT INTO sluice.schedules AS s (flow, cron, timezone, trigger, next_fire_at)
VALUES ($1, $2, $3, $4, timestamptz 'epoch' + $5 * interval '1 microsecond')
ON CONFLICT (flow) DO UPDATE SET
    cron = excluded.cron,
    timezone = excluded.timezone,
    trigger = excluded.trigger,
    next_fire_at = CASE WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone
                        THEN s.next_fire_at ELSE excluded.next_fire_at END,
    updated_at = now()
WHERE s.trigger IS DISTINCT FROM excluded.trigger";

/// Brings `sluice.schedules` in step with `schedules` (published at `generation`). Returns
/// false, changing nothing, when the catalog is ahead of that generation.
pub async fn reconcile(
    db: &PgPool,
    generation: i64,
    schedules: &Arc<BTreeMap<String, Schedule>>,
) -> Result<bool, SchedulerError> {
    let mut tx = db.begin().await?;
    let (current, now): (i64, i64) = sqlx::query_as(&format!(
        "SELECT generation, {} FROM sluice.serving",
        micros("now()")
    ))
    .fetch_one(&mut *tx)
    .await?;
    let now = instant(now);
    if current > generation {
        return Ok(false);
    }
    // An expression that rarely or never matches makes croner search for years of calendar:
    // off the async workers.
    let all = schedules.clone();
    let nexts: Vec<Option<DateTime<Utc>>> = tokio::task::spawn_blocking(move || {
        all.values()
            .map(|s| schedule::next_after(&s.parsed, s.timezone, now))
            .collect()
    })
    .await?;
    for ((flow, s), next) in schedules.iter().zip(nexts) {
        sqlx::query(UPSERT)
            .bind(flow)
            .bind(&s.cron)
            .bind(s.timezone.name())
            .bind(stored(s))
            .bind(next.map(|t| t.timestamp_micros()))
            .execute(&mut *tx)
            .await?;
    }
    let names: Vec<&str> = schedules.keys().map(String::as_str).collect();
    sqlx::query("DELETE FROM sluice.schedules WHERE NOT (flow = ANY($1))")
        .bind(&names)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Why the schedules could not be brought in step.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("computing the next fire times failed: {0}")]
    Compute(#[from] tokio::task::JoinError),
}

/// Fires every due schedule; returns how long until the next one is due (at most [`TICK`]).
pub async fn tick(
    db: &PgPool,
    schedules: &BTreeMap<String, Schedule>,
    stats: &ScheduleStats,
) -> Result<Duration, sqlx::Error> {
    let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT flow, cron, timezone, {}, {} FROM sluice.schedules \
         WHERE next_fire_at <= now() + make_interval(secs => $1) ORDER BY next_fire_at",
        micros("next_fire_at"),
        micros("now()")
    ))
    .bind(TICK.as_secs_f64())
    .fetch_all(db)
    .await?;
    let mut wait = TICK;
    for (flow, cron, timezone, next_fire_at, now) in rows {
        let (next_fire_at, now) = (instant(next_fire_at), instant(now));
        if next_fire_at > now {
            let until = (next_fire_at - now).to_std().unwrap_or_default();
            wait = wait.min(until);
            continue;
        }
        // A schedule that this snapshot does not serve (yet, or any more), or serves with
        // another cron or zone than the row's, waits until this instance or another one has
        // reloaded and brought the row in step.
        let Some(s) = schedules
            .get(&flow)
            .filter(|s| s.cron == cron && s.timezone.name() == timezone)
        else {
            continue;
        };
        // Up to SCAN_MAX occurrences are looked at: off the async workers.
        let owned = s.clone();
        let due = tokio::task::spawn_blocking(move || schedule::due(&owned, next_fire_at, now));
        let Ok(Some(d)) = due.await else {
            continue;
        };
        let more = d.next.is_some_and(|n| n <= now);
        match fire(db, &flow, s, next_fire_at, now, d, stats).await {
            // What remains due (a long downtime worked off in steps) is taken at once.
            Ok(()) if more => wait = Duration::ZERO,
            Ok(()) => {}
            Err(e) => tracing::warn!(flow.name = %flow, error = %e, "cannot fire a schedule"),
        }
    }
    Ok(wait)
}

/// One due schedule, in one transaction: claim the occurrences by moving `next_fire_at` from
/// the value read, enqueue the ones to run, record the skipped ones.
async fn fire(
    db: &PgPool,
    flow: &str,
    s: &Schedule,
    read: DateTime<Utc>,
    now: DateTime<Utc>,
    d: Due,
    stats: &ScheduleStats,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let claimed = sqlx::query(
        "UPDATE sluice.schedules \
         SET next_fire_at = timestamptz 'epoch' + $3 * interval '1 microsecond', \
             updated_at = now() \
         WHERE flow = $1 AND next_fire_at = timestamptz 'epoch' + $2 * interval '1 microsecond' \
           AND cron = $4 AND timezone = $5",
    )
    .bind(flow)
    .bind(read.timestamp_micros())
    .bind(d.next.map(|t| t.timestamp_micros()))
    .bind(&s.cron)
    .bind(s.timezone.name())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        // Another instance fired these occurrences, or the schedule changed meanwhile.
        return Ok(());
    }
    let mut skipped = d.skipped;
    let mut last: Option<(DateTime<Utc>, i64)> = None;
    let mut fired = 0u64;
    for occurrence in d.run {
        if s.overlap == Overlap::Skip && queue::schedules::unfinished(&mut tx, flow).await? {
            skipped.push(Skipped {
                first: occurrence,
                last: occurrence,
                count: 1,
                reason: SkipReason::Overlap,
            });
            continue;
        }
        let utc = schedule::rfc3339(occurrence);
        let local = occurrence.with_timezone(&s.timezone).to_rfc3339();
        let mut job = NewJob::new(
            flow,
            json!({"occurrence": utc, "scheduled_for": local}),
            json!({"kind": "schedule", "flow": flow, "occurrence": utc, "cron": s.cron,
                   "timezone": s.timezone.name()}),
        );
        job.unique_key = Some(schedule::unique_key(flow, occurrence));
        if schedule::queued_limit(s).is_some() {
            job.concurrency_key = Some(format!("schedule:{flow}"));
        }
        if let Some(id) = queue::enqueue(&mut tx, &job).await? {
            last = Some((occurrence, id));
            fired += 1;
        }
    }
    skipped.sort_by_key(|k| k.first);
    for k in &skipped {
        sqlx::query(
            "INSERT INTO sluice.schedule_skips \
             (flow, first_occurrence, last_occurrence, occurrences, reason) \
             VALUES ($1, timestamptz 'epoch' + $2 * interval '1 microsecond', \
                     timestamptz 'epoch' + $3 * interval '1 microsecond', $4, $5)",
        )
        .bind(flow)
        .bind(k.first.timestamp_micros())
        .bind(k.last.timestamp_micros())
        .bind(k.count.min(i64::MAX as u64) as i64)
        .bind(k.reason.as_str())
        .execute(&mut *tx)
        .await?;
    }
    if let Some((occurrence, id)) = last {
        sqlx::query(
            "UPDATE sluice.schedules \
             SET last_fire_at = timestamptz 'epoch' + $2 * interval '1 microsecond', \
                 last_job_id = $3 WHERE flow = $1",
        )
        .bind(flow)
        .bind(occurrence.timestamp_micros())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    if fired > 0 {
        queue::notify(&mut tx).await?;
    }
    tx.commit().await?;
    let skipped_n: u64 = skipped.iter().map(|k| k.count).sum();
    for k in &skipped {
        tracing::info!(flow.name = %flow, first = %schedule::rfc3339(k.first),
            occurrences = k.count, reason = k.reason.as_str(), "schedule occurrences skipped");
    }
    let mut all = stats.lock();
    let f = all.entry(flow.to_string()).or_default();
    f.fired += fired;
    f.skipped += skipped_n;
    if let Some((occurrence, _)) = last {
        f.lateness_s = (now - occurrence).num_milliseconds().max(0) as f64 / 1000.0;
    }
    Ok(())
}

/// A scheduled flow, as the admin API lists it (times in RFC 3339, UTC).
#[derive(Debug, Serialize)]
pub struct ScheduleInfo {
    pub flow: String,
    pub cron: String,
    pub timezone: String,
    /// The trigger as published: cron, timezone and policies.
    pub trigger: Value,
    pub next_fire_at: Option<String>,
    pub last_fire_at: Option<String>,
    pub last_job_id: Option<i64>,
    /// The last job's state, while it exists.
    pub last_job_state: Option<String>,
    /// Occurrences skipped so far.
    pub skipped: i64,
}

type InfoRow = (
    String,
    String,
    String,
    Value,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
);

fn text(us: Option<i64>) -> Option<String> {
    us.map(|us| schedule::rfc3339(instant(us)))
}

/// Every scheduled flow, by name.
pub async fn list(db: &PgPool) -> Result<Vec<ScheduleInfo>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    let rows: Vec<InfoRow> = sqlx::query_as(&format!(
        "SELECT s.flow, s.cron, s.timezone, s.trigger, {}, {}, s.last_job_id, \
                COALESCE((SELECT sum(k.occurrences) FROM sluice.schedule_skips k \
                          WHERE k.flow = s.flow), 0)::bigint \
         FROM sluice.schedules s ORDER BY s.flow",
        micros("s.next_fire_at"),
        micros("s.last_fire_at")
    ))
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.6).collect();
    let states: BTreeMap<i64, String> = queue::schedules::states(&mut conn, &ids)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| ScheduleInfo {
            last_job_state: r.6.and_then(|id| states.get(&id).cloned()),
            flow: r.0,
            cron: r.1,
            timezone: r.2,
            trigger: r.3,
            next_fire_at: text(r.4),
            last_fire_at: text(r.5),
            last_job_id: r.6,
            skipped: r.7,
        })
        .collect())
}

/// A record of skipped occurrences (times in RFC 3339, UTC).
#[derive(Debug, Serialize)]
pub struct SkipRecord {
    pub first_occurrence: String,
    pub last_occurrence: String,
    pub occurrences: i64,
    /// `missed`, `too_late` or `overlap`.
    pub reason: String,
    pub recorded_at: String,
}

/// The most recent `limit` skip records of `flow`, newest first.
pub async fn skips(db: &PgPool, flow: &str, limit: i64) -> Result<Vec<SkipRecord>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64, String, i64)> = sqlx::query_as(&format!(
        "SELECT {}, {}, occurrences, reason, {} \
         FROM sluice.schedule_skips WHERE flow = $1 ORDER BY id DESC LIMIT $2",
        micros("first_occurrence"),
        micros("last_occurrence"),
        micros("recorded_at")
    ))
    .bind(flow)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SkipRecord {
            first_occurrence: schedule::rfc3339(instant(r.0)),
            last_occurrence: schedule::rfc3339(instant(r.1)),
            occurrences: r.2,
            reason: r.3,
            recorded_at: instant(r.4).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .collect())
}

/// Whether `flow` is a scheduled flow now.
pub async fn exists(db: &PgPool, flow: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sluice.schedules WHERE flow = $1)")
        .bind(flow)
        .fetch_one(db)
        .await
}
