//! Access rules on tables: flows of `public` and `user` endpoints see and change only the rows
//! their table's rules let through; admin endpoints and nodes that bypass see everything; a
//! table change that breaks a rule is refused; a changed rule is served at once. Real Postgres.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn flow(name: &str, method: &str, path: &str, auth: &str, entry: &str, nodes: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": method, "path": path, "auth": auth},
           "entry": entry, "nodes": nodes})
}

fn owner_only() -> Value {
    let mine = json!({"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}});
    json!({"list": mine, "view": mine, "update": mine, "delete": mine})
}

/// The notes table with owner-only rules, two rows (owner 1 and owner 2), the endpoints, and a
/// token for each user plus an admin.
async fn setup(app: &TestApp) -> (String, String, String) {
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "title", "type": "text"},
        {"name": "owner", "type": "integer"}
    ], "rules": owner_only()}))
        .await;
    sqlx::query("INSERT INTO app.notes (title, owner) VALUES ('one', 1), ('two', 2)")
        .execute(&app.db)
        .await
        .expect("rows");
    let reply = |v: &str| json!({"type": "respond", "body": {"$rhai": v}});
    // Hands out tokens for the test (a login flow without passwords).
    app.publish(&flow("token", "POST", "/token", "public", "issue", json!({
        "issue": {"type": "auth.issue_token", "sub": {"$rhai": "request.body.id"}, "expires_in": 600,
                  "claims": {"role": {"$rhai": "request.body.role"}}, "as": "s", "next": {"ok": "reply"}},
        "reply": reply("s.token")
    }))).await;
    for (name, auth) in [
        ("list_notes", "user"),
        ("list_public", "public"),
        ("list_admin", "admin"),
    ] {
        let path = format!("/{name}");
        app.publish(&flow(name, "GET", &path, auth, "q", json!({
            "q": {"type": "db.query", "table": "notes", "as": "rows", "order_by": [{"column": "id"}], "next": {"ok": "reply"}},
            "reply": reply("rows")
        }))).await;
    }
    app.publish(&flow("list_bypass", "GET", "/list_bypass", "user", "q", json!({
        "q": {"type": "db.query", "table": "notes", "as": "rows", "order_by": [{"column": "id"}],
              "rules": {"bypass": "counts every note for the dashboard"}, "next": {"ok": "reply"}},
        "reply": reply("rows")
    }))).await;
    app.publish(&flow("get_note", "GET", "/notes/{id}", "user", "g", json!({
        "g": {"type": "db.get", "table": "notes", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"found": "reply"}},
        "reply": reply("row")
    }))).await;
    app.publish(&flow("rename_note", "PATCH", "/notes/{id}", "user", "u", json!({
        "u": {"type": "db.update", "table": "notes", "id": {"$rhai": "request.params.id"},
              "values": {"title": {"$rhai": "request.body.title"}}, "as": "row", "next": {"ok": "reply"}},
        "reply": reply("row")
    }))).await;
    app.publish(&flow("delete_note", "DELETE", "/notes/{id}", "user", "d", json!({
        "d": {"type": "db.delete", "table": "notes", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"ok": "reply"}},
        "reply": reply("row")
    }))).await;
    let token = |id: &str, role: &str| {
        let app = app.clone();
        let body = json!({"id": id, "role": role});
        async move {
            let (status, token) = app.send(app.api(Method::POST, "/token").json(&body)).await;
            assert_eq!(status, 200, "{token}");
            token.as_str().expect("a token").to_string()
        }
    };
    (
        token("1", "member").await,
        token("2", "member").await,
        token("9", "admin").await,
    )
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.api(method, path);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    app.send(req).await
}

/// Changes table `name` to `def` (with the version it has now), confirming the drop of `drop`.
async fn change_table(app: &TestApp, name: &str, def: Value, drop: &[&str]) -> (u16, Value) {
    let (_, table) = app
        .send(app.admin(Method::GET, &format!("/tables/{name}")))
        .await;
    app.send(
        app.admin(Method::PUT, &format!("/tables/{name}"))
            .header("if-match", table["version"].to_string())
            .json(&json!({"table": def, "confirm_drop": drop})),
    )
    .await
}

/// The answer is 403 `rule.denied`.
fn assert_denied(status: u16, body: &Value) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("rule.denied")),
        "{body}"
    );
}

fn titles(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r["title"].as_str().unwrap_or(""))
        .collect()
}

async fn stored(app: &TestApp) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, title FROM app.notes ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("notes")
}

