//! Schema evolution against real Postgres: every rule of a table change, end to end.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

/// Creates `books` (title text required, pages text, note text) with its CRUD flows published
/// under `/books`, and three rows.
async fn books(app: &TestApp) -> Value {
    let def = json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "pages", "type": "text"},
        {"name": "note", "type": "text"}
    ]});
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables?crud=publish&crud_auth=public")
                .json(&def),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (title, pages) in [("Dune", "412"), ("Emma", "abc"), ("Ulysses", "x1")] {
        let (status, row) = app
            .send(
                app.api(Method::POST, "/books")
                    .json(&json!({"title": title, "pages": pages})),
            )
            .await;
        assert_eq!(status, 201, "{row}");
    }
    table(app, "books").await
}

async fn table(app: &TestApp, name: &str) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/tables/{name}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The definition with one field changed by `edit`.
fn edited(t: &Value, edit: impl FnOnce(&mut Vec<Value>)) -> Value {
    let mut def = json!({"name": t["name"], "fields": t["fields"]});
    if let Some(fields) = def["fields"].as_array_mut() {
        edit(fields);
    }
    def
}

async fn change(app: &TestApp, t: &Value, body: Value) -> (u16, Value) {
    let name = t["name"].as_str().expect("name");
    let req = app
        .admin(Method::PUT, &format!("/tables/{name}"))
        .header("if-match", t["version"].to_string())
        .json(&body);
    app.send(req).await
}

async fn column_type(app: &TestApp, table: &str, column: &str) -> Option<String> {
    sqlx::query_scalar("SELECT data_type FROM information_schema.columns WHERE table_schema = 'app' AND table_name = $1 AND column_name = $2")
        .bind(table)
        .bind(column)
        .fetch_optional(&app.db)
        .await
        .expect("query")
}

#[tokio::test]
async fn renaming_a_field_keeps_its_data() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| f[2]["name"] = json!("remark"));
    let before: Vec<Option<String>> = sqlx::query_scalar("SELECT note FROM app.books ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("q");
    sqlx::query("UPDATE app.books SET note = 'kept ' || id")
        .execute(&app.db)
        .await
        .expect("seed");
    let (status, body) = change(&app, &t, json!({"table": def, "update_flows": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["plan"]["changes"][0],
        json!({"kind": "rename_field", "from": "note", "to": "remark"})
    );
    assert!(
        body["updated_flows"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == "books_create")),
        "{body}"
    );
    let after: Vec<String> = sqlx::query_scalar("SELECT remark FROM app.books ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("q");
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|v| v.starts_with("kept ")));
    assert_eq!(
        body["table"]["fields"][2]["id"], t["fields"][2]["id"],
        "the field keeps its id"
    );
    // The create flow's body property follows its field (reported in `api_changes`).
    assert!(
        body["api_changes"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["flow"] == "books_create" && c["to"] == "remark")),
        "{body}"
    );
    let (status, row) = app
        .send(
            app.api(Method::POST, "/books")
                .json(&json!({"title": "Odyssey", "remark": "epic"})),
        )
        .await;
    assert_eq!(status, 201, "the rewritten create flow still works: {row}");
    assert_eq!(row["remark"], "epic");
}

#[tokio::test]
async fn a_type_change_that_cannot_convert_changes_nothing_and_names_the_rows() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| f[1]["type"] = json!("integer"));
    let (status, body) = change(&app, &t, json!({"table": def})).await;
    assert_eq!(
        (status, code(&body)),
        (409, "table.rows_block_change"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"][0]["rows"],
        json!([2, 3]),
        "Emma and Ulysses cannot become numbers"
    );
    assert_eq!(
        column_type(&app, "books", "pages").await.as_deref(),
        Some("text")
    );
    assert_eq!(table(&app, "books").await["version"], t["version"]);

    sqlx::query("UPDATE app.books SET pages = '300' WHERE id IN (2, 3)")
        .execute(&app.db)
        .await
        .expect("fix rows");
    let (status, body) = change(&app, &t, json!({"table": def})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        column_type(&app, "books", "pages").await.as_deref(),
        Some("bigint")
    );
    let (_, row) = app.send(app.api(Method::GET, "/books/1")).await;
    assert_eq!(
        row["pages"], 412,
        "the generated endpoint serves the converted value"
    );
}

