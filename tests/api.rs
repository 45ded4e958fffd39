//! End-to-end scenarios through real HTTP against a real Postgres.

mod common;

use common::{TestApp, example, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

#[tokio::test]
async fn a_published_flow_writes_a_row_that_is_in_postgres() {
    let app = spawn_app().await;
    app.load_todo_example().await;

    let (status, created) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "  buy milk ", "priority": 2})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["title"], "buy milk");
    assert_eq!(created["done"], false);
    let id = created["id"]
        .as_i64()
        .expect("the response carries the new id");

    let (title, priority): (String, i64) =
        sqlx::query_as("SELECT title, priority FROM app.todos WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("the row is in Postgres");
    assert_eq!((title.as_str(), priority), ("buy milk", 2));

    let (status, got) = app
        .send(app.api(Method::GET, &format!("/todos/{id}")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], id);
    let (status, list) = app.send(app.api(Method::GET, "/todos?limit=5")).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn getting_a_missing_row_is_a_404_in_the_envelope() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (status, body) = app.send(app.api(Method::GET, "/todos/4242")).await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "todo.not_found");

    // With `not_found` unwired, the standard error answers.
    let mut doc = example("todo/get_todo.flow.json");
    doc["name"] = json!("get_todo_plain");
    doc["endpoint"]["path"] = json!("/plain/{id}");
    doc["nodes"]["load"]["next"] = json!({"found": "reply"});
    doc["nodes"].as_object_mut().map(|n| n.remove("missing"));
    app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::GET, "/plain/4242")).await;
    assert_eq!((status, error_code(&body)), (404, "db.not_found"));
}

#[tokio::test]
async fn a_malformed_json_body_is_a_400_and_writes_nothing() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let req = app
        .api(Method::POST, "/todos")
        .header("content-type", "application/json")
        .body("{\"title\": ");
    let (status, body) = app.send(req).await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_json"));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_wrong_input_type_is_a_400_naming_the_field() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": 7, "priority": "high"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "input.invalid"));
    let pointers: Vec<&str> = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["pointer"].as_str())
        .collect();
    assert!(pointers.contains(&"/body/title"), "{body}");
    assert!(pointers.contains(&"/body/priority"), "{body}");

    let (status, body) = app.send(app.api(Method::GET, "/todos/abc")).await;
    assert_eq!((status, error_code(&body)), (400, "input.invalid"));
    assert_eq!(body["error"]["details"][0]["pointer"], "/params/id");
}

#[tokio::test]
async fn an_invalid_flow_is_refused_with_every_problem_at_once() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "broken",
        "endpoint": {"method": "GET", "path": "/broken"},
        "entry": "first",
        "nodes": {
            "first": {"type": "db.query", "table": "todoz", "as": "rows", "next": {"ok": "branch"}},
            "branch": {"type": "if", "condition": {"$rhai": "1 +"}, "next": {"then": "gone", "else": "weird"}},
            "weird": {"type": "db.explode"},
            "stray": {"type": "respond"},
            "half": {"type": "script", "code": "1", "as": "x"}
        }
    });
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!((status, error_code(&body)), (422, "flow.invalid"), "{body}");
    let details = body["error"]["details"].as_array().expect("details");
    let has = |code: &str, pointer: &str| {
        details
            .iter()
            .any(|d| d["code"] == code && d["pointer"] == pointer)
    };
    assert!(has("flow.unknown_node_type", "/nodes/weird/type"), "{body}");
    assert!(
        has("flow.dangling_target", "/nodes/branch/next/then"),
        "{body}"
    );
    assert!(has("flow.unreachable_node", "/nodes/stray"), "{body}");
    assert!(has("flow.missing_response", "/nodes/half/next"), "{body}");
    assert!(has("flow.unknown_table", "/nodes/first/table"), "{body}");
    let rhai = details
        .iter()
        .find(|d| d["code"] == "flow.rhai_syntax")
        .expect("a Rhai problem");
    assert_eq!(rhai["node"], "branch");
    assert_eq!(rhai["pointer"], "/nodes/branch/condition/$rhai");
    assert_eq!(rhai["line"], 1);
    assert!(rhai["column"].as_u64().is_some());

    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(list["flows"], json!([]), "nothing was saved");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (status, body) = app.send(app.api(Method::GET, "/nothing/here")).await;
    assert_eq!((status, error_code(&body)), (404, "route.not_found"));
    let resp = app
        .api(Method::DELETE, "/todos")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, POST, OPTIONS")
    );
    let (status, body) = app.send(app.client.get(format!("{}/nope", app.base))).await;
    assert_eq!((status, error_code(&body)), (404, "route.not_found"));
}

