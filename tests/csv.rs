//! CSV import and export through real HTTP against a real Postgres.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

async fn import(app: &TestApp, table: &str, mode: &str, csv: impl Into<Vec<u8>>) -> (u16, Value) {
    app.send(
        app.admin(Method::POST, &format!("/tables/{table}/import?mode={mode}"))
            .header("content-type", "text/csv")
            .body(csv.into()),
    )
    .await
}

async fn import_new(app: &TestApp, query: &str, csv: impl Into<Vec<u8>>) -> (u16, Value) {
    app.send(
        app.admin(Method::POST, &format!("/tables/import?{query}"))
            .header("content-type", "text/csv")
            .body(csv.into()),
    )
    .await
}

/// Status, content type, content disposition and body of an export.
async fn export(app: &TestApp, table: &str) -> (u16, String, String, String) {
    let resp = app
        .admin(Method::GET, &format!("/tables/{table}/export"))
        .send()
        .await
        .expect("export is answered");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (status, ty, disposition) = (
        resp.status().as_u16(),
        header("content-type"),
        header("content-disposition"),
    );
    (status, ty, disposition, resp.text().await.expect("body"))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM app.\"{table}\""))
        .fetch_one(&app.db)
        .await
        .expect("count")
}

async fn table_exists(app: &TestApp, table: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("app.\"{table}\""))
        .fetch_one(&app.db)
        .await
        .expect("regclass")
}

fn people() -> Value {
    json!({"name": "people", "fields": [
        {"name": "name", "type": "text", "required": true},
        {"name": "age", "type": "integer"},
        {"name": "email", "type": "email", "unique": true},
        {"name": "level", "type": "text", "required": true, "default": "low"}
    ]})
}

const MIXED: &str = "name,age,email\n\
                     Ann,41,ann@example.com\n\
                     Bob,old,bob-at-example\n\
                     Cy,,cy@example.com\n";

#[tokio::test]
async fn an_invalid_row_in_all_mode_writes_nothing_and_reports_each_bad_cell() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let (status, body) = import(&app, "people", "all", MIXED).await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "csv.invalid_rows"),
        "{body}"
    );
    assert_eq!(body["error"]["rejected"], 1);
    assert_eq!(body["error"]["imported"], 0);
    assert_eq!(
        body["error"]["details"],
        json!([
            {"row": 3, "field": "age", "message": "expected a whole number"},
            {"row": 3, "field": "email", "message": "expected an email address"}
        ])
    );
    assert_eq!(count(&app, "people").await, 0);

    // `all` is the default.
    let (status, _) = app
        .send(app.admin(Method::POST, "/tables/people/import").body(MIXED))
        .await;
    assert_eq!(status, 422);
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn valid_mode_imports_the_good_rows_and_reports_the_rest() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let (status, body) = import(&app, "people", "valid", MIXED).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"imported": 2, "rejected": 1, "errors": [
            {"row": 3, "field": "age", "message": "expected a whole number"},
            {"row": 3, "field": "email", "message": "expected an email address"}
        ]})
    );
    let rows: Vec<(String, Option<i64>, String)> =
        sqlx::query_as("SELECT name, age, level FROM app.people ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("rows");
    assert_eq!(
        rows,
        [
            ("Ann".to_string(), Some(41), "low".to_string()),
            ("Cy".to_string(), None, "low".to_string())
        ],
        "empty cells are NULL, missing columns take their defaults"
    );
}

fn everything() -> Value {
    json!({"name": "things", "fields": [
        {"name": "title", "type": "text"},
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "decimal"},
        {"name": "done", "type": "boolean"},
        {"name": "due_at", "type": "timestamp"},
        {"name": "day", "type": "date"},
        {"name": "ref_id", "type": "uuid"},
        {"name": "meta", "type": "json"},
        {"name": "level", "type": "enum", "values": ["low", "high"]},
        {"name": "contact", "type": "email"}
    ]})
}

