//! The workers of one instance (docs/EVENTS.md, "Workers and the queue"): up to
//! `SLUICE_WORKERS` jobs at a time, each run through the engine as an attempt of a published
//! flow with a trigger, under a lease kept alive by a heartbeat. They wake on the queue's
//! notification channel (a dedicated connection, reconnected when it drops) and poll as the
//! fallback and for jobs coming due. A rescuer hands on the jobs of workers that died. On
//! shutdown they stop claiming and let running jobs finish within the drain time; jobs still
//! running then are left to the rescuer of another instance (or of this one's next start).
//!
//! Knows the serving layer only for the published generation ([`Served`]); the queue's SQL
//! is all in `crate::queue`.

use crate::engine::run::{JobEnd, JobStart};
use crate::engine::{Live, Program, RunError, Runtime};
use crate::queue::work::{self, Backoff, Claimable, Claimed, Failure};
use crate::serving::{Routes, Serving};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

/// How a worker pool runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at the same time (at least 1).
    pub workers: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// The fallback poll.
    pub poll: Duration,
    /// How long running jobs may finish after [`Workers::shutdown`].
    pub drain: Duration,
    /// Where the notification listener connects (the direct URL: LISTEN needs a session).
    pub listen: Option<sqlx::postgres::PgConnectOptions>,
}

impl From<&crate::config::JobsConfig> for WorkerOptions {
    fn from(c: &crate::config::JobsConfig) -> WorkerOptions {
        WorkerOptions {
            workers: c.workers,
            lease: c.lease,
            poll: c.poll,
            drain: c.drain,
            listen: None,
        }
    }
}

/// A ready job that names no runnable flow is discarded once it has been due this long (a
/// flow published a moment ago on another instance is not mistaken for a missing one).
const UNRUNNABLE_GRACE: Duration = Duration::from_secs(60);

/// The running workers of one instance; [`Workers::shutdown`] stops them.
pub struct Workers {
    id: String,
    stop: Arc<watch::Sender<bool>>,
    main: JoinHandle<()>,
    side: Vec<JoinHandle<()>>,
}

impl Workers {
    /// This worker pool's name, as `attempted_by` and the attempts' `worker` record it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops claiming at once (running jobs go on); [`Workers::shutdown`] then waits for them.
    pub fn stop_claiming(&self) {
        let _ = self.stop.send(true);
    }

    /// [`Workers::stop_claiming`], as a call to make from elsewhere (a shutdown signal).
    pub fn stopper(&self) -> impl FnOnce() + Send + 'static {
        let stop = self.stop.clone();
        move || {
            let _ = stop.send(true);
        }
    }

    /// Stops claiming and waits up to the drain time for running jobs to finish. Jobs still
    /// running then are dropped (their transactions roll back) and left to the rescuer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.main.await;
        for t in self.side {
            t.abort();
        }
    }
}

