//! Sluice behind PgBouncer (Debian's package, 1.18) in session and in transaction pooling: no
//! startup parameter the pooler refuses, no statement relying on `search_path` (the database's
//! own is taken away), the result cap written into statements rather than set on the session.
//! Two instances share the pooler. In session pooling one does everything through it
//! (migrations and the catalog listener included), the other has its migrations and listener on
//! the direct URL (`SLUICE_DATABASE_DIRECT_URL`). In transaction pooling both need the direct
//! URL, connect through the relay of `SLUICE_DATABASE_POOLER=transaction`, and share fewer
//! server connections than they have clients, so transactions move between server
//! connections. Waiting is by polling with a generous upper bound; no assertion depends on how
//! fast anything is.

mod common;

use common::external::{PgBouncer, PoolMode};
use common::{TestApp, fresh_database, spawn_app_on};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::config::{Pooler, Secret};
use sqlx::Connection;
use std::time::{Duration, Instant};

/// Upper bound for the other instance to follow a publish; it normally takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(20);

/// No periodic check within the test: only the listener can carry a publish.
const NEVER: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn sluice_runs_behind_pgbouncer_in_session_pooling() {
    behind_pgbouncer(PoolMode::Session).await;
}

#[tokio::test]
async fn sluice_runs_behind_pgbouncer_in_transaction_pooling() {
    behind_pgbouncer(PoolMode::Transaction).await;
}

async fn behind_pgbouncer(mode: PoolMode) {
    let (direct, name) = fresh_database().await;
    // The test role is called `sluice`, so the default search_path ("$user", public) would
    // find the catalog's schema: take that away, so a statement that does not name its schema
    // fails here.
    let mut conn = sqlx::PgConnection::connect(&direct)
        .await
        .expect("connect directly");
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" SET search_path TO public"
    ))
    .execute(&mut conn)
    .await
    .expect("set the database's search_path");
    conn.close().await.expect("close");

    let pooled_mode = |c: &mut sluice::config::Config| {
        c.reload_check = NEVER;
        if mode == PoolMode::Transaction {
            c.database_pooler = Pooler::Transaction;
            // Migrations and LISTEN need a session.
            c.database_direct_url = Some(Secret::new(direct.clone()));
        }
    };
    let (pooler, a, b) = if mode == PoolMode::Session {
        // Each client connection holds a server connection: room for both pools and listeners.
        let pooler = PgBouncer::start(&direct, mode, 40).await;
        let pooled = pooler.url(&name);
        let a = spawn_app_on(&pooled, &name, pooled_mode).await;
        let b = spawn_app_on(&pooled, &name, |c| {
            pooled_mode(c);
            c.database_direct_url = Some(Secret::new(direct.clone()));
        })
        .await;
        (pooler, a, b)
    } else {
        // Three server connections for two instances of up to eight clients each.
        let pooler = PgBouncer::start(&direct, mode, 3).await;
        let pooled = pooler.url(&name);
        let a = spawn_app_on(&pooled, &name, pooled_mode).await;
        let b = spawn_app_on(&pooled, &name, pooled_mode).await;
        (pooler, a, b)
    };
    if mode == PoolMode::Transaction {
        the_relay_refuses_a_cached_statement(&pooler, &name).await;
    }

    a.load_todo_example().await;
    a.load_auth_example().await;
    a.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "count_todos",
        "endpoint": {"method": "GET", "path": "/todos-count"},
        "entry": "count",
        "nodes": {
            "count": {"type": "db.sql", "sql": "SELECT count(*)::int AS n FROM todos",
                      "as": "rows", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "rows[0]"}}
        }
    }))
    .await;
    for app in [&a, &b] {
        until_served(app, "/todos-count", |s, body| s == 200 && body["n"] == 0).await;
    }

    // Many requests at once over both instances: writes, reads by id, lists.
    let mut calls = Vec::new();
    for i in 0..48 {
        let app = if i % 2 == 0 { a.clone() } else { b.clone() };
        calls.push(tokio::spawn(async move {
            let (status, body) = app
                .send(
                    app.api(Method::POST, "/todos")
                        .json(&json!({"title": format!("todo {i}"), "priority": i % 5})),
                )
                .await;
            assert_eq!(status, 201, "create: {body}");
            let id = body["id"].as_i64().expect("an id");
            let (status, body) = app
                .send(app.api(Method::GET, &format!("/todos/{id}")))
                .await;
            assert_eq!(status, 200, "get: {body}");
            assert_eq!(body["title"], format!("todo {i}"));
            let (status, body) = app.send(app.api(Method::GET, "/todos?limit=5")).await;
            assert_eq!(status, 200, "list: {body}");
        }));
    }
    for c in calls {
        c.await.expect("the calls succeed");
    }
    let (status, body) = b.send(b.api(Method::GET, "/todos-count")).await;
    assert_eq!((status, &body["n"]), (200, &json!(48)), "{body}");

    // The data API: a write, and a page with its total read in one snapshot transaction.
    let (status, body) = b
        .send(
            b.admin(Method::POST, "/tables/todos/rows")
                .json(&json!({"title": "from the data API"})),
        )
        .await;
    assert_eq!(status, 201, "data API insert: {body}");
    let (status, body) = a
        .send(a.admin(Method::GET, "/tables/todos/rows?limit=5&count=true"))
        .await;
    assert_eq!(status, 200, "data API page: {body}");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(5), "{body}");
    assert_eq!(body["total"], 49, "{body}");

    // Signing up and in through a flow, and an editor signing in.
    let (status, body) = a
        .send(
            a.api(Method::POST, "/auth/signup")
                .json(&json!({"email": "ada@example.com", "password": "analytical engine"})),
        )
        .await;
    assert_eq!(status, 201, "signup: {body}");
    let (status, body) = b
        .send(
            b.api(Method::POST, "/auth/login")
                .json(&json!({"email": "ada@example.com", "password": "analytical engine"})),
        )
        .await;
    assert_eq!(status, 200, "login: {body}");
    let token = body["token"].as_str().expect("a token");
    let (status, body) = a.send(a.api(Method::GET, "/me").bearer_auth(token)).await;
    assert_eq!(
        (status, &body["email"]),
        (200, &json!("ada@example.com")),
        "{body}"
    );
    let (status, body) = b
        .send(
            b.client
                .post(format!("{}/_/api/v1/auth/login", b.editor_base))
                .json(&json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "editor login: {body}");

    // A publish on one instance reaches the other through its listener (in session pooling A
    // listens through the pooler, B on the direct URL).
    a.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "hello",
        "endpoint": {"method": "GET", "path": "/hello"},
        "entry": "reply",
        "nodes": {"reply": {"type": "respond", "body": {"says": "hello"}}}
    }))
    .await;
    until_served(&b, "/hello", |s, body| s == 200 && body["says"] == "hello").await;
    b.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "back",
        "endpoint": {"method": "GET", "path": "/back"},
        "entry": "reply",
        "nodes": {"reply": {"type": "respond", "body": {"says": "back"}}}
    }))
    .await;
    until_served(&a, "/back", |s, body| s == 200 && body["says"] == "back").await;
}

