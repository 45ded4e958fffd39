//! Hostile and odd values from anonymous clients: each must end in a 4xx in the JSON envelope
//! with a pointer to the value at fault, never a 500, and never name Sluice's internal
//! constraints, relations or sequences. Also: input schema formats, integers, OpenAPI bounds,
//! CSV formula cells and ids, and column renames reaching input schemas.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

fn pointers(body: &Value) -> Vec<&str> {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["pointer"].as_str())
        .collect()
}

/// A 400 `db.invalid_value` (or `input.invalid`) naming `pointer`, with nothing internal.
#[track_caller]
fn assert_refused(status: u16, body: &Value, want_code: &str, pointer: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(body), want_code, "{body}");
    assert!(pointers(body).contains(&pointer), "{pointer} in {body}");
    assert_no_internal_names(body);
}

#[track_caller]
fn assert_no_internal_names(body: &Value) {
    let text = body.to_string();
    for internal in [
        "app.",
        "_pkey",
        "_key\"",
        "_fkey",
        "_seq",
        "constraint",
        "relation",
        "t_0",
    ] {
        assert!(!text.contains(internal), "`{internal}` in {body}");
    }
}

fn flow(name: &str, method: &str, path: &str, input: Value, nodes: Value, entry: &str) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": method, "path": path}, "input": input,
           "entry": entry, "nodes": nodes})
}