#[tokio::test]
async fn the_admin_api_needs_a_valid_token() {
    let app = spawn_app().await;
    let url = format!("{}/_/api/v1/flows", app.base);
    let (status, body) = app.send(app.client.get(&url)).await;
    assert_eq!((status, error_code(&body)), (401, "auth.unauthorized"));
    let (status, _) = app
        .send(app.client.get(&url).bearer_auth("0".repeat(64)))
        .await;
    assert_eq!(status, 401);
    let (status, _) = app.send(app.client.get(&url).bearer_auth(&app.token)).await;
    assert_eq!(status, 200);

    let login = json!({"email": common::ADMIN_EMAIL, "password": "wrong password"});
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/auth/login", app.base))
                .json(&login),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (401, "auth.invalid_credentials")
    );

    let (status, _) = app.send(app.admin(Method::POST, "/auth/logout")).await;
    assert_eq!(status, 204);
    let (status, _) = app.send(app.client.get(&url).bearer_auth(&app.token)).await;
    assert_eq!(status, 401, "a logged-out token is dead");
}

async fn flow_id(app: &TestApp, name: &str) -> (i64, String) {
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let f = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .expect("flow listed");
    (
        f["id"].as_i64().expect("id"),
        f["rev"].as_str().expect("rev").to_string(),
    )
}

#[tokio::test]
async fn republishing_a_changed_flow_changes_live_behaviour_without_restart() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (id, rev) = flow_id(&app, "list_todos").await;
    let (_, before) = app.send(app.api(Method::GET, "/todos")).await;
    assert!(before.get("items").is_some());

    let mut doc = example("todo/list_todos.flow.json");
    doc["nodes"]["reply"]["body"] =
        json!({"todos": {"$rhai": "todos"}, "count": {"$rhai": "todos.len()"}});
    let (status, saved) = app
        .send(
            app.admin(Method::PUT, &format!("/flows/{id}"))
                .header("if-match", format!("\"{rev}\""))
                .json(&doc),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    // Saving a draft does not change what is served.
    let (_, still) = app.send(app.api(Method::GET, "/todos")).await;
    assert!(still.get("items").is_some());

    let (status, _) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200);
    let (status, after) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);
    assert_eq!(after, json!({"todos": [], "count": 0}));
}

#[tokio::test]
async fn a_stale_save_is_refused_and_loses_nothing() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (id, rev) = flow_id(&app, "list_todos").await;
    let mut doc = example("todo/list_todos.flow.json");
    doc["description"] = json!("first edit");
    let put = |doc: &Value, rev: &str| {
        app.admin(Method::PUT, &format!("/flows/{id}"))
            .header("if-match", rev.to_string())
            .json(doc)
    };
    let (status, _) = app.send(put(&doc, &rev)).await;
    assert_eq!(status, 200);
    let mut other = example("todo/list_todos.flow.json");
    other["description"] = json!("edit from an old tab");
    let (status, body) = app.send(put(&other, &rev)).await;
    assert_eq!((status, error_code(&body)), (409, "flow.stale_rev"));
    let (_, current) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(current["document"]["description"], "first edit");

    let (status, body) = app
        .send(app.admin(Method::PUT, &format!("/flows/{id}")).json(&doc))
        .await;
    assert_eq!((status, error_code(&body)), (428, "flow.rev_required"));
}