/// What every task of the pool shares.
struct Shared<R: Routes> {
    id: String,
    serving: Arc<Serving<R>>,
    runtime: Arc<Runtime>,
    db: PgPool,
    opts: WorkerOptions,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Starts the workers (and the rescuer, and the notification listener), or nothing when
/// `opts.workers` is 0 (an API-only instance).
pub fn start<R: Routes>(
    serving: Arc<Serving<R>>,
    runtime: Arc<Runtime>,
    opts: WorkerOptions,
) -> Option<Workers> {
    if opts.workers == 0 {
        return None;
    }
    // Unique per pool: the process, when it started its workers, and which of its pools.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let id = format!(
        "pid{}-{:x}-{}",
        std::process::id(),
        started.as_millis(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let shared = Arc::new(Shared {
        id: id.clone(),
        db: bookkeeping_pool(&runtime, opts.workers),
        serving,
        runtime,
        opts,
    });
    let (stop, stopped) = watch::channel(false);
    // Woken by runs of this instance that enqueued, and by the listener for the others.
    let wake = shared.runtime.jobs.local();
    let side = vec![
        tokio::spawn(listen(shared.clone(), wake.clone())),
        tokio::spawn(rescuer(shared.clone(), stopped.clone())),
    ];
    let main = tokio::spawn(claim_loop(shared, wake, stopped));
    tracing::info!(worker = %id, "job workers started");
    Some(Workers {
        id,
        stop: Arc::new(stop),
        main,
        side,
    })
}

/// The connections of the queue's own statements (claims, completions of jobs that wrote
/// nothing, failures, heartbeats, rescues): sessions with `synchronous_commit = off`, so these
/// commits do not each wait for the WAL to reach the disk. Safe because none of them carries a
/// flow's writes: a PostgreSQL crash can undo the last few of them, which only makes a job run
/// again (docs/EVENTS.md, "Guarantees"), never loses one. Enqueues and the completion of a job
/// that wrote stay in their own, synchronous, transactions. Behind a transaction pooler, which
/// may not pass session options, the request pool is used.
fn bookkeeping_pool(runtime: &Runtime, workers: usize) -> PgPool {
    if runtime.pooled {
        return runtime.db.clone();
    }
    let opts = runtime
        .db
        .connect_options()
        .as_ref()
        .clone()
        .options([("synchronous_commit", "off")]);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections((workers as u32 + 2).min(10))
        .min_connections(0)
        .connect_lazy_with(opts)
}

/// The flows this instance can run, and the concurrency limits of those that have one.
fn runnable(live: &Live) -> Claimable {
    let mut r = Claimable::default();
    for (name, p) in live.triggered.iter() {
        match p.plan.job.concurrency_limit {
            Some(limit) => r.limited.push((name.clone(), i64::from(limit))),
            None => r.free.push(name.clone()),
        }
    }
    r
}

/// Claims while there is room, runs each job on its own task, waits for a notification, the
/// poll or a free slot; on stop, waits for running jobs up to the drain time.
async fn claim_loop<R: Routes>(
    shared: Arc<Shared<R>>,
    wake: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let n = shared.opts.workers;
    let slots = Arc::new(Semaphore::new(n));
    let mut running = tokio::task::JoinSet::new();
    let mut failures = 0u32;
    while !*stopped.borrow() {
        let free = slots.available_permits();
        if free == 0 {
            tokio::select! {
                p = slots.clone().acquire_owned() => drop(p),
                _ = stopped.changed() => {}
            }
            gather(&slots, &mut running, n).await;
            continue;
        }
        let live = shared.serving.load().live.clone();
        let what = runnable(&live);
        let claimed = if what.free.is_empty() && what.limited.is_empty() {
            Ok(Vec::new())
        } else {
            work::claim(&shared.db, &shared.id, free, shared.opts.lease, &what).await
        };
        let got = match claimed {
            Ok(jobs) => {
                failures = 0;
                jobs
            }
            Err(e) => {
                failures = (failures + 1).min(6);
                tracing::warn!(error = %e, "cannot claim jobs; retrying");
                let pause = shared.opts.poll * 2u32.pow(failures).min(30);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stopped.changed() => {}
                }
                continue;
            }
        };
        let full = got.len() == free;
        for job in got {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            let shared = shared.clone();
            let live = live.clone();
            running.spawn(async move {
                run_one(&shared, &live, job).await;
                drop(permit);
            });
        }
        while running.try_join_next().is_some() {}
        if full {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(shared.opts.poll) => {}
            _ = stopped.changed() => {}
            Some(_) = running.join_next() => gather(&slots, &mut running, n).await,
        }
    }
    let drained = tokio::time::timeout(shared.opts.drain, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            jobs = running.len(),
            "jobs still running after the drain time; left to the rescuer"
        );
        running.abort_all();
    }
}

/// After a slot came free while the queue is busy, waits up to [`GATHER`] for half of the
/// slots to be free, so the next claim takes several jobs in one statement instead of one job
/// per statement.
async fn gather(slots: &Semaphore, running: &mut tokio::task::JoinSet<()>, workers: usize) {
    let want = workers.div_ceil(2);
    let until = tokio::time::Instant::now() + GATHER;
    while slots.available_permits() < want {
        tokio::select! {
            next = running.join_next() => if next.is_none() { return },
            () = tokio::time::sleep_until(until) => return,
        }
    }
}