#[tokio::test]
async fn no_user_reaches_another_users_rows_through_any_database_node() {
    let app = spawn_app().await;
    let (ann, bob, admin) = setup(&app).await;

    // Lists are filtered per caller; an anonymous caller of a public endpoint sees nothing.
    let (s, rows) = call(&app, Method::GET, "/list_notes", Some(&ann), None).await;
    assert_eq!((s, titles(&rows)), (200, vec!["one"]), "{rows}");
    let (s, rows) = call(&app, Method::GET, "/list_notes", Some(&bob), None).await;
    assert_eq!((s, titles(&rows)), (200, vec!["two"]), "{rows}");
    let (s, rows) = call(&app, Method::GET, "/list_public", None, None).await;
    assert_eq!((s, titles(&rows)), (200, Vec::<&str>::new()), "{rows}");

    // Another user's row answers 404, as a missing one would: no existence leak.
    let (s, body) = call(&app, Method::GET, "/notes/2", Some(&ann), None).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(body["error"]["code"], "db.not_found");
    let (s, row) = call(&app, Method::GET, "/notes/1", Some(&ann), None).await;
    assert_eq!((s, row["title"].as_str()), (200, Some("one")), "{row}");

    // Updates and deletes of another user's row change nothing.
    let (s, body) = call(
        &app,
        Method::PATCH,
        "/notes/2",
        Some(&ann),
        Some(json!({"title": "mine now"})),
    )
    .await;
    assert_eq!(s, 404, "{body}");
    let (s, body) = call(&app, Method::DELETE, "/notes/2", Some(&ann), None).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(stored(&app).await, [(1, "one".into()), (2, "two".into())]);
    let (s, row) = call(
        &app,
        Method::PATCH,
        "/notes/2",
        Some(&bob),
        Some(json!({"title": "bob's"})),
    )
    .await;
    assert_eq!((s, row["title"].as_str()), (200, Some("bob's")), "{row}");

    // Admin endpoints and a node that bypasses, with its reason, see every row.
    let (s, rows) = call(&app, Method::GET, "/list_admin", Some(&admin), None).await;
    assert_eq!((s, titles(&rows)), (200, vec!["one", "bob's"]), "{rows}");
    let (s, rows) = call(&app, Method::GET, "/list_bypass", Some(&ann), None).await;
    assert_eq!((s, titles(&rows)), (200, vec!["one", "bob's"]), "{rows}");
    // The API document marks the bypass by node id, without its reason.
    let (_, doc) = app.send(app.api(Method::GET, "/openapi.json")).await;
    assert_eq!(
        doc["paths"]["/list_bypass"]["get"]["x-sluice-rules-bypass"],
        json!(["q"])
    );
    assert!(
        doc["paths"]["/list_notes"]["get"]
            .get("x-sluice-rules-bypass")
            .is_none()
    );
    assert!(!doc.to_string().contains("counts every note"));

    let (s, _) = call(&app, Method::DELETE, "/notes/1", Some(&ann), None).await;
    assert_eq!(s, 200);
    assert_eq!(stored(&app).await, [(2, "bob's".into())]);
}

#[tokio::test]
async fn a_table_change_that_breaks_a_rule_is_refused_and_a_changed_rule_is_served_at_once() {
    let app = spawn_app().await;
    let (ann, _, _) = setup(&app).await;
    // A second instance on the same database, as behind a load balancer.
    let other = common::spawn_app_on(&app.db_url, &app.db_name, |_| {}).await;
    let (s, rows) = call(&other, Method::GET, "/list_notes", Some(&ann), None).await;
    assert_eq!((s, titles(&rows)), (200, vec!["one"]), "{rows}");
    let (_, table) = app.send(app.admin(Method::GET, "/tables/notes")).await;
    // Dropping the field the rules read is refused, naming each rule.
    let mut dropped = json!({"name": "notes", "fields": [table["fields"][0].clone()], "rules": table["rules"].clone()});
    let (s, body) = change_table(&app, "notes", dropped.clone(), &["owner"]).await;
    assert_eq!(s, 422, "{body}");
    let pointers: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["pointer"].as_str())
        .collect();
    assert!(
        pointers.contains(&"/table/rules/list/where/field"),
        "{body}"
    );
    assert!(
        pointers.contains(&"/table/rules/delete/where/field"),
        "{body}"
    );
    assert_eq!(stored(&app).await.len(), 2, "nothing changed");

    // Without rules on `list`, the list shows every row from the next request on.
    dropped["fields"] = table["fields"].clone();
    dropped["rules"]["list"] = Value::Null;
    dropped["rules"]
        .as_object_mut()
        .expect("rules")
        .remove("list");
    let (s, body) = change_table(&app, "notes", dropped, &[]).await;
    assert_eq!(s, 200, "{body}");
    let (s, rows) = call(&app, Method::GET, "/list_notes", Some(&ann), None).await;
    assert_eq!((s, titles(&rows)), (200, vec!["one", "two"]), "{rows}");
    let (s, _) = call(&app, Method::GET, "/notes/2", Some(&ann), None).await;
    assert_eq!(s, 404, "view is still owner-only");
    // The other instance serves the changed rule after its reload, like any table change.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (s, rows) = call(&other, Method::GET, "/list_notes", Some(&ann), None).await;
        if (s, titles(&rows)) == (200, vec!["one", "two"]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other instance still serves the old rule: {rows}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (s, _) = call(&other, Method::GET, "/notes/2", Some(&ann), None).await;
    assert_eq!(s, 404, "view is still owner-only there too");
}

