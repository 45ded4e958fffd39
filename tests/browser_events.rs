//! The editor's events screens in a real headless Chromium against a real Sluice and Postgres:
//! choosing what runs a flow (a schedule with its next runs and the cron error inline), and the
//! Jobs screen (failed jobs, one job's attempts, retry, and an attempt's trace on the canvas).
//! Each test ends with a screenshot in `target/screenshots/<test>.png`.

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates a draft flow from `doc`; returns its id.
async fn create_flow(app: &TestApp, doc: &Value) -> i64 {
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(doc)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

/// Replaces the text of the input matching `css` and fires `input`.
async fn type_into(b: &Browser, css: &str, text: &str) {
    b.wait_for(css).await;
    b.execute(
        "const t = document.querySelector(arguments[0]); t.value = arguments[1];
         t.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([css, text]),
    )
    .await;
}

#[tokio::test]
async fn a_flow_switched_to_a_schedule_shows_its_next_runs_and_the_cron_error() {
    let app = spawn_app().await;
    let id = create_flow(
        &app,
        &json!({
            "format": "sluice.flow", "format_version": 1, "name": "nightly_report",
            "endpoint": {"method": "POST", "path": "/nightly-report"},
            "entry": "done",
            "nodes": {"done": {"type": "respond", "status": 200, "body": {"ok": true}}}
        }),
    )
    .await;
    let b = Browser::start("events_schedule_form").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-runs-on").await;
    assert_eq!(
        b.execute(
            "return document.querySelector('.fl-runs-on').value",
            json!([])
        )
        .await,
        "endpoint"
    );

    b.choose(".fl-runs-on", "schedule").await;
    b.wait_for_text(".fl-insp-title", "Scheduled flow").await;
    type_into(&b, ".fm-cron", "0 8 * * 1-5").await;
    type_into(&b, ".fm-tz", "Europe/Paris").await;
    b.wait_until(
        "the next five runs are listed in the zone",
        "const li = [...document.querySelectorAll('.fm-next li')];
         return li.length === 5 && li.every((l) => / 08:00 \\+0[12]:00$/.test(l.textContent));",
    )
    .await;
    b.assert_accessible("a schedule trigger in the inspector")
        .await;

    // A bad expression: the server's error is shown and the field marked, no runs listed.
    type_into(&b, ".fm-cron", "61 * * * *").await;
    b.wait_until(
        "the cron error is shown",
        "return document.querySelector('.fm-cron').getAttribute('aria-invalid') === 'true'
            && document.querySelectorAll('.fm-next li').length === 0
            && /cron/i.test(document.querySelector('.fm-next-status').textContent);",
    )
    .await;
    type_into(&b, ".fm-cron", "30 6 * * *").await;
    b.wait_until(
        "the runs come back",
        "return document.querySelectorAll('.fm-next li').length === 5",
    )
    .await;

    // Saved, the document has the trigger and no endpoint.
    b.click("#fl-save").await;
    b.wait_until(
        "the draft is saved",
        "return !document.querySelector('#fl-save') || document.querySelector('#fl-save').disabled",
    )
    .await;
    let (_, flow) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(
        flow["document"]["trigger"],
        json!({"kind": "schedule", "cron": "30 6 * * *", "timezone": "Europe/Paris"}),
        "{flow}"
    );
    assert!(flow["document"].get("endpoint").is_none(), "{flow}");
    b.finish().await;
}

#[tokio::test]
async fn the_jobs_screen_lists_failed_jobs_retries_them_and_shows_an_attempt_trace() {
    let app = spawn_app().await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "send_receipt",
        "trigger": {"kind": "job"},
        "entry": "done",
        "nodes": {"done": {"type": "respond", "status": 200, "body": {"sent": true}}}
    });
    let flow_id = app.publish(&doc).await;
    // A job that failed for good, with one attempt and its trace.
    let job: i64 = sqlx::query_scalar(
        "INSERT INTO sluice.jobs (kind, state, args, attempt, max_attempts, finalized_at, errors)
         VALUES ('send_receipt', 'discarded', '{\"order\": 7}', 1, 1, now(),
                 ARRAY['{\"attempt\": 1, \"code\": \"http.failed\", \"message\": \"the mail service answered 503\", \"node\": \"done\"}'::jsonb])
         RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("a job");
    sqlx::query(
        "INSERT INTO sluice.job_attempts (job_id, attempt, worker, finished_at, outcome, error, trace)
         VALUES ($1, 1, 'test-worker', now(), 'discarded',
                 '{\"code\": \"http.failed\", \"message\": \"the mail service answered 503\", \"node\": \"done\"}',
                 '[{\"node\": \"done\", \"type\": \"respond\", \"duration_us\": 12}]')",
    )
    .bind(job)
    .execute(&app.db)
    .await
    .expect("an attempt");

    let b = Browser::start("events_jobs_screen").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/jobs?state=discarded", app.base))
        .await;
    let row = format!("tr[data-job='{job}']");
    b.wait_for(&row).await;
    b.wait_for_text(&format!("{row} .job-error"), "503").await;
    b.wait_until(
        "the state filter shows the count of failed jobs",
        "return /Failed \\(dead letters\\) \\(1\\)/.test(document.querySelector('#jobs-state').selectedOptions[0].textContent)",
    )
    .await;
    b.assert_accessible("the jobs list").await;

    b.click(&format!("{row} a[href='#/jobs/{job}']")).await;
    b.wait_for("#job-retry").await;
    b.wait_for_text(".attempt .job-error", "mail service answered 503")
        .await;
    b.assert_accessible("one job").await;

    // Its attempt's trace on the flow's canvas.
    b.click(".attempt a.btn").await;
    b.wait_for(".fl-node[data-id=done].was-run").await;
    assert!(
        b.execute("return location.hash", json!([]))
            .await
            .as_str()
            .is_some_and(|h| h == format!("#/flows/{flow_id}/jobs/{job}/1")),
    );

    // Back to the job: retry makes it run again.
    b.goto(&format!("{}/_/#/jobs/{job}", app.base)).await;
    b.click("#job-retry").await;
    b.wait_gone("#job-retry").await;
    let (_, after) = app
        .send(app.admin(Method::GET, &format!("/jobs/{job}")))
        .await;
    let state = after["state"].as_str().unwrap_or_default().to_string();
    assert!(
        ["available", "running", "completed"].contains(&state.as_str()),
        "{after}"
    );
    b.finish().await;
}

