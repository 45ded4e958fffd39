//! The Rules tab of a table in a real headless Chromium against a real Sluice and Postgres:
//! rules written with the forms only (the "Only the owner" preset, a create rule's `set`, an
//! update rule's `columns` and `check`, a membership rule with `exists`) are reviewed, applied
//! and stored as the table's `rules`; the summary says who can do what; the endpoints that use
//! the table are listed with their auth and bypasses; a literal the server refuses is shown
//! under the rule it belongs to.

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// The table's stored rules, through the admin API.
async fn stored_rules(app: &TestApp, table: &str) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/tables/{table}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body["rules"].clone()
}

/// Reviews the pending rule changes and applies them, waiting for the saved answer.
async fn review_and_apply(b: &Browser, actions: &str) {
    b.click("#rules-review").await;
    b.wait_for_text("#plan-rules", actions).await;
    b.click("#apply-changes").await;
    b.wait_for_text(".toast", "saved").await;
}

#[tokio::test]
async fn the_owner_preset_applied_with_the_form_is_stored_and_said_in_words() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "title", "type": "text"}, {"name": "owner", "type": "integer"}]}))
        .await;
    // Two published endpoints on the table: one for users, one for admins whose node bypasses.
    app.publish(&json!({"format": "sluice.flow", "format_version": 1, "name": "list_notes", "entry": "q",
        "endpoint": {"method": "GET", "path": "/notes", "auth": "user"},
        "nodes": {"q": {"type": "db.query", "table": "notes", "as": "rows", "next": {"ok": "reply"}},
                  "reply": {"type": "respond", "body": {"$rhai": "rows"}}}}))
        .await;
    app.publish(&json!({"format": "sluice.flow", "format_version": 1, "name": "count_notes", "entry": "q",
        "endpoint": {"method": "GET", "path": "/admin/notes", "auth": "admin"},
        "nodes": {"q": {"type": "db.query", "table": "notes", "as": "rows",
                        "rules": {"bypass": "the dashboard counts every note"}, "next": {"ok": "reply"}},
                  "reply": {"type": "respond", "body": {"$rhai": "rows"}}}}))
        .await;

    let b = Browser::start("rules_tab_owner_preset").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/notes/rules", app.base))
        .await;
    b.wait_for("#tab-rules[aria-selected=true]").await;
    b.wait_for_text(
        "#rules-summary",
        "No rule: anyone who may call the endpoint may list every row",
    )
    .await;
    b.wait_for_text("#rules-usage", "GET /notes").await;
    b.wait_for_text(
        "#rules-usage tr[data-flow=list_notes]",
        "signed-in users: rules apply",
    )
    .await;
    b.wait_for_text(
        "#rules-usage tr[data-flow=count_notes]",
        "admins: exempt from rules",
    )
    .await;
    b.wait_for_text("#rules-usage tr[data-flow=count_notes]", "bypasses rules")
        .await;
    b.wait_for_text(
        "#rules-usage tr[data-flow=count_notes]",
        "the dashboard counts every note",
    )
    .await;
    b.wait_for_text(
        "#rules-usage tr[data-flow=list_notes]",
        "db.query, applies the list rule",
    )
    .await;

    // The preset on list and view, through the form.
    b.click("#rule-list [data-role=owner]").await;
    b.click("#rule-view [data-role=owner]").await;
    let shown = b
        .execute(
            "const c = document.querySelector('#rule-list .fm-cond');
             return [c.querySelector('.fm-cond-field').value, c.querySelector('.fm-cond-op').value,
                     c.querySelector('.rule-mode').value];",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!(["owner", "eq", "id"]));
    b.wait_for_text(
        "#rules-summary",
        "Signed-in callers list only rows where owner is their id; anonymous callers get none.",
    )
    .await;
    b.assert_accessible("the Rules tab with two rules").await;
    review_and_apply(&b, "list, view").await;

    let owner = json!({"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}});
    assert_eq!(
        stored_rules(&app, "notes").await,
        json!({"list": owner, "view": owner})
    );

    // The tab shows the saved rules again, with nothing left to save.
    b.wait_for("#rules-review[disabled]").await;
    b.wait_for_text(
        "#rules-summary",
        "Signed-in callers view only rows where owner is their id",
    )
    .await;
    b.wait_for_text(
        "#rules-summary",
        "may create rows, update any row and delete any row",
    )
    .await;
    b.wait_for("#rule-view.has-rule .fm-cond").await;
    b.finish().await;
}

#[tokio::test]
async fn a_create_set_and_update_columns_are_edited_and_a_refused_literal_is_shown_by_its_rule() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "tasks", "fields": [
        {"name": "title", "type": "text"}, {"name": "owner", "type": "integer"},
        {"name": "team", "type": "uuid"}]}))
        .await;

    let b = Browser::start("rules_tab_create_update").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/tasks/rules", app.base))
        .await;

    // create: owner set to the caller (the first field offered), then team to a literal.
    b.click("#rule-create [data-role=add]").await;
    b.click("#rule-create [data-role=add-set]").await;
    b.wait_for("#rule-create .rule-set-row[data-field=owner]")
        .await;
    b.click("#rule-create [data-role=add-set]").await;
    b.choose(
        "#rule-create .rule-set-row:nth-child(2) .rule-set-field",
        "team",
    )
    .await;
    b.set_value(
        "#rule-create .rule-set-row[data-field=team] .fm-literal",
        "not-a-uuid",
    )
    .await;

    // update: only the owner, who may change the title only.
    b.click("#rule-update [data-role=owner]").await;
    b.click("#rule-update input[name=rule-update-columns][value=title]")
        .await;
    b.wait_for_text("#rules-summary", "Create sets owner to the caller\u{2019}s id and team to \"not-a-uuid\"; anonymous callers cannot create rows.")
        .await;
    b.wait_for_text(
        "#rules-summary",
        "Signed-in callers update only rows where owner is their id, changing only title",
    )
    .await;

    // The server refuses the literal; the problem stands under the create rule.
    b.click("#rules-review").await;
    b.wait_for_text("#rule-create-problems", "/table/rules/create/set/team")
        .await;
    assert_eq!(stored_rules(&app, "tasks").await, Value::Null);

    let team = "6f1c2a3e-0d4b-4f7a-9a51-2b8c6d0e1f23";
    b.set_value(
        "#rule-create .rule-set-row[data-field=team] .fm-literal",
        team,
    )
    .await;
    review_and_apply(&b, "create").await;
    assert_eq!(
        stored_rules(&app, "tasks").await,
        json!({
            "create": {"set": {"owner": {"auth": "id"}, "team": team}},
            "update": {"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}, "columns": ["title"]},
        })
    );
    b.wait_for("#rules-review[disabled]").await;
    b.wait_for("#rule-update input[name=rule-update-columns][value=title]:checked")
        .await;
    b.set_viewport(1280, 2200).await;
    b.finish().await;
}

