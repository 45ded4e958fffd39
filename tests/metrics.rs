//! `/metrics` and the request log against the real server: the Prometheus text parses and
//! counts requests, the optional metrics token, request-log rows that appear, filter, page,
//! sample and are pruned.

mod common;

use common::{TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Parses the text format strictly enough to catch a malformed line: every sample is
/// `name{labels} value` with a number as value, every family has HELP and TYPE first.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line `{line}`"
        );
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in `{line}`"));
        let name = series.split('{').next().expect("name");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "no TYPE before `{line}`");
        let labels = &series[name.len()..];
        assert!(
            labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
            "labels of `{line}`"
        );
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series `{series}`"
        );
    }
    samples
}

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    parse(&resp.text().await.expect("text"))
}

#[tokio::test]
async fn the_metrics_text_parses_and_counts_requests_latency_errors_and_the_pool() {
    let app = spawn_app_with(|_| {}).await;
    app.load_todo_example().await;
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);
    let (status, _) = app.send(app.api(Method::GET, "/todos/424242")).await;
    assert_eq!(status, 404);
    let (status, _) = app.send(app.api(Method::GET, "/nowhere")).await;
    assert_eq!(status, 404);

    let m = scrape(&app).await;
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no `{k}` in {m:#?}"))
    };
    assert_eq!(
        get(r#"sluice_http_requests_total{flow="list_todos",method="GET",status="2xx"}"#),
        1.0
    );
    assert_eq!(
        get(r#"sluice_http_requests_total{flow="get_todo",method="GET",status="4xx"}"#),
        1.0
    );
    assert_eq!(
        get(r#"sluice_http_errors_total{flow="get_todo",method="GET",code="todo.not_found"}"#),
        1.0
    );
    assert_eq!(
        get(r#"sluice_http_request_duration_seconds_count{flow="list_todos",method="GET"}"#),
        1.0
    );
    assert_eq!(
        get(
            r#"sluice_http_request_duration_seconds_bucket{flow="list_todos",method="GET",le="+Inf"}"#
        ),
        1.0
    );
    assert!(
        get(r#"sluice_http_request_duration_seconds_sum{flow="list_todos",method="GET"}"#) > 0.0
    );
    assert_eq!(
        get(r#"sluice_http_unmatched_requests_total{status="4xx"}"#),
        1.0
    );
    assert_eq!(get("sluice_db_pool_max_connections"), 8.0);
    assert!(get(r#"sluice_db_pool_connections{state="idle"}"#) >= 0.0);
    assert!(get(r#"sluice_db_pool_connections{state="in_use"}"#) >= 0.0);
    assert_eq!(get("sluice_request_log_dropped_total"), 0.0);
    // A flow saved and published again keeps its counters.
    let flows: Value = app.send(app.admin(Method::GET, "/flows")).await.1;
    let id = flows["flows"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == "list_todos"))
        .and_then(|f| f["id"].as_i64())
        .expect("list_todos id");
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);
    let m = scrape(&app).await;
    assert_eq!(
        m[r#"sluice_http_requests_total{flow="list_todos",method="GET",status="2xx"}"#],
        2.0
    );
}

#[tokio::test]
async fn with_a_metrics_token_the_metrics_need_it() {
    let app = spawn_app_with(|c| {
        c.ops.metrics_token = Some(sluice::config::Secret::new("scrape-secret"));
    })
    .await;
    let url = format!("{}/metrics", app.base);
    let (status, body) = app.send(app.client.get(&url)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("auth.unauthorized"))
    );
    let (status, _) = app
        .send(app.client.get(&url).bearer_auth("wrong-secret"))
        .await;
    assert_eq!(status, 401);
    let resp = app
        .client
        .get(&url)
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    parse(&resp.text().await.expect("text"));
}

/// Reads the request log until it holds at least `n` entries for the filter (bounded wait).
async fn log_entries(app: &TestApp, query: &str, n: usize) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app
            .send(app.admin(Method::GET, &format!("/request-log{query}")))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["entries"].as_array().map_or(0, Vec::len) >= n {
            return body;
        }
        assert!(Instant::now() < until, "fewer than {n} entries: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn request_log_rows_appear_and_are_filtered_and_paged() {
    let app = spawn_app_with(|c| c.ops.request_log.sample = 1.0).await;
    app.load_todo_example().await;
    for path in ["/todos", "/todos?limit=1", "/todos/424242"] {
        app.send(app.api(Method::GET, path)).await;
    }
    let (status, _) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "logged"})),
        )
        .await;
    assert_eq!(status, 201);

    let all = log_entries(&app, "", 4).await;
    let entries = all["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 4, "{all}");
    let newest = &entries[0];
    assert_eq!(newest["flow"], "create_todo");
    assert_eq!(newest["method"], "POST");
    assert_eq!(newest["path"], "/api/todos");
    assert_eq!(newest["status"], 201);
    assert!(newest["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert!(newest["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(newest["at"].is_string());
    assert_eq!(all["next_before"], Value::Null);

    let missing = log_entries(&app, "?status=404", 1).await;
    let rows = missing["entries"].as_array().expect("entries");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["flow"], "get_todo");
    assert_eq!(rows[0]["error_code"], "todo.not_found");
    assert_eq!(
        rows[0]["path"], "/api/todos/424242",
        "no query string is kept"
    );

    let listed = log_entries(&app, "?flow=list_todos", 2).await;
    assert_eq!(listed["entries"].as_array().map(Vec::len), Some(2));
    let class = log_entries(&app, "?status=2xx", 3).await;
    assert_eq!(class["entries"].as_array().map(Vec::len), Some(3));

    // Paging: one at a time, newest first, following the cursor.
    let mut seen = Vec::new();
    let mut query = "?limit=1".to_string();
    loop {
        let page = log_entries(&app, &query, 0).await;
        let rows = page["entries"].as_array().expect("entries");
        seen.extend(rows.iter().map(|r| r["id"].as_i64().expect("id")));
        match page["next_before"].as_i64() {
            Some(before) => query = format!("?limit=1&before={before}"),
            None => break,
        }
        assert!(seen.len() <= 4, "the cursor loops: {seen:?}");
    }
    let ids: Vec<i64> = entries
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(seen, ids);

    for bad in [
        "?status=600",
        "?status=abc",
        "?limit=0",
        "?limit=501",
        "?color=red",
        "?before=x",
    ] {
        let (status, body) = app
            .send(app.admin(Method::GET, &format!("/request-log{bad}")))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            code == "request_log.invalid_filter" || code == "request.invalid_query",
            "{bad}: {body}"
        );
    }
    let (status, _) = app
        .send(app.client.get(format!("{}/_/api/v1/request-log", app.base)))
        .await;
    assert_eq!(status, 401, "the request log needs an admin token");
}

#[tokio::test]
async fn unsampled_successes_are_skipped_but_errors_are_always_logged() {
    let app = spawn_app_with(|c| c.ops.request_log.sample = 0.0).await;
    app.load_todo_example().await;
    for path in ["/todos", "/todos", "/todos/424242"] {
        app.send(app.api(Method::GET, path)).await;
    }
    // Wait for the error row; by then the writer has seen the successes that came before it.
    let body = log_entries(&app, "", 1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let body = log_entries(&app, "", body["entries"].as_array().map_or(1, Vec::len)).await;
    let statuses: Vec<i64> = body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["status"].as_i64().expect("status"))
        .collect();
    assert_eq!(statuses, [404]);
}

#[tokio::test]
async fn the_request_log_is_pruned_to_its_row_limit() {
    let app = spawn_app_with(|c| {
        c.ops.request_log.sample = 1.0;
        c.ops.request_log.max_rows = 3;
    })
    .await;
    app.load_todo_example().await;
    for _ in 0..8 {
        let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
        assert_eq!(status, 200);
    }
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let m = scrape(&app).await;
        let written = m["sluice_request_log_written_total"];
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.request_log")
            .fetch_one(&app.db)
            .await
            .expect("count");
        if written >= 8.0 && rows <= 3 {
            break;
        }
        assert!(
            Instant::now() < until,
            "written {written}, still {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The newest are the ones kept.
    let max_id: i64 = sqlx::query_scalar("SELECT max(id) FROM sluice.request_log")
        .fetch_one(&app.db)
        .await
        .expect("max");
    assert_eq!(max_id, 8);
}