#[tokio::test]
async fn a_debug_run_as_a_user_names_the_rule_that_hid_the_row() {
    let app = spawn_app().await;
    let (ann, _, _) = setup(&app).await;
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "get_note")
        .and_then(|f| f["id"].as_i64())
        .expect("id");
    let (status, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&json!({"params": {"id": "2"}, "token": ann})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"]["status"], 404, "{out}");
    let step = &out["trace"][0];
    assert_eq!(step["node"], "g", "{out}");
    assert_eq!(step["rule"], "notes.view", "{out}");

    // Run as a user without a token: the run panel's "run as user".
    let run = |body: Value| {
        app.admin(Method::POST, &format!("/flows/{id}/run"))
            .json(&body)
    };
    let (_, out) = app
        .send(run(json!({"params": {"id": "1"}, "as_user": {"id": "1"}})))
        .await;
    assert_eq!(out["response"]["status"], 200, "{out}");
    let (_, out) = app
        .send(run(
            json!({"params": {"id": "1"}, "as_user": {"id": "2", "claims": {"role": "member"}}}),
        ))
        .await;
    assert_eq!(out["response"]["status"], 404, "{out}");
    let (status, out) = app
        .send(run(
            json!({"params": {"id": "1"}, "as_user": {"id": "1"}, "token": ann}),
        ))
        .await;
    assert_eq!(status, 400, "{out}");
    let (status, out) = app
        .send(run(json!({"as_user": {"id": "1", "claims": {"exp": 1}}})))
        .await;
    assert_eq!(status, 400, "{out}");
}

#[tokio::test]
async fn nodes_that_cannot_apply_a_rule_must_bypass_it_in_writing() {
    let app = spawn_app().await;
    setup(&app).await;
    let sql = |auth: &str, bypass: Option<&str>| {
        let mut node = json!({"type": "db.sql", "sql": "SELECT count(*) AS n FROM app.notes",
                              "as": "n", "next": {"ok": "reply"}});
        if let Some(why) = bypass {
            node["rules"] = json!({"bypass": why});
        }
        flow(
            "count_notes",
            "GET",
            "/count",
            auth,
            "q",
            json!({
                "q": node, "reply": {"type": "respond", "body": {"$rhai": "n"}}
            }),
        )
    };
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&sql("user", None)))
        .await;
    assert_eq!(status, 422, "{body}");
    let d = &body["error"]["details"][0];
    assert_eq!(d["code"], "flow.rules_not_applied", "{body}");
    assert_eq!(d["pointer"], "/nodes/q/rules", "{body}");
    assert!(
        d["message"].as_str().unwrap_or("").contains("`notes`"),
        "{body}"
    );
    // With a reason, or on an admin endpoint, it is accepted.
    app.publish(&sql("user", Some("a count shows no row")))
        .await;
    app.create_table(&json!({"name": "tags", "fields": [
        {"name": "label", "type": "text", "unique": true},
        {"name": "owner", "type": "integer"}
    ], "rules": {"update": {"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}}}}))
        .await;
    let upsert = flow(
        "upsert_tag",
        "PUT",
        "/tags",
        "user",
        "u",
        json!({
            "u": {"type": "db.upsert", "table": "tags", "values": {"label": "x", "owner": 1}, "on": ["label"],
                  "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": null}
        }),
    );
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&upsert))
        .await;
    assert_eq!(status, 422, "{body}");
    let codes: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"flow.rules_not_applied"), "{body}");
}

