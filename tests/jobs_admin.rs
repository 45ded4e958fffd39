//! The jobs admin API (`/_/api/v1/jobs`), the queue's `/metrics` gauges and the pruning of
//! finished jobs, against the real server. Jobs and attempts are written with SQL, so these
//! tests need no worker.

mod common;

use reqwest::Method;
use serde_json::{Value, json};
use sluice::queue::admin::{self, Retention};
use sqlx::PgPool;
use std::time::Duration;

/// Inserts a job in `state` for flow `kind`; returns its id.
async fn job(db: &PgPool, kind: &str, state: &str) -> i64 {
    let finalized = matches!(state, "completed" | "discarded" | "cancelled");
    sqlx::query_scalar(
        "INSERT INTO sluice.jobs (kind, state, args, attempt, finalized_at, scheduled_at) \
         VALUES ($1, $2, '{\"n\": 1}', CASE WHEN $2 IN ('available', 'scheduled') THEN 0 ELSE 1 END, \
                 CASE WHEN $3 THEN now() END, \
                 CASE WHEN $2 = 'scheduled' THEN now() + interval '1 hour' ELSE now() END) \
         RETURNING id",
    )
    .bind(kind)
    .bind(state)
    .bind(finalized)
    .fetch_one(db)
    .await
    .expect("insert job")
}

async fn state_of(db: &PgPool, id: i64) -> String {
    sqlx::query_scalar("SELECT state FROM sluice.jobs WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .expect("job")
}

#[tokio::test]
async fn list_pages_newest_first_with_counts_and_filters() {
    let app = common::spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            job(
                &app.db,
                "mail",
                if i % 2 == 0 { "available" } else { "discarded" },
            )
            .await,
        );
    }
    ids.push(job(&app.db, "report", "completed").await);

    let (status, body) = app.send(app.admin(Method::GET, "/jobs?limit=2")).await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<i64> = body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, [ids[5], ids[4]]);
    assert_eq!(body["counts"]["available"], 3);
    assert_eq!(body["counts"]["discarded"], 2);
    assert_eq!(body["counts"]["completed"], 1);
    assert_eq!(body["counts"]["running"], 0);
    assert_eq!(body["jobs"][0]["flow"], "report");

    // Following the cursor reaches every job exactly once.
    let mut seen = got;
    let mut cursor = body["next_cursor"].as_str().expect("more").to_string();
    loop {
        let (status, page) = app
            .send(app.admin(Method::GET, &format!("/jobs?limit=2&cursor={cursor}")))
            .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["jobs"]
                .as_array()
                .expect("jobs")
                .iter()
                .map(|j| j["id"].as_i64().expect("id")),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    // The dead-letter list of one flow.
    let (_, body) = app
        .send(app.admin(Method::GET, "/jobs?state=discarded&flow=mail"))
        .await;
    let got: Vec<i64> = body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, [ids[3], ids[1]]);
    assert_eq!(
        body["counts"]["completed"], 0,
        "counts follow the flow filter"
    );
    assert_eq!(body["next_cursor"], Value::Null);

    for bad in [
        "/jobs?state=lost",
        "/jobs?limit=0",
        "/jobs?limit=x",
        "/jobs?cursor=abc",
        "/jobs?colour=red",
    ] {
        let (status, body) = app.send(app.admin(Method::GET, bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = app.send(app.admin(Method::GET, "/jobs?state=lost")).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("job.invalid_query"))
    );
}

#[tokio::test]
async fn a_job_is_read_with_every_attempt() {
    let app = common::spawn_app().await;
    let id = job(&app.db, "mail", "retryable").await;
    let trace = json!({"steps": [{"node": "send", "status": "error", "ms": 3}]});
    sqlx::query(
        "INSERT INTO sluice.job_attempts (job_id, attempt, worker, finished_at, outcome, error, trace) \
         VALUES ($1, 1, 'w-1', now(), 'failed', '{\"code\": \"http.status\", \"message\": \"502\"}', $2), \
                ($1, 2, 'w-2', NULL, NULL, NULL, NULL)",
    )
    .bind(id)
    .bind(&trace)
    .execute(&app.db)
    .await
    .expect("attempts");
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/jobs/{id}")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(body["state"], "retryable");
    assert_eq!(body["args"], json!({"n": 1}));
    let attempts = body["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["worker"], "w-1");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["error"]["code"], "http.status");
    assert_eq!(attempts[0]["trace"], trace);
    assert!(attempts[0]["started_at"].is_string());
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["finished_at"], Value::Null);

    for path in ["/jobs/999999", "/jobs/abc"] {
        let (status, body) = app.send(app.admin(Method::GET, path)).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "job.not_found");
    }
}

