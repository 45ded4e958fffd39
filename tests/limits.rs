//! Limits of generated endpoints against the real server: rate limits per client address and
//! per bearer token (429 with Retry-After), the flow timeout (504 and a rollback), the limit on
//! requests in flight (503), and graceful shutdown that drains requests in flight.

mod common;

use common::{TestApp, spawn_app, spawn_app_until, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::flow::plan::{RateLimit, RateRule};
use std::time::{Duration, Instant};

fn endpoint(name: &str, settings: Value) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": "GET", "path": format!("/{name}")},
        "entry": "reply",
        "settings": settings,
        "nodes": {"reply": {"type": "respond", "body": {"ok": true}}}
    })
}

/// A flow that holds its request for `secs` seconds in the database.
fn slow(name: &str, secs: f64) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": "GET", "path": format!("/{name}")},
        "entry": "sleep",
        "nodes": {
            "sleep": {"type": "db.sql", "sql": format!("select 1 as done from pg_sleep({secs})"),
                      "params": {}, "as": "slept", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "slept"}}
        }
    })
}

async fn get(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.api(Method::GET, path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("answered")
}

fn retry_after(resp: &reqwest::Response) -> u64 {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds")
}

async fn code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("a JSON body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics answered")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn an_address_over_the_endpoint_budget_gets_429_with_retry_after() {
    let app = spawn_app().await;
    let id = app
        .publish(&endpoint(
            "limited",
            json!({"rate_limit": {"per_ip": {"requests": 2, "window_secs": 60}}}),
        ))
        .await;
    for _ in 0..2 {
        assert_eq!(get(&app, "/limited", &[]).await.status(), 200);
    }
    let refused = get(&app, "/limited", &[]).await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(code(refused).await, "rate_limit.exceeded");
    // Without trusted proxies, a forwarded address is the client's own claim and changes nothing.
    let spoofed = get(&app, "/limited", &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(spoofed.status(), 429);
    // Publishing again rebuilds the route table but keeps the budget spent.
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&app, "/limited", &[]).await.status(), 429);
    let text = metrics(&app).await;
    assert!(
        text.lines()
            .any(|l| l == "sluice_rate_limit_rejections_total{flow=\"limited\",method=\"GET\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_budget() {
    let app = spawn_app_with(|c| {
        c.ops.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await;
    app.publish(&endpoint(
        "limited",
        json!({"rate_limit": {"per_ip": {"requests": 1, "window_secs": 60}}}),
    ))
    .await;
    let a = [("x-forwarded-for", "198.51.100.1")];
    let b = [("x-forwarded-for", "198.51.100.2")];
    assert_eq!(get(&app, "/limited", &a).await.status(), 200);
    assert_eq!(get(&app, "/limited", &a).await.status(), 429);
    assert_eq!(get(&app, "/limited", &b).await.status(), 200);
    // The proxy itself, forwarding nothing, is one more client.
    assert_eq!(get(&app, "/limited", &[]).await.status(), 200);
}

#[tokio::test]
async fn each_bearer_token_has_its_own_budget() {
    let app = spawn_app().await;
    app.publish(&endpoint(
        "per_token",
        json!({"rate_limit": {"per_token": {"requests": 1, "window_secs": 60}}}),
    ))
    .await;
    let a = [("authorization", "Bearer token-a")];
    let b = [("authorization", "Bearer token-b")];
    assert_eq!(get(&app, "/per_token", &a).await.status(), 200);
    let refused = get(&app, "/per_token", &a).await;
    assert_eq!(refused.status(), 429);
    assert!((1..=60).contains(&retry_after(&refused)));
    assert_eq!(code(refused).await, "rate_limit.exceeded");
    assert_eq!(get(&app, "/per_token", &b).await.status(), 200);
    // Requests without a token are not limited by a per-token rule.
    for _ in 0..3 {
        assert_eq!(get(&app, "/per_token", &[]).await.status(), 200);
    }
}

#[tokio::test]
async fn the_server_wide_budget_spans_every_endpoint() {
    let app = spawn_app_with(|c| {
        c.ops.rate_limit = RateLimit {
            per_ip: Some(RateRule {
                requests: 3,
                window_secs: 60,
            }),
            per_token: None,
        };
    })
    .await;
    app.publish(&endpoint("one", json!({}))).await;
    app.publish(&endpoint("two", json!({}))).await;
    for path in ["/one", "/two", "/one"] {
        assert_eq!(get(&app, path, &[]).await.status(), 200, "{path}");
    }
    let refused = get(&app, "/two", &[]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(code(refused).await, "rate_limit.exceeded");
    // The admin API is not a generated endpoint and is not limited.
    let (status, _) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_rate_limit_of_the_wrong_shape_is_refused_at_save() {
    let app = spawn_app().await;
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&endpoint(
            "bad",
            json!({"rate_limit": {"per_ip": {"requests": 0, "window_secs": 60}, "burst": 3}}),
        )))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "flow.invalid");
}

#[tokio::test]
async fn a_flow_past_its_timeout_answers_504_and_keeps_none_of_its_writes() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": [{"name": "title", "type": "text"}]}))
        .await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "doomed",
        "endpoint": {"method": "POST", "path": "/doomed"},
        "entry": "add",
        "settings": {"timeout_ms": 300},
        "nodes": {
            "add": {"type": "db.insert", "table": "notes", "values": {"title": "doomed"},
                    "as": "note", "next": {"ok": "sleep"}},
            "sleep": {"type": "db.sql", "sql": "select 1 as done from pg_sleep(2)", "params": {},
                      "as": "slept", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "note"}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::POST, "/doomed")).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["code"], "flow.timeout");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    // Wait (bounded) until the statement the timeout cut off has ended in the server, so the
    // transaction cannot still commit; then the insert must be gone.
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let sleeping: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid() AND state = 'active'",
        )
        .fetch_one(&app.db)
        .await
        .expect("activity");
        if sleeping == 0 {
            break;
        }
        assert!(Instant::now() < until, "the cut-off statement never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM app.notes")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(kept, 0, "a timed-out request keeps none of its writes");
}