/// A client that keeps statements prepared would bind, on the server connection the pooler
/// picks, a statement it parsed earlier, maybe on another one: the relay refuses that instead
/// of running whatever the unnamed statement is there.
async fn the_relay_refuses_a_cached_statement(pooler: &PgBouncer, name: &str) {
    use sqlx::postgres::{PgConnectOptions, PgSslMode};
    use std::str::FromStr;
    let relay = sluice::pg::pinning::Pinning::start("127.0.0.1".into(), pooler.port)
        .await
        .expect("the relay starts");
    let options = PgConnectOptions::from_str(&pooler.url(name))
        .expect("a URL")
        .host("127.0.0.1")
        .port(relay.port())
        .ssl_mode(PgSslMode::Disable)
        .extra_float_digits(None);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("connect through the relay");
    let first: i32 = sqlx::query_scalar("SELECT $1::int + 1")
        .bind(1)
        .fetch_one(&mut conn)
        .await
        .expect("parsed and bound at once");
    assert_eq!(first, 2);
    let cached = sqlx::query_scalar::<_, i32>("SELECT $1::int + 1")
        .bind(2)
        .fetch_one(&mut conn)
        .await;
    assert!(cached.is_err(), "a cached statement is refused: {cached:?}");
}

/// Polls `GET /api{path}` on `app` until `ok` holds (or gives up).
async fn until_served(app: &TestApp, path: &str, ok: impl Fn(u16, &Value) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut last = (0, Value::Null);
    while Instant::now() < deadline {
        last = app.send(app.api(Method::GET, path)).await;
        if ok(last.0, &last.1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("GET /api{path} never answered as expected; last: {last:?}");
}
