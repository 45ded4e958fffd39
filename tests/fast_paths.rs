//! The interpreter's shortcuts found by the HTTP benchmark (bench/README.md) give the same
//! answers as the long way: a single write with no explicit transaction still refuses a
//! duplicate with 409 and writes nothing, and a property path that leads nowhere still gets
//! Rhai's error, while one that leads to a value hands it over unchanged.

mod common;

use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

fn flow(name: &str, method: &str, path: &str, entry: &str, nodes: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": method, "path": path}, "entry": entry, "nodes": nodes})
}

#[tokio::test]
async fn a_lone_insert_without_begin_still_commits_once_and_refuses_a_duplicate_cleanly() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "tags", "fields": [
        {"name": "label", "type": "text", "required": true, "unique": true}]}))
        .await;
    app.publish(&flow(
        "add_tag",
        "POST",
        "/tags",
        "insert",
        json!({
            "insert": {"type": "db.insert", "table": "tags", "as": "tag",
                       "values": {"label": {"$rhai": "request.body.label"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "tag"}}
        }),
    ))
    .await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/tags")
                .json(&json!({"label": "red"})),
        )
        .await;
    assert_eq!(
        (status, body["label"].as_str()),
        (201, Some("red")),
        "{body}"
    );
    let (status, body) = app
        .send(
            app.api(Method::POST, "/tags")
                .json(&json!({"label": "red"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "db.conflict");
    let (status, rows) = app.send(app.admin(Method::GET, "/tables/tags/rows")).await;
    assert_eq!(status, 200, "{rows}");
    let labels: Vec<&str> = rows["rows"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["label"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(labels, ["red"]);
}

#[tokio::test]
async fn property_paths_hand_over_values_and_fall_back_to_rhai_where_they_lead_nowhere() {
    let app = spawn_app().await;
    app.publish(&flow(
        "echo",
        "POST",
        "/echo",
        "reply",
        json!({
            "reply": {"type": "respond", "body": {
                "big": {"$rhai": "request.body.big"},
                "title": {"$rhai": "request.body.title"},
                "nested": {"$rhai": "request.body.inner.list"}
            }}
        }),
    ))
    .await;
    app.publish(&flow(
        "length",
        "POST",
        "/length",
        "reply",
        json!({"reply": {"type": "respond", "body": {"$rhai": "request.body.title.len"}}}),
    ))
    .await;
    app.publish(&flow(
        "missing",
        "POST",
        "/missing",
        "reply",
        json!({"reply": {"type": "respond", "body": {"$rhai": "request.body.nope"}}}),
    ))
    .await;
    let body = json!({"big": 18446744073709551615_u64, "title": "héllo", "inner": {"list": [1, "a", null]}});
    let (status, out) = app.send(app.api(Method::POST, "/echo").json(&body)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!({"big": 18446744073709551615_u64, "title": "héllo", "nested": [1, "a", null]})
    );
    // A property of a string is Rhai's getter, not a JSON key.
    let (status, out) = app.send(app.api(Method::POST, "/length").json(&body)).await;
    assert_eq!((status, out), (200, json!(5)));
    // A missing property is Rhai's error, as before.
    let (status, out) = app
        .send(app.api(Method::POST, "/missing").json(&body))
        .await;
    assert_eq!(status, 500, "{out}");
    assert_eq!(out["error"]["code"], "script.error", "{out}");
}
