//! Several Sluice instances on one database: a change made through one is served by the others
//! (through the catalog's change notification, or the periodic generation check when that is
//! off), whether it is a publish, a group, an environment value or a token key, and a request
//! in flight during a publish completes. Waiting is by polling with a
//! generous upper bound; no assertion depends on how fast anything is.

mod common;

use common::{TestApp, spawn_app, spawn_app_on, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::config::HttpAllow;
use std::time::{Duration, Instant};

/// Upper bound for another instance to follow a change; it normally takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

fn hello(name: &str, path: &str, says: &str) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": "GET", "path": path},
        "entry": "reply",
        "nodes": {"reply": {"type": "respond", "body": {"says": says}}}
    })
}

/// Polls `GET /api{path}` on `app` until it answers `status` with `body` (or gives up).
async fn until_served(app: &TestApp, path: &str, status: u16, body: Value) {
    let deadline = Instant::now() + PATIENCE;
    let mut last = (0, Value::Null);
    while Instant::now() < deadline {
        last = app.send(app.api(Method::GET, path)).await;
        if last == (status, body.clone()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("GET /api{path} never answered {status} {body}; last: {last:?}");
}

/// No periodic check within any test's lifetime: only notifications can carry a change.
const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_publish_on_one_instance_is_served_by_the_other() {
    let a = spawn_app_with(|c| c.reload_check = NEVER).await;
    let b = spawn_app_on(&a.db_url, &a.db_name, |c| c.reload_check = NEVER).await;
    let (status, _) = b.send(b.api(Method::GET, "/hello")).await;
    assert_eq!(status, 404);

    a.publish(&hello("hello", "/hello", "from a")).await;
    until_served(&b, "/hello", 200, json!({"says": "from a"})).await;

    // Group changes travel too: a new base path, then disabling.
    let (status, body) = a
        .send(
            a.admin(Method::POST, "/groups")
                .json(&json!({"name": "g", "base_path": "/g"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut doc = hello("grouped", "/x", "grouped");
    doc["endpoint"]["group"] = json!("g");
    a.publish(&doc).await;
    until_served(&b, "/g/x", 200, json!({"says": "grouped"})).await;
    let (status, _) = a
        .send(
            a.admin(Method::PUT, "/groups/g")
                .header("if-match", "\"1\"")
                .json(&json!({"base_path": "/g", "enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    until_served(
        &b,
        "/g/x",
        404,
        json!({"error": {"code": "route.not_found", "message": "no route for GET /api/g/x", "details": []}}),
    )
    .await;

    // And a change made on B is served by A.
    b.publish(&hello("back", "/back", "from b")).await;
    until_served(&a, "/back", 200, json!({"says": "from b"})).await;
}

#[tokio::test]
async fn a_listener_whose_connection_is_killed_reconnects_and_catches_up() {
    let a = spawn_app_with(|c| c.reload_check = NEVER).await;
    let b = spawn_app_on(&a.db_url, &a.db_name, |c| c.reload_check = NEVER).await;
    a.publish(&hello("first", "/first", "1")).await;
    until_served(&b, "/first", 200, json!({"says": "1"})).await;

    // The catalog listeners only (the job workers listen on `sluice_jobs` too).
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%sluice_reload%'",
    )
    .fetch_all(&a.db)
    .await
    .expect("terminate the listeners");
    assert_eq!(killed, [true, true], "both instances listen");
    // Published while B may still be reconnecting: the notification can be lost, the check
    // after reconnecting is not.
    a.publish(&hello("second", "/second", "2")).await;
    until_served(&b, "/second", 200, json!({"says": "2"})).await;
}

#[tokio::test]
async fn without_the_listener_the_periodic_check_heals() {
    let a = spawn_app().await;
    let b = spawn_app_on(&a.db_url, &a.db_name, |c| {
        c.reload_listen = false;
        c.reload_check = Duration::from_millis(200);
    })
    .await;
    a.publish(&hello("hello", "/hello", "v1")).await;
    until_served(&b, "/hello", 200, json!({"says": "v1"})).await;

    // Deleting the published flow on A is followed the same way.
    let (status, body) = a.send(a.admin(Method::GET, "/flows")).await;
    assert_eq!(status, 200);
    let id = body["flows"][0]["id"].as_i64().expect("id");
    let (status, _) = a
        .send(a.admin(Method::DELETE, &format!("/flows/{id}")))
        .await;
    assert_eq!(status, 204);
    until_served(
        &b,
        "/hello",
        404,
        json!({"error": {"code": "route.not_found", "message": "no route for GET /api/hello", "details": []}}),
    )
    .await;
}

#[tokio::test]
async fn environment_values_and_token_keys_changed_on_one_instance_are_served_by_the_other() {
    let a = spawn_app_with(|c| c.reload_check = NEVER).await;
    let b = spawn_app_on(&a.db_url, &a.db_name, |c| c.reload_check = NEVER).await;
    let put = |value: &str| {
        a.admin(Method::PUT, "/env/GREETING")
            .json(&json!({"value": value}))
    };
    assert_eq!(a.send(put("hi")).await.0, 204);
    let mut doc = hello("greet", "/greet", "");
    doc["nodes"]["reply"]["body"]["says"] = json!({"$rhai": "env.GREETING"});
    a.publish(&doc).await;
    until_served(&b, "/greet", 200, json!({"says": "hi"})).await;
    // A change of a value alone, with nothing published, is followed too.
    assert_eq!(a.send(put("hello")).await.0, 204);
    until_served(&b, "/greet", 200, json!({"says": "hello"})).await;

    let (status, rotated) = a.send(a.admin(Method::POST, "/token-keys/rotate")).await;
    assert_eq!(status, 200, "{rotated}");
    let current = rotated["rotation"]["current"].clone();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, listed) = b.send(b.admin(Method::GET, "/token-keys")).await;
        assert_eq!(status, 200, "{listed}");
        let verifies = listed["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|k| k["id"] == current && k["verifies"] == true);
        if verifies {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B never loaded the key {current}: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An upstream whose answer waits until the test releases it, to hold a request in flight.
async fn held_upstream() -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let _ = arrived_tx.send(());
        let _ = release_rx.await;
        let body = r#"{"held":true}"#;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(reply.as_bytes()).await;
    });
    (port, release_tx, arrived_rx)
}

#[tokio::test]
async fn a_request_in_flight_during_a_publish_completes() {
    let (port, release, arrived) = held_upstream().await;
    let a = spawn_app_with(|c| {
        c.http_allow = HttpAllow::parse(&["127.0.0.1"]).expect("allow list");
    })
    .await;
    let b = spawn_app_on(&a.db_url, &a.db_name, |c| {
        c.http_allow = HttpAllow::parse(&["127.0.0.1"]).expect("allow list");
        c.reload_check = NEVER;
    })
    .await;
    let slow = json!({
        "format": "sluice.flow", "format_version": 1, "name": "slow",
        "endpoint": {"method": "GET", "path": "/slow"},
        "entry": "call",
        "nodes": {
            "call": {"type": "http.request", "url": format!("http://127.0.0.1:{port}/"), "as": "up",
                     "timeout_ms": 60000, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"upstream": {"$rhai": "up.body"}}}
        }
    });
    a.publish(&slow).await;

    // Held on B while A publishes, and B reloads, underneath it.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = b.send(b.api(Method::OPTIONS, "/slow")).await;
        if status == 204 {
            break;
        }
        assert!(Instant::now() < deadline, "B never served /slow: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let in_flight = tokio::spawn({
        let req = b.api(Method::GET, "/slow");
        async move { req.send().await.expect("answered") }
    });
    tokio::time::timeout(PATIENCE, arrived)
        .await
        .expect("the request reaches the upstream")
        .expect("arrived");
    a.publish(&hello("other", "/other", "new")).await;
    until_served(&b, "/other", 200, json!({"says": "new"})).await;

    release.send(()).expect("upstream still waiting");
    let resp = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the held request finishes")
        .expect("task");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body, json!({"upstream": {"held": true}}));
}