/// Written the way export writes: minimal quoting, NULL as an empty cell, empty text as `""`.
const THINGS: &str = "id,created_at,updated_at,title,qty,price,done,due_at,day,ref_id,meta,level,contact\n\
1,2026-01-02T03:04:05Z,2026-01-02T03:04:05.25Z,\"Smith, J\",3,12.50,true,2026-01-31T12:00:00Z,2026-01-31,0b3c2f1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f,\"{\"\"a\"\": [1, 2]}\",high,j@example.com\n\
2,2026-01-02T03:04:06Z,2026-01-02T03:04:06Z,\"two\nlines, \"\"quoted\"\"\",-7,0.001,false,2026-06-30T23:59:59.123456Z,2024-02-29,,\"\"\"text\"\"\",low,\n\
5,2026-01-02T03:04:07Z,2026-01-02T03:04:07Z,\"\",,,,,,,,,\n\
9,2026-01-02T03:04:08Z,2026-01-02T03:04:08Z,,,,,,,,,,\n\
10,2026-01-02T03:04:09Z,2026-01-02T03:04:09Z,tab\there \\ back ünï,0,1e3,true,,,,null,,\n";

#[tokio::test]
async fn an_export_is_exactly_what_was_imported_and_imports_back_unchanged() {
    let app = spawn_app().await;
    app.create_table(&everything()).await;
    let (status, body) = import(&app, "things", "all", THINGS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], 5);

    let (status, ty, disposition, exported) = export(&app, "things").await;
    assert_eq!(status, 200);
    assert_eq!(ty, "text/csv; charset=utf-8");
    assert_eq!(disposition, "attachment; filename=\"things.csv\"");
    // Two cells come back in their normal form: `1e3` is the number 1000, and an empty text
    // cell is empty text (not NULL), which export writes as `""`.
    let normalised = THINGS
        .replace(",1e3,", ",1000,")
        .replace("03:04:08Z,,", "03:04:08Z,\"\",");
    assert_ne!(normalised, THINGS);
    assert_eq!(exported, normalised);

    let nulls: (bool, bool, bool) =
        sqlx::query_as("SELECT title = '', qty IS NULL, meta IS NULL FROM app.things WHERE id = 9")
            .fetch_one(&app.db)
            .await
            .expect("row 9");
    assert_eq!(
        nulls,
        (true, true, true),
        "empty cells are NULL except for text"
    );

    let mut copy = everything();
    copy["name"] = json!("things_copy");
    app.create_table(&copy).await;
    let (status, body) = import(&app, "things_copy", "all", exported.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, _, again) = export(&app, "things_copy").await;
    assert_eq!(again, exported, "export -> import -> export is stable");
}

