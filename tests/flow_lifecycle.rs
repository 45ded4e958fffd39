//! The lifecycle of endpoints and functions through the admin API, against a real Postgres:
//! duplicate, rename (and the `call` nodes that name a function), delete, publish without a
//! change, version notes, CRUD regeneration, and table changes that rewrite drafts.

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

async fn flow_named(app: &TestApp, name: &str) -> Value {
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .and_then(|f| f["id"].as_i64())
        .unwrap_or_else(|| panic!("{name} exists: {list}"));
    flow(app, id).await
}

/// Saves `doc` as the draft of flow `id`; returns status and body.
async fn save(app: &TestApp, id: i64, doc: &Value) -> (u16, Value) {
    let rev = flow(app, id).await["rev"]
        .as_str()
        .expect("rev")
        .to_string();
    app.send(
        app.admin(Method::PUT, &format!("/flows/{id}"))
            .header("if-match", format!("\"{rev}\""))
            .json(doc),
    )
    .await
}

async fn create(app: &TestApp, doc: &Value) -> i64 {
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(doc)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

async fn publish(app: &TestApp, id: i64, body: Option<Value>) -> (u16, Value) {
    let mut req = app.admin(Method::POST, &format!("/flows/{id}/publish"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    app.send(req).await
}

async fn versions(app: &TestApp, id: i64) -> Vec<Value> {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/versions")))
        .await;
    assert_eq!(status, 200, "{body}");
    body["versions"].as_array().cloned().unwrap_or_default()
}

async fn table(app: &TestApp, name: &str) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/tables/{name}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Applies a new definition of table `name`; returns status and body.
async fn change_table(app: &TestApp, name: &str, body: Value) -> (u16, Value) {
    let version = table(app, name).await["version"].clone();
    app.send(
        app.admin(Method::PUT, &format!("/tables/{name}"))
            .header("if-match", version.to_string())
            .json(&body),
    )
    .await
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["flow"].as_str().or(f["name"].as_str()).or(f.as_str()))
        .collect()
}

/// A function `price` and an endpoint `quote` that calls it, both published.
async fn function_and_caller(app: &TestApp) -> (i64, i64) {
    let function = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "price", "entry": "reply",
            "nodes": {"reply": {"type": "respond", "body": {"amount": 42}}}
        }))
        .await;
    let caller = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "quote",
            "endpoint": {"method": "GET", "path": "/quote", "auth": "public"},
            "entry": "ask",
            "nodes": {
                "ask": {"type": "call", "flow": "price", "as": "p", "next": {"ok": "reply"}},
                "reply": {"type": "respond", "body": {"$rhai": "p"}}
            }
        }))
        .await;
    (function, caller)
}

#[tokio::test]
async fn duplicating_makes_a_draft_with_a_free_name_and_path() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let source = flow_named(&app, "get_todo").await;
    let id = source["id"].as_i64().expect("id");

    let (status, suggested) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/duplicate")))
        .await;
    assert_eq!(status, 200, "{suggested}");
    assert_eq!(
        suggested,
        json!({"name": "get_todo_copy", "path": "/todos-copy/{id}"})
    );

    let (status, copy) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/duplicate")))
        .await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["name"], "get_todo_copy");
    assert_eq!(copy["document"]["endpoint"]["path"], "/todos-copy/{id}");
    assert_eq!(copy["published_version"], Value::Null, "a copy is a draft");
    assert_eq!(copy["document"]["nodes"], source["document"]["nodes"]);
    // The copy is not served; the original still is.
    let (status, _) = app.send(app.api(Method::GET, "/todos-copy/1")).await;
    assert_eq!(status, 404);

    // A second copy takes the next free name and path.
    let (status, second) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/duplicate")))
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["name"], "get_todo_copy_2");
    assert_eq!(second["document"]["endpoint"]["path"], "/todos-copy-2/{id}");

    // A chosen name and path are used as given; taken ones are refused and change nothing.
    let (status, chosen) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/duplicate"))
                .json(&json!({"name": "todo_detail", "path": "/todo-details/{id}"})),
        )
        .await;
    assert_eq!(status, 201, "{chosen}");
    assert_eq!(chosen["document"]["endpoint"]["path"], "/todo-details/{id}");
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/duplicate"))
                .json(&json!({"name": "another", "path": "/todos/{other}"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "flow.route_taken"), "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/duplicate"))
                .json(&json!({"name": "list_todos", "path": "/elsewhere/{id}"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "flow.name_taken"), "{body}");
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(list["flows"].as_array().map(Vec::len), Some(6), "{list}");
}