#[tokio::test]
async fn a_membership_rule_with_exists_and_an_update_check_are_built_with_the_forms() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "members", "fields": [
        {"name": "team", "type": "integer"}, {"name": "member", "type": "integer"}]}))
        .await;
    app.create_table(&json!({"name": "projects", "fields": [
        {"name": "title", "type": "text"}, {"name": "team", "type": "integer"}]}))
        .await;

    let b = Browser::start("rules_tab_exists").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/projects/rules", app.base))
        .await;

    // list: a row of members exists whose team is this row's team and whose member is the caller.
    b.click("#rule-list [data-role=add]").await;
    b.click("#rule-list [data-role=add-exists]").await;
    b.wait_for("#rule-list .rule-exists select.rule-exists-table")
        .await;
    let exists = "#rule-list .rule-exists";
    b.click(&format!("{exists} .fm-add[data-fkey$='0.addc']"))
        .await;
    b.choose(&format!("{exists} .fm-cond .rule-mode"), "row")
        .await;
    b.wait_for(&format!("{exists} .fm-cond .rule-row-field"))
        .await;
    b.click(&format!("{exists} .fm-add[data-fkey$='0.addc']"))
        .await;
    let second = format!("{exists} .fm-group-items > .fm-cond:nth-child(2)");
    b.choose(&format!("{second} .fm-cond-field"), "member")
        .await;
    b.choose(&format!("{second} .rule-mode"), "id").await;
    b.wait_for_text("#rules-summary", "Signed-in callers list only rows where a row of members exists where team is this row\u{2019}s team and member is their id; anonymous callers get none.")
        .await;

    // update: any row, but the changed row must keep a title.
    b.click("#rule-update [data-role=add]").await;
    b.click("#rule-update [data-role=add-check]").await;
    b.click("#rule-update .rule-check .fm-add[data-fkey='0.addc']")
        .await;
    b.choose("#rule-update .rule-check .fm-cond-op", "ne").await;
    b.wait_for_text(
        "#rules-summary",
        "the changed row must then meet: title is not \"\"",
    )
    .await;
    b.assert_accessible("the Rules tab with an exists and a check")
        .await;

    review_and_apply(&b, "list, update").await;
    assert_eq!(
        stored_rules(&app, "projects").await,
        json!({
            "list": {"where": {"and": [{"exists": {"table": "members", "where": {"and": [
                {"field": "team", "op": "eq", "value": {"row": "team"}},
                {"field": "member", "op": "eq", "value": {"auth": "id"}}]}}}]}},
            "update": {"where": {"and": []}, "check": {"field": "title", "op": "ne", "value": ""}},
        })
    );
    b.wait_for("#rules-review[disabled]").await;
    b.wait_for("#rule-list .rule-exists .rule-row-field").await;
    b.set_viewport(1280, 1800).await;
    b.finish().await;
}