#[tokio::test]
async fn dropping_a_field_needs_confirmation() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| {
        f.remove(2);
    });
    let (status, body) = change(&app, &t, json!({"table": def})).await;
    assert_eq!(
        (status, code(&body)),
        (409, "table.confirmation_required"),
        "{body}"
    );
    assert!(column_type(&app, "books", "note").await.is_some());
    // The generated create flow writes `note`, so the drop also needs force.
    let (status, body) = change(
        &app,
        &t,
        json!({"table": def, "confirm_drop": ["note"], "force": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(column_type(&app, "books", "note").await.is_none());
}

#[tokio::test]
async fn a_required_field_on_a_table_with_rows_needs_a_default() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| {
        f.push(json!({"name": "isbn", "type": "text", "required": true}))
    });
    // Forced past the generated create flow (which does not give isbn), the rows still refuse.
    let (status, body) = change(&app, &t, json!({"table": def, "force": true})).await;
    assert_eq!(
        (status, code(&body)),
        (409, "table.rows_block_change"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("needs a default"),
        "{body}"
    );
    let def = edited(&t, |f| {
        f.push(json!({"name": "isbn", "type": "text", "required": true, "default": "unknown"}))
    });
    let (status, body) = change(&app, &t, json!({"table": def})).await;
    assert_eq!(status, 200, "{body}");
    let isbns: Vec<String> = sqlx::query_scalar("SELECT isbn FROM app.books")
        .fetch_all(&app.db)
        .await
        .expect("q");
    assert!(isbns.iter().all(|i| i == "unknown"));
}

async fn publish_reader(app: &TestApp) {
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "book_title",
        "endpoint": {"method": "GET", "path": "/titles/{id}"},
        "input": {"params": {"type": "object", "properties": {"id": {"type": "integer"}}}},
        "entry": "load",
        "nodes": {
            "load": {"type": "db.get", "table": "books", "id": {"$rhai": "request.params.id"}, "as": "book", "next": {"found": "reply"}},
            "reply": {"type": "respond", "body": {"title": {"$rhai": "book.title"}, "n": {"$rhai": "book.note"}}}
        }
    });
    app.publish(&doc).await;
}

#[tokio::test]
async fn a_change_that_breaks_a_published_flow_is_refused_naming_it_unless_forced() {
    let app = spawn_app().await;
    let t = books(&app).await;
    publish_reader(&app).await;
    let def = edited(&t, |f| {
        f.remove(2);
    });
    let (status, body) = change(&app, &t, json!({"table": def, "confirm_drop": ["note"]})).await;
    assert_eq!((status, code(&body)), (409, "table.breaks_flows"), "{body}");
    let details = body["error"]["details"].as_array().expect("details");
    assert!(
        details
            .iter()
            .any(|d| d["flow"] == "book_title" && d["node"] == "reply"),
        "{body}"
    );
    assert!(
        column_type(&app, "books", "note").await.is_some(),
        "nothing changed"
    );

    let (status, body) = change(
        &app,
        &t,
        json!({"table": def, "confirm_drop": ["note"], "force": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(column_type(&app, "books", "note").await.is_none());
}

#[tokio::test]
async fn renames_can_update_the_flows_that_use_them() {
    let app = spawn_app().await;
    let t = books(&app).await;
    publish_reader(&app).await;
    let def = edited(&t, |f| f[0]["name"] = json!("headline"));
    let (status, body) = change(&app, &t, json!({"table": def.clone()})).await;
    assert_eq!((status, code(&body)), (409, "table.breaks_flows"), "{body}");

    let (status, body) = change(&app, &t, json!({"table": def, "update_flows": true})).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["updated_flows"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == "book_title")),
        "{body}"
    );
    let (status, row) = app.send(app.api(Method::GET, "/titles/1")).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["title"], "Dune");
}

#[tokio::test]
async fn stale_and_unversioned_changes_are_refused() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| f[2]["description"] = json!("free text"));
    let (status, _) = change(&app, &t, json!({"table": def.clone()})).await;
    assert_eq!(status, 200);
    let (status, body) = change(&app, &t, json!({"table": def.clone()})).await;
    assert_eq!((status, code(&body)), (409, "table.stale_version"));
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/books")
                .json(&json!({"table": def})),
        )
        .await;
    assert_eq!((status, code(&body)), (428, "table.version_required"));
}