/// A table of every type a value can be refused by; `POST /things` inserts the values an
/// expression computes from the body, `POST /things/named` binds `request.body.name` as it is.
async fn things(app: &TestApp) {
    app.create_table(&json!({"name": "things", "fields": [
        {"name": "name", "type": "text"},
        {"name": "at", "type": "timestamp"},
        {"name": "day", "type": "date"},
        {"name": "n", "type": "integer"},
        {"name": "u", "type": "uuid"},
        {"name": "meta", "type": "json"},
        {"name": "level", "type": "enum", "values": ["low", "high"]},
        {"name": "code", "type": "text", "unique": true}
    ]}))
    .await;
    let fields = ["name", "at", "day", "n", "u", "meta", "level", "code"];
    let values: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| {
            let e = format!("if \"{f}\" in request.body {{ request.body.{f} }} else {{ () }}");
            (f.to_string(), json!({"$rhai": e}))
        })
        .collect();
    app.publish(&flow(
        "create_named_thing",
        "POST",
        "/things/named",
        json!({}),
        json!({
            "insert": {"type": "db.insert", "table": "things", "as": "row",
                       "values": {"name": {"$rhai": "request.body.name"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
        }),
        "insert",
    ))
    .await;
    app.publish(&flow(
        "create_thing",
        "POST",
        "/things",
        json!({}),
        json!({
            "insert": {"type": "db.insert", "table": "things", "as": "row",
                       "values": values, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
        }),
        "insert",
    ))
    .await;
    app.publish(&flow(
        "patch_thing",
        "PATCH",
        "/things/{id}",
        json!({}),
        json!({
            "update": {"type": "db.update", "table": "things", "id": {"$rhai": "request.params.id"},
                       "patch": {"$rhai": "request.body"}, "as": "row",
                       "next": {"ok": "reply", "not_found": "missing"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}},
            "missing": {"type": "fail", "status": 404, "code": "thing.not_found", "message": "no such thing"}
        }),
        "update",
    ))
    .await;
    app.publish(&flow(
        "find_things",
        "GET",
        "/things",
        json!({}),
        json!({
            "find": {"type": "db.query", "table": "things", "as": "rows",
                     "filter": {"and": [{"field": "name", "op": "eq",
                                         "value": {"$rhai": "if \"name\" in request.query { request.query.name } else { () }"}}]},
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "rows"}}
        }),
        "find",
    ))
    .await;
}

#[tokio::test]
async fn nul_bytes_in_created_updated_and_filtered_values_are_400_with_a_pointer() {
    let app = spawn_app().await;
    things(&app).await;
    let post = |path: &str, body: Value| app.api(Method::POST, path).json(&body);

    let (status, body) = app
        .send(post("/things/named", json!({"name": "a\u{0}b"})))
        .await;
    assert_refused(status, &body, "db.invalid_value", "/body/name");
    let (status, body) = app
        .send(post("/things", json!({"meta": {"k": ["x\u{0}"]}})))
        .await;
    assert_refused(
        status,
        &body,
        "db.invalid_value",
        "/nodes/insert/values/meta",
    );
    let (status, body) = app
        .send(post("/things", json!({"meta": {"k\u{0}": 1}})))
        .await;
    assert_refused(
        status,
        &body,
        "db.invalid_value",
        "/nodes/insert/values/meta",
    );
    let (status, body) = app.send(post("/things", json!({"name": "a\u{0}b"}))).await;
    assert_refused(
        status,
        &body,
        "db.invalid_value",
        "/nodes/insert/values/name",
    );

    let (status, body) = app.send(post("/things", json!({"name": "ok"}))).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, body) = app
        .send(
            app.api(Method::PATCH, &format!("/things/{id}"))
                .json(&json!({"name": "\u{0}"})),
        )
        .await;
    assert_refused(status, &body, "db.invalid_value", "/body/name");

    let (status, body) = app.send(app.api(Method::GET, "/things?name=a%00b")).await;
    assert_refused(status, &body, "db.invalid_value", "/nodes/find/filter");
    let (status, body) = app.send(app.api(Method::GET, "/things?name=ok")).await;
    assert_eq!((status, body[0]["name"].clone()), (200, json!("ok")));
}

#[tokio::test]
async fn nul_bytes_in_signup_and_login_are_400_with_a_pointer() {
    let app = spawn_app().await;
    app.load_auth_example().await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/auth/signup")
                .json(&json!({"email": "a\u{0}@example.com", "password": "long enough"})),
        )
        .await;
    assert_refused(
        status,
        &body,
        "db.invalid_value",
        "/nodes/insert/values/email",
    );
    let (status, body) = app
        .send(
            app.api(Method::POST, "/auth/signup").json(
                &json!({"email": "a@example.com", "password": "long enough", "name": "x\u{0}"}),
            ),
        )
        .await;
    assert_refused(
        status,
        &body,
        "db.invalid_value",
        "/nodes/insert/values/name",
    );
    let (status, body) = app
        .send(
            app.api(Method::POST, "/auth/login")
                .json(&json!({"email": "a\u{0}@example.com", "password": "long enough"})),
        )
        .await;
    assert_refused(status, &body, "db.invalid_value", "/nodes/check/email");
}

#[tokio::test]
async fn values_postgres_refuses_are_400_naming_the_node_never_500() {
    let app = spawn_app().await;
    things(&app).await;
    for (body, what) in [
        (
            json!({"at": "2026-01-01T00:00:00+16:00"}),
            "offset beyond 15:59",
        ),
        (
            json!({"at": "2026-01-01T00:00:00-23:59"}),
            "negative offset beyond 15:59",
        ),
        (json!({"at": "300000-01-01T00:00:00Z"}), "year 300000"),
        (json!({"at": "infinity and beyond"}), "not a timestamp"),
        (
            json!({"day": "5874898-01-01"}),
            "date beyond Postgres' range",
        ),
        (json!({"day": "2026-02-30"}), "no such day"),
        (json!({"n": 9223372036854775808u64}), "integer beyond int64"),
        (json!({"n": 1e300}), "huge float into an integer"),
        (json!({"n": "twelve"}), "text into an integer"),
        (json!({"u": "not-a-uuid"}), "invalid uuid"),
        (json!({"level": "medium"}), "enum value"),
    ] {
        let (status, answer) = app.send(app.api(Method::POST, "/things").json(&body)).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(code(&answer), "db.invalid_value", "{what}: {answer}");
        assert!(!pointers(&answer).is_empty(), "{what}: {answer}");
        assert_no_internal_names(&answer);
    }
    // Nothing was written by any of them.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.things")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_data_api_refuses_the_same_values_with_the_field_pointer() {
    let app = spawn_app().await;
    things(&app).await;
    for (row, pointer) in [
        (json!({"name": "a\u{0}"}), "/name"),
        (json!({"at": "2026-01-01T00:00:00+16:00"}), "/at"),
        (json!({"meta": {"a": "\u{0}"}}), "/meta"),
        (json!({"n": 9223372036854775808u64}), "/n"),
    ] {
        let (status, body) = app
            .send(app.admin(Method::POST, "/tables/things/rows").json(&row))
            .await;
        assert_eq!(status, 400, "{row}: {body}");
        assert!(pointers(&body).contains(&pointer), "{row}: {body}");
    }
}

