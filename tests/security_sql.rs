//! Hardening of the SQL Sluice builds (issue 10, items 6 to 8).
//!
//! - A field named like an alias of a statement (`t`, `s`, `q`, `i0` ...) replaced the whole
//!   row: `to_jsonb(t)` reads a column `t` first. With a json field `t` on the users table, a
//!   user could make login issue a token with a forged `sub` and `role`. Rows are now `t.*`.
//! - A decimal beyond a double answered 500 while its write stayed committed, and every later
//!   read of the row answered 500; digits beyond a double were lost. Decimals are now exact,
//!   checked on write, and a write whose row cannot be read is rolled back.
//! - Results had no size limit. Database nodes and data API pages are now capped by
//!   `SLUICE_MAX_RESULT_BYTES`, and Postgres refuses to send an aggregate over the cap.

mod common;

use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

fn flow(name: &str, method: &str, path: &str, auth: &str, nodes: Value, entry: &str) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": method, "path": path, "auth": auth},
           "entry": entry, "nodes": nodes})
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM app.\"{table}\""))
        .fetch_one(&app.db)
        .await
        .expect("count")
}

/// Signs up an end user on the auth example and returns their token, so requests to generated
/// endpoints work whether they are public or need a signed-in user.
async fn end_user(app: &TestApp, email: &str) -> String {
    let (status, body) = app
        .send(app.api(Method::POST, "/auth/signup").json(&json!({
            "email": email, "password": "a long password"})))
        .await;
    assert_eq!(status, 201, "signup: {body}");
    body["token"].as_str().expect("token").to_string()
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

// ---------------------------------------------------------------------------------------------
// Item 6

/// Field names that are aliases somewhere in the statements Sluice builds.
const ALIASES: [&str; 9] = ["t", "s", "q", "p", "r", "k", "n", "j", "i0"];

async fn alias_tables(app: &TestApp) {
    app.create_table(&json!({"name": "targets", "fields": [
        {"name": "t", "type": "text"}, {"name": "s", "type": "text"}, {"name": "i0", "type": "text"},
        {"name": "label", "type": "text"}
    ]}))
    .await;
    let mut fields: Vec<Value> = ALIASES
        .iter()
        .filter(|a| **a != "i0")
        .map(|a| json!({"name": a, "type": "text"}))
        .collect();
    fields.push(json!({"name": "i0", "type": "reference", "table": "targets"}));
    fields.push(json!({"name": "code", "type": "text", "unique": true}));
    app.create_table(&json!({"name": "aliases", "fields": fields}))
        .await;
}

/// A row of `aliases` as it must come back: an object with its id and every field.
fn assert_whole_row(row: &Value, what: &str) {
    assert!(row.is_object(), "{what}: not a row: {row}");
    assert!(row["id"].is_i64(), "{what}: no id: {row}");
    for a in ["t", "s", "q", "p", "r", "k", "j"] {
        assert_eq!(row[a], json!(format!("v_{a}")), "{what}: field {a}: {row}");
    }
}

fn alias_values(code: &str) -> Value {
    let mut v = json!({"code": code, "n": "v_n"});
    for a in ["t", "s", "q", "p", "r", "k", "j"] {
        v[a] = json!(format!("v_{a}"));
    }
    v
}

#[tokio::test]
async fn fields_named_like_sql_aliases_never_replace_the_row_in_the_data_api() {
    let app = spawn_app().await;
    alias_tables(&app).await;
    let (status, row) = app
        .send(
            app.admin(Method::POST, "/tables/aliases/rows")
                .json(&alias_values("a")),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_whole_row(&row, "insert");
    let id = row["id"].as_i64().expect("id");
    let (status, row) = app
        .send(app.admin(Method::GET, &format!("/tables/aliases/rows/{id}")))
        .await;
    assert_eq!(status, 200);
    assert_whole_row(&row, "read");
    let (status, page) = app
        .send(app.admin(Method::GET, "/tables/aliases/rows?count=true"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_whole_row(&page["rows"][0], "list");
    let (status, row) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/aliases/rows/{id}"))
                .json(&json!({"code": "b"})),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    assert_whole_row(&row, "update");
    assert_eq!(row["code"], "b");
}

#[tokio::test]
async fn fields_named_like_sql_aliases_never_replace_the_row_in_flows() {
    let app = spawn_app().await;
    alias_tables(&app).await;
    let target: i64 = sqlx::query_scalar(
        "INSERT INTO app.targets (t, s, i0, label) VALUES ('tt', 'ts', 'ti', 'target') RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("target");
    let mut values = serde_json::Map::new();
    for a in ALIASES.iter().filter(|a| **a != "i0") {
        values.insert(a.to_string(), json!({"$rhai": format!("request.body.{a}")}));
    }
    values.insert("code".into(), json!({"$rhai": "request.body.code"}));
    values.insert("i0".into(), json!(target));
    app.publish(&flow("ins", "POST", "/aliases", "public", json!({
        "ins": {"type": "db.insert", "table": "aliases", "values": values, "as": "row", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
    }), "ins")).await;
    app.publish(&flow("get", "GET", "/aliases/{id}", "public", json!({
        "get": {"type": "db.get", "table": "aliases", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"found": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "row"}}
    }), "get")).await;
    app.publish(&flow("list", "GET", "/aliases", "public", json!({
        "list": {"type": "db.query", "table": "aliases", "include": ["i0"], "as": "rows", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "rows"}}
    }), "list")).await;
    app.publish(&flow("page", "GET", "/aliases-page", "public", json!({
        "list": {"type": "db.query", "table": "aliases", "page": true, "count": true, "limit": 1,
                 "order_by": [{"column": "code"}], "as": "page", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "page"}}
    }), "list")).await;
    app.publish(&flow(
        "upd",
        "PATCH",
        "/aliases/{id}",
        "public",
        json!({
            "upd": {"type": "db.update", "table": "aliases", "id": {"$rhai": "request.params.id"},
                    "patch": {"$rhai": "request.body"}, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}}
        }),
        "upd",
    ))
    .await;
    app.publish(&flow(
        "ups",
        "PUT",
        "/aliases",
        "public",
        json!({
            "ups": {"type": "db.upsert", "table": "aliases", "on": ["code"], "values": values,
                    "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}}
        }),
        "ups",
    ))
    .await;
    app.publish(&flow("sql", "GET", "/aliases-sql", "public", json!({
        "sql": {"type": "db.sql", "sql": "select t, s, code as q from aliases order by id", "as": "rows", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "rows"}}
    }), "sql")).await;
    app.publish(&flow("del", "DELETE", "/aliases/{id}", "public", json!({
        "del": {"type": "db.delete", "table": "aliases", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "row"}}
    }), "del")).await;

    let (status, row) = app
        .send(app.api(Method::POST, "/aliases").json(&alias_values("a")))
        .await;
    assert_eq!(status, 201, "{row}");
    assert_whole_row(&row, "db.insert");
    let id = row["id"].as_i64().expect("id");
    let (status, row) = app
        .send(app.api(Method::GET, &format!("/aliases/{id}")))
        .await;
    assert_eq!(status, 200);
    assert_whole_row(&row, "db.get");
    let (_, rows) = app.send(app.api(Method::GET, "/aliases")).await;
    assert_whole_row(&rows[0], "db.query");
    assert_eq!(rows[0]["i0"]["label"], "target", "include: {rows}");
    assert_eq!(rows[0]["i0"]["i0"], "ti", "include: {rows}");
    let (_, page) = app.send(app.api(Method::GET, "/aliases-page")).await;
    assert_whole_row(&page["rows"][0], "db.query page");
    assert_eq!(page["total"], 1, "{page}");
    let (status, row) = app
        .send(
            app.api(Method::PATCH, &format!("/aliases/{id}"))
                .json(&json!({"n": "v_n2"})),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    assert_whole_row(&row, "db.update");
    let (status, row) = app
        .send(app.api(Method::PUT, "/aliases").json(&alias_values("a")))
        .await;
    assert_eq!(status, 200, "{row}");
    assert_whole_row(&row["row"], "db.upsert");
    assert_eq!(row["inserted"], false);
    let (_, rows) = app.send(app.api(Method::GET, "/aliases-sql")).await;
    assert_eq!(rows, json!([{"t": "v_t", "s": "v_s", "q": "a"}]));
    let (status, row) = app
        .send(app.api(Method::DELETE, &format!("/aliases/{id}")))
        .await;
    assert_eq!(status, 200, "{row}");
    assert_whole_row(&row, "db.delete");
}

#[tokio::test]
async fn a_json_field_named_t_cannot_forge_a_login_token() {
    let app = spawn_app().await;
    let mut users = common::example("auth/users.table.json");
    users["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "t", "type": "json"}));
    // Users may change their own `t` (the template's update rule lists what they may change).
    users["rules"]["update"]["columns"]
        .as_array_mut()
        .expect("the template's update columns")
        .push(json!("t"));
    app.create_table(&users).await;
    for f in ["signup", "login", "me"] {
        app.publish(&common::example(&format!("auth/{f}.flow.json")))
            .await;
    }
    // A profile endpoint that lets users store any JSON in their own `t`.
    app.publish(&flow(
        "profile",
        "PUT",
        "/me/t",
        "user",
        json!({
            "save": {"type": "db.update", "table": "users", "id": {"$rhai": "auth.id"},
                     "values": {"t": {"$rhai": "request.body"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 204}
        }),
        "save",
    ))
    .await;
    let victim = end_user(&app, "victim@example.com").await;
    let victim_id = claims(&victim)["sub"].clone();
    let token = end_user(&app, "mallory@example.com").await;
    let mallory_id = claims(&token)["sub"].clone();
    assert_ne!(victim_id, mallory_id);
    let forged = json!({"id": victim_id, "role": "admin", "email": "victim@example.com"});
    let (status, _) = app
        .send(
            app.api(Method::PUT, "/me/t")
                .bearer_auth(&token)
                .json(&forged),
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .send(app.api(Method::POST, "/auth/login").json(&json!({
            "email": "mallory@example.com", "password": "a long password"})))
        .await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["token"].as_str().expect("token"));
    assert_eq!(c["sub"], mallory_id, "a forged subject: {c}");
    assert_eq!(c["role"], "user", "a forged role: {c}");
    assert_eq!(body["user"]["email"], "mallory@example.com");
    assert_eq!(body["user"]["t"], forged);
    let (_, me) = app
        .send(app.api(Method::GET, "/me").bearer_auth(&token))
        .await;
    assert_eq!(me["email"], "mallory@example.com", "{me}");
}

// ---------------------------------------------------------------------------------------------
// Item 7

async fn payments(app: &TestApp) {
    app.create_table(&json!({"name": "payments", "fields": [
        {"name": "amount", "type": "decimal"},
        {"name": "cents", "type": "decimal", "precision": 12, "scale": 2}
    ]}))
    .await;
    app.publish(&flow("pay", "POST", "/payments", "public", json!({
        "ins": {"type": "db.insert", "table": "payments",
                "values": {"amount": {"$rhai": "request.body.amount"}}, "as": "row", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
    }), "ins")).await;
    app.publish(&flow("payment", "GET", "/payments/{id}", "public", json!({
        "get": {"type": "db.get", "table": "payments", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"found": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "row"}}
    }), "get")).await;
}

#[tokio::test]
async fn a_decimal_beyond_its_field_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    payments(&app).await;
    let huge = r#"{"amount": 1.7976931348623157e308}"#;
    let resp = app
        .api(Method::POST, "/payments")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "db.invalid_value", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("38 digits before the decimal point")),
        "{body}"
    );
    assert_eq!(count(&app, "payments").await, 0, "nothing is stored");
    // The data API refuses it too, with a pointer.
    let resp = app
        .admin(Method::POST, "/tables/payments/rows")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["details"][0]["pointer"], "/amount", "{body}");
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/payments/rows")
                .json(&json!({"cents": 12345678901.5})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // And a CSV import, which names the line and field.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/payments/import?mode=all")
                .header("content-type", "text/csv")
                .body("amount\n1.7976931348623157e308\n"),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "amount", "{body}");
    assert_eq!(count(&app, "payments").await, 0);
}

#[tokio::test]
async fn a_huge_stored_decimal_reads_back_exactly_instead_of_500() {
    let app = spawn_app().await;
    payments(&app).await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app.payments (amount) VALUES (1.7976931348623157e308) RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("stored behind Sluice's back");
    let digits = format!("17976931348623157{}", "0".repeat(292));
    let text = app
        .api(Method::GET, &format!("/payments/{id}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(text.status().as_u16(), 200);
    let text = text.text().await.expect("body");
    assert!(text.contains(&format!("\"amount\":{digits}")), "{text}");
    let resp = app
        .admin(Method::GET, &format!("/tables/payments/rows/{id}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.expect("body").contains(&digits));
}

#[tokio::test]
async fn a_thirty_digit_decimal_round_trips_exactly() {
    let app = spawn_app().await;
    payments(&app).await;
    let exact = "12345678901234567890.1234567890";
    let raw = |v: &str| format!(r#"{{"amount": {v}}}"#);
    // A flow.
    let resp = app
        .api(Method::POST, "/payments")
        .header("content-type", "application/json")
        .body(raw(exact))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 201);
    let text = resp.text().await.expect("body");
    assert!(text.contains(&format!("\"amount\":{exact}")), "{text}");
    let stored: String = sqlx::query_scalar("SELECT amount::text FROM app.payments")
        .fetch_one(&app.db)
        .await
        .expect("stored");
    assert_eq!(stored, exact);
    // The data API.
    let resp = app
        .admin(Method::POST, "/tables/payments/rows")
        .header("content-type", "application/json")
        .body(raw(exact))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.text().await.expect("body").contains(exact));
    // CSV import and export.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/payments/import?mode=all")
                .header("content-type", "text/csv")
                .body(format!("amount\n{exact}\n")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let csv = app
        .admin(Method::GET, "/tables/payments/export")
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("csv");
    assert_eq!(csv.matches(exact).count(), 3, "{csv}");
    // Generated CRUD: create, update and read.
    app.create_table(&common::example("auth/users.table.json"))
        .await;
    app.publish(&common::example("auth/signup.flow.json")).await;
    let token = end_user(&app, "crud@example.com").await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/payments/crud")
                .json(&json!({"publish": true, "path": "/crud/payments"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let resp = app
        .api(Method::POST, "/crud/payments")
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(raw(exact))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.text().await.expect("body").contains(exact));
    let exact_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM app.payments WHERE amount::text = $1")
            .bind(exact)
            .fetch_one(&app.db)
            .await
            .expect("count");
    assert_eq!(
        exact_rows, 4,
        "flow, data API, CSV and CRUD all stored every digit"
    );
    let id: i64 = sqlx::query_scalar("SELECT min(id) FROM app.payments")
        .fetch_one(&app.db)
        .await
        .expect("id");
    let other = "98765432109876543210.0987654321";
    let resp = app
        .api(Method::PATCH, &format!("/crud/payments/{id}"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(raw(other))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.expect("body").contains(other));
    let resp = app
        .api(Method::GET, &format!("/crud/payments/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert!(resp.text().await.expect("body").contains(other));
    let resp = app
        .api(Method::GET, "/crud/payments")
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    assert!(resp.text().await.expect("body").contains(exact));
}

#[tokio::test]
async fn a_write_whose_row_cannot_be_read_stores_nothing() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "docs", "fields": [{"name": "body", "type": "json"}]}))
        .await;
    // JSON nested deeper than the engine parses, built by a script; the write goes straight
    // to a plain respond (the single-write shortcut).
    app.publish(&flow(
        "deep",
        "POST",
        "/deep",
        "public",
        json!({
            "build": {"type": "script", "as": "deep",
                      "code": "let a = []; for i in 0..200 { a = [a]; } a", "next": {"ok": "ins"}},
            "ins": {"type": "db.insert", "table": "docs", "values": {"body": {"$rhai": "deep"}},
                    "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
        }),
        "build",
    ))
    .await;
    let (status, body) = app.send(app.api(Method::POST, "/deep")).await;
    assert!(status >= 500, "{status} {body}");
    assert_eq!(count(&app, "docs").await, 0, "a 5xx write was stored");
}

// ---------------------------------------------------------------------------------------------
// Item 8

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test]
async fn a_db_sql_result_over_the_cap_is_refused_before_it_is_sent() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "notes", "fields": [{"name": "body", "type": "text"}]}))
        .await;
    app.publish(&flow(
        "big",
        "GET",
        "/big",
        "public",
        json!({
            "sql": {"type": "db.sql", "as": "rows", "next": {"ok": "reply"},
                    "sql": "select repeat('x', 1048576) as s from generate_series(1, 50)"},
            "reply": {"type": "respond", "body": {"$rhai": "rows"}}
        }),
        "sql",
    ))
    .await;
    let before = resident_bytes();
    let (status, body) = app.send(app.api(Method::GET, "/big")).await;
    let after = resident_bytes();
    eprintln!("resident memory: {before} -> {after} bytes");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "db.result_too_large", "{body}");
    assert!(
        after < before + 100 * 1024 * 1024,
        "resident memory grew from {before} to {after}"
    );
}

#[tokio::test]
async fn a_public_list_of_large_rows_is_refused() {
    let app = spawn_app().await;
    app.create_table(&common::example("auth/users.table.json"))
        .await;
    app.publish(&common::example("auth/signup.flow.json")).await;
    let token = end_user(&app, "lists@example.com").await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables?crud=publish")
                .json(&json!({"name": "blobs", "fields": [{"name": "body", "type": "text"}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    sqlx::query(
        "INSERT INTO app.blobs (body) SELECT repeat('x', 1048576) FROM generate_series(1, 100)",
    )
    .execute(&app.db)
    .await
    .expect("rows");
    let before = resident_bytes();
    let (status, body) = app
        .send(app.api(Method::GET, "/blobs?limit=100").bearer_auth(&token))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "db.result_too_large", "{body}");
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/blobs/rows?limit=100"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "row.result_too_large", "{body}");
    let after = resident_bytes();
    eprintln!("resident memory: {before} -> {after} bytes");
    assert!(
        after < before + 150 * 1024 * 1024,
        "resident memory grew from {before} to {after}"
    );
    // A page within the cap is served.
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/blobs/rows?limit=3"))
        .await;
    assert_eq!(status, 200, "{}", body["error"]);
}

#[tokio::test]
async fn single_rows_over_a_small_cap_are_refused_and_their_writes_rolled_back() {
    let app = spawn_app_with(|c| c.max_result_bytes = 64 * 1024).await;
    app.create_table(&json!({"name": "notes", "fields": [{"name": "body", "type": "text"}]}))
        .await;
    app.publish(&flow("add", "POST", "/notes", "public", json!({
        "ins": {"type": "db.insert", "table": "notes", "values": {"body": {"$rhai": "request.body.body"}},
                "as": "row", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
    }), "ins")).await;
    app.publish(&flow("note", "GET", "/notes/{id}", "public", json!({
        "get": {"type": "db.get", "table": "notes", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"found": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "row"}}
    }), "get")).await;
    let big = "y".repeat(100 * 1024);
    let (status, body) = app
        .send(app.api(Method::POST, "/notes").json(&json!({"body": big})))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "db.result_too_large", "{body}");
    assert_eq!(
        count(&app, "notes").await,
        0,
        "the refused write is rolled back"
    );
    let (status, _) = app
        .send(
            app.api(Method::POST, "/notes")
                .json(&json!({"body": "small"})),
        )
        .await;
    assert_eq!(status, 201);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app.notes (body) VALUES (repeat('z', 100 * 1024)) RETURNING id",
    )
    .fetch_one(&app.db)
    .await
    .expect("row");
    let (status, body) = app
        .send(app.api(Method::GET, &format!("/notes/{id}")))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "db.result_too_large", "{body}");
}