#[tokio::test]
async fn concurrent_changes_to_one_table_serialize_without_losing_either() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let a = edited(&t, |f| f.push(json!({"name": "a", "type": "text"})));
    let b = edited(&t, |f| f.push(json!({"name": "b", "type": "text"})));
    let (ra, rb) = tokio::join!(
        change(&app, &t, json!({"table": a})),
        change(&app, &t, json!({"table": b}))
    );
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 409],
        "one wins, the other is told it is stale: {ra:?} {rb:?}"
    );
    let added = usize::from(column_type(&app, "books", "a").await.is_some())
        + usize::from(column_type(&app, "books", "b").await.is_some());
    assert_eq!(added, 1);
    let now = table(&app, "books").await;
    assert_eq!(
        now["version"],
        t["version"].as_i64().map(|v| v + 1).expect("version")
    );
}

#[tokio::test]
async fn making_a_field_unique_names_the_duplicate_rows() {
    let app = spawn_app().await;
    let t = books(&app).await;
    sqlx::query("UPDATE app.books SET note = 'same' WHERE id IN (1, 3)")
        .execute(&app.db)
        .await
        .expect("seed");
    let def = edited(&t, |f| f[2]["unique"] = json!(true));
    let (status, body) = change(&app, &t, json!({"table": def})).await;
    assert_eq!(
        (status, code(&body)),
        (409, "table.rows_block_change"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["rows"], json!([1, 3]));
}

#[tokio::test]
async fn a_preview_shows_the_plan_and_changes_nothing() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| {
        f[0]["name"] = json!("headline");
        f.push(json!({"name": "year", "type": "integer", "indexed": true}));
    });
    let req = app
        .admin(Method::POST, "/tables/books/plan")
        .json(&json!({"table": def}));
    let (status, body) = app.send(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], false);
    let sql: Vec<&str> = body["plan"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sql"].as_str())
        .collect();
    assert!(
        sql.iter()
            .any(|s| s.contains("RENAME COLUMN \"title\" TO \"headline\"")),
        "{sql:?}"
    );
    assert!(sql.iter().any(|s| s.starts_with("CREATE INDEX")), "{sql:?}");
    assert!(column_type(&app, "books", "headline").await.is_none());
    assert!(column_type(&app, "books", "year").await.is_none());
}

#[tokio::test]
async fn dropping_a_table_needs_its_name_and_refuses_while_referenced() {
    let app = spawn_app().await;
    books(&app).await;
    let loans = json!({"name": "loans", "fields": [{"name": "book", "type": "reference", "table": "books", "on_delete": "cascade"}]});
    app.create_table(&loans).await;
    let (status, body) = app
        .send(app.admin(Method::DELETE, "/tables/books?confirm=books&force=true"))
        .await;
    assert_eq!((status, code(&body)), (409, "table.referenced"), "{body}");
    let (status, body) = app.send(app.admin(Method::DELETE, "/tables/loans")).await;
    assert_eq!(
        (status, code(&body)),
        (409, "table.confirmation_required"),
        "{body}"
    );
    let (status, body) = app
        .send(app.admin(Method::DELETE, "/tables/loans?confirm=loans"))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send(app.admin(Method::DELETE, "/tables/books?confirm=books"))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "table.breaks_flows"),
        "the CRUD flows use it: {body}"
    );
}