#[tokio::test]
async fn duplicate_and_missing_reference_answers_name_the_field_not_the_constraint() {
    let app = spawn_app().await;
    things(&app).await;
    let (status, body) = app
        .send(app.api(Method::POST, "/things").json(&json!({"code": "x"})))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .send(app.api(Method::POST, "/things").json(&json!({"code": "x"})))
        .await;
    assert_eq!((status, code(&body)), (409, "db.conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`code`"),
        "{body}"
    );
    assert!(
        body["error"]["details"].as_array().is_some_and(|d| d
            .iter()
            .any(|x| x["pointer"] == "/code" && x["rule"] == "unique")),
        "{body}"
    );
    assert_no_internal_names(&body);

    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "thing", "type": "reference", "table": "things", "required": true}
    ]}))
    .await;
    app.publish(&flow(
        "create_note",
        "POST",
        "/notes",
        json!({}),
        json!({
            "insert": {"type": "db.insert", "table": "notes", "as": "row",
                       "values": {"thing": {"$rhai": "request.body.thing"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
        }),
        "insert",
    ))
    .await;
    let (status, body) = app
        .send(app.api(Method::POST, "/notes").json(&json!({"thing": 999})))
        .await;
    assert_eq!((status, code(&body)), (409, "db.conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("`thing`"),
        "{body}"
    );
    assert_no_internal_names(&body);
}

/// `POST /typed` checks a body with formats and an integer, inserts `n` and `at` into
/// `things`, and answers the row.
async fn typed(app: &TestApp) {
    app.publish(&flow(
        "typed",
        "POST",
        "/typed",
        json!({"body": {"type": "object", "properties": {
            "at": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "email": {"type": "string", "format": "email"},
            "u": {"type": "string", "format": "uuid"},
            "n": {"type": "integer"},
            "list": {"type": "array", "items": {"type": "integer"}}
        }}}),
        json!({
            "insert": {"type": "db.insert", "table": "things", "as": "row",
                       "values": {
                           "n": {"$rhai": "if \"n\" in request.body { request.body.n } else { () }"},
                           "meta": {"$rhai": "if \"list\" in request.body { request.body.list } else { () }"}},
                       "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"row": {"$rhai": "row"}, "n": {"$rhai": "if \"n\" in request.body { request.body.n } else { () }"}}}
        }),
        "insert",
    ))
    .await;
}

#[tokio::test]
async fn input_schemas_enforce_their_formats() {
    let app = spawn_app().await;
    things(&app).await;
    typed(&app).await;
    for (body, pointer) in [
        (json!({"at": "yesterday"}), "/body/at"),
        (json!({"at": "2026-13-01T00:00:00Z"}), "/body/at"),
        (json!({"day": "2026-02-30"}), "/body/day"),
        (json!({"email": "not an address"}), "/body/email"),
        (json!({"u": "0b3c2f1e-8d4a"}), "/body/u"),
    ] {
        let (status, answer) = app.send(app.api(Method::POST, "/typed").json(&body)).await;
        assert_refused(status, &answer, "input.invalid", pointer);
    }
    let (status, answer) = app
        .send(app.api(Method::POST, "/typed").json(&json!({
            "at": "2026-01-31T12:00:00Z", "day": "2026-01-31", "email": "a@example.com",
            "u": "0b3c2f1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f"})))
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn integers_written_with_a_zero_fraction_are_integers_and_beyond_int64_are_refused() {
    let app = spawn_app().await;
    things(&app).await;
    typed(&app).await;
    let (status, answer) = app
        .send(
            app.api(Method::POST, "/typed")
                .json(&json!({"n": 3.0, "list": [1.0, 2e0]})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["n"], json!(3), "{answer}");
    assert_eq!(answer["row"]["n"], json!(3), "{answer}");
    assert_eq!(answer["row"]["meta"], json!([1, 2]), "{answer}");

    for (body, pointer) in [
        (json!({"n": 9223372036854775808u64}), "/body/n"),
        (json!({"n": -1e19}), "/body/n"),
        (json!({"list": [1, 1e30]}), "/body/list/1"),
    ] {
        let (status, answer) = app.send(app.api(Method::POST, "/typed").json(&body)).await;
        assert_refused(status, &answer, "input.invalid", pointer);
    }
    let (status, answer) = app
        .send(app.api(Method::POST, "/typed").json(&json!({"n": 3.5})))
        .await;
    assert_refused(status, &answer, "input.invalid", "/body/n");
}

#[tokio::test]
async fn openapi_says_int64_where_the_server_refuses_beyond_it() {
    let app = spawn_app().await;
    things(&app).await;
    typed(&app).await;
    let (status, doc) = app.send(app.api(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    let body =
        &doc["paths"]["/typed"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(
        body["properties"]["n"],
        json!({"type": "integer", "format": "int64"})
    );
    assert_eq!(
        body["properties"]["list"]["items"],
        json!({"type": "integer", "format": "int64"})
    );
    let text = doc.to_string();
    assert!(
        !text.contains(r#"{"type":"integer"}"#),
        "an integer without int64 in {text}"
    );
}

async fn export_csv(app: &TestApp, query: &str) -> String {
    let resp = app
        .admin(Method::GET, &format!("/tables/sheet/export{query}"))
        .send()
        .await
        .expect("export is answered");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.expect("body")
}

#[tokio::test]
async fn csv_export_neutralises_formula_cells_unless_asked_to_keep_them() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "sheet", "fields": [
        {"name": "cell", "type": "text"},
        {"name": "n", "type": "integer"},
        {"name": "meta", "type": "json"}
    ]}))
    .await;
    let cells = [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "plain",
        "'already",
    ];
    for c in cells {
        let (status, body) = app
            .send(
                app.admin(Method::POST, "/tables/sheet/rows")
                    .json(&json!({"cell": c, "n": -5, "meta": -1})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let read = |text: &str| -> Vec<(String, String, String)> {
        let mut r = csv_reader(text);
        r.iter_mut()
            .map(|row| (row[3].clone(), row[4].clone(), row[5].clone()))
            .collect()
    };
    let escaped = read(&export_csv(&app, "").await);
    let got: Vec<&str> = escaped.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(
        got,
        [
            "'=HYPERLINK(\"http://evil.example\",\"x\")",
            "'+1+1",
            "'-2+3",
            "'@SUM(A1)",
            "'\tx",
            "'\rx",
            "plain",
            "'already",
        ]
    );
    assert!(escaped.iter().all(|(_, n, m)| n == "-5" && m == "-1"));
    let kept = read(&export_csv(&app, "?formulas=keep").await);
    let got: Vec<&str> = kept.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(got, cells);
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/sheet/export?formulas=maybe"))
        .await;
    assert_eq!((status, code(&body)), (400, "request.invalid_query"));
}

/// A small CSV reader for the tests: quoted cells with doubled quotes and newlines inside.
fn csv_reader(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows.remove(0); // the header
    rows
}

async fn import_csv(app: &TestApp, table: &str, csv: &str) -> (u16, Value) {
    app.send(
        app.admin(Method::POST, &format!("/tables/{table}/import"))
            .header("content-type", "text/csv")
            .body(csv.to_string()),
    )
    .await
}

async fn insert_todo(app: &TestApp) -> (u16, Value) {
    app.send(
        app.admin(Method::POST, "/tables/todos/rows")
            .json(&json!({"title": "after"})),
    )
    .await
}

#[tokio::test]
async fn a_csv_import_cannot_use_up_the_id_sequence() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "todos", "fields": [{"name": "title", "type": "text"}]}))
        .await;
    for id in ["9223372036854775807", "4611686018427387905", "0", "-3"] {
        let (status, body) = import_csv(&app, "todos", &format!("id,title\n{id},x\n")).await;
        assert_eq!(
            (status, code(&body)),
            (422, "csv.invalid_rows"),
            "{id}: {body}"
        );
        assert_eq!(body["error"]["details"][0]["field"], json!("id"), "{body}");
    }
    // The largest allowed id imports, and later inserts still get ids.
    let (status, body) = import_csv(&app, "todos", "id,title\n4611686018427387904,x\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = insert_todo(&app).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], json!(4611686018427387905i64), "{body}");
}

#[tokio::test]
async fn a_table_whose_id_sequence_is_used_up_is_repaired_by_an_import() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "todos", "fields": [{"name": "title", "type": "text"}]}))
        .await;
    let (status, _) = insert_todo(&app).await;
    assert_eq!(status, 201);
    // What an import of id 2^63 - 1 did before ids were bounded.
    sqlx::query("SELECT setval(pg_get_serial_sequence('app.todos', 'id'), 9223372036854775807)")
        .execute(&app.db)
        .await
        .expect("setval");
    let (status, body) = insert_todo(&app).await;
    assert_eq!((status, code(&body)), (500, "db.error"), "{body}");
    assert_no_internal_names(&body);

    // A header line alone repairs it: the sequence goes back to the largest id.
    let (status, body) = import_csv(&app, "todos", "title\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = insert_todo(&app).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], json!(2), "{body}");
}