/// How long a busy claim loop waits for more free slots before claiming ([`gather`]).
const GATHER: Duration = Duration::from_millis(2);

/// Runs one claimed job to its end: the flow with a heartbeat, then completion (inside the
/// flow's transaction) or failure, and the attempt's trace.
async fn run_one<R: Routes>(shared: &Shared<R>, live: &Live, job: Claimed) {
    let Some(program) = live.triggered.get(&job.kind).cloned() else {
        // Unpublished between the claim and now: try again later (or be discarded then).
        let error = json!({"code": "job.no_flow", "message": format!("no published flow `{}` with a trigger", job.kind)});
        let _ = work::fail(
            &shared.db,
            job.id,
            job.attempt,
            &error,
            None,
            Failure::Retry,
            Backoff::default(),
        )
        .await;
        return;
    };
    let heartbeat = tokio::spawn(heartbeat(
        shared.db.clone(),
        job.id,
        job.attempt,
        shared.opts.lease,
    ));
    let end = run_attempt(&shared.runtime, live, &program, &job).await;
    heartbeat.abort();
    finish(&shared.db, &program, &job, end).await;
}

/// Runs the flow for `job`, its completion fenced inside the flow's transaction.
async fn run_attempt(rt: &Runtime, live: &Live, program: &Program, job: &Claimed) -> JobEnd {
    let (id, attempt) = (job.id, job.attempt);
    let start = JobStart {
        input: job.args.clone(),
        job: json!({"id": job.id, "attempt": job.attempt, "flow": job.kind,
                    "scheduled_at": job.scheduled_at}),
        job_id: job.id,
        fence: Box::new(move |conn, trace| {
            Box::pin(async move { work::complete_in(conn, id, attempt, Some(&trace)).await })
        }),
    };
    crate::engine::run_job(program, rt, live, start).await
}

/// Records how the attempt ended: completed (already marked in the flow's transaction; the
/// trace is added), failed (retry or discard), or lost (only the trace: the rescuer recorded
/// the rest).
async fn finish(db: &PgPool, program: &Program, job: &Claimed, end: JobEnd) {
    // Serialized only when stored here (a completion stored it in the flow's transaction).
    let trace = || serde_json::to_value(&end.trace).unwrap_or(Value::Null);
    let settings = &program.plan.job;
    let backoff = Backoff {
        max_attempts: Some(settings.max_attempts.clamp(1, i16::MAX as u32) as i16),
        base_ms: settings.backoff_ms,
        max_ms: settings.max_backoff_ms,
    };
    if end.lost {
        tracing::warn!(job.id = job.id, job.attempt = job.attempt, flow = %job.kind,
            "the job was handed to another worker before it completed; its writes were rolled back");
        // The attempt's row says `rescued` already; its trace still shows what the run did.
        if let Err(e) = work::store_trace(db, job.id, job.attempt, &trace()).await {
            tracing::warn!(job.id = job.id, error = %e, "cannot store the job's trace");
        }
        return;
    }
    let (error, failure) = match &end.result {
        // Completed, with its trace, in the flow's own transaction.
        Ok(r) if (200..300).contains(&r.status) && end.unfenced => {
            match work::complete(db, job.id, job.attempt, &trace()).await {
                Ok(true) => tracing::debug!(job.id = job.id, flow = %job.kind, "job completed"),
                Ok(false) => {
                    tracing::warn!(job.id = job.id, "the completed job was already handed on")
                }
                Err(e) => tracing::warn!(job.id = job.id, error = %e,
                    "cannot record the job's completion; the rescuer will run it again"),
            }
            return;
        }
        Ok(r) if (200..300).contains(&r.status) => {
            tracing::debug!(job.id = job.id, flow = %job.kind, "job completed");
            return;
        }
        Ok(r) => {
            let code = r.body.pointer("/error/code").cloned();
            let message = r.body.pointer("/error/message").cloned();
            let error = json!({
                "status": r.status,
                "code": code.unwrap_or_else(|| json!(format!("job.status_{}", r.status))),
                "message": message.unwrap_or_else(|| json!(format!("the flow answered {}", r.status))),
                "node": Value::Null,
            });
            let failure = if (400..500).contains(&r.status) {
                Failure::Discard
            } else {
                Failure::Retry
            };
            (error, failure)
        }
        Err(e) => {
            let failure = match e {
                RunError::Timeout => Failure::Timeout,
                // Input that does not match the flow's `input.body` never will.
                RunError::Input(_) => Failure::Discard,
                _ => Failure::Retry,
            };
            let node = end
                .trace
                .iter()
                .rev()
                .find(|t| t.error.is_some())
                .map(|t| t.node.clone());
            (
                json!({"status": e.status(), "code": e.public_code(), "message": e.to_string(),
                       "node": node}),
                failure,
            )
        }
    };
    match work::fail(
        db,
        job.id,
        job.attempt,
        &error,
        Some(&trace()),
        failure,
        backoff,
    )
    .await
    {
        Ok(Some(state)) => {
            tracing::info!(job.id = job.id, job.attempt = job.attempt, flow = %job.kind,
                state = %state, code = %error["code"], "job attempt failed")
        }
        Ok(None) => tracing::warn!(job.id = job.id, "the failed job was already handed on"),
        Err(e) => tracing::warn!(job.id = job.id, error = %e,
            "cannot record the job's failure; the rescuer will retry it"),
    }
}