#[tokio::test]
async fn the_run_panel_runs_a_table_trigger_flow_with_a_sample_event() {
    let app = spawn_app().await;
    app.create_table(&json!({
        "name": "orders", "events": true,
        "fields": [{"name": "status", "type": "text", "required": true}]
    }))
    .await;
    let id = create_flow(
        &app,
        &json!({
            "format": "sluice.flow", "format_version": 1, "name": "order_changed",
            "trigger": {"kind": "table", "table": "orders", "on": ["insert"]},
            "entry": "done",
            "nodes": {"done": {"type": "respond", "status": 200,
                               "body": {"$rhai": "`${event.op} of ${event.table}: ${event[\"new\"].status}`"}}}
        }),
    )
    .await;
    let b = Browser::start("events_run_job_flow").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for_text(".fl-route", "on insert of orders").await;
    b.click("#fl-run-toggle").await;
    b.wait_for("#fl-run-input").await;
    b.wait_until(
        "the input is a sample insert event of the table",
        "const v = JSON.parse(document.querySelector('#fl-run-input').value);
         return v.event.op === 'insert' && v.event.table === 'orders' && v.event.new.status === 'sample';",
    )
    .await;
    assert!(b.try_find("#fl-run-token").await.is_some_and(|_| true));
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 200").await;
    let run = b
        .execute("return window.sluiceFlow.lastRun()", json!([]))
        .await;
    assert_eq!(run["response"]["body"], "insert of orders: sample", "{run}");
    b.wait_for(".fl-node[data-id=done].was-run").await;
    b.assert_accessible("the run panel of a table trigger flow")
        .await;
    b.finish().await;
}