#[tokio::test]
async fn a_rule_that_a_published_endpoint_cannot_apply_is_named_beside_the_form() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "title", "type": "text"}, {"name": "owner", "type": "integer"}]}))
        .await;
    app.publish(
        &json!({"format": "sluice.flow", "format_version": 1, "name": "count_sql", "entry": "q",
        "endpoint": {"method": "GET", "path": "/notes/count", "auth": "user"},
        "nodes": {"q": {"type": "db.sql", "sql": "select count(*) as n from notes", "as": "rows",
                        "next": {"ok": "reply"}},
                  "reply": {"type": "respond", "body": {"$rhai": "rows"}}}}),
    )
    .await;

    let b = Browser::start("rules_tab_breaks").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/notes/rules", app.base))
        .await;
    b.wait_for_text(
        "#rules-usage tr[data-flow=count_sql]",
        "its SQL names this table",
    )
    .await;

    b.click("#rule-list [data-role=owner]").await;
    b.click("#rules-review").await;
    b.wait_for_text("dialog[open] #breaks", "count_sql").await;
    b.click("dialog[open] .dialog-actions .btn:first-child")
        .await;
    b.wait_for_text("#rules-problems", "count_sql").await;
    b.wait_for_text("#rules-problems", "cannot apply the new rules")
        .await;
    assert_eq!(stored_rules(&app, "notes").await, Value::Null);
    b.finish().await;
}

#[tokio::test]
async fn create_endpoints_offers_owner_only_rules_for_a_users_linked_owner() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "users", "fields": [{"name": "name", "type": "text"}]}))
        .await;
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "title", "type": "text"},
        {"name": "owner", "type": "reference", "table": "users"}]}))
        .await;
    let b = Browser::start("rules_tab_crud_owner").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/notes", app.base)).await;
    b.click(".page-actions button:first-child").await;
    b.wait_for("dialog[open] #crud-owner-rules:checked").await;
    // Only endpoints for signed-in users get them: the box hides for other levels.
    b.choose("dialog[open] #crud-auth", "public").await;
    b.wait_until(
        "the owner-rules box hidden",
        "return document.querySelector('dialog[open] #crud-owner-rules').closest('label').hidden;",
    )
    .await;
    b.choose("dialog[open] #crud-auth", "user").await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for_text(".toast", "Owner-only access rules added to notes")
        .await;
    let (_, table) = app.send(app.admin(Method::GET, "/tables/notes")).await;
    assert_eq!(
        table["rules"]["view"]["where"],
        json!({"field": "owner", "op": "eq", "value": {"auth": "id"}}),
        "{table}"
    );
}