#[tokio::test]
async fn renaming_a_function_rewrites_the_drafts_that_call_it_and_refuses_while_live_flows_do() {
    let app = spawn_app().await;
    let (function, caller) = function_and_caller(&app).await;
    let mut doc = flow(&app, function).await["document"].clone();
    doc["name"] = json!("price_v2");

    // A published caller would lose its callee at the function's next publish.
    let (status, body) = save(&app, function, &doc).await;
    assert_eq!(
        (status, code(&body)),
        (409, "flow.function_in_use"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["flow"], "quote");
    assert_eq!(flow(&app, function).await["name"], "price");

    // Once the caller is off the air, the rename goes through and its draft follows.
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{caller}/publish")))
        .await;
    assert_eq!(status, 204);
    let (status, body) = save(&app, function, &doc).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "price_v2");
    assert_eq!(body["rewritten_callers"], json!(["quote"]));
    let quote = flow(&app, caller).await;
    assert_eq!(quote["document"]["nodes"]["ask"]["flow"], "price_v2");

    // A flow published meanwhile that calls the old (still served) name blocks the publish
    // under the new name, which would take its callee away.
    let other = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "quote_old",
            "endpoint": {"method": "GET", "path": "/quote-old", "auth": "public"},
            "entry": "ask",
            "nodes": {
                "ask": {"type": "call", "flow": "price", "as": "p", "next": {"ok": "reply"}},
                "reply": {"type": "respond", "body": {"$rhai": "p"}}
            }
        }))
        .await;
    let (status, body) = publish(&app, function, None).await;
    assert_eq!(
        (status, code(&body)),
        (409, "flow.function_in_use"),
        "{body}"
    );
    assert_eq!(
        versions(&app, function).await.len(),
        1,
        "nothing was published"
    );
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{other}")))
        .await;
    assert_eq!(status, 204);

    // Publishing the function under its new name, then the caller, serves both again.
    let (status, body) = publish(&app, function, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = publish(&app, caller, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.send(app.api(Method::GET, "/quote")).await;
    assert_eq!((status, body), (200, json!({"amount": 42})));
}

#[tokio::test]
async fn renaming_an_endpoint_keeps_its_route_and_frees_the_old_name() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let source = flow_named(&app, "list_todos").await;
    let id = source["id"].as_i64().expect("id");
    let mut doc = source["document"].clone();
    doc["name"] = json!("all_todos");
    let (status, body) = save(&app, id, &doc).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "all_todos");
    let (status, body) = publish(&app, id, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);
    let (status, export) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/export")))
        .await;
    assert_eq!((status, &export["name"]), (200, &json!("all_todos")));
    // Taken names are refused.
    doc["name"] = json!("get_todo");
    let (status, body) = save(&app, id, &doc).await;
    assert_eq!((status, code(&body)), (409, "flow.name_taken"), "{body}");
}

#[tokio::test]
async fn deleting_a_published_endpoint_takes_it_down_and_a_called_function_is_refused() {
    let app = spawn_app().await;
    let (function, caller) = function_and_caller(&app).await;
    let (status, body) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{function}")))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "flow.function_in_use"),
        "{body}"
    );
    let (status, _) = app.send(app.api(Method::GET, "/quote")).await;
    assert_eq!(status, 200, "the refused delete changed nothing");

    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{caller}")))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.send(app.api(Method::GET, "/quote")).await;
    assert_eq!(status, 404, "a deleted endpoint is no longer served");
    let (status, _) = app
        .send(app.admin(Method::GET, &format!("/flows/{caller}")))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{function}")))
        .await;
    assert_eq!(status, 204, "no published flow calls it any more");
}