/// An end-user token with `role: admin`, issued by a throwaway public flow.
async fn end_user_admin_token(app: &TestApp) -> String {
    app.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "mint_admin",
        "endpoint": {"method": "POST", "path": "/test/mint-admin"}, "entry": "issue",
        "nodes": {
            "issue": {"type": "auth.issue_token", "as": "t", "sub": "1",
                      "claims": {"role": "admin"}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"token": {"$rhai": "t.token"}}}
        }
    }))
    .await;
    let (status, body) = app.send(app.api(Method::POST, "/test/mint-admin")).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn generated_crud_endpoints_work_and_passwords_stay_write_only() {
    let app = spawn_app().await;
    let def = json!({"name": "members", "fields": [
        {"name": "email", "type": "email", "required": true, "unique": true},
        {"name": "secret", "type": "password"},
        {"name": "level", "type": "enum", "values": ["basic", "pro"], "default": "basic"},
        {"name": "joined", "type": "timestamp", "default": "now()"},
        {"name": "prefs", "type": "json"}
    ]});
    let (status, body) = app
        .send(
            app.admin(
                Method::POST,
                "/tables?crud=publish&crud_path=/people&crud_auth=admin",
            )
            .json(&def),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["flows"].as_array().map(Vec::len), Some(5));
    // Password fields are writable only through admin endpoints: call them as an admin.
    let token = end_user_admin_token(&app).await;
    let api = |m: Method, p: &str| app.api(m, p).bearer_auth(&token);

    let (status, created) = app
        .send(api(Method::POST, "/people").json(
            &json!({"email": "ada@example.com", "secret": "hunter2hunter2", "prefs": "dark"}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["level"], "basic");
    assert_eq!(
        created["prefs"], "dark",
        "a JSON string stays a JSON string"
    );
    assert!(
        created.get("secret").is_none(),
        "password fields are never returned"
    );
    let id = created["id"].as_i64().expect("id");
    let stored: String = sqlx::query_scalar("SELECT secret FROM app.members WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("q");
    assert!(stored.starts_with("$argon2id$"), "stored hashed: {stored}");

    let (status, body) = app
        .send(api(Method::POST, "/people").json(&json!({"email": "not-an-email"})))
        .await;
    // The generated input schema says `format: email`, and formats are asserted.
    assert_eq!((status, code(&body)), (400, "input.invalid"), "{body}");
    let (status, body) = app
        .send(api(Method::POST, "/people").json(&json!({"email": "ada@example.com"})))
        .await;
    assert_eq!((status, code(&body)), (409, "db.conflict"), "{body}");
    let (status, body) = app
        .send(
            api(Method::POST, "/people").json(&json!({"email": "b@example.com", "level": "gold"})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "input.invalid"), "{body}");

    let (status, updated) = app
        .send(api(Method::PATCH, &format!("/people/{id}")).json(&json!({"level": "pro"})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["level"].as_str(), updated["email"].as_str()),
        (Some("pro"), Some("ada@example.com"))
    );
    let still: String = sqlx::query_scalar("SELECT secret FROM app.members WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("q");
    assert_eq!(
        still, stored,
        "a patch leaves fields it does not name alone"
    );

    let (status, list) = app.send(api(Method::GET, "/people?limit=10")).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let resp = api(Method::DELETE, &format!("/people/{id}"))
        .send()
        .await
        .expect("delete");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        resp.bytes().await.expect("body").len(),
        0,
        "204 has no body"
    );
    let (status, body) = app.send(api(Method::GET, &format!("/people/{id}"))).await;
    assert_eq!((status, code(&body)), (404, "db.not_found"));
}

#[tokio::test]
async fn bad_definitions_get_clear_errors_and_create_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "t", "fields": [{"name": "a", "type": "colour"}]}),
            400,
            "request.invalid_body",
        ),
        (
            json!({"name": "t\"; DROP SCHEMA app; --", "fields": []}),
            400,
            "request.invalid_body",
        ),
        (
            json!({"name": "select", "fields": []}),
            400,
            "request.invalid_body",
        ),
        (
            json!({"name": "t", "fields": [{"name": "owner", "type": "reference", "table": "nobody"}]}),
            422,
            "table.invalid",
        ),
        (
            json!({"name": "t", "fields": [{"name": "v", "type": "enum", "values": []}]}),
            422,
            "table.invalid",
        ),
        (
            json!({"name": "t", "fields": [{"name": "a", "type": "text", "default": "it's'); DROP TABLE x; --"}]}),
            201,
            "",
        ),
    ];
    for (def, status, expected) in cases {
        let (got, body) = app
            .send(app.admin(Method::POST, "/tables").json(&def))
            .await;
        assert_eq!(got, status, "{def} -> {body}");
        if !expected.is_empty() {
            assert_eq!(code(&body), expected, "{def}");
        }
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'")
        .fetch_one(&app.db)
        .await
        .expect("q");
    assert_eq!(n, 1, "only the valid table exists");
    let default: Option<String> = sqlx::query_scalar("SELECT column_default FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 't' AND column_name = 'a'")
        .fetch_one(&app.db)
        .await
        .expect("q");
    assert_eq!(
        default.as_deref(),
        Some("'it''s''); DROP TABLE x; --'::text")
    );
}

#[tokio::test]
async fn every_change_is_recorded_in_the_history() {
    let app = spawn_app().await;
    let t = books(&app).await;
    let def = edited(&t, |f| f[2]["name"] = json!("remark"));
    let (status, _) = change(&app, &t, json!({"table": def, "update_flows": true})).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/books/history"))
        .await;
    assert_eq!(status, 200);
    let history = body["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["user"], common::ADMIN_EMAIL);
    assert_eq!(history[0]["plan"]["changes"][0]["kind"], "rename_field");
    assert!(
        history[1]["plan"]["steps"][0]["sql"]
            .as_str()
            .is_some_and(|s| s.starts_with("CREATE TABLE"))
    );
}