#[tokio::test]
async fn importing_into_a_new_table_creates_it_from_the_header_in_one_go() {
    let app = spawn_app().await;
    let csv = "\u{feff}name,phone,id\r\nAnn,+1 555 0100,7\r\nBob,,8\r\n";
    let (status, body) = import_new(&app, "name=contacts", csv).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["imported"].clone(), body["rejected"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(body["table"]["name"], "contacts");
    let fields: Vec<(&str, &str)> = body["table"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or(""),
                f["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(fields, [("name", "text"), ("phone", "text")]);
    let (status, _) = app.send(app.admin(Method::GET, "/tables/contacts")).await;
    assert_eq!(status, 200);
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, name, phone FROM app.contacts ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("rows");
    assert_eq!(
        rows,
        [
            (7, "Ann".to_string(), "+1 555 0100".to_string()),
            (8, "Bob".to_string(), String::new())
        ]
    );
}

#[tokio::test]
async fn a_failed_import_into_a_new_table_leaves_no_table_behind() {
    let app = spawn_app().await;
    let (status, body) = import_new(&app, "name=contacts", "name,phone\nAnn,1\nBob\n").await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "csv.invalid_rows"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["row"], 3);
    assert!(!table_exists(&app, "contacts").await);
    let (status, _) = app.send(app.admin(Method::GET, "/tables/contacts")).await;
    assert_eq!(status, 404);

    let (status, body) = import_new(&app, "name=contacts", "name,Phone Number\nAnn,1\n").await;
    assert_eq!((status, error_code(&body)), (400, "csv.invalid_header"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("column 2")),
        "{body}"
    );
    let (status, body) = import_new(&app, "name=Bad-Name", "a\n1\n").await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_query"));
    let (status, body) = import_new(&app, "mode=all", "a\n1\n").await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_query"));
    assert!(!table_exists(&app, "contacts").await);

    // A name that is taken is a 409, and the existing table is untouched.
    app.create_table(&people()).await;
    let (status, body) = import_new(&app, "name=people", "x\n1\n").await;
    assert_eq!((status, error_code(&body)), (409, "table.exists"));
}

#[tokio::test]
async fn a_duplicate_unique_value_fails_the_whole_import_with_409_naming_the_field() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    sqlx::query("INSERT INTO app.people (name, email) VALUES ('Old', 'old@example.com')")
        .execute(&app.db)
        .await
        .expect("seed");
    let csv = "name,email\nNew,new@example.com\nDup,old@example.com\nLast,last@example.com\n";
    for mode in ["all", "valid"] {
        let (status, body) = import(&app, "people", mode, csv).await;
        assert_eq!(
            (status, error_code(&body)),
            (409, "csv.constraint"),
            "{body}"
        );
        let d = &body["error"]["details"][0];
        assert_eq!(d["constraint"], "unique");
        assert_eq!(d["field"], "email");
        assert_eq!(d["row"], 3);
        assert!(
            d["detail"]
                .as_str()
                .is_some_and(|s| s.contains("old@example.com")),
            "{body}"
        );
        assert!(!body.to_string().contains("INSERT") && !body.to_string().contains("t_"));
        assert_eq!(
            count(&app, "people").await,
            1,
            "nothing was written ({mode})"
        );
    }
}

#[tokio::test]
async fn a_reference_to_a_missing_row_fails_with_409_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "teams", "fields": [{"name": "title", "type": "text"}]}))
        .await;
    app.create_table(&json!({"name": "players", "fields": [
        {"name": "nick", "type": "text"},
        {"name": "team", "type": "reference", "table": "teams"}
    ]}))
    .await;
    let (status, body) = import(&app, "teams", "all", "id,title\n1,Reds\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = import(&app, "players", "all", "nick,team\nann,1\nbob,99\n").await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "csv.constraint"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["constraint"], "reference");
    assert_eq!(body["error"]["details"][0]["field"], "team");
    assert_eq!(count(&app, "players").await, 0);
}

#[tokio::test]
async fn rows_with_the_wrong_number_of_values_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let csv = "name,age\nAnn,1\nBob,2,extra\nCy\n";
    let (status, body) = import(&app, "people", "all", csv).await;
    assert_eq!((status, error_code(&body)), (422, "csv.invalid_rows"));
    assert_eq!(
        body["error"]["details"],
        json!([
            {"row": 3, "field": null, "message": "expected 2 values, found 3"},
            {"row": 4, "field": null, "message": "expected 2 values, found 1"}
        ])
    );
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn a_file_that_is_not_utf8_is_refused_naming_the_row() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    // "Zoë" in Latin-1.
    let csv = b"name,age\nAnn,1\nZo\xEB,2\n".to_vec();
    let (status, body) = import(&app, "people", "all", csv).await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "csv.invalid_rows"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["row"], 3);
    assert_eq!(body["error"]["details"][0]["field"], "name");
    assert_eq!(count(&app, "people").await, 0);

    let (status, body) = import(&app, "people", "all", b"n\xE4me\nx\n".to_vec()).await;
    assert_eq!((status, error_code(&body)), (400, "csv.invalid_header"));
}

