//! Access rules in the editor, in a real headless Chromium against a real Sluice and Postgres:
//! the run panel runs a draft as a chosen user, the answer shows what that user's rules let
//! through, and the step names the rule; a bypassing node says so on its card.

mod common;

use common::browser::Browser;
use common::spawn_app;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn the_run_panel_runs_a_draft_as_a_chosen_user_and_names_the_rule() {
    let app = spawn_app().await;
    let mine = json!({"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}});
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "title", "type": "text"}, {"name": "owner", "type": "integer"}],
        "rules": {"view": mine}}))
        .await;
    sqlx::query("INSERT INTO app.notes (title, owner) VALUES ('one', 1), ('two', 2)")
        .execute(&app.db)
        .await
        .expect("rows");
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "get_note", "entry": "g",
    "endpoint": {"method": "GET", "path": "/notes/{id}", "auth": "user"},
    "nodes": {
        "g": {"type": "db.get", "table": "notes", "id": {"$rhai": "request.params.id"}, "as": "row",
              "next": {"found": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "row"}}
    }});
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");

    let b = Browser::start("rules_run_as_user").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=g]").await;
    b.click("#fl-run-toggle").await;
    b.click("#fl-run-json-toggle").await;
    b.set_value("#fl-run-params", r#"{"id": "2"}"#).await;
    b.set_value("#fl-run-as-user", "1").await;
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 404").await;
    b.click(".fl-node[data-id=g] .fl-id").await;
    b.wait_for_text(".fl-inspector .fl-trace", "notes.view")
        .await;

    // The owner sees the row.
    b.set_value("#fl-run-as-user", "2").await;
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 200").await;
    b.finish().await;
}