/// `books` with generated, published CRUD, one row, and an unpublished draft flow that
/// writes `pages`. Returns the table as stored.
async fn books_with_crud(app: &TestApp) -> Value {
    let def = json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "pages", "type": "integer", "required": true}
    ]});
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables?crud=publish&crud_auth=public")
                .json(&def),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, row) = app
        .send(
            app.api(Method::POST, "/books")
                .json(&json!({"title": "Dune", "pages": 412})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    let draft = flow(
        "bulk_pages",
        "POST",
        "/bulk",
        json!({}),
        json!({
            "insert": {"type": "db.insert", "table": "books", "as": "row",
                       "values": {"title": "t", "pages": {"$rhai": "1 + 1"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"n": {"$rhai": "row.pages"}}}
        }),
        "insert",
    );
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&draft))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, table) = app.send(app.admin(Method::GET, "/tables/books")).await;
    assert_eq!(status, 200);
    table
}

fn renamed(t: &Value) -> Value {
    let mut def = json!({"name": t["name"], "fields": t["fields"]});
    def["fields"][1]["name"] = json!("page_count");
    def
}

fn flows_named<'v>(list: &'v Value, key: &str) -> Vec<&'v str> {
    list[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["flow"].as_str().or(b.as_str()))
        .collect()
}