#[tokio::test]
async fn a_record_over_one_mebibyte_is_a_413_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let mut csv = b"name,age\nAnn,1\n".to_vec();
    csv.extend(std::iter::repeat_n(b'x', (1 << 20) + 100));
    csv.extend_from_slice(b",2\nBob,3\n");
    for mode in ["all", "valid"] {
        let (status, body) = import(&app, "people", mode, csv.clone()).await;
        assert_eq!(
            (status, error_code(&body)),
            (413, "csv.line_too_large"),
            "{body}"
        );
        assert_eq!(body["error"]["details"][0]["row"], 3);
        assert_eq!(count(&app, "people").await, 0);
    }
}

#[tokio::test]
async fn an_empty_body_is_a_400_and_a_header_alone_imports_nothing() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let (status, body) = import(&app, "people", "all", "").await;
    assert_eq!((status, error_code(&body)), (400, "csv.empty"));
    let (status, body) = import(&app, "people", "all", "name,age\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"imported": 0, "rejected": 0, "errors": []}));
    assert_eq!(count(&app, "people").await, 0);
}

#[tokio::test]
async fn unknown_or_missing_header_columns_are_refused_before_any_row() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let (status, body) = import(&app, "people", "valid", "name,nickname,Age\nAnn,A,1\n").await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "csv.unknown_columns"),
        "{body}"
    );
    assert_eq!(
        body["error"]["details"][0]["unknown"],
        json!(["nickname", "Age"])
    );
    let (status, body) = import(&app, "people", "valid", "age,email\n1,a@b.co\n").await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "csv.missing_columns"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["missing"], json!(["name"]));
    let (status, body) = import(&app, "people", "valid", "name,name\nA,B\n").await;
    assert_eq!((status, error_code(&body)), (400, "csv.invalid_header"));
    assert_eq!(count(&app, "people").await, 0);

    let (status, body) = import(&app, "nobody", "all", "name\nA\n").await;
    assert_eq!((status, error_code(&body)), (404, "table.not_found"));
    let (status, body) = import(&app, "people", "some", "name\nA\n").await;
    assert_eq!((status, error_code(&body)), (400, "request.invalid_query"));
}

#[tokio::test]
async fn sql_looking_values_are_stored_verbatim() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let hostile = [
        "Robert'); DROP TABLE app.people; --",
        "\\.",
        "\\N",
        "a\tb\\nc",
        "$$; SELECT pg_sleep(10); $$",
    ];
    let mut csv = String::from("name\n");
    for h in hostile {
        csv.push_str(&format!("\"{}\"\n", h.replace('"', "\"\"")));
    }
    let (status, body) = import(&app, "people", "all", csv).await;
    assert_eq!(status, 200, "{body}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT name FROM app.people ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("rows");
    assert_eq!(stored, hostile);
}

#[tokio::test]
async fn explicit_ids_are_kept_and_later_inserts_get_fresh_ids() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let (status, body) = import(&app, "people", "all", "id,name\n10,Ann\n20,Bob\n").await;
    assert_eq!(status, 200, "{body}");
    let id: i64 = sqlx::query_scalar("INSERT INTO app.people (name) VALUES ('New') RETURNING id")
        .fetch_one(&app.db)
        .await
        .expect("a later insert works");
    assert_eq!(id, 21);
    // Importing lower ids never moves the sequence back.
    let (status, _) = import(&app, "people", "all", "id,name\n3,Cy\n").await;
    assert_eq!(status, 200);
    let id: i64 = sqlx::query_scalar("INSERT INTO app.people (name) VALUES ('Newer') RETURNING id")
        .fetch_one(&app.db)
        .await
        .expect("insert");
    assert_eq!(id, 22);
    // An id that is taken is a constraint violation on `id`.
    let (status, body) = import(&app, "people", "all", "id,name\n3,Again\n").await;
    assert_eq!((status, error_code(&body)), (409, "csv.constraint"));
    assert_eq!(body["error"]["details"][0]["field"], "id");
}