#[tokio::test]
async fn an_endless_script_ends_in_an_error_and_the_server_keeps_serving() {
    let app = spawn_app_with(|c| c.script_timeout = Duration::from_millis(200)).await;
    app.load_todo_example().await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "spin",
        "endpoint": {"method": "GET", "path": "/spin"}, "entry": "spin",
        "nodes": {
            "spin": {"type": "script", "code": "let n = 0; loop { n += 1; }", "as": "n", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "n"}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::GET, "/spin")).await;
    assert_eq!(
        (status, error_code(&body)),
        (500, "script.limit_exceeded"),
        "{body}"
    );
    assert_eq!(body["error"]["message"], "internal error");
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200, "other endpoints still answer");
}

#[tokio::test]
async fn export_is_canonical_and_byte_stable() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (id, _) = flow_id(&app, "create_todo").await;
    let get = || app.admin(Method::GET, &format!("/flows/{id}/export"));
    let first = get()
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    let second = get()
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    assert_eq!(first, second);
    assert!(first.ends_with("}\n"));
    let shipped = std::fs::read_to_string(format!(
        "{}/flows/examples/todo/create_todo.flow.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("file");
    assert_eq!(first, shipped, "the shipped example is in canonical form");
}

#[tokio::test]
async fn a_fail_node_rolls_back_earlier_writes() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "insert_then_fail",
        "endpoint": {"method": "POST", "path": "/doomed"}, "entry": "insert",
        "nodes": {
            "insert": {"type": "db.insert", "table": "todos", "values": {"title": "doomed"}, "as": "t", "next": {"ok": "stop"}},
            "stop": {"type": "fail", "status": 409, "code": "demo.refused", "message": {"$rhai": "`refused ${t.id}`"}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::POST, "/doomed")).await;
    assert_eq!((status, error_code(&body)), (409, "demo.refused"));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 0, "the insert was rolled back");
}

#[tokio::test]
async fn sql_looking_strings_are_stored_as_plain_values() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let evil = "x'); DROP TABLE app.todos; --";
    let (status, created) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": evil})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["title"], evil);
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    app.load_todo_example().await;
    let big = json!({"title": "x".repeat(4096)});
    let (status, body) = app.send(app.api(Method::POST, "/todos").json(&big)).await;
    assert_eq!((status, error_code(&body)), (413, "request.too_large"));
}

#[tokio::test]
async fn table_definitions_are_checked_before_anything_is_created() {
    let app = spawn_app().await;
    let bad = json!({"name": "things", "fields": [{"name": "id", "type": "text"}, {"name": "n", "type": "integer", "default": "many"}]});
    let (status, body) = app
        .send(app.admin(Method::POST, "/tables").json(&bad))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "table.invalid"),
        "{body}"
    );
    assert_eq!(body["error"]["details"].as_array().map(Vec::len), Some(2));
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables")
                .json(&json!({"name": "Robert'); DROP", "fields": []})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_body"));
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'app')")
            .fetch_one(&app.db)
            .await
            .expect("q");
    assert!(!exists);

    app.create_table(&example("todo/todos.table.json")).await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables")
                .json(&example("todo/todos.table.json")),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "table.exists"));
}