#[tokio::test]
async fn a_rename_reports_endpoints_whose_input_names_the_field_and_the_drafts_it_breaks() {
    let app = spawn_app().await;
    let t = books_with_crud(&app).await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/books/plan")
                .json(&json!({"table": renamed(&t)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let breaks = flows_named(&body, "breaks");
    assert!(breaks.contains(&"books_update"), "{body}");
    assert!(
        flows_named(&body, "draft_breaks").contains(&"bulk_pages"),
        "{body}"
    );
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/books")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": renamed(&t)})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "table.breaks_flows"), "{body}");
}

#[tokio::test]
async fn update_flows_renames_input_properties_with_their_field_and_rewrites_drafts() {
    let app = spawn_app().await;
    let t = books_with_crud(&app).await;
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/books")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": renamed(&t), "update_flows": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let changed: Vec<(&str, &str, &str)> = body["api_changes"]
        .as_array()
        .expect("api_changes")
        .iter()
        .map(|c| {
            (
                c["flow"].as_str().unwrap_or(""),
                c["from"].as_str().unwrap_or(""),
                c["to"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        changed.contains(&("books_update", "pages", "page_count")),
        "{body}"
    );
    assert!(
        changed.contains(&("books_create", "pages", "page_count")),
        "{body}"
    );
    assert_eq!(body["updated_drafts"], json!(["bulk_pages"]), "{body}");
    assert_eq!(body["draft_breaks"], json!([]), "{body}");

    // The served endpoints take the new name, and only it.
    let (status, row) = app
        .send(
            app.api(Method::PATCH, "/books/1")
                .json(&json!({"page_count": 300})),
        )
        .await;
    assert_eq!(
        (status, row["page_count"].clone()),
        (200, json!(300)),
        "{row}"
    );
    let (status, body) = app
        .send(
            app.api(Method::PATCH, "/books/1")
                .json(&json!({"pages": 300})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "input.invalid"), "{body}");
    let (status, row) = app
        .send(
            app.api(Method::POST, "/books")
                .json(&json!({"title": "Emma", "page_count": 474})),
        )
        .await;
    assert_eq!(
        (status, row["page_count"].clone()),
        (201, json!(474)),
        "{row}"
    );

    // OpenAPI documents and requires the new name.
    let (_, doc) = app.send(app.api(Method::GET, "/openapi.json")).await;
    let schema = |method: &str, path: &str| {
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"].clone()
    };
    let patch = schema("patch", "/books/{id}");
    assert!(patch["properties"].get("page_count").is_some(), "{patch}");
    assert!(patch["properties"].get("pages").is_none(), "{patch}");
    let create = schema("post", "/books");
    assert!(
        create["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("page_count"))),
        "{create}"
    );

    // The draft was rewritten and still compiles; it publishes.
    let (_, flows) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = flows
        .as_array()
        .or(flows["flows"].as_array())
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "bulk_pages")
        .and_then(|f| f["id"].as_i64())
        .expect("the draft");
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.send(app.api(Method::POST, "/bulk")).await;
    assert_eq!((status, body), (200, json!({"n": 2})));
}

#[tokio::test]
async fn a_reserved_field_name_is_refused_with_a_pointer_to_it() {
    let app = spawn_app().await;
    let fields = |last: &str| {
        json!([
            {"name": "a", "type": "text"},
            {"name": "b", "type": "text"},
            {"name": "c", "type": "text"},
            {"name": last, "type": "text"}
        ])
    };
    for reserved in ["user", "select", "xmin", "order"] {
        let (status, body) = app
            .send(
                app.admin(Method::POST, "/tables")
                    .json(&json!({"name": "people", "fields": fields(reserved)})),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (400, "request.invalid_body"),
            "{body}"
        );
        assert_eq!(pointers(&body), ["/fields/3/name"], "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("reserved"),
            "{body}"
        );
    }
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables")
                .json(&json!({"name": "user", "fields": fields("d")})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(pointers(&body), ["/name"], "{body}");

    app.create_table(&json!({"name": "people", "fields": fields("d")}))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/people/plan")
                .json(&json!({"table": {"name": "people", "fields": fields("user")}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(pointers(&body), ["/table/fields/3/name"], "{body}");
}