#[tokio::test]
async fn retry_and_cancel_follow_the_states() {
    let app = common::spawn_app().await;
    // Retry: discarded, cancelled and retryable jobs become available now.
    for from in ["discarded", "cancelled", "retryable"] {
        let id = job(&app.db, "mail", from).await;
        sqlx::query("UPDATE sluice.jobs SET attempt = 5, max_attempts = 5, scheduled_at = now() + interval '1 hour' WHERE id = $1")
            .bind(id)
            .execute(&app.db)
            .await
            .expect("exhaust");
        let (status, body) = app
            .send(app.admin(Method::POST, &format!("/jobs/{id}/retry")))
            .await;
        assert_eq!(status, 200, "{from}: {body}");
        assert_eq!(body["state"], "available");
        assert_eq!(body["finalized_at"], Value::Null);
        assert!(
            body["max_attempts"].as_i64() > body["attempt"].as_i64(),
            "a retried job has an attempt left: {body}"
        );
        let due: bool =
            sqlx::query_scalar("SELECT scheduled_at <= now() FROM sluice.jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&app.db)
                .await
                .expect("job");
        assert!(due, "available now");
    }
    for from in ["running", "completed", "available"] {
        let id = job(&app.db, "mail", from).await;
        let (status, body) = app
            .send(app.admin(Method::POST, &format!("/jobs/{id}/retry")))
            .await;
        assert_eq!(status, 409, "{from}: {body}");
        assert_eq!(body["error"]["code"], "job.not_retryable");
        assert_eq!(state_of(&app.db, id).await, from, "nothing changed");
    }

    // Cancel: available, scheduled and retryable jobs become cancelled.
    for from in ["available", "scheduled", "retryable"] {
        let id = job(&app.db, "mail", from).await;
        let (status, body) = app
            .send(app.admin(Method::POST, &format!("/jobs/{id}/cancel")))
            .await;
        assert_eq!(status, 200, "{from}: {body}");
        assert_eq!(body["state"], "cancelled");
        assert!(body["finalized_at"].is_string());
        let last = body["errors"].as_array().and_then(|e| e.last()).cloned();
        assert_eq!(
            last.map(|e| e["code"].clone()),
            Some(json!("job.cancelled"))
        );
    }
    for from in ["running", "completed", "discarded", "cancelled"] {
        let id = job(&app.db, "mail", from).await;
        let (status, body) = app
            .send(app.admin(Method::POST, &format!("/jobs/{id}/cancel")))
            .await;
        assert_eq!(status, 409, "{from}: {body}");
        assert_eq!(body["error"]["code"], "job.not_cancellable");
        assert_eq!(state_of(&app.db, id).await, from, "nothing changed");
    }
    for action in ["retry", "cancel"] {
        let (status, body) = app
            .send(app.admin(Method::POST, &format!("/jobs/424242/{action}")))
            .await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "job.not_found");
    }

    // A discarded job whose unique key is taken again cannot come back beside the new one.
    let old = job(&app.db, "mail", "discarded").await;
    let new = job(&app.db, "mail", "available").await;
    sqlx::query("UPDATE sluice.jobs SET unique_key = 'k1' WHERE id IN ($1, $2)")
        .bind(old)
        .bind(new)
        .execute(&app.db)
        .await
        .expect("keys");
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/jobs/{old}/retry")))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "job.duplicate");
    assert_eq!(state_of(&app.db, old).await, "discarded");
}

