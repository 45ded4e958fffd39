//! The endpoint lifecycle in the editor, in real headless Chromium against a real server:
//! duplicate, rename and delete from the endpoint list, unpublish only after a confirmation that
//! names the live endpoint, Publish disabled while nothing changed, a publish note in history,
//! CRUD regeneration that names what it overwrites and asks first, and a column rename in the
//! table designer that names the endpoints and drafts it rewrote.

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

async fn flow_by_name(app: &TestApp, name: &str) -> Option<Value> {
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .cloned()
}

async fn status_of(app: &TestApp, path: &str) -> u16 {
    app.send(app.api(Method::GET, path)).await.0
}

/// The todo example, published, with one row: `GET /api/todos/1` answers 200.
async fn todo_app_with_a_row(app: &TestApp) {
    app.load_todo_example().await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "first"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Opens the row menu of flow `name` in the list and picks `item`.
async fn row_action(b: &Browser, name: &str, item: &str) {
    b.click(&format!("li[data-flow-row={name}] .fl-row-menu"))
        .await;
    b.wait_for(&format!("li[data-flow-row={name}] .fl-menu-item"))
        .await;
    b.execute(
        "[...document.querySelectorAll(`li[data-flow-row=${arguments[0]}] .fl-menu-item`)]
           .find(x => x.textContent === arguments[1]).click()",
        json!([name, item]),
    )
    .await;
}

/// The open confirmation's danger button, or its Cancel.
async fn answer_confirm(b: &Browser, confirm: bool) {
    let css = if confirm {
        "dialog[open] .dialog-actions .btn-danger"
    } else {
        "dialog[open] .dialog-actions .btn:not(.btn-danger)"
    };
    b.click(css).await;
    b.wait_gone("dialog[open]").await;
}

#[tokio::test]
async fn a_flow_is_duplicated_and_deleted_from_the_list() {
    let app = spawn_app().await;
    todo_app_with_a_row(&app).await;
    let b = Browser::start("lifecycle_list_duplicate_delete").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for(".fl-row[data-flow=get_todo]").await;

    // Duplicate: the server's suggestion is in the dialog and can be edited.
    row_action(&b, "get_todo", "Duplicate…").await;
    let name = b.wait_for("dialog[open] #fl-dup-name").await;
    assert_eq!(name.property("value").await, json!("get_todo_copy"));
    let path = b.find("dialog[open] #fl-dup-path").await;
    assert_eq!(path.property("value").await, json!("/todos-copy/{id}"));
    b.screenshot_as("lifecycle_duplicate_dialog").await;
    b.fill("dialog[open] #fl-dup-path", "/todo-copies/{id}")
        .await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for(".fl-row[data-flow=get_todo_copy]").await;
    let copy = flow_by_name(&app, "get_todo_copy")
        .await
        .expect("the copy exists");
    assert_eq!(copy["path"], "/todo-copies/{id}");
    assert_eq!(copy["published_version"], Value::Null, "a copy is a draft");

    // Delete a live endpoint: the confirmation names its route; cancel keeps it.
    row_action(&b, "get_todo", "Delete…").await;
    b.wait_for_text("dialog[open]", "GET /api/todos/{id} is live")
        .await;
    answer_confirm(&b, false).await;
    assert_eq!(status_of(&app, "/todos/1").await, 200);
    assert!(flow_by_name(&app, "get_todo").await.is_some());
    row_action(&b, "get_todo", "Delete…").await;
    b.wait_for_text("dialog[open]", "will stop answering").await;
    answer_confirm(&b, true).await;
    b.wait_gone(".fl-row[data-flow=get_todo]").await;
    assert!(flow_by_name(&app, "get_todo").await.is_none());
    assert_eq!(status_of(&app, "/todos/1").await, 404);

    // Rename the copy from its menu.
    row_action(&b, "get_todo_copy", "Rename…").await;
    b.fill("dialog[open] #fl-rename-name", "todo_detail").await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for(".fl-row[data-flow=todo_detail]").await;
    assert!(flow_by_name(&app, "get_todo_copy").await.is_none());

    // A draft is deleted after a plain confirmation.
    row_action(&b, "todo_detail", "Delete…").await;
    b.wait_for_text("dialog[open]", "never published").await;
    answer_confirm(&b, true).await;
    b.wait_gone(".fl-row[data-flow=todo_detail]").await;
    b.finish().await;
}

#[tokio::test]
async fn unpublishing_needs_a_confirmation_that_names_the_live_endpoint() {
    let app = spawn_app().await;
    todo_app_with_a_row(&app).await;
    let id = flow_by_name(&app, "get_todo").await.expect("flow")["id"].clone();
    let b = Browser::start("lifecycle_unpublish_confirm").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for_text(".fl-state", "published v1").await;

    b.click("#fl-unpublish").await;
    b.wait_for_text(
        "dialog[open]",
        "GET /api/todos/{id} is live (v1) and will stop answering",
    )
    .await;
    b.screenshot_as("lifecycle_unpublish_confirm").await;
    answer_confirm(&b, false).await;
    assert_eq!(
        status_of(&app, "/todos/1").await,
        200,
        "cancel leaves it live"
    );
    b.wait_for_text(".fl-state", "published v1").await;

    b.click("#fl-unpublish").await;
    answer_confirm(&b, true).await;
    b.wait_for_text(".fl-state", "draft only").await;
    assert_eq!(
        status_of(&app, "/todos/1").await,
        404,
        "confirmed: taken down"
    );
    b.finish().await;
}

#[tokio::test]
async fn publish_is_disabled_until_something_changed_and_its_note_shows_in_history() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let id = flow_by_name(&app, "list_todos").await.expect("flow")["id"].clone();
    let b = Browser::start("lifecycle_publish_note").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for_text(".fl-state", "published v1").await;
    let publish = b.wait_for("#fl-publish").await;
    assert_eq!(publish.property("disabled").await, json!(true));
    assert_eq!(
        publish.attribute("title").await.as_deref(),
        Some("Nothing changed since version 1")
    );

    // An edit, saved: there is something to publish.
    b.execute(
        "window.sluiceFlow.state.change(d => { d.nodes.reply.body = {todos: {$rhai: 'todos'}}; })",
        json!([]),
    )
    .await;
    b.wait_until(
        "Publish is enabled after an edit",
        "return !document.querySelector('#fl-publish').disabled",
    )
    .await;
    b.click("#fl-save").await;
    b.wait_until(
        "the edit is saved",
        "return document.querySelector('#fl-save').disabled && !document.querySelector('#fl-publish').disabled",
    )
    .await;

    b.click("#fl-publish").await;
    b.wait_for_text(
        "dialog[open]",
        "GET /api/todos will serve this draft as version 2",
    )
    .await;
    b.fill(
        "dialog[open] #fl-publish-note",
        "Answers todos instead of items",
    )
    .await;
    b.click("dialog[open] #fl-publish-confirm").await;
    b.wait_for_text(".fl-state", "published v2").await;
    let (_, served) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(served, json!({"todos": []}));
    b.wait_until(
        "Publish is disabled again",
        "return document.querySelector('#fl-publish').disabled",
    )
    .await;

    b.click("#fl-versions").await;
    b.wait_for_text(
        "dialog[open] .fl-table .fl-version-note",
        "Answers todos instead of items",
    )
    .await;
    b.screenshot_as("lifecycle_history_note").await;
    b.finish().await;
}

