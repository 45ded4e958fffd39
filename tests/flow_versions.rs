//! Validate without saving, version history, rollback, unpublish and built-in templates,
//! through real HTTP against a real Postgres.

mod common;

use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no envelope>")
}

async fn flow(app: &TestApp, id: i64) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn save(app: &TestApp, id: i64, doc: &Value) -> Value {
    let rev = flow(app, id).await["rev"]
        .as_str()
        .expect("rev")
        .to_string();
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &format!("/flows/{id}"))
                .header("if-match", format!("\"{rev}\""))
                .json(doc),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Publishes list_todos twice: version 1 answers `{"items"}`, version 2 `{"todos"}`.
async fn two_versions(app: &TestApp) -> i64 {
    app.load_todo_example().await;
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "list_todos")
        .and_then(|f| f["id"].as_i64())
        .expect("list_todos exists");
    let mut doc = example("todo/list_todos.flow.json");
    doc["nodes"]["reply"]["body"] = json!({"todos": {"$rhai": "todos"}});
    save(app, id, &doc).await;
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2);
    id
}

#[tokio::test]
async fn validating_reports_rhai_problems_with_positions_and_saves_nothing() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let mut doc = example("todo/list_todos.flow.json");
    doc["name"] = json!("list_todos_copy");
    doc["nodes"]["reply"]["body"] = json!({"items": {"$rhai": "todso"}});
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows/validate")
                .json(&json!({"document": doc})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false);
    let diags = body["diagnostics"].as_array().expect("diagnostics");
    let rhai = diags
        .iter()
        .find(|d| d["node"] == "reply")
        .expect("the typo is reported on its node");
    assert!(rhai["line"].as_u64().is_some(), "{rhai}");
    assert!(rhai["column"].as_u64().is_some(), "{rhai}");
    assert!(
        rhai["pointer"]
            .as_str()
            .unwrap_or("")
            .starts_with("/nodes/reply/body")
    );

    doc["nodes"]["reply"]["body"] = json!({"items": {"$rhai": "todos"}});
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows/validate")
                .json(&json!({"document": doc})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["diagnostics"], json!([]));
    assert_eq!(body["rev"].as_str().map(str::len), Some(20));

    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(
        list["flows"].as_array().map(Vec::len),
        Some(3),
        "nothing was saved"
    );

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows/validate")
                .json(&json!({"doc": {}})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(code(&body), "request.invalid_body");
}

#[tokio::test]
async fn versions_are_listed_newest_first_with_who_published_them() {
    let app = spawn_app().await;
    let id = two_versions(&app).await;
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/versions")))
        .await;
    assert_eq!(status, 200, "{body}");
    let versions = body["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[1]["version"], 1);
    assert_eq!(versions[0]["published_by"], common::ADMIN_EMAIL);
    assert!(versions[0]["published_at"].is_string());
    assert_ne!(versions[0]["rev"], versions[1]["rev"]);

    let (status, one) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/versions/1")))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["version"], 1);
    assert_eq!(
        one["document"]["nodes"]["reply"]["body"]["items"]["$rhai"],
        "todos"
    );

    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/versions/9")))
        .await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "flow.version_not_found");
    let (status, body) = app
        .send(app.admin(Method::GET, "/flows/4242/versions"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "api.not_found");
}

#[tokio::test]
async fn rollback_restores_the_draft_and_publishes_only_when_asked() {
    let app = spawn_app().await;
    let id = two_versions(&app).await;
    let rev = flow(&app, id).await["rev"]
        .as_str()
        .expect("rev")
        .to_string();

    // Without If-Match: refused, nothing changes.
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/rollback"))
                .json(&json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 428);
    assert_eq!(code(&body), "flow.rev_required");
    // With a stale rev: refused, nothing changes.
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/rollback"))
                .header("if-match", "\"00000000000000000000\"")
                .json(&json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(code(&body), "flow.stale_rev");
    assert_eq!(flow(&app, id).await["rev"], rev.as_str());

    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/rollback"))
                .header("if-match", format!("\"{rev}\""))
                .json(&json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["document"]["nodes"]["reply"]["body"]["items"]["$rhai"],
        "todos"
    );
    assert_eq!(
        body["published_version"], 2,
        "a rollback alone does not publish"
    );
    let (_, served) = app.send(app.api(Method::GET, "/todos")).await;
    assert!(
        served.get("todos").is_some(),
        "version 2 is still served: {served}"
    );

    let rev = body["rev"].as_str().expect("rev").to_string();
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/rollback"))
                .header("if-match", format!("\"{rev}\""))
                .json(&json!({"version": 1, "publish": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["published_version"], 3);
    let (_, served) = app.send(app.api(Method::GET, "/todos")).await;
    assert!(
        served.get("items").is_some(),
        "version 1's logic is served: {served}"
    );

    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/rollback"))
                .header("if-match", format!("\"{rev}\""))
                .json(&json!({"version": 77})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "flow.version_not_found");
}

#[tokio::test]
async fn unpublishing_stops_serving_and_keeps_draft_and_history() {
    let app = spawn_app().await;
    let id = two_versions(&app).await;
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);

    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 204);
    // GET /todos is gone; POST /todos (another flow) is still served.
    let (status, body) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(code(&body), "route.method_not_allowed");
    let record = flow(&app, id).await;
    assert_eq!(record["published_version"], Value::Null);
    assert_eq!(record["name"], "list_todos");
    let (_, versions) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/versions")))
        .await;
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(2));

    // Unpublishing again is harmless; publishing again serves it again.
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 3);
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);

    let (status, body) = app
        .send(app.admin(Method::DELETE, "/flows/4242/publish"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "api.not_found");
}

#[tokio::test]
async fn templates_are_the_examples_and_each_one_compiles() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    app.create_table(&example("auth/users.table.json")).await;
    let (status, body) = app.send(app.admin(Method::GET, "/templates")).await;
    assert_eq!(status, 200, "{body}");
    let templates = body["templates"].as_array().expect("templates");
    let create = templates
        .iter()
        .find(|t| t["id"] == "todo/create_todo")
        .expect("the todo example is a template");
    assert_eq!(create["group"], "todo");
    assert_eq!(create["method"], "POST");
    assert_eq!(create["document"], example("todo/create_todo.flow.json"));
    assert_eq!(create["tables"], json!([example("todo/todos.table.json")]));
    let signup = templates
        .iter()
        .find(|t| t["id"] == "auth/signup")
        .expect("the auth example is a template");
    assert_eq!(signup["tables"], json!([example("auth/users.table.json")]));
    for t in templates {
        let (status, checked) = app
            .send(
                app.admin(Method::POST, "/flows/validate")
                    .json(&json!({"document": t["document"]})),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(checked["ok"], true, "{}: {checked}", t["id"]);
    }
}