/// Polls `/metrics` until `line` is there (bounded wait).
async fn wait_for_metric(app: &TestApp, line: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if metrics(app).await.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < until, "never saw `{line}`");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_get_503_with_retry_after() {
    let app = spawn_app_with(|c| c.ops.max_in_flight = 1).await;
    app.publish(&slow("slow", 1.5)).await;
    app.publish(&endpoint("quick", json!({}))).await;
    let first = tokio::spawn({
        let req = app.api(Method::GET, "/slow");
        async move { req.send().await.expect("answered").status().as_u16() }
    });
    wait_for_metric(&app, "sluice_http_in_flight 1").await;
    let refused = get(&app, "/quick", &[]).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(retry_after(&refused), 1);
    assert_eq!(code(refused).await, "server.busy");
    assert_eq!(first.await.expect("first request"), 200);
    assert_eq!(get(&app, "/quick", &[]).await.status(), 200, "room again");
    wait_for_metric(&app, "sluice_http_busy_rejections_total 1").await;
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_refuses_new_connections() {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (app, server) = spawn_app_until(|_| {}, async move {
        let _ = stop_rx.await;
    })
    .await;
    app.publish(&slow("slow", 1.5)).await;
    let in_flight = tokio::spawn({
        let req = app.api(Method::GET, "/slow");
        async move {
            let resp = req.send().await.expect("answered");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("JSON"))
        }
    });
    wait_for_metric(&app, "sluice_http_in_flight 1").await;
    stop_tx.send(()).expect("server still running");
    let (status, body) = in_flight.await.expect("request task");
    assert_eq!((status, body), (200, json!([{"done": 1}])));
    // A new connection (a fresh client, no pooled keep-alive) is refused.
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let attempt = fresh.get(format!("{}/healthz", app.base)).send().await;
    assert!(
        attempt.as_ref().is_err_and(|e| e.is_connect()),
        "{attempt:?}"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server stops once drained")
        .expect("server task");
    assert!(stopped.is_ok(), "{stopped:?}");
}
