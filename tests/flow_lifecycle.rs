//! The lifecycle of endpoints and functions through the admin API, against a real Postgres.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no envelope>")
}

async fn table(app: &TestApp, name: &str) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/tables/{name}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn repro_crud_then_fields() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": []})).await;
    let (status, body) = app
        .send(app.admin(Method::POST, "/tables/notes/crud").json(&json!({"publish": true, "auth": "public"})))
        .await;
    eprintln!("crud: {status} {body}");
    let t = table(&app, "notes").await;
    let def = json!({"name": "notes", "fields": [{"name": "title", "type": "text", "required": true}, {"name": "pages", "type": "integer"}]});
    let (status, body) = app
        .send(app.admin(Method::PUT, "/tables/notes").header("if-match", t["version"].to_string()).json(&json!({"table": def})))
        .await;
    eprintln!("change: {status} {body}");
    let (status, body) = app.send(app.api(Method::POST, "/notes").json(&json!({"title": "a", "pages": 3}))).await;
    eprintln!("create: {status} {body}");
    let (status, body) = app.send(app.api(Method::GET, "/notes")).await;
    eprintln!("list: {status} {body}");
    let (status, body) = app
        .send(app.admin(Method::POST, "/tables/notes/crud").json(&json!({"publish": true, "auth": "public"})))
        .await;
    eprintln!("regen: {status} {body}");
}