#[tokio::test]
async fn publishing_an_unchanged_draft_adds_no_version() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let id = create(&app, &example("todo/list_todos.flow.json")).await;
    let before = flow(&app, id).await;
    assert_eq!(before["published_rev"], Value::Null);

    let (status, first) = publish(&app, id, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["version"].clone(), first["unchanged"].clone()),
        (json!(1), json!(false))
    );
    let (status, again) = publish(&app, id, Some(json!({"note": "nothing new"}))).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (again["version"].clone(), again["unchanged"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(versions(&app, id).await.len(), 1);
    let now = flow(&app, id).await;
    assert_eq!(now["published_rev"], now["rev"]);

    // A change is a new version; moving nodes around (layout only) is not a change.
    let mut doc = now["document"].clone();
    doc["ui"] = json!({"positions": {"load": {"x": 500, "y": 40}}});
    save(&app, id, &doc).await;
    let (_, moved) = publish(&app, id, None).await;
    assert_eq!(moved["unchanged"], true, "{moved}");
    doc["nodes"]["reply"]["body"] = json!({"todos": {"$rhai": "todos"}});
    save(&app, id, &doc).await;
    assert_ne!(
        flow(&app, id).await["published_rev"],
        flow(&app, id).await["rev"]
    );
    let (_, changed) = publish(&app, id, None).await;
    assert_eq!(
        (changed["version"].clone(), changed["unchanged"].clone()),
        (json!(2), json!(false))
    );
}

#[tokio::test]
async fn a_version_note_is_stored_listed_and_checked() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let id = create(&app, &example("todo/list_todos.flow.json")).await;
    let (status, body) = publish(&app, id, Some(json!({"note": "x".repeat(501)}))).await;
    assert_eq!((status, code(&body)), (400, "flow.invalid_note"), "{body}");
    let (status, body) = publish(&app, id, Some(json!({"note": "a\u{0}b"}))).await;
    assert_eq!((status, code(&body)), (400, "flow.invalid_note"), "{body}");
    let (status, body) = publish(&app, id, Some(json!({"notes": "typo"}))).await;
    assert_eq!(
        (status, code(&body)),
        (400, "request.invalid_body"),
        "{body}"
    );
    assert!(
        versions(&app, id).await.is_empty(),
        "refused notes publish nothing"
    );

    let (status, body) = publish(&app, id, Some(json!({"note": "  First list of todos\n"}))).await;
    assert_eq!(status, 200, "{body}");
    let mut doc = flow(&app, id).await["document"].clone();
    doc["nodes"]["reply"]["body"] = json!({"todos": {"$rhai": "todos"}});
    save(&app, id, &doc).await;
    let (status, _) = publish(&app, id, Some(json!({"note": ""}))).await;
    assert_eq!(status, 200);
    let list = versions(&app, id).await;
    assert_eq!(list[0]["note"], Value::Null, "an empty note is no note");
    assert_eq!(list[1]["note"], "First list of todos");
    let (_, one) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/versions/1")))
        .await;
    assert_eq!(one["note"], "First list of todos");

    // Roll back and publish notes what it did.
    let rev = flow(&app, id).await["rev"]
        .as_str()
        .expect("rev")
        .to_string();
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/rollback"))
                .header("if-match", format!("\"{rev}\""))
                .json(&json!({"version": 1, "publish": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(versions(&app, id).await[0]["note"], "Rolled back to v1");
}

#[tokio::test]
async fn generated_crud_follows_fields_added_later_and_regenerates_with_replace() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": []}))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/notes/crud")
                .json(&json!({"publish": true, "auth": "public"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Adding fields (one required) rewrites and republishes the unedited generated endpoints.
    let def = json!({"name": "notes", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "pages", "type": "integer"}]});
    let (status, body) = change_table(&app, "notes", json!({"table": def})).await;
    assert_eq!(status, 200, "{body}");
    let republished = names(&body["rewritten"]["published"]);
    assert!(republished.contains(&"notes_create"), "{body}");
    assert!(republished.contains(&"notes_update"), "{body}");
    let (status, row) = app
        .send(
            app.api(Method::POST, "/notes")
                .json(&json!({"title": "a", "pages": 3})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(
        (row["title"].clone(), row["pages"].clone()),
        (json!("a"), json!(3))
    );
    let (status, body) = app
        .send(app.api(Method::POST, "/notes").json(&json!({"pages": 3})))
        .await;
    assert_eq!(status, 400, "title is required now: {body}");
    let (status, row) = app
        .send(
            app.api(Method::PATCH, "/notes/1")
                .json(&json!({"pages": 4})),
        )
        .await;
    assert_eq!((status, row["pages"].clone()), (200, json!(4)), "{row}");
    // The list sorts by the new fields as well, as the client asks.
    assert!(republished.contains(&"notes_list"), "{body}");
    for (title, pages) in [("b", 9), ("c", 1)] {
        let (status, _) = app
            .send(
                app.api(Method::POST, "/notes")
                    .json(&json!({"title": title, "pages": pages})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let titles = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["title"].as_str().map(str::to_string))
            .collect()
    };
    for (sort, want) in [
        ("-pages", ["b", "a", "c"]),
        ("pages", ["c", "a", "b"]),
        ("-title", ["c", "b", "a"]),
        ("-id", ["c", "b", "a"]),
    ] {
        let (status, list) = app
            .send(app.api(Method::GET, &format!("/notes?sort={sort}")))
            .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(titles(&list), want, "sort {sort}");
    }
    let (status, body) = app.send(app.api(Method::GET, "/notes?sort=nope")).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("db.invalid_value")),
        "{body}"
    );

    // Regenerating without replace names the flows it would overwrite, and changes nothing.
    let mut edited = flow_named(&app, "notes_list").await;
    let list_id = edited["id"].as_i64().expect("id");
    edited["document"]["nodes"]["reply"]["status"] = json!(203);
    let (status, body) = save(&app, list_id, &edited["document"]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/notes/crud")
                .json(&json!({"publish": true, "auth": "public"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "table.crud_exists"), "{body}");
    assert_eq!(names(&body["error"]["details"]).len(), 5, "{body}");
    assert_eq!(
        flow(&app, list_id).await["document"]["nodes"]["reply"]["status"],
        203
    );

    // With replace the generated documents become the drafts again (and are published).
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/notes/crud")
                .json(&json!({"publish": true, "auth": "public", "replace": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["flows"]
            .as_array()
            .expect("flows")
            .iter()
            .all(|f| f["replaced"] == true)
    );
    let list = flow(&app, list_id).await;
    assert_eq!(
        list["document"]["nodes"]["reply"].get("status"),
        None,
        "{list}"
    );
    assert_eq!(list["published_rev"], list["rev"]);
    let (status, body) = app.send(app.api(Method::GET, "/notes")).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(3))
    );
}

#[tokio::test]
async fn a_column_rename_rewrites_drafts_and_the_answer_lists_them() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    // A draft only: never published, so nothing served breaks, but it reads the column.
    let mut doc = example("todo/list_todos.flow.json");
    doc["name"] = json!("open_titles");
    doc["endpoint"]["path"] = json!("/open-titles");
    doc["nodes"]["load"]["select"] = json!(["id", "title"]);
    let draft = create(&app, &doc).await;

    let t = table(&app, "todos").await;
    let mut def = json!({"name": "todos", "fields": t["fields"]});
    def["fields"][0]["name"] = json!("headline");
    let (status, preview) = app
        .send(
            app.admin(Method::POST, "/tables/todos/plan")
                .json(&json!({"table": def})),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert!(
        names(&preview["draft_breaks"]).contains(&"open_titles"),
        "a warning: {preview}"
    );

    let (status, body) =
        change_table(&app, "todos", json!({"table": def, "update_flows": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(&body["rewritten"]["drafts"]),
        vec!["open_titles"],
        "{body}"
    );
    // list_todos lets clients sort by title.
    assert_eq!(
        names(&body["rewritten"]["published"]),
        vec!["list_todos", "create_todo"],
        "{body}"
    );
    assert_eq!(body["draft_breaks"], json!([]), "{body}");
    let rewritten = flow(&app, draft).await;
    assert_eq!(
        rewritten["document"]["nodes"]["load"]["select"],
        json!(["id", "headline"])
    );
    assert_eq!(
        rewritten["published_version"],
        Value::Null,
        "a draft stays a draft"
    );
}