#[tokio::test]
async fn adding_rules_that_a_published_flow_cannot_apply_is_refused_naming_the_flow() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "plain", "fields": [{"name": "owner", "type": "integer"}]}))
        .await;
    app.publish(&flow("count_plain", "GET", "/count", "user", "q", json!({
        "q": {"type": "db.sql", "sql": "SELECT count(*) AS n FROM app.plain", "as": "n", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "n"}}
    })))
    .await;
    let (_, table) = app.send(app.admin(Method::GET, "/tables/plain")).await;
    let mut ruled = json!({"name": "plain", "fields": table["fields"].clone()});
    ruled["rules"] =
        json!({"list": {"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}}});
    let (status, body) = change_table(&app, "plain", ruled, &[]).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "table.breaks_flows", "{body}");
    assert!(body.to_string().contains("count_plain"), "{body}");
}

#[tokio::test]
async fn a_create_rule_sets_the_owner_whatever_the_body_says_and_checks_the_new_row() {
    let app = spawn_app().await;
    let (ann, bob, _) = setup(&app).await;
    let (_, table) = app.send(app.admin(Method::GET, "/tables/notes")).await;
    let mut def = json!({"name": "notes", "fields": table["fields"].clone(), "rules": table["rules"].clone()});
    def["rules"]["create"] = json!({"set": {"owner": {"auth": "id"}},
                                    "check": {"field": "title", "op": "ne", "value": "forbidden"}});
    let (s, body) = change_table(&app, "notes", def, &[]).await;
    assert_eq!(s, 200, "{body}");
    let insert = |name: &str, path: &str, auth: &str, values: Value| {
        flow(
            name,
            "POST",
            path,
            auth,
            "i",
            json!({
                "i": {"type": "db.insert", "table": "notes", "values": values, "as": "row", "next": {"ok": "reply"}},
                "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
            }),
        )
    };
    // The body names another owner: the rule's value wins.
    app.publish(&insert(
        "add_note",
        "/notes",
        "user",
        json!({"title": {"$rhai": "request.body.title"}, "owner": {"$rhai": "request.body.owner"}}),
    ))
    .await;
    let (s, row) = call(
        &app,
        Method::POST,
        "/notes",
        Some(&ann),
        Some(json!({"title": "hers", "owner": 2})),
    )
    .await;
    assert_eq!((s, row["owner"].as_i64()), (201, Some(1)), "{row}");
    // A node that does not write the owner gets it from the rule too.
    app.publish(&insert(
        "add_titled",
        "/titled",
        "user",
        json!({"title": {"$rhai": "request.body.title"}}),
    ))
    .await;
    let (s, row) = call(
        &app,
        Method::POST,
        "/titled",
        Some(&bob),
        Some(json!({"title": "his"})),
    )
    .await;
    assert_eq!((s, row["owner"].as_i64()), (201, Some(2)), "{row}");
    // The check refuses a row, naming the rule; nothing is written.
    let before = stored(&app).await.len();
    let (s, body) = call(
        &app,
        Method::POST,
        "/notes",
        Some(&ann),
        Some(json!({"title": "forbidden", "owner": 1})),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "rule.denied", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("notes.create"),
        "{body}"
    );
    // The API document says the create endpoint may answer 403 rule.denied.
    let (doc, _) = app.openapi().await;
    let forbidden = doc["paths"]["/notes"]["post"]["responses"]["403"].to_string();
    assert!(forbidden.contains("rule.denied"), "{forbidden}");
    // An anonymous caller has no id to set: refused.
    app.publish(&insert(
        "add_public",
        "/public_notes",
        "public",
        json!({"title": "anon"}),
    ))
    .await;
    let (s, body) = call(&app, Method::POST, "/public_notes", None, None).await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(stored(&app).await.len(), before);
}

#[tokio::test]
async fn included_rows_obey_their_tables_view_rule_unless_the_node_bypasses() {
    let app = spawn_app().await;
    let (ann, bob, _) = setup(&app).await;
    app.create_table(
        &json!({"name": "authors", "fields": [{"name": "name", "type": "text"}, {"name": "owner", "type": "integer"}],
        "rules": {"view": {"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}}}}),
    )
    .await;
    app.create_table(&json!({"name": "books", "fields": [
        {"name": "title", "type": "text"},
        {"name": "author", "type": "reference", "table": "authors"}]}))
        .await;
    for statement in [
        "INSERT INTO app.authors (name, owner) VALUES ('ann', 1), ('bob', 2)",
        "INSERT INTO app.books (title, author) VALUES ('a', 1), ('b', 2)",
    ] {
        sqlx::query(statement).execute(&app.db).await.expect("rows");
    }
    let list = |name: &str, bypass: bool| {
        let mut q = json!({"type": "db.query", "table": "books", "include": ["author"], "as": "rows",
                           "order_by": [{"column": "id"}], "next": {"ok": "reply"}});
        if bypass {
            q["rules"] = json!({"bypass": "authors are public on this page"});
        }
        flow(
            name,
            "GET",
            &format!("/{name}"),
            "user",
            "q",
            json!({
                "q": q, "reply": {"type": "respond", "body": {"$rhai": "rows"}}
            }),
        )
    };
    app.publish(&list("books", false)).await;
    app.publish(&list("all_books", true)).await;
    let authors = |rows: &Value| -> Vec<Value> {
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|r| r["author"]["name"].clone())
            .collect()
    };
    // Every book is listed (books have no rule); an author the caller may not view reads as
    // null.
    let (s, rows) = call(&app, Method::GET, "/books", Some(&ann), None).await;
    assert_eq!(s, 200, "{rows}");
    assert_eq!(authors(&rows), [json!("ann"), Value::Null], "{rows}");
    let (_, rows) = call(&app, Method::GET, "/books", Some(&bob), None).await;
    assert_eq!(authors(&rows), [Value::Null, json!("bob")], "{rows}");
    let (_, rows) = call(&app, Method::GET, "/all_books", Some(&ann), None).await;
    assert_eq!(authors(&rows), [json!("ann"), json!("bob")], "{rows}");
}

#[tokio::test]
async fn rows_included_from_another_table_obey_its_list_rule_at_every_level() {
    let app = spawn_app().await;
    let (ann, bob, _) = setup(&app).await;
    let mine = json!({"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}});
    app.create_table(&json!({"name": "writers", "fields": [{"name": "name", "type": "text"}]}))
        .await;
    app.create_table(&json!({"name": "letters", "fields": [
        {"name": "body", "type": "text"},
        {"name": "owner", "type": "integer"},
        {"name": "writer", "type": "reference", "table": "writers"}],
        "rules": {"list": mine, "view": mine}}))
        .await;
    app.create_table(&json!({"name": "stamps", "fields": [
        {"name": "label", "type": "text"},
        {"name": "owner", "type": "integer"},
        {"name": "letter", "type": "reference", "table": "letters"}],
        "rules": {"list": mine}}))
        .await;
    for statement in [
        "INSERT INTO app.writers (name) VALUES ('w')",
        "INSERT INTO app.letters (body, owner, writer) VALUES ('to ann', 1, 1), ('to bob', 2, 1), ('also ann', 1, 1)",
        "INSERT INTO app.stamps (label, owner, letter) VALUES ('ann stamp', 1, 1), ('bob stamp on ann letter', 2, 1)",
    ] {
        sqlx::query(statement).execute(&app.db).await.expect("rows");
    }
    let get = |name: &str, bypass: bool| {
        let mut g = json!({"type": "db.get", "table": "writers", "id": 1, "as": "row",
            "include": [{"table": "letters", "by": "writer", "order_by": [{"column": "id"}],
                         "include": [{"table": "stamps", "by": "letter"}]}],
            "next": {"found": "reply"}});
        if bypass {
            g["rules"] = json!({"bypass": "the writer's page shows every letter"});
        }
        flow(
            name,
            "GET",
            &format!("/{name}"),
            "user",
            "g",
            json!({"g": g, "reply": {"type": "respond", "body": {"$rhai": "row"}}}),
        )
    };
    app.publish(&get("writer", false)).await;
    app.publish(&get("writer_all", true)).await;
    let bodies = |row: &Value| -> Vec<String> {
        row["letters"]
            .as_array()
            .expect("letters")
            .iter()
            .map(|l| {
                let stamps: Vec<&str> = l["stamps"]
                    .as_array()
                    .expect("stamps")
                    .iter()
                    .filter_map(|s| s["label"].as_str())
                    .collect();
                format!(
                    "{}: {}",
                    l["body"].as_str().unwrap_or("?"),
                    stamps.join("+")
                )
            })
            .collect()
    };
    let (s, row) = call(&app, Method::GET, "/writer", Some(&ann), None).await;
    assert_eq!(s, 200, "{row}");
    assert_eq!(bodies(&row), ["to ann: ann stamp", "also ann: "], "{row}");
    let (_, row) = call(&app, Method::GET, "/writer", Some(&bob), None).await;
    assert_eq!(bodies(&row), ["to bob: "], "{row}");
    let (_, row) = call(&app, Method::GET, "/writer_all", Some(&bob), None).await;
    assert_eq!(
        bodies(&row),
        [
            "to ann: ann stamp+bob stamp on ann letter",
            "to bob: ",
            "also ann: "
        ],
        "{row}"
    );
}

#[tokio::test]
async fn an_update_rule_limits_the_fields_callers_may_change() {
    let app = spawn_app().await;
    let (ann, _, _) = setup(&app).await;
    let (_, table) = app.send(app.admin(Method::GET, "/tables/notes")).await;
    let mut def = json!({"name": "notes", "fields": table["fields"].clone(), "rules": table["rules"].clone()});
    def["rules"]["update"]["columns"] = json!(["title"]);
    let (s, body) = change_table(&app, "notes", def, &[]).await;
    assert_eq!(s, 200, "{body}");
    app.publish(&flow(
        "patch_note",
        "PATCH",
        "/patch/{id}",
        "user",
        "u",
        json!({
            "u": {"type": "db.update", "table": "notes", "id": {"$rhai": "request.params.id"},
                  "patch": {"$rhai": "request.body"}, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}}
        }),
    ))
    .await;
    // Giving the row away is refused; the title may change.
    let (s, body) = call(
        &app,
        Method::PATCH,
        "/patch/1",
        Some(&ann),
        Some(json!({"owner": 2})),
    )
    .await;
    assert_denied(s, &body);
    let (s, row) = call(
        &app,
        Method::PATCH,
        "/patch/1",
        Some(&ann),
        Some(json!({"title": "renamed"})),
    )
    .await;
    assert_eq!((s, row["owner"].as_i64()), (200, Some(1)), "{row}");
    // A node whose fixed values write another field must bypass.
    let fixed = flow(
        "give_away",
        "POST",
        "/give/{id}",
        "user",
        "u",
        json!({
            "u": {"type": "db.update", "table": "notes", "id": {"$rhai": "request.params.id"},
                  "values": {"owner": 2}, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": null}
        }),
    );
    let (s, body) = app
        .send(app.admin(Method::POST, "/flows").json(&fixed))
        .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["code"], "flow.rules_not_applied",
        "{body}"
    );
}

#[tokio::test]
async fn generated_crud_endpoints_get_owner_only_rules_and_obey_them() {
    let app = spawn_app().await;
    let (ann, bob, _) = setup(&app).await;
    app.create_table(&json!({"name": "users", "fields": [{"name": "name", "type": "text"}]}))
        .await;
    sqlx::query("INSERT INTO app.users (name) VALUES ('ann'), ('bob')")
        .execute(&app.db)
        .await
        .expect("users");
    app.create_table(&json!({"name": "items", "fields": [
        {"name": "title", "type": "text"},
        {"name": "owner", "type": "reference", "table": "users"}]}))
        .await;
    // A table with a users-linked owner and no rules gets owner-only rules with its endpoints.
    let (s, body) = app
        .send(
            app.admin(Method::POST, "/tables/items/crud")
                .json(&json!({"publish": true, "auth": "user"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["owner_rules_written"], true, "{body}");
    let (_, table) = app.send(app.admin(Method::GET, "/tables/items")).await;
    let mine = json!({"field": "owner", "op": "eq", "value": {"auth": "id"}});
    assert_eq!(table["rules"]["list"]["where"], mine, "{table}");
    assert_eq!(table["rules"]["update"]["check"], mine, "{table}");
    // Asked not to, or for another auth level, it writes none.
    app.create_table(&json!({"name": "shared", "fields": [
        {"name": "title", "type": "text"},
        {"name": "owner", "type": "reference", "table": "users"}]}))
        .await;
    let (s, body) = app
        .send(
            app.admin(Method::POST, "/tables/shared/crud")
                .json(&json!({"owner_rules": false})),
        )
        .await;
    assert_eq!(
        (s, &body["owner_rules_written"]),
        (201, &json!(false)),
        "{body}"
    );
    let (_, table) = app.send(app.admin(Method::GET, "/tables/shared")).await;
    assert!(table.get("rules").is_none_or(Value::is_null), "{table}");

    // Each creates one item; naming another owner does not make it theirs.
    let (s, a) = call(
        &app,
        Method::POST,
        "/items",
        Some(&ann),
        Some(json!({"title": "a", "owner": 2})),
    )
    .await;
    assert_eq!((s, a["owner"].as_i64()), (201, Some(1)), "{a}");
    let (s, b) = call(
        &app,
        Method::POST,
        "/items",
        Some(&bob),
        Some(json!({"title": "b"})),
    )
    .await;
    assert_eq!((s, b["owner"].as_i64()), (201, Some(2)), "{b}");
    let (a, b) = (a["id"].as_i64().expect("id"), b["id"].as_i64().expect("id"));

    let (s, list) = call(&app, Method::GET, "/items", Some(&ann), None).await;
    assert_eq!((s, titles(&list["items"])), (200, vec!["a"]), "{list}");
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"title": "taken"}))),
        (Method::DELETE, None),
    ] {
        let (s, out) = call(
            &app,
            method.clone(),
            &format!("/items/{b}"),
            Some(&ann),
            body,
        )
        .await;
        assert_eq!(s, 404, "{method} of another user's item: {out}");
    }
    // Nor can the owner give an item away.
    let (s, out) = call(
        &app,
        Method::PATCH,
        &format!("/items/{a}"),
        Some(&ann),
        Some(json!({"owner": 2})),
    )
    .await;
    assert_denied(s, &out);
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, title, owner FROM app.items ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("items");
    assert_eq!(rows, [(a, "a".into(), 1), (b, "b".into(), 2)]);
}

/// The caller is a member of the row's team (the relational form of a rule).
fn in_team(field: &str) -> Value {
    json!({"exists": {"table": "members", "where": {"and": [
        {"field": "team", "op": "eq", "value": {"row": field}},
        {"field": "member", "op": "eq", "value": {"auth": "id"}}
    ]}}})
}

#[tokio::test]
async fn team_rules_with_exists_let_members_reach_their_teams_rows_only() {
    let app = spawn_app().await;
    let (ann, bob, admin) = setup(&app).await;
    app.create_table(&json!({"name": "members", "fields": [
        {"name": "team", "type": "text"}, {"name": "member", "type": "integer"}]}))
        .await;
    let team = json!({"where": in_team("team")});
    app.create_table(&json!({"name": "projects", "fields": [
        {"name": "name", "type": "text"}, {"name": "team", "type": "text"}],
        "rules": {"list": team, "view": team, "delete": team,
                  "update": {"where": in_team("team"), "check": in_team("team")},
                  "create": {"check": in_team("team")}}}))
        .await;
    for statement in [
        "INSERT INTO app.members (team, member) VALUES ('a', 1), ('b', 2)",
        "INSERT INTO app.projects (name, team) VALUES ('pa', 'a'), ('pb', 'b')",
    ] {
        sqlx::query(statement).execute(&app.db).await.expect("rows");
    }
    let reply = |v: &str| json!({"type": "respond", "body": {"$rhai": v}});
    let publish = |name: &str, method: &str, path: &str, auth: &str, node: Value| {
        flow(
            name,
            method,
            path,
            auth,
            "n",
            json!({"n": node, "reply": reply("row")}),
        )
    };
    app.publish(&publish("projects", "GET", "/projects", "user",
        json!({"type": "db.query", "table": "projects", "as": "row", "order_by": [{"column": "id"}], "next": {"ok": "reply"}})))
        .await;
    app.publish(&publish("projects_admin", "GET", "/admin/projects", "admin",
        json!({"type": "db.query", "table": "projects", "as": "row", "order_by": [{"column": "id"}], "next": {"ok": "reply"}})))
        .await;
    app.publish(&publish("project", "GET", "/projects/{id}", "user",
        json!({"type": "db.get", "table": "projects", "id": {"$rhai": "request.params.id"}, "as": "row", "next": {"found": "reply"}})))
        .await;
    app.publish(&publish(
        "move_project",
        "PATCH",
        "/projects/{id}",
        "user",
        json!({"type": "db.update", "table": "projects", "id": {"$rhai": "request.params.id"},
               "patch": {"$rhai": "request.body"}, "as": "row", "next": {"ok": "reply"}}),
    ))
    .await;
    app.publish(&publish("add_project", "POST", "/projects", "user",
        json!({"type": "db.insert", "table": "projects", "as": "row", "next": {"ok": "reply"},
               "values": {"name": {"$rhai": "request.body.name"}, "team": {"$rhai": "request.body.team"}}})))
        .await;
    let names = |rows: &Value| -> Vec<String> {
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|r| r["name"].as_str().unwrap_or("").to_string())
            .collect()
    };

    let (s, rows) = call(&app, Method::GET, "/projects", Some(&ann), None).await;
    assert_eq!((s, names(&rows)), (200, vec!["pa".to_string()]), "{rows}");
    let (s, rows) = call(&app, Method::GET, "/projects", Some(&bob), None).await;
    assert_eq!((s, names(&rows)), (200, vec!["pb".to_string()]), "{rows}");
    let (_, rows) = call(&app, Method::GET, "/projects", None, None).await;
    assert_ne!(rows.as_array().map(Vec::len), Some(2), "anonymous: {rows}");
    let (s, rows) = call(&app, Method::GET, "/admin/projects", Some(&admin), None).await;
    assert_eq!(
        (s, names(&rows).len()),
        (200, 2),
        "admins see every team: {rows}"
    );
    let (s, _) = call(&app, Method::GET, "/projects/2", Some(&ann), None).await;
    assert_eq!(s, 404, "another team's project does not exist for ann");
    let (s, row) = call(&app, Method::GET, "/projects/1", Some(&ann), None).await;
    assert_eq!((s, row["name"].as_str()), (200, Some("pa")), "{row}");

    // Membership is read at run time: ann joins team b and sees its project at once.
    sqlx::query("INSERT INTO app.members (team, member) VALUES ('b', 1)")
        .execute(&app.db)
        .await
        .expect("join");
    let (_, rows) = call(&app, Method::GET, "/projects", Some(&ann), None).await;
    assert_eq!(names(&rows), ["pa", "pb"], "{rows}");
    sqlx::query("DELETE FROM app.members WHERE team = 'b' AND member = 1")
        .execute(&app.db)
        .await
        .expect("leave");

    // The update check judges the row after the change: ann cannot give her project to a team
    // she is not in, and nothing changes.
    let (s, body) = call(
        &app,
        Method::PATCH,
        "/projects/1",
        Some(&ann),
        Some(json!({"team": "b"})),
    )
    .await;
    assert_denied(s, &body);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("projects.update"),
        "{body}"
    );
    let team_of_1: String = sqlx::query_scalar("SELECT team FROM app.projects WHERE id = 1")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert_eq!(team_of_1, "a");
    let (s, row) = call(
        &app,
        Method::PATCH,
        "/projects/1",
        Some(&ann),
        Some(json!({"name": "pa2"})),
    )
    .await;
    assert_eq!((s, row["name"].as_str()), (200, Some("pa2")), "{row}");
    // Bob cannot reach ann's project to change it at all.
    let (s, _) = call(
        &app,
        Method::PATCH,
        "/projects/1",
        Some(&bob),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 404);

    // The create check: a new project only in a team of the caller's; nothing is written
    // otherwise.
    let (s, body) = call(
        &app,
        Method::POST,
        "/projects",
        Some(&ann),
        Some(json!({"name": "pc", "team": "b"})),
    )
    .await;
    assert_denied(s, &body);
    let (s, row) = call(
        &app,
        Method::POST,
        "/projects",
        Some(&ann),
        Some(json!({"name": "pc", "team": "a"})),
    )
    .await;
    assert_eq!((s, row["team"].as_str()), (200, Some("a")), "{row}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 3, "the refused project was not written");

    // A change to members that would break the projects rules is refused, naming them; so is
    // dropping members.
    let (s, body) = change_table(
        &app,
        "members",
        json!({"name": "members", "fields": [{"name": "team", "type": "text"}]}),
        &["member"],
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body.to_string()
            .contains("the access rules of table `projects`"),
        "{body}"
    );
    let (s, body) = app
        .send(app.admin(Method::DELETE, "/tables/members?confirm=members"))
        .await;
    assert_eq!(s, 409, "{body}");
    assert!(body.to_string().contains("projects"), "{body}");
}

#[tokio::test]
async fn a_rule_may_read_a_header_of_the_request_and_a_missing_one_matches_nothing() {
    let app = spawn_app().await;
    let (ann, _, _) = setup(&app).await;
    app.create_table(&json!({"name": "docs", "fields": [
        {"name": "title", "type": "text"}, {"name": "tenant", "type": "text"}],
        "rules": {"list": {"where": {"field": "tenant", "op": "eq", "value": {"request": "headers.X-Tenant"}}}}}))
    .await;
    sqlx::query("INSERT INTO app.docs (title, tenant) VALUES ('one', 'a'), ('two', 'b')")
        .execute(&app.db)
        .await
        .expect("rows");
    app.publish(&flow("documents", "GET", "/documents", "user", "q", json!({
        "q": {"type": "db.query", "table": "docs", "as": "rows", "order_by": [{"column": "id"}], "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "rows"}}
    })))
    .await;
    let list = |tenant: Option<&str>| {
        let mut req = app.api(Method::GET, "/documents").bearer_auth(&ann);
        if let Some(t) = tenant {
            req = req.header("x-tenant", t);
        }
        app.send(req)
    };
    let (s, rows) = list(Some("b")).await;
    assert_eq!((s, titles(&rows)), (200, vec!["two"]), "{rows}");
    let (_, rows) = list(Some("b' OR 'a' = 'a")).await;
    assert_eq!(
        titles(&rows),
        Vec::<&str>::new(),
        "a value, never SQL: {rows}"
    );
    let (_, rows) = list(None).await;
    assert_eq!(
        titles(&rows),
        Vec::<&str>::new(),
        "no header, no rows: {rows}"
    );
}