#[tokio::test]
async fn password_fields_are_hashed_on_import_and_never_exported() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "accounts", "fields": [
        {"name": "login", "type": "text"},
        {"name": "secret", "type": "password"}
    ]}))
    .await;
    let (status, body) = import(&app, "accounts", "all", "login,secret\nann,hunter2\nbob,\n").await;
    assert_eq!(status, 200, "{body}");
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT secret FROM app.accounts ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("rows");
    assert!(
        stored[0]
            .as_deref()
            .is_some_and(|h| h.starts_with("$argon2id$")),
        "{stored:?}"
    );
    assert_eq!(stored[1], None);
    let (_, _, _, exported) = export(&app, "accounts").await;
    assert!(
        exported.starts_with("id,created_at,updated_at,login\n"),
        "{exported}"
    );
    assert!(!exported.contains("argon") && !exported.contains("hunter2"));
}

#[tokio::test]
async fn a_table_named_import_keeps_its_own_routes() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "import", "fields": [{"name": "a", "type": "text"}]}))
        .await;
    let (status, body) = app.send(app.admin(Method::GET, "/tables/import")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "import");
    let (status, body) = import(&app, "import", "all", "a\nx\n").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.send(app.admin(Method::POST, "/tables/people")).await;
    assert_eq!(
        (status, error_code(&body)),
        (405, "route.method_not_allowed")
    );
}

#[tokio::test]
async fn export_needs_a_token_and_a_known_table() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    let resp = app
        .client
        .get(format!("{}/_/api/v1/tables/people/export", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 401);
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/nobody/export"))
        .await;
    assert_eq!((status, error_code(&body)), (404, "table.not_found"));
    let (status, _, _, text) = export(&app, "people").await;
    assert_eq!(status, 200);
    assert_eq!(text, "id,created_at,updated_at,name,age,email,level\n");
}

#[tokio::test]
async fn refused_imports_leave_every_pooled_connection_usable() {
    let app = spawn_app().await;
    app.create_table(&people()).await;
    sqlx::query("INSERT INTO app.people (name, email) VALUES ('Old', 'old@example.com')")
        .execute(&app.db)
        .await
        .expect("seed");
    // More failures than the pool has connections, mixing a refusal by Postgres midway
    // through COPY with a refusal by Sluice after it.
    for _ in 0..12 {
        let (status, _) = import(
            &app,
            "people",
            "all",
            "name,email,age\nDup,old@example.com,1\nBad,b@example.com,x\n",
        )
        .await;
        assert_eq!(status, 422);
        let (status, _) =
            import(&app, "people", "valid", "name,email\nDup,old@example.com\n").await;
        assert_eq!(status, 409);
    }
    // Postgres refuses a row in the first 1 MiB batch; Sluice then finds a bad row further on.
    let mut big = String::from("name,email,age\nDup,old@example.com,1\n");
    for i in 0..60_000 {
        big.push_str(&format!("n{i},e{i}@example.com,{i}\n"));
    }
    big.push_str("Bad,bad@example.com,x\n");
    for _ in 0..10 {
        let (status, body) = import(&app, "people", "all", big.clone()).await;
        assert_eq!((status, error_code(&body)), (422, "csv.invalid_rows"));
        assert_eq!(body["error"]["details"][0]["row"], 60_003);
    }
    let (status, body) = import(&app, "people", "all", "name\nFine\n").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&app, "people").await, 2);
}

#[tokio::test]
async fn a_rule_only_postgres_knows_is_reported_with_its_row_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "events", "fields": [
        {"name": "title", "type": "text"},
        {"name": "extra", "type": "json"}
    ]}))
    .await;
    // A rule Sluice does not know about, added in the database by hand.
    sqlx::query("ALTER TABLE app.events ADD CONSTRAINT no_zero CHECK (title <> 'zero')")
        .execute(&app.db)
        .await
        .expect("constraint");
    let csv = "title,extra\n\"a\nb\",{}\nzero,{}\n";
    let (status, body) = import(&app, "events", "valid", csv).await;
    assert_eq!(
        (status, error_code(&body)),
        (409, "csv.constraint"),
        "{body}"
    );
    assert_eq!(body["error"]["details"][0]["row"], 4, "{body}");
    assert!(!body.to_string().contains("COPY"), "{body}");
    assert_eq!(count(&app, "events").await, 0);
}