#[tokio::test]
async fn the_jobs_api_needs_a_signed_in_editor() {
    let app = common::spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/_/api/v1/jobs", app.editor_base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn metrics_show_jobs_per_state_the_oldest_wait_and_attempts_per_flow() {
    let app = common::spawn_app().await;
    let waiting = job(&app.db, "mail", "available").await;
    sqlx::query(
        "UPDATE sluice.jobs SET scheduled_at = now() - interval '120 seconds' WHERE id = $1",
    )
    .bind(waiting)
    .execute(&app.db)
    .await
    .expect("age");
    job(&app.db, "mail", "discarded").await;
    let done = job(&app.db, "report", "completed").await;
    sqlx::query(
        "INSERT INTO sluice.job_attempts (job_id, attempt, worker, outcome) VALUES \
         ($1, 1, 'w', 'failed'), ($1, 2, 'w', 'timeout'), ($1, 3, 'w', 'completed')",
    )
    .bind(done)
    .execute(&app.db)
    .await
    .expect("attempts");
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("text");
    let line = |prefix: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("a number")
    };
    assert_eq!(line("sluice_jobs{state=\"available\"}"), 1.0);
    assert_eq!(line("sluice_jobs{state=\"discarded\"}"), 1.0);
    assert_eq!(line("sluice_jobs{state=\"completed\"}"), 1.0);
    assert_eq!(line("sluice_jobs{state=\"running\"}"), 0.0);
    assert!(line("sluice_jobs_oldest_available_seconds ") >= 120.0);
    assert_eq!(line("sluice_job_attempts{flow=\"report\"}"), 3.0);
    assert_eq!(line("sluice_job_failed_attempts{flow=\"report\"}"), 2.0);
}

#[tokio::test]
async fn pruning_deletes_finished_jobs_past_their_retention_only() {
    let app = common::spawn_app().await;
    let age = |id: i64, days: i32| {
        let db = app.db.clone();
        async move {
            sqlx::query("UPDATE sluice.jobs SET finalized_at = now() - make_interval(days => $2) WHERE id = $1")
                .bind(id)
                .bind(days)
                .execute(&db)
                .await
                .expect("age");
        }
    };
    let old_completed = job(&app.db, "mail", "completed").await;
    age(old_completed, 8).await;
    sqlx::query("INSERT INTO sluice.job_attempts (job_id, attempt, worker) VALUES ($1, 1, 'w')")
        .bind(old_completed)
        .execute(&app.db)
        .await
        .expect("attempt");
    let old_cancelled = job(&app.db, "mail", "cancelled").await;
    age(old_cancelled, 8).await;
    let young_completed = job(&app.db, "mail", "completed").await;
    age(young_completed, 6).await;
    let discarded_10 = job(&app.db, "mail", "discarded").await;
    age(discarded_10, 10).await;
    let discarded_31 = job(&app.db, "mail", "discarded").await;
    age(discarded_31, 31).await;
    let waiting = job(&app.db, "mail", "available").await;
    sqlx::query("UPDATE sluice.jobs SET created_at = now() - interval '60 days' WHERE id = $1")
        .bind(waiting)
        .execute(&app.db)
        .await
        .expect("old");

    let deleted = admin::prune(&app.db, Retention::default())
        .await
        .expect("prunes");
    assert_eq!(deleted, Some(3));
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM sluice.jobs ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("jobs");
    assert_eq!(left, [young_completed, discarded_10, waiting]);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.job_attempts")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(attempts, 0, "attempts go with their job");

    // A shorter retention (SLUICE_JOB_RETENTION) takes the younger one too.
    let short = Retention {
        finished: Duration::from_secs(24 * 3600),
        ..Retention::default()
    };
    assert_eq!(admin::prune(&app.db, short).await.expect("prunes"), Some(1));

    // One instance at a time: while another holds the lock, nothing is pruned.
    let mut other = app.db.begin().await.expect("tx");
    let held: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(x'00511ce79b0e'::bigint)")
            .fetch_one(&mut *other)
            .await
            .expect("lock");
    assert!(held);
    assert_eq!(admin::prune(&app.db, short).await.expect("prunes"), None);
    other.rollback().await.expect("rollback");
}