/// Extends the lease every third of it until aborted or the job is lost.
async fn heartbeat(db: PgPool, id: i64, attempt: i16, lease: Duration) {
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match work::heartbeat(&db, id, attempt, lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job.id = id, "the job's lease was lost");
                return;
            }
            Err(e) => tracing::warn!(job.id = id, error = %e, "cannot extend the job's lease"),
        }
    }
}

/// Rescues jobs whose lease ended and discards jobs no flow runs, every half lease.
async fn rescuer<R: Routes>(shared: Arc<Shared<R>>, mut stopped: watch::Receiver<bool>) {
    let every = (shared.opts.lease / 2).max(Duration::from_millis(500));
    loop {
        match work::rescue(&shared.db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "rescued jobs whose worker's lease ended"),
            Err(e) => tracing::warn!(error = %e, "cannot rescue jobs"),
        }
        let live = shared.serving.load().live.clone();
        let names: Vec<String> = live.triggered.keys().cloned().collect();
        match work::discard_unrunnable(&shared.db, &names, UNRUNNABLE_GRACE).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "discarded jobs of flows that are not published"),
            Err(e) => tracing::warn!(error = %e, "cannot discard unrunnable jobs"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// LISTENs on the queue's channel on a session of its own, waking the claim loop on every
/// notification; reconnects (with a growing pause) when the session drops.
async fn listen<R: Routes>(shared: Arc<Shared<R>>, wake: Arc<Notify>) {
    let mut pause = Duration::from_millis(200);
    // A connection of its own, outside the request pool (a listener holds it for good); its
    // one-connection pool only serves reconnects.
    let own = match &shared.opts.listen {
        Some(opts) => sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(opts.clone()),
        None => shared.runtime.db.clone(),
    };
    loop {
        let listener = sqlx::postgres::PgListener::connect_with(&own).await;
        let mut listener = match listener {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for jobs; polling meanwhile");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(e) = listener.listen(crate::queue::CHANNEL).await {
            tracing::warn!(error = %e, "cannot listen for jobs; polling meanwhile");
            tokio::time::sleep(pause).await;
            continue;
        }
        pause = Duration::from_millis(200);
        // A notification may have been missed while reconnecting.
        wake.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake.notify_one(),
                Ok(None) => {
                    // The session dropped; the listener reconnects on the next call.
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the job listener stopped; reconnecting");
                    break;
                }
            }
        }
    }
}
