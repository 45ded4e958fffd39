//! A read replica (`SLUICE_DATABASE_READ_URL`): a streaming replica of a cluster of its own
//! (made with `pg_basebackup -R`), with Sluice on both URLs. Flows that cannot write read on
//! the replica: with the replica's replay paused, a row written on the primary is not seen by
//! a read flow, but is by a flow that writes and by the data API, which run on the primary; once
//! replay resumes, the read flow sees it. A read flow with `settings.read_from: "primary"` sees
//! it at once. Waiting is by polling with a generous upper bound; no
//! assertion depends on how fast anything is.

mod common;

use common::external::Replica;
use common::{TestApp, spawn_app_on};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::config::Secret;
use sluice::pg::EmbeddedPg;
use std::time::{Duration, Instant};

/// Upper bound for the replica to replay what the primary wrote; normally milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn flows_that_do_not_write_read_on_the_replica() {
    // A primary of its own: the replica copies the whole cluster.
    let dir = std::env::temp_dir().join(format!("sluice-primary-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let primary = EmbeddedPg::start(&dir).await.expect("the primary starts");
    let url = primary.database_url().to_string();
    let replica = Replica::start(&url).await;
    let name = url.rsplit('/').next().expect("a database").to_string();
    let read_url = replica.url(&name);

    let app = spawn_app_on(&url, &name, |c| {
        c.database_read_url = Some(Secret::new(read_url.clone()))
    })
    .await;
    app.load_todo_example().await;
    let mut fresh = common::example("todo/get_todo.flow.json");
    fresh["name"] = json!("get_todo_fresh");
    fresh["endpoint"]["path"] = json!("/fresh/todos/{id}");
    fresh["settings"] = json!({"read_from": "primary"});
    app.publish(&fresh).await;
    let replica_db = sqlx::PgPool::connect(&read_url)
        .await
        .expect("connect to the replica");
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&replica_db)
        .await
        .expect("ask the replica");
    assert!(in_recovery, "the read URL is a standby");

    // A write through a flow lands on the primary, and the replica follows.
    let (status, body) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "first"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    until(&app, "/todos", |body| titles(body) == ["first"]).await;

    // Replay paused: what the primary gets now is not on the replica.
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&replica_db)
        .await
        .expect("pause replay");
    let (status, body) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "second"})),
        )
        .await;
    assert_eq!(status, 201, "the write lands on the primary: {body}");
    let id = body["id"].as_i64().expect("an id");
    let on_primary: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("count on the primary");
    assert_eq!(on_primary, 2);
    // Reads by flows come from the paused replica: the new row is not there.
    let (status, body) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(titles(&body), ["first"], "the list reads on the replica");
    let (status, body) = app
        .send(app.api(Method::GET, &format!("/todos/{id}")))
        .await;
    assert_eq!(status, 404, "the replica has no row {id} yet: {body}");
    // Unless the flow asks for the primary.
    let (status, body) = app
        .send(app.api(Method::GET, &format!("/fresh/todos/{id}")))
        .await;
    assert_eq!((status, &body["title"]), (200, &json!("second")), "{body}");
    // The data API (the editor's) reads on the primary.
    let (status, body) = app.send(app.admin(Method::GET, "/tables/todos/rows")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(2), "{body}");

    // Replay resumed: the replica catches up and the read flows see the row.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&replica_db)
        .await
        .expect("resume replay");
    until(&app, &format!("/todos/{id}"), |body| {
        body["title"] == "second"
    })
    .await;
    replica_db.close().await;
    drop(replica);
    primary.stop().await.expect("the primary stops");
    let _ = std::fs::remove_dir_all(&dir);
}

fn titles(list: &Value) -> Vec<String> {
    let rows = list
        .get("items")
        .or_else(|| list.get("rows"))
        .unwrap_or(list);
    let mut t: Vec<String> = rows
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["title"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    t.sort();
    t
}

/// Polls `GET /api{path}` until it answers 200 with a body for which `ok` holds.
async fn until(app: &TestApp, path: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    let mut last = (0, Value::Null);
    while Instant::now() < deadline {
        last = app.send(app.api(Method::GET, path)).await;
        if last.0 == 200 && ok(&last.1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET /api{path} never answered as expected; last: {last:?}");
}