#[tokio::test]
async fn health_probes_follow_the_database() {
    let app = spawn_app().await;
    let (status, _) = app
        .send(app.client.get(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send(app.client.get(format!("{}/readyz", app.base)))
        .await;
    assert_eq!(status, 200);

    let (url, _) = common::fresh_database().await;
    let admin = url
        .rsplit_once('/')
        .map(|(b, _)| format!("{b}/postgres"))
        .expect("url");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect");
    sqlx::query(&format!("DROP DATABASE \"{}\" WITH (FORCE)", app.db_name))
        .execute(&mut conn)
        .await
        .expect("drop");
    let (status, body) = app
        .send(app.client.get(format!("{}/readyz", app.base)))
        .await;
    assert_eq!((status, error_code(&body)), (503, "db.unavailable"));
    let (status, _) = app
        .send(app.client.get(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn two_flows_cannot_serve_the_same_route() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let mut doc = example("todo/list_todos.flow.json");
    doc["name"] = json!("list_todos_again");
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(status, 201);
    let id = body["id"].as_i64().expect("id");
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!((status, error_code(&body)), (409, "flow.route_taken"));
}

#[tokio::test]
async fn a_wired_conflict_keeps_the_requests_earlier_writes() {
    let app = spawn_app().await;
    let def = json!({"name": "tags", "fields": [{"name": "label", "type": "text", "required": true, "unique": true}]});
    app.create_table(&def).await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "two_tags",
        "endpoint": {"method": "POST", "path": "/two-tags"}, "entry": "first",
        "nodes": {
            "first": {"type": "db.insert", "table": "tags", "values": {"label": {"$rhai": "request.body.a"}}, "as": "a", "next": {"ok": "second"}},
            "second": {"type": "db.insert", "table": "tags", "values": {"label": {"$rhai": "request.body.b"}}, "as": "b",
                       "next": {"ok": "both", "conflict": "only_first"}},
            "both": {"type": "respond", "status": 201, "body": {"created": 2}},
            "only_first": {"type": "respond", "status": 200, "body": {"created": 1, "first": {"$rhai": "a.id"}}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/two-tags")
                .json(&json!({"a": "x", "b": "x"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["created"], 1);
    let labels: Vec<String> = sqlx::query_scalar("SELECT label FROM app.tags")
        .fetch_all(&app.db)
        .await
        .expect("q");
    assert_eq!(labels, ["x"], "the first insert was committed");
}

#[tokio::test]
async fn admin_errors_are_json_for_wrong_methods_and_bad_path_values() {
    let app = spawn_app().await;
    let (status, body) = app.send(app.admin(Method::PATCH, "/flows")).await;
    assert_eq!(
        (status, error_code(&body)),
        (405, "route.method_not_allowed")
    );
    let (status, body) = app
        .send(app.admin(Method::GET, "/flows/not-a-number"))
        .await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_path"));
    let (status, body) = app
        .send(app.client.post(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (405, "route.method_not_allowed")
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables?crud=sometimes")
                .json(&json!({"name": "x", "fields": []})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_query"));
}

/// `respond` header values may be expressions (the todo example answers a create with
/// `Location`); a computed value that would end the header and start another fails the run
/// instead of reaching the client.
#[tokio::test]
async fn respond_headers_take_expressions_and_a_line_break_fails_the_run() {
    let app = common::spawn_app().await;
    app.load_todo_example().await;
    let resp = app
        .api(reqwest::Method::POST, "/todos")
        .json(&serde_json::json!({"title": "call mum"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 201);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(location, Some(format!("/api/todos/{}", body["id"])));

    app.publish(&serde_json::json!({
        "format": "sluice.flow", "format_version": 1, "name": "echo_header",
        "endpoint": {"method": "GET", "path": "/echo-header"}, "entry": "r",
        "nodes": {"r": {"type": "respond", "body": null,
                        "headers": {"X-Echo": {"$rhai": "request.query.v"}, "X-Count": 3,
                                    "X-Gone": {"$rhai": "()"}}}}
    }))
    .await;
    let resp = app
        .api(reqwest::Method::GET, "/echo-header?v=plain")
        .send()
        .await
        .expect("answered");
    assert_eq!(
        resp.headers().get("x-echo").map(|v| v.as_bytes()),
        Some(&b"plain"[..])
    );
    assert_eq!(
        resp.headers().get("x-count").map(|v| v.as_bytes()),
        Some(&b"3"[..])
    );
    assert!(
        resp.headers().get("x-gone").is_none(),
        "null leaves the header out"
    );
    let resp = app
        .api(
            reqwest::Method::GET,
            "/echo-header?v=a%0D%0ASet-Cookie:%20x=1",
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 500);
    assert!(resp.headers().get("set-cookie").is_none());
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "flow.type_error", "{body}");
}
