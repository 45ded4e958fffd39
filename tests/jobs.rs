//! The durable job queue end to end (docs/EVENTS.md, "Workers and the queue"): `job.enqueue`
//! in the request's transaction, workers on several instances running each job exactly once,
//! a killed instance's job rescued and completed once, the fenced completion refusing a late
//! worker, retries with backoff and discard, concurrency limits per key, the stable
//! Idempotency-Key, and API-only instances. Real Postgres, real servers; waits have upper
//! bounds and no assertion depends on how fast anything is.

mod common;

use common::{TestApp, spawn_app_on, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::config::{Config, HttpAllow};
use sluice::queue::work::{self, Claimable};
use sluice::queue::{self, NewJob};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for; it normally takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(60);

fn job_flow(name: &str, settings: Value, entry: &str, nodes: Value) -> Value {
    let mut doc = json!({"format": "sluice.flow", "format_version": 1, "name": name,
        "trigger": {"kind": "job"}, "entry": entry, "nodes": nodes});
    if !settings.is_null() {
        doc["settings"] = settings;
    }
    doc
}

fn endpoint(name: &str, path: &str, entry: &str, nodes: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": "POST", "path": path}, "entry": entry, "nodes": nodes})
}

/// A table `runs` whose `job_id` is unique: a job that ran twice would be refused.
async fn runs_table(app: &TestApp) {
    app.create_table(&json!({"name": "runs", "fields": [
        {"name": "job_id", "type": "integer", "required": true, "unique": true},
        {"name": "note", "type": "text"}
    ]}))
    .await;
}

/// A job flow `record` that inserts `{job_id: job.id, note: input.note}` into `runs`.
fn record_flow() -> Value {
    job_flow(
        "record",
        Value::Null,
        "insert",
        json!({
            "insert": {"type": "db.insert", "table": "runs",
                       "values": {"job_id": {"$rhai": "job.id"}, "note": {"$rhai": "input.note"}},
                       "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    )
}

fn allow_local(c: &mut Config) {
    c.http_allow = HttpAllow::parse(&["127.0.0.1"]).expect("allow list");
}

/// Short leases and polls, so rescues and fallbacks happen within a test.
fn quick(c: &mut Config) {
    allow_local(c);
    c.jobs.lease = Duration::from_secs(2);
    c.jobs.poll = Duration::from_millis(100);
}

async fn state_of(app: &TestApp, id: i64) -> (String, i16) {
    sqlx::query_as("SELECT state, attempt FROM sluice.jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("the job")
}

/// Waits until job `id` is in `state`.
async fn until_state(app: &TestApp, id: i64, state: &str) {
    let deadline = Instant::now() + PATIENCE;
    let mut last = (String::new(), 0);
    while Instant::now() < deadline {
        last = state_of(app, id).await;
        if last.0 == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never became {state}; last {last:?}");
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db)
        .await
        .expect("a count")
}

/// One request an upstream received.
#[derive(Debug, Clone)]
struct Hit {
    tag: String,
    key: Option<String>,
    start: Instant,
    end: Instant,
}

/// A local HTTP API that records every `/hit?tag=..&sleep_ms=..` (with its Idempotency-Key),
/// signals arrivals, and holds the first `holds` requests until released (or forever).
struct Upstream {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Every request as it arrives: its tag and Idempotency-Key.
    arrived: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>)>>,
    holds: Arc<AtomicUsize>,
    release: Arc<tokio::sync::Notify>,
}

impl Upstream {
    async fn start() -> Upstream {
        use axum::extract::{Query, State};
        use axum::http::HeaderMap;
        type Shared = (
            Arc<Mutex<Vec<Hit>>>,
            tokio::sync::mpsc::UnboundedSender<(String, Option<String>)>,
            Arc<AtomicUsize>,
            Arc<tokio::sync::Notify>,
        );
        async fn hit(
            State((hits, arrived, holds, release)): State<Shared>,
            Query(q): Query<std::collections::HashMap<String, String>>,
            headers: HeaderMap,
        ) -> axum::Json<Value> {
            let start = Instant::now();
            let tag = q.get("tag").cloned().unwrap_or_default();
            let key = headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let _ = arrived.send((tag.clone(), key.clone()));
            let held = holds
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if held {
                release.notified().await;
            }
            if let Some(ms) = q.get("sleep_ms").and_then(|s| s.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            hits.lock().expect("hits").push(Hit {
                tag,
                key,
                start,
                end: Instant::now(),
            });
            axum::Json(json!({"ok": true}))
        }
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let holds = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let app = axum::Router::new()
            .route("/hit", axum::routing::get(hit))
            .with_state((hits.clone(), tx, holds.clone(), release.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the upstream");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Upstream {
            port,
            hits,
            arrived: tokio::sync::Mutex::new(rx),
            holds,
            release,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hit", self.port)
    }

    /// Waits for the next request to arrive; returns its tag and Idempotency-Key.
    async fn next_arrival(&self) -> (String, Option<String>) {
        tokio::time::timeout(PATIENCE, self.arrived.lock().await.recv())
            .await
            .expect("a request arrives in time")
            .expect("the upstream runs")
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }
}

/// `POST /enqueue` enqueues `record` with the body as input, then answers `status` (201), or
/// fails with `fail_status` after enqueueing.
fn enqueuer(path: &str, fail_status: Option<u16>) -> Value {
    let end = match fail_status {
        None => json!({"type": "respond", "status": 201, "body": {"$rhai": "queued"}}),
        Some(s) => json!({"type": "fail", "status": s, "code": "test.refused", "message": "no"}),
    };
    endpoint(
        &format!("enqueue{}", path.replace('/', "_")),
        path,
        "enqueue",
        json!({
            "enqueue": {"type": "job.enqueue", "flow": "record",
                        "input": {"$rhai": "request.body"}, "as": "queued", "next": {"ok": "end"}},
            "end": end
        }),
    )
}

#[tokio::test]
async fn an_enqueued_job_runs_once_and_a_failing_endpoint_leaves_no_job() {
    let app = spawn_app_with(quick).await;
    runs_table(&app).await;
    app.publish(&record_flow()).await;
    app.publish(&enqueuer("/enqueue", None)).await;
    app.publish(&enqueuer("/enqueue_then_500", Some(500))).await;
    app.publish(&enqueuer("/enqueue_then_422", Some(422))).await;

    let (status, body) = app
        .send(
            app.api(Method::POST, "/enqueue")
                .json(&json!({"note": "hello"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["deduplicated"], false);
    let id = body["id"].as_i64().expect("the job's id");
    until_state(&app, id, "completed").await;
    let note: String = sqlx::query_scalar("SELECT note FROM app.runs WHERE job_id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("the job's row");
    assert_eq!(note, "hello");
    let (outcome, trace): (String, Value) = sqlx::query_as(
        "SELECT outcome, trace FROM sluice.job_attempts WHERE job_id = $1 AND attempt = 1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("the attempt");
    assert_eq!(outcome, "completed");
    let nodes: Vec<&str> = trace
        .as_array()
        .expect("a trace")
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    assert_eq!(nodes, ["insert", "done"], "{trace}");

    for path in ["/enqueue_then_500", "/enqueue_then_422"] {
        let (status, _) = app
            .send(app.api(Method::POST, path).json(&json!({"note": path})))
            .await;
        assert!(status == 500 || status == 422, "{path}: {status}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM sluice.jobs").await, 1);
}

#[tokio::test]
async fn a_job_key_deduplicates_and_the_compiler_checks_the_target() {
    let app = spawn_app_with(|c| c.jobs.workers = 0).await;
    runs_table(&app).await;
    app.publish(&record_flow()).await;
    let doc = endpoint(
        "once",
        "/once",
        "enqueue",
        json!({
            "enqueue": {"type": "job.enqueue", "flow": "record", "input": {"note": "x"},
                        "key": {"$rhai": "request.body.order"}, "priority": 2, "delay_ms": 60000,
                        "as": "queued", "next": {"ok": "end"}},
            "end": {"type": "respond", "body": {"$rhai": "queued"}}
        }),
    );
    app.publish(&doc).await;
    let (_, first) = app
        .send(app.api(Method::POST, "/once").json(&json!({"order": 7})))
        .await;
    let (_, second) = app
        .send(app.api(Method::POST, "/once").json(&json!({"order": 7})))
        .await;
    assert_eq!(first["deduplicated"], false, "{first}");
    assert_eq!(second, json!({"id": first["id"], "deduplicated": true}));
    let (state, priority): (String, i16) =
        sqlx::query_as("SELECT state, priority FROM sluice.jobs WHERE id = $1")
            .bind(first["id"].as_i64())
            .fetch_one(&app.db)
            .await
            .expect("the job");
    assert_eq!((state.as_str(), priority), ("scheduled", 2));

    let bad = endpoint(
        "bad",
        "/bad",
        "enqueue",
        json!({
            "enqueue": {"type": "job.enqueue", "flow": "nope", "next": {"ok": "end"}},
            "end": {"type": "respond", "body": null}
        }),
    );
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&bad)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("flow.unknown_job_flow"), "{body}");

    // A delay taken from the request is bounded: a huge one is a 400 and enqueues nothing.
    let later = endpoint(
        "later",
        "/later",
        "enqueue",
        json!({
            "enqueue": {"type": "job.enqueue", "flow": "record", "input": {"note": "y"},
                        "delay_ms": {"$rhai": "request.body.wait"}, "next": {"ok": "end"}},
            "end": {"type": "respond", "status": 201, "body": null}
        }),
    );
    app.publish(&later).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.jobs")
        .fetch_one(&app.db)
        .await
        .expect("count");
    for wait in [
        json!(u64::MAX),
        json!(31_536_000_001_u64),
        json!(-5),
        json!("soon"),
    ] {
        let (status, body) = app
            .send(app.api(Method::POST, "/later").json(&json!({"wait": wait})))
            .await;
        assert_eq!(status, 400, "{wait}: {body}");
        assert_eq!(body["error"]["code"], "db.invalid_value", "{body}");
    }
    let (status, _) = app
        .send(
            app.api(Method::POST, "/later")
                .json(&json!({"wait": 31_536_000_000_u64})),
        )
        .await;
    assert_eq!(status, 201);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.jobs")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn a_thousand_jobs_complete_exactly_once_on_two_instances() {
    let a = spawn_app_with(quick).await;
    runs_table(&a).await;
    a.publish(&record_flow()).await;
    // Started after the publish, so it serves the flow from its first load.
    let _b = spawn_app_on(&a.db_url, &a.db_name, quick).await;
    let mut tx = a.db.begin().await.expect("begin");
    for i in 0..1000 {
        let job = NewJob::new(
            "record",
            json!({"note": format!("n{i}")}),
            json!({"kind": "test"}),
        );
        queue::enqueue(&mut tx, &job)
            .await
            .expect("enqueue")
            .expect("a new job");
    }
    tx.commit().await.expect("commit");

    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        let done = count(
            &a,
            "SELECT count(*) FROM sluice.jobs WHERE state = 'completed'",
        )
        .await;
        if done == 1000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of 1000 jobs completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&a, "SELECT count(*) FROM app.runs").await, 1000);
    assert_eq!(
        count(&a, "SELECT count(DISTINCT job_id) FROM app.runs").await,
        1000
    );
    // No attempt failed (a second run would have hit the unique job_id) and none was rescued.
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM sluice.jobs WHERE attempt <> 1 OR errors IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM sluice.job_attempts WHERE outcome = 'completed'"
        )
        .await,
        1000
    );
    let workers = count(
        &a,
        "SELECT count(DISTINCT attempted_by[1]) FROM sluice.jobs",
    )
    .await;
    assert_eq!(workers, 2, "both instances ran jobs");
}

#[tokio::test]
async fn a_late_completion_after_a_rescue_is_refused_and_its_writes_roll_back() {
    let app = spawn_app_with(|c| c.jobs.workers = 0).await;
    let pool = &app.db;
    sqlx::query("CREATE TABLE public.late_writes (job_id bigint PRIMARY KEY, by text)")
        .execute(pool)
        .await
        .expect("a table");
    let mut conn = pool.acquire().await.expect("conn");
    let id = queue::enqueue(&mut conn, &NewJob::new("work", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    let what = Claimable {
        free: vec!["work".into()],
        limited: Vec::new(),
    };
    let lease = Duration::from_secs(60);
    let first = work::claim(pool, "first", 1, lease, &what)
        .await
        .expect("claim");
    assert_eq!((first[0].id, first[0].attempt), (id, 1));
    // Nothing to rescue while the lease runs.
    assert_eq!(work::rescue(pool).await.expect("rescue"), 0);
    // The first worker goes silent: its lease ends.
    sqlx::query("UPDATE sluice.jobs SET lease_until = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .expect("expire");
    assert_eq!(work::rescue(pool).await.expect("rescue"), 1);
    let second = work::claim(pool, "second", 1, lease, &what)
        .await
        .expect("claim");
    assert_eq!((second[0].id, second[0].attempt), (id, 2));

    // The first worker wakes up and tries to finish: refused, and its writes go.
    assert!(
        !work::heartbeat(pool, id, 1, lease)
            .await
            .expect("heartbeat")
    );
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO public.late_writes VALUES ($1, 'first')")
        .bind(id)
        .execute(&mut *tx)
        .await
        .expect("insert");
    let owned = work::complete_in(&mut tx, id, 1, None)
        .await
        .expect("complete");
    assert!(!owned, "a late worker completed a job handed on");
    tx.rollback().await.expect("rollback");
    let failed = work::fail(
        pool,
        id,
        1,
        &json!({"code": "late"}),
        None,
        work::Failure::Retry,
        work::Backoff::default(),
    )
    .await
    .expect("fail");
    assert_eq!(failed, None, "a late worker failed a job handed on");

    // The owner completes it, once.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO public.late_writes VALUES ($1, 'second')")
        .bind(id)
        .execute(&mut *tx)
        .await
        .expect("insert");
    assert!(
        work::complete_in(&mut tx, id, 2, None)
            .await
            .expect("complete")
    );
    tx.commit().await.expect("commit");
    let by: Vec<String> = sqlx::query_scalar("SELECT by FROM public.late_writes")
        .fetch_all(pool)
        .await
        .expect("rows");
    assert_eq!(by, ["second"]);
    let outcomes: Vec<(i16, String, String)> = sqlx::query_as(
        "SELECT attempt, worker, outcome FROM sluice.job_attempts WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("attempts");
    assert_eq!(
        outcomes,
        [
            (1, "first".to_string(), "rescued".to_string()),
            (2, "second".to_string(), "completed".to_string())
        ]
    );
    assert_eq!(state_of(&app, id).await, ("completed".to_string(), 2));
}

#[tokio::test]
async fn failures_retry_with_backoff_then_discard_keeping_every_error_and_4xx_discards_at_once() {
    let app = spawn_app_with(quick).await;
    let flaky = job_flow(
        "flaky",
        json!({"retry": {"max_attempts": 3, "backoff_ms": 100, "max_backoff_ms": 1000}}),
        "down",
        json!({"down": {"type": "fail", "status": 503, "code": "upstream.down",
                        "message": {"$rhai": "`attempt ${job.attempt}`"}}}),
    );
    let refused = job_flow(
        "refused",
        Value::Null,
        "no",
        json!({"no": {"type": "fail", "status": 422, "code": "input.bad", "message": "bad input"}}),
    );
    app.publish(&flaky).await;
    app.publish(&refused).await;
    let mut conn = app.db.acquire().await.expect("conn");
    let flaky_id = queue::enqueue(&mut conn, &NewJob::new("flaky", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    let refused_id = queue::enqueue(&mut conn, &NewJob::new("refused", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);

    until_state(&app, refused_id, "discarded").await;
    assert_eq!(
        state_of(&app, refused_id).await.1,
        1,
        "a 4xx is not retried"
    );

    until_state(&app, flaky_id, "discarded").await;
    let errors: Vec<Value> =
        sqlx::query_scalar("SELECT unnest(errors) FROM sluice.jobs WHERE id = $1")
            .bind(flaky_id)
            .fetch_all(&app.db)
            .await
            .expect("errors");
    let seen: Vec<(i64, &str, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["attempt"].as_i64().unwrap_or(0),
                e["code"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "upstream.down", "attempt 1"),
            (2, "upstream.down", "attempt 2"),
            (3, "upstream.down", "attempt 3")
        ]
    );
    // Each wait is at least the backoff less its jitter: 100 ms, then 200 ms, less 25%.
    let attempts: Vec<(i16, String, f64)> = sqlx::query_as(
        "SELECT attempt, outcome,
                COALESCE(EXTRACT(EPOCH FROM started_at - lag(finished_at) OVER (ORDER BY attempt)) * 1000, 0)::float8
         FROM sluice.job_attempts WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(flaky_id)
    .fetch_all(&app.db)
    .await
    .expect("attempts");
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.1.as_str()).collect();
    assert_eq!(outcomes, ["failed", "failed", "discarded"]);
    assert!(attempts[1].2 >= 75.0, "waited {} ms", attempts[1].2);
    assert!(attempts[2].2 >= 150.0, "waited {} ms", attempts[2].2);
}

#[tokio::test]
async fn a_concurrency_limit_of_one_serializes_per_key_while_other_keys_run() {
    let upstream = Upstream::start().await;
    let app = spawn_app_with(quick).await;
    let call = job_flow(
        "per_customer",
        json!({"concurrency": {"limit": 1, "key": {"$rhai": "input.customer"}}}),
        "call",
        json!({
            "call": {"type": "http.request", "url": upstream.url(),
                     "query": {"tag": {"$rhai": "input.customer"}, "sleep_ms": 150},
                     "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    app.publish(&call).await;
    let enqueue = endpoint(
        "enqueue_call",
        "/call",
        "enqueue",
        json!({
            "enqueue": {"type": "job.enqueue", "flow": "per_customer",
                        "input": {"$rhai": "request.body"}, "as": "queued", "next": {"ok": "end"}},
            "end": {"type": "respond", "status": 201, "body": {"$rhai": "queued"}}
        }),
    );
    app.publish(&enqueue).await;
    let mut ids = Vec::new();
    for customer in ["a", "b", "a", "b", "a", "b"] {
        let (status, body) = app
            .send(
                app.api(Method::POST, "/call")
                    .json(&json!({"customer": customer})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_i64().expect("id"));
    }
    let keys: Vec<Option<String>> =
        sqlx::query_scalar("SELECT concurrency_key FROM sluice.jobs ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("keys");
    assert_eq!(
        keys,
        ["a", "b", "a", "b", "a", "b"].map(|k| Some(k.to_string()))
    );
    for id in &ids {
        until_state(&app, *id, "completed").await;
    }
    let hits = upstream.hits();
    assert_eq!(hits.len(), 6);
    for key in ["a", "b"] {
        let mut runs: Vec<&Hit> = hits.iter().filter(|h| h.tag == key).collect();
        runs.sort_by_key(|h| h.start);
        for pair in runs.windows(2) {
            assert!(
                pair[1].start >= pair[0].end,
                "two runs of key {key} overlapped"
            );
        }
    }
    let overlapped = hits.iter().any(|x| {
        hits.iter()
            .any(|y| x.tag != y.tag && x.start < y.end && y.start < x.end)
    });
    assert!(
        overlapped,
        "runs of different keys never ran at the same time"
    );
}

#[tokio::test]
async fn the_idempotency_key_is_the_same_on_every_attempt_and_endpoints_send_none() {
    let upstream = Upstream::start().await;
    let app = spawn_app_with(quick).await;
    let notify = job_flow(
        "notify",
        json!({"retry": {"max_attempts": 3, "backoff_ms": 100}}),
        "call",
        json!({
            "call": {"type": "http.request", "url": upstream.url(), "query": {"tag": "job"},
                     "next": {"ok": "check"}},
            "check": {"type": "if", "condition": {"$rhai": "job.attempt < 2"},
                      "next": {"then": "again", "else": "done"}},
            "again": {"type": "fail", "status": 503, "code": "try.again", "message": "once more"},
            "done": {"type": "respond", "body": null}
        }),
    );
    app.publish(&notify).await;
    let direct = endpoint(
        "direct",
        "/direct",
        "call",
        json!({
            "call": {"type": "http.request", "url": upstream.url(), "query": {"tag": "endpoint"},
                     "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    app.publish(&direct).await;
    let mut conn = app.db.acquire().await.expect("conn");
    let id = queue::enqueue(&mut conn, &NewJob::new("notify", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    until_state(&app, id, "completed").await;
    let (status, _) = app.send(app.api(Method::POST, "/direct")).await;
    assert_eq!(status, 200);

    let hits = upstream.hits();
    let job_keys: Vec<Option<String>> = hits
        .iter()
        .filter(|h| h.tag == "job")
        .map(|h| h.key.clone())
        .collect();
    let expected = Some(format!("sluice-job-{id}-call"));
    assert_eq!(job_keys, [expected.clone(), expected]);
    let endpoint_keys: Vec<Option<String>> = hits
        .iter()
        .filter(|h| h.tag == "endpoint")
        .map(|h| h.key.clone())
        .collect();
    assert_eq!(endpoint_keys, [None]);
}

#[tokio::test]
async fn an_api_only_instance_runs_no_job_and_a_worker_instance_does() {
    let api = spawn_app_with(|c| {
        c.jobs.workers = 0;
        c.jobs.poll = Duration::from_millis(50);
    })
    .await;
    runs_table(&api).await;
    api.publish(&record_flow()).await;
    api.publish(&enqueuer("/enqueue", None)).await;
    let (status, body) = api
        .send(
            api.api(Method::POST, "/enqueue")
                .json(&json!({"note": "x"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    // Many polls' worth of time: nothing here may take it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(state_of(&api, id).await, ("available".to_string(), 0));
    let worker = spawn_app_on(&api.db_url, &api.db_name, quick).await;
    until_state(&worker, id, "completed").await;
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn a_killed_worker_loses_nothing_and_its_job_completes_once_elsewhere() {
    let upstream = Upstream::start().await;
    let admin = spawn_app_with(|c| c.jobs.workers = 0).await;
    runs_table(&admin).await;
    let slow = job_flow(
        "slow",
        Value::Null,
        "insert",
        json!({
            "insert": {"type": "db.insert", "table": "runs",
                       "values": {"job_id": {"$rhai": "job.id"}, "note": "slow"},
                       "next": {"ok": "call"}},
            "call": {"type": "http.request", "url": upstream.url(), "query": {"tag": "slow"},
                     "timeout_ms": 60000, "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    admin.publish(&slow).await;

    // A worker-only instance as its own process, with a short lease.
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["worker", "--addr", &format!("127.0.0.1:{port}")])
        .env("SLUICE_DATABASE_URL", &admin.db_url)
        .env("SLUICE_HTTP_ALLOW", "127.0.0.1")
        .env("SLUICE_WORKERS", "1")
        .env("SLUICE_JOB_LEASE_MS", "1500")
        .env("SLUICE_JOB_POLL_MS", "100")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the worker starts");
    upstream.holds.store(1, Ordering::SeqCst);
    let mut conn = admin.db.acquire().await.expect("conn");
    let id = queue::enqueue(&mut conn, &NewJob::new("slow", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    // The child is in the middle of the job: its row is inserted (uncommitted), its call held.
    let key = Some(format!("sluice-job-{id}-call"));
    assert_eq!(
        upstream.next_arrival().await,
        ("slow".to_string(), key.clone())
    );
    assert_eq!(state_of(&admin, id).await, ("running".to_string(), 1));
    // A worker-only instance answers health checks, not the API.
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    let api = client
        .get(format!("http://127.0.0.1:{port}/api/anything"))
        .send()
        .await
        .expect("api");
    assert_eq!(api.status().as_u16(), 404);
    child.kill().expect("kill -9");
    child.wait().expect("the worker is gone");

    let other = spawn_app_on(&admin.db_url, &admin.db_name, quick).await;
    until_state(&other, id, "completed").await;
    upstream.release.notify_waiters();
    assert_eq!(state_of(&other, id).await, ("completed".to_string(), 2));
    assert_eq!(count(&other, "SELECT count(*) FROM app.runs").await, 1);
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM sluice.job_attempts WHERE job_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(&other.db)
    .await
    .expect("attempts");
    assert_eq!(outcomes, ["rescued", "completed"]);
    // Both attempts called out, with the same key: at least once, and deduplicable.
    assert_eq!(upstream.next_arrival().await, ("slow".to_string(), key));
}

#[tokio::test]
async fn a_worker_that_lost_its_job_commits_none_of_the_flows_writes() {
    let upstream = Upstream::start().await;
    let app = spawn_app_with(quick).await;
    runs_table(&app).await;
    let slow = job_flow(
        "slow",
        Value::Null,
        "insert",
        json!({
            "insert": {"type": "db.insert", "table": "runs",
                       "values": {"job_id": {"$rhai": "job.id"}, "note": "late"},
                       "next": {"ok": "call"}},
            "call": {"type": "http.request", "url": upstream.url(), "query": {"tag": "late"},
                     "timeout_ms": 60000, "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    app.publish(&slow).await;
    upstream.holds.store(1, Ordering::SeqCst);
    let mut conn = app.db.acquire().await.expect("conn");
    let id = queue::enqueue(&mut conn, &NewJob::new("slow", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    upstream.next_arrival().await;
    // Meanwhile the job is taken from this worker (as a rescue and a claim elsewhere would):
    // its attempt is no longer the running one.
    sqlx::query(
        "UPDATE sluice.jobs SET attempt = attempt + 1, lease_until = now() + interval '1 hour'
         WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .expect("take the job over");
    upstream.release.notify_waiters();
    // The worker finishes its run; its fence finds the job gone, so nothing commits. Its trace
    // still lands on its attempt row.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let traced: bool = sqlx::query_scalar(
            "SELECT trace IS NOT NULL FROM sluice.job_attempts WHERE job_id = $1 AND attempt = 1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("the attempt");
        if traced {
            break;
        }
        assert!(Instant::now() < deadline, "the late worker never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&app, "SELECT count(*) FROM app.runs").await, 0);
    assert_eq!(state_of(&app, id).await, ("running".to_string(), 2));
}

#[tokio::test]
async fn the_heartbeat_keeps_a_long_job_with_its_worker_and_a_timeout_fails_the_attempt() {
    let upstream = Upstream::start().await;
    let app = spawn_app_with(quick).await;
    // Three leases long (the lease is 2 s here): only the heartbeat keeps it from a rescue.
    let long = job_flow(
        "long",
        Value::Null,
        "call",
        json!({
            "call": {"type": "http.request", "url": upstream.url(),
                     "query": {"tag": "long", "sleep_ms": 6000}, "timeout_ms": 60000,
                     "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    let short = job_flow(
        "short",
        json!({"timeout_ms": 300, "retry": {"max_attempts": 1}}),
        "sleep",
        json!({
            "sleep": {"type": "db.sql", "sql": "select 1 as done from pg_sleep(5)", "params": {},
                      "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    app.publish(&long).await;
    app.publish(&short).await;
    let mut conn = app.db.acquire().await.expect("conn");
    let long_id = queue::enqueue(&mut conn, &NewJob::new("long", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    let short_id = queue::enqueue(&mut conn, &NewJob::new("short", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    until_state(&app, short_id, "discarded").await;
    let (outcome, code): (String, String) =
        sqlx::query_as("SELECT outcome, error->>'code' FROM sluice.job_attempts WHERE job_id = $1")
            .bind(short_id)
            .fetch_one(&app.db)
            .await
            .expect("the attempt");
    assert_eq!(
        (outcome.as_str(), code.as_str()),
        ("timeout", "flow.timeout")
    );
    until_state(&app, long_id, "completed").await;
    assert_eq!(state_of(&app, long_id).await.1, 1, "it was never rescued");
}

#[tokio::test]
async fn jobs_of_a_flow_nobody_runs_are_discarded_with_a_reason() {
    let app = spawn_app_with(quick).await;
    let mut conn = app.db.acquire().await.expect("conn");
    // Due long ago: past the grace a flow published elsewhere gets.
    let ghost = NewJob {
        run_at: Some("2000-01-01T00:00:00Z".into()),
        ..NewJob::new("ghost", json!({}), json!({}))
    };
    let id = queue::enqueue(&mut conn, &ghost)
        .await
        .expect("enqueue")
        .expect("a job");
    // Due now: within the grace, it waits.
    let fresh = queue::enqueue(&mut conn, &NewJob::new("ghost", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    until_state(&app, id, "discarded").await;
    let code: String =
        sqlx::query_scalar("SELECT errors[1]->>'code' FROM sluice.jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("the error");
    assert_eq!(code, "job.no_flow");
    assert_eq!(state_of(&app, fresh).await, ("available".to_string(), 0));
}

#[tokio::test]
async fn on_shutdown_workers_stop_claiming_and_let_running_jobs_finish() {
    let upstream = Upstream::start().await;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (app, server) = common::spawn_app_until(quick, async {
        let _ = stop_rx.await;
    })
    .await;
    runs_table(&app).await;
    let slow = job_flow(
        "slow",
        Value::Null,
        "insert",
        json!({
            "insert": {"type": "db.insert", "table": "runs",
                       "values": {"job_id": {"$rhai": "job.id"}, "note": "drained"},
                       "next": {"ok": "call"}},
            "call": {"type": "http.request", "url": upstream.url(), "query": {"tag": "drain"},
                     "timeout_ms": 60000, "next": {"ok": "done"}},
            "done": {"type": "respond", "body": null}
        }),
    );
    app.publish(&slow).await;
    upstream.holds.store(1, Ordering::SeqCst);
    let db = sqlx::PgPool::connect(&app.db_url).await.expect("a pool");
    let mut conn = db.acquire().await.expect("conn");
    let running = queue::enqueue(&mut conn, &NewJob::new("slow", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    upstream.next_arrival().await;
    let _ = stop_tx.send(());
    // Enqueued after the signal: no worker of the stopping instance takes it.
    let mut conn = db.acquire().await.expect("conn");
    let waiting = queue::enqueue(&mut conn, &NewJob::new("slow", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    upstream.release.notify_waiters();
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the server stops")
        .expect("joined")
        .expect("a clean stop");
    let state = |id: i64| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT state FROM sluice.jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .expect("the job")
        }
    };
    assert_eq!(state(running).await, "completed");
    assert_eq!(state(waiting).await, "available");
}

#[tokio::test]
async fn secrets_reach_neither_a_jobs_errors_nor_its_traces() {
    let app = spawn_app_with(quick).await;
    let secret = "s3cr3t-value-that-must-not-leak";
    let (status, _) = app
        .send(
            app.admin(Method::PUT, "/env/API_KEY")
                .json(&json!({"value": secret, "secret": true})),
        )
        .await;
    assert_eq!(status, 204);
    let leaky = job_flow(
        "leaky",
        json!({"retry": {"max_attempts": 1}}),
        "show",
        json!({
            "show": {"type": "set", "value": {"$rhai": "secret(\"API_KEY\")"}, "as": "key",
                     "next": {"ok": "fail"}},
            "fail": {"type": "fail", "status": 500, "code": "leak.attempt",
                     "message": {"$rhai": "`key is ${key}`"}}
        }),
    );
    app.publish(&leaky).await;
    let mut conn = app.db.acquire().await.expect("conn");
    let id = queue::enqueue(&mut conn, &NewJob::new("leaky", json!({}), json!({})))
        .await
        .expect("enqueue")
        .expect("a job");
    drop(conn);
    until_state(&app, id, "discarded").await;
    let stored: String = sqlx::query_scalar(
        "SELECT j.errors::text || a.error::text || a.trace::text
         FROM sluice.jobs j JOIN sluice.job_attempts a ON a.job_id = j.id WHERE j.id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("what was stored");
    assert!(stored.contains("leak.attempt"), "{stored}");
    assert!(!stored.contains(secret), "{stored}");
}

#[tokio::test]
async fn a_job_whose_input_does_not_match_the_flows_input_schema_is_discarded_at_once() {
    let app = spawn_app_with(quick).await;
    runs_table(&app).await;
    let mut typed = record_flow();
    typed["name"] = json!("typed");
    typed["input"] = json!({"body": {"type": "object", "required": ["note"],
        "properties": {"note": {"type": "string"}}}});
    app.publish(&typed).await;
    let mut conn = app.db.acquire().await.expect("conn");
    let bad = queue::enqueue(
        &mut conn,
        &NewJob::new("typed", json!({"note": 5}), json!({})),
    )
    .await
    .expect("enqueue")
    .expect("a job");
    let good = queue::enqueue(
        &mut conn,
        &NewJob::new("typed", json!({"note": "fine"}), json!({})),
    )
    .await
    .expect("enqueue")
    .expect("a job");
    drop(conn);
    until_state(&app, good, "completed").await;
    until_state(&app, bad, "discarded").await;
    assert_eq!(state_of(&app, bad).await.1, 1, "not retried");
    let code: String =
        sqlx::query_scalar("SELECT errors[1]->>'code' FROM sluice.jobs WHERE id = $1")
            .bind(bad)
            .fetch_one(&app.db)
            .await
            .expect("the error");
    assert_eq!(code, "input.invalid");
}

#[tokio::test]
async fn workers_wake_on_notifications_and_listen_again_after_losing_their_session() {
    // No poll within the test: only a wake-up can start a job. The endpoint runs on an API-only
    // instance, so its jobs reach the worker instance through the notification alone.
    let api = spawn_app_with(|c| c.jobs.workers = 0).await;
    runs_table(&api).await;
    api.publish(&record_flow()).await;
    api.publish(&enqueuer("/enqueue", None)).await;
    let worker = spawn_app_on(&api.db_url, &api.db_name, |c| {
        c.jobs.poll = Duration::from_secs(3600)
    })
    .await;
    let enqueue = |app: &TestApp, note: &'static str| {
        let app = app.clone();
        async move {
            let (status, body) = app
                .send(
                    app.api(Method::POST, "/enqueue")
                        .json(&json!({"note": note})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_i64().expect("id")
        }
    };
    let first = enqueue(&api, "first").await;
    until_state(&api, first, "completed").await;

    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%sluice_jobs%'",
    )
    .fetch_all(&api.db)
    .await
    .expect("terminate the job listener");
    assert_eq!(killed, [true], "one job listener");
    let second = enqueue(&api, "second").await;
    until_state(&api, second, "completed").await;
    // A run on the worker instance itself wakes its workers in memory.
    let third = enqueue(&worker, "third").await;
    until_state(&worker, third, "completed").await;
}

#[tokio::test]
async fn a_full_concurrency_group_neither_runs_more_nor_hides_the_groups_with_room() {
    let app = spawn_app_with(|c| c.jobs.workers = 0).await;
    let mut conn = app.db.acquire().await.expect("conn");
    let mut ids = Vec::new();
    for key in ["a", "a", "b"] {
        let job = NewJob {
            concurrency_key: Some(key.into()),
            ..NewJob::new("limited", json!({}), json!({}))
        };
        ids.push(
            queue::enqueue(&mut conn, &job)
                .await
                .expect("enqueue")
                .expect("a job"),
        );
    }
    drop(conn);
    let what = Claimable {
        free: Vec::new(),
        limited: vec![("limited".into(), 1)],
    };
    let lease = Duration::from_secs(60);
    let claim = || work::claim(&app.db, "w", 1, lease, &what);
    let got: Vec<i64> = claim().await.expect("claim").iter().map(|c| c.id).collect();
    assert_eq!(got, [ids[0]], "the oldest job of group a");
    // Group a is full and has the oldest ready job; group b still gets its turn.
    let got: Vec<i64> = claim().await.expect("claim").iter().map(|c| c.id).collect();
    assert_eq!(got, [ids[2]], "group b");
    let got = claim().await.expect("claim");
    assert!(got.is_empty(), "both groups are full: {got:?}");
    let mut tx = app.db.begin().await.expect("begin");
    assert!(
        work::complete_in(&mut tx, ids[0], 1, None)
            .await
            .expect("complete")
    );
    tx.commit().await.expect("commit");
    let got: Vec<i64> = claim().await.expect("claim").iter().map(|c| c.id).collect();
    assert_eq!(got, [ids[1]], "group a has room again");
}