#[tokio::test]
async fn regenerating_crud_lists_the_flows_it_overwrites_and_asks_first() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": [{"name": "title", "type": "text"}]}))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/notes/crud")
                .json(&json!({"auth": "public"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let list = flow_by_name(&app, "notes_list").await.expect("generated");
    let id = list["id"].as_i64().expect("id");
    let (_, record) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    let mut doc = record["document"].clone();
    doc["nodes"]["reply"]["status"] = json!(203);
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &format!("/flows/{id}"))
                .header(
                    "if-match",
                    format!("\"{}\"", record["rev"].as_str().unwrap_or("")),
                )
                .json(&doc),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let b = Browser::start("lifecycle_crud_regenerate").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for(".fl-row[data-flow=notes_list]").await;
    b.execute(
        "[...document.querySelectorAll('.fl-list-head button')].find(x => x.textContent.startsWith('CRUD')).click()",
        json!([]),
    )
    .await;
    b.wait_for("dialog[open] #fl-crud-table").await;
    b.execute(
        "document.querySelector('#fl-crud-publish').checked = false",
        json!([]),
    )
    .await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for_text("dialog[open] #fl-crud-overwrite", "notes_list")
        .await;
    b.screenshot_as("lifecycle_crud_regenerate_confirm").await;
    // Cancel: nothing is overwritten.
    b.click("dialog[open] .dialog-actions .btn:not(.btn-danger)")
        .await;
    b.wait_gone("#fl-crud-overwrite").await;
    let (_, record) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(record["document"]["nodes"]["reply"]["status"], 203);
    // Again, and confirm: the edited draft is generated afresh.
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for_text("dialog[open] #fl-crud-overwrite", "notes_list")
        .await;
    b.click("dialog[open] .dialog-actions .btn-danger").await;
    // The CRUD dialog closes once the server has regenerated the flows.
    b.wait_gone("dialog[open]").await;
    let (_, record) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(
        record["document"]["nodes"]["reply"].get("status"),
        None,
        "{record}"
    );
    b.finish().await;
}

#[tokio::test]
async fn a_column_rename_in_the_designer_names_the_rewritten_endpoints_and_drafts() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let mut draft = common::example("todo/list_todos.flow.json");
    draft["name"] = json!("open_titles");
    draft["endpoint"]["path"] = json!("/open-titles");
    draft["nodes"]["load"]["select"] = json!(["id", "title"]);
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&draft))
        .await;
    assert_eq!(status, 201, "{body}");

    let b = Browser::start("lifecycle_designer_rewrites").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/todos/schema", app.base))
        .await;
    b.fill(".field-row[data-field=title] [data-role=name]", "headline")
        .await;
    b.click("#review-changes").await;
    b.wait_for_text("#plan-preview", "RENAME COLUMN").await;
    // The draft it would break is a warning beside the published endpoints it would break.
    b.wait_for_text("dialog[open] #draft-breaks", "open_titles")
        .await;
    b.click("dialog[open] #update-flows").await;
    b.click("#apply-changes").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text(
        "#toasts",
        "Rewritten and republished: list_todos, create_todo",
    )
    .await;
    b.wait_for_text("#toasts", "Drafts rewritten: open_titles")
        .await;
    let rewritten = flow_by_name(&app, "open_titles").await.expect("draft");
    let (_, record) = app
        .send(app.admin(Method::GET, &format!("/flows/{}", rewritten["id"])))
        .await;
    assert_eq!(
        record["document"]["nodes"]["load"]["select"],
        json!(["id", "headline"])
    );
    b.finish().await;
}
