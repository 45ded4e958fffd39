//! The admin data API for rows of managed tables, through real HTTP against a real Postgres.

mod common;

use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

fn error_code(body: &Value) -> &str {
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

fn rows_path(table: &str) -> String {
    format!("/tables/{table}/rows")
}

async fn insert(app: &TestApp, table: &str, row: Value) -> Value {
    let (status, body) = app
        .send(app.admin(Method::POST, &rows_path(table)).json(&row))
        .await;
    assert_eq!(status, 201, "insert {row}: {body}");
    body
}

/// `GET .../rows` with query parameters.
async fn list(app: &TestApp, table: &str, params: &[(&str, String)]) -> (u16, Value) {
    app.send(app.admin(Method::GET, &rows_path(table)).query(params))
        .await
}

/// The rows matching a filter, as the values of one column, in id order.
async fn matching(app: &TestApp, table: &str, filter: Value, column: &str) -> Vec<Value> {
    let (status, body) = list(app, table, &[("filter", filter.to_string())]).await;
    assert_eq!(status, 200, "{filter}: {body}");
    body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r[column].clone())
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

async fn todos_app() -> TestApp {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    app
}

#[tokio::test]
async fn a_row_can_be_inserted_read_listed_patched_and_deleted() {
    let app = todos_app().await;
    let created = insert(&app, "todos", json!({"title": "buy milk", "priority": 2})).await;
    assert_eq!(created["title"], "buy milk");
    assert_eq!(
        created["done"], false,
        "left-out columns take their defaults"
    );
    assert_eq!(created["due_at"], Value::Null);
    let id = created["id"].as_i64().expect("an id");
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());

    let (status, got) = app
        .send(app.admin(Method::GET, &format!("/tables/todos/rows/{id}")))
        .await;
    assert_eq!((status, &got), (200, &created));

    let (status, page) = list(&app, "todos", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(page, json!({"rows": [created], "next_cursor": null}));

    let (status, patched) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/todos/rows/{id}"))
                .json(&json!({"done": true, "due_at": "2026-03-01T09:30:00Z"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["done"], true);
    assert_eq!(
        patched["title"], "buy milk",
        "fields not given keep their values"
    );
    assert_eq!(patched["priority"], 2);
    let (done, due): (bool, bool) = sqlx::query_as(
        "SELECT done, due_at = '2026-03-01T09:30:00Z'::timestamptz FROM app.todos WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("the row is in Postgres");
    assert!(done && due);

    let (status, same) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/todos/rows/{id}"))
                .json(&json!({})),
        )
        .await;
    assert_eq!(
        (status, &same),
        (200, &patched),
        "an empty patch changes nothing"
    );

    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/tables/todos/rows/{id}")))
        .await;
    assert_eq!(status, 204);
    assert_eq!(count(&app, "SELECT count(*) FROM app.todos").await, 0);
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let (status, body) = app
            .send(
                app.admin(method.clone(), &format!("/tables/todos/rows/{id}"))
                    .json(&json!({"done": false})),
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (404, "row.not_found"),
            "{method}"
        );
    }
}

#[tokio::test]
async fn bulk_delete_removes_the_listed_rows_and_counts_them() {
    let app = todos_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let row = insert(&app, "todos", json!({"title": format!("t{i}")})).await;
        ids.push(row["id"].as_i64().expect("id"));
    }
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows/delete")
                .json(&json!({"ids": [ids[0], ids[2].to_string(), ids[2], 999_999]})),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"deleted": 2})));
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM app.todos ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("ids");
    assert_eq!(left, [ids[1], ids[3], ids[4]]);

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows/delete")
                .json(&json!({"ids": [ids[1], "x", 1.5, null]})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_id"));
    assert_eq!(pointers(&body), ["/ids/1", "/ids/2", "/ids/3"]);
    let too_many: Vec<i64> = (1..=10_001).collect();
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows/delete")
                .json(&json!({ "ids": too_many })),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.too_many_ids"));
    assert_eq!(
        count(&app, "SELECT count(*) FROM app.todos").await,
        3,
        "refused bulk deletes delete nothing"
    );
}

async fn items_app() -> TestApp {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "items", "fields": [
        {"name": "name", "type": "text", "required": true},
        {"name": "qty", "type": "integer"},
        {"name": "active", "type": "boolean", "required": true, "default": true},
        {"name": "tag", "type": "enum", "values": ["a", "b", "c"]},
        {"name": "seen_at", "type": "timestamp"},
        {"name": "price", "type": "decimal", "precision": 6, "scale": 2}
    ]}))
    .await;
    for row in [
        json!({"name": "Milk 2%", "qty": 1, "tag": "a", "seen_at": "2026-01-01T00:00:00Z", "price": "1.50"}),
        json!({"name": "milk_shake", "qty": 5, "active": false, "tag": "b", "seen_at": "2026-02-01T00:00:00Z"}),
        json!({"name": r"back\slash bread", "tag": "c", "price": 3}),
        json!({"name": "100% juice", "qty": 10, "active": false, "tag": "a", "price": "2.25"}),
        json!({"name": "cheese", "qty": 3}),
    ] {
        insert(&app, "items", row).await;
    }
    app
}

#[tokio::test]
async fn each_filter_op_selects_exactly_the_matching_rows() {
    let app = items_app().await;
    let names = |v: Vec<Value>| -> Vec<String> {
        v.into_iter()
            .map(|n| n.as_str().unwrap_or("?").to_string())
            .collect()
    };
    let cases = [
        (
            json!({"field": "active", "op": "eq", "value": false}),
            vec!["milk_shake", "100% juice"],
        ),
        // ne keeps rows where the field is null.
        (
            json!({"field": "qty", "op": "ne", "value": 5}),
            vec!["Milk 2%", r"back\slash bread", "100% juice", "cheese"],
        ),
        (
            json!({"field": "qty", "op": "lt", "value": 5}),
            vec!["Milk 2%", "cheese"],
        ),
        (
            json!({"field": "qty", "op": "le", "value": 5}),
            vec!["Milk 2%", "milk_shake", "cheese"],
        ),
        (
            json!({"field": "qty", "op": "gt", "value": 3}),
            vec!["milk_shake", "100% juice"],
        ),
        (
            json!({"field": "qty", "op": "ge", "value": 3}),
            vec!["milk_shake", "100% juice", "cheese"],
        ),
        (
            json!({"field": "price", "op": "ge", "value": "2.25"}),
            vec![r"back\slash bread", "100% juice"],
        ),
        (
            json!({"field": "seen_at", "op": "gt", "value": "2026-01-15T00:00:00+01:00"}),
            vec!["milk_shake"],
        ),
        (
            json!({"field": "tag", "op": "in", "value": ["a", "c"]}),
            vec!["Milk 2%", r"back\slash bread", "100% juice"],
        ),
        (
            json!({"field": "id", "op": "in", "value": [2, 4, 99]}),
            vec!["milk_shake", "100% juice"],
        ),
        (
            json!({"field": "name", "op": "contains", "value": "MILK"}),
            vec!["Milk 2%", "milk_shake"],
        ),
        // %, _ and \ are literal, not wildcards.
        (
            json!({"field": "name", "op": "contains", "value": "%"}),
            vec!["Milk 2%", "100% juice"],
        ),
        (
            json!({"field": "name", "op": "contains", "value": "_"}),
            vec!["milk_shake"],
        ),
        (
            json!({"field": "name", "op": "contains", "value": "\\"}),
            vec![r"back\slash bread"],
        ),
        (
            json!({"field": "name", "op": "starts_with", "value": "milk"}),
            vec!["milk_shake"],
        ),
        (
            json!({"field": "name", "op": "starts_with", "value": "100%"}),
            vec!["100% juice"],
        ),
        (
            json!({"field": "name", "op": "starts_with", "value": "1_0"}),
            vec![],
        ),
        (
            json!({"field": "qty", "op": "is_null", "value": true}),
            vec![r"back\slash bread"],
        ),
        (
            json!({"field": "tag", "op": "is_null", "value": false}),
            vec!["Milk 2%", "milk_shake", r"back\slash bread", "100% juice"],
        ),
        (
            json!({"and": [
                {"field": "active", "op": "eq", "value": true},
                {"or": [
                    {"field": "name", "op": "contains", "value": "milk"},
                    {"field": "qty", "op": "ge", "value": 3}
                ]}
            ]}),
            vec!["Milk 2%", "cheese"],
        ),
        (
            json!({"or": [
                {"and": [{"field": "tag", "op": "eq", "value": "a"}, {"field": "active", "op": "eq", "value": false}]},
                {"field": "seen_at", "op": "lt", "value": "2026-01-02"}
            ]}),
            vec!["Milk 2%", "100% juice"],
        ),
        (
            json!({"and": []}),
            vec![
                "Milk 2%",
                "milk_shake",
                r"back\slash bread",
                "100% juice",
                "cheese",
            ],
        ),
        (json!({"or": []}), vec![]),
    ];
    for (filter, want) in cases {
        assert_eq!(
            names(matching(&app, "items", filter.clone(), "name").await),
            want,
            "{filter}"
        );
    }
}

#[tokio::test]
async fn a_filter_posted_as_a_query_answers_like_the_query_string() {
    let app = items_app().await;
    let filter = json!({"or": [
        {"field": "tag", "op": "eq", "value": "a"},
        {"field": "qty", "op": "is_null", "value": true}
    ]});
    let (status, by_get) = list(
        &app,
        "items",
        &[
            ("filter", filter.to_string()),
            ("sort", "-qty".into()),
            ("limit", "2".into()),
            ("count", "true".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{by_get}");
    let (status, by_post) = app
        .send(
            app.admin(Method::POST, "/tables/items/rows/query")
                .json(&json!({"filter": filter, "sort": "-qty", "limit": 2, "count": true})),
        )
        .await;
    assert_eq!(status, 200, "{by_post}");
    assert_eq!(by_get, by_post);
    assert_eq!(by_get["total"], 3);
    let first: Vec<&Value> = by_get["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["name"])
        .collect();
    // Descending puts nulls first.
    assert_eq!(first, [r"back\slash bread", "100% juice"]);
    assert!(by_get["next_cursor"].is_string());
}

#[tokio::test]
async fn total_counts_every_row_matching_the_filter_not_just_the_page() {
    let app = items_app().await;
    let active = json!({"field": "active", "op": "eq", "value": true}).to_string();
    let (status, page) = list(
        &app,
        "items",
        &[
            ("filter", active.clone()),
            ("limit", "1".into()),
            ("count", "true".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["total"], 3);
    let cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
    let (_, next) = list(
        &app,
        "items",
        &[
            ("filter", active),
            ("limit", "1".into()),
            ("count", "true".into()),
            ("cursor", cursor),
        ],
    )
    .await;
    assert_eq!(next["total"], 3, "the total ignores paging");
    let (_, all) = list(&app, "items", &[("count", "true".into())]).await;
    assert_eq!(all["total"], 5);
    let (_, plain) = list(&app, "items", &[]).await;
    assert!(plain.get("total").is_none(), "total only when asked");
    assert_eq!(plain["next_cursor"], Value::Null);
}

/// Sort order of the `events` test table: `n` with NULLs last ascending (first descending),
/// then id in the same direction.
fn in_order(rows: &[(Option<i64>, i64)], desc: bool) -> bool {
    let key = |(n, id): &(Option<i64>, i64)| (n.is_none(), *n, *id);
    rows.windows(2).all(|w| {
        if desc {
            key(&w[0]) > key(&w[1])
        } else {
            key(&w[0]) < key(&w[1])
        }
    })
}

#[tokio::test]
async fn cursor_paging_visits_every_row_once_in_order_while_rows_are_inserted() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "events", "fields": [
        {"name": "n", "type": "integer"},
        {"name": "label", "type": "text", "required": true}
    ]}))
    .await;
    let mut initial = HashSet::new();
    for i in 0..23 {
        let n = if i % 6 == 0 {
            Value::Null
        } else {
            json!(i % 4)
        };
        let row = insert(&app, "events", json!({"n": n, "label": format!("e{i:02}")})).await;
        initial.insert(row["id"].as_i64().expect("id"));
    }
    let mut extra = 0;
    for sort in ["n", "-n", "label", "-label", "id", "-id", "created_at"] {
        let desc = sort.starts_with('-');
        let mut seen: Vec<(Option<i64>, i64)> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut params = vec![("sort", sort.to_string()), ("limit", "5".to_string())];
            if let Some(c) = &cursor {
                params.push(("cursor", c.clone()));
            }
            let (status, page) = list(&app, "events", &params).await;
            assert_eq!(status, 200, "{sort}: {page}");
            for r in page["rows"].as_array().expect("rows") {
                seen.push((r["n"].as_i64(), r["id"].as_i64().expect("id")));
                labels.push(r["label"].as_str().expect("label").to_string());
            }
            // A row arrives between pages, before or after the position reached.
            let n = [json!(0), json!(3), Value::Null][extra % 3].clone();
            extra += 1;
            insert(
                &app,
                "events",
                json!({"n": n, "label": format!("x{extra:03}")}),
            )
            .await;
            pages += 1;
            assert!(pages < 200, "{sort}: paging ends");
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        let ids: Vec<i64> = seen.iter().map(|(_, id)| *id).collect();
        let unique: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{sort}: no row twice");
        assert!(
            initial.is_subset(&unique),
            "{sort}: every row that was there before paging began is visited"
        );
        match sort.trim_start_matches('-') {
            "n" => assert!(in_order(&seen, desc), "{sort}: {seen:?}"),
            "label" => {
                let mut sorted = labels.clone();
                sorted.sort();
                if desc {
                    sorted.reverse();
                }
                assert_eq!(labels, sorted, "{sort}");
            }
            _ => {
                let mut sorted = ids.clone();
                sorted.sort_unstable();
                if desc {
                    sorted.reverse();
                }
                assert_eq!(ids, sorted, "{sort}");
            }
        }
    }
}

#[tokio::test]
async fn offset_paging_and_limits_are_checked() {
    let app = items_app().await;
    let (status, page) = list(
        &app,
        "items",
        &[("offset", "3".into()), ("limit", "1".into())],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["rows"][0]["name"], "100% juice");
    assert!(page["next_cursor"].is_string());
    for (params, code) in [
        (vec![("limit", "0")], "row.invalid_query"),
        (vec![("limit", "1001")], "row.invalid_query"),
        (vec![("offset", "-1")], "row.invalid_query"),
        (vec![("limit", "many")], "request.invalid_query"),
        (vec![("colour", "red")], "request.invalid_query"),
        (vec![("sort", "-nope")], "row.unknown_field"),
        (
            vec![("sort", "tag"), ("cursor", "zz")],
            "row.invalid_cursor",
        ),
        (vec![("filter", "{not json")], "row.invalid_filter"),
    ] {
        let params: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let (status, body) = list(&app, "items", &params).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, code),
            "{params:?}: {body}"
        );
    }
    let (_, first) = list(
        &app,
        "items",
        &[("limit", "2".into()), ("sort", "name".into())],
    )
    .await;
    let cursor = first["next_cursor"].as_str().expect("cursor").to_string();
    let (status, body) = list(
        &app,
        "items",
        &[("sort", "-name".into()), ("cursor", cursor.clone())],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_cursor"));
    let (status, body) = list(&app, "items", &[("offset", "2".into()), ("cursor", cursor)]).await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_query"));
}

#[tokio::test]
async fn passwords_are_hashed_on_every_write_and_never_read_back() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "accounts", "fields": [
        {"name": "email", "type": "email", "required": true, "unique": true},
        {"name": "password", "type": "password", "required": true}
    ]}))
    .await;
    let created = insert(
        &app,
        "accounts",
        json!({"email": "ann@example.com", "password": "s3cret pass"}),
    )
    .await;
    assert!(created.get("password").is_none(), "{created}");
    let id = created["id"].as_i64().expect("id");
    let stored = || async {
        sqlx::query_scalar::<_, String>("SELECT password FROM app.accounts WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("stored")
    };
    let verifies = |hash: &str, password: &str| {
        use argon2::{Argon2, PasswordHash, PasswordVerifier};
        let parsed = PasswordHash::new(hash).expect("a PHC string");
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    };
    let first = stored().await;
    assert!(first.starts_with("$argon2id$"), "{first}");
    assert!(verifies(&first, "s3cret pass"));

    let (_, got) = app
        .send(app.admin(Method::GET, &format!("/tables/accounts/rows/{id}")))
        .await;
    let (_, page) = list(&app, "accounts", &[("count", "true".into())]).await;
    let (_, queried) = app
        .send(
            app.admin(Method::POST, "/tables/accounts/rows/query")
                .json(&json!({})),
        )
        .await;
    let (status, patched) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/accounts/rows/{id}"))
                .json(&json!({"password": "new pass"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    for read in [&got, &page["rows"][0], &queried["rows"][0], &patched] {
        assert_eq!(read["email"], "ann@example.com", "{read}");
        assert!(read.get("password").is_none(), "{read}");
    }
    let second = stored().await;
    assert!(second.starts_with("$argon2id$") && verifies(&second, "new pass"));
    assert!(!verifies(&second, "s3cret pass"));

    let (status, body) = list(
        &app,
        "accounts",
        &[(
            "filter",
            json!({"field": "password", "op": "starts_with", "value": "$argon2"}).to_string(),
        )],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_filter"));
    let (status, body) = list(&app, "accounts", &[("sort", "password".into())]).await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_query"));
    let (status, body) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/accounts/rows/{id}"))
                .json(&json!({"password": ""})),
        )
        .await;
    assert_eq!((status, pointers(&body)), (400, vec!["/password"]));
    assert_eq!(stored().await, second, "a refused write keeps the hash");
}

#[tokio::test]
async fn every_bad_value_is_reported_at_once_and_nothing_is_written() {
    let app = todos_app().await;
    let (status, body) = app
        .send(app.admin(Method::POST, "/tables/todos/rows").json(&json!({
            "title": 7, "done": "yes", "priority": 1.5, "due_at": "tomorrow",
            "nope": 1, "id": 9, "created_at": "2026-01-01"
        })))
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid"), "{body}");
    assert_eq!(
        pointers(&body),
        [
            "/created_at",
            "/id",
            "/nope",
            "/title",
            "/done",
            "/priority",
            "/due_at"
        ]
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows")
                .json(&json!({"done": true})),
        )
        .await;
    assert_eq!(
        (status, pointers(&body)),
        (400, vec!["/title"]),
        "a required field is missing"
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows")
                .json(&json!(["title"])),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid"));
    assert_eq!(count(&app, "SELECT count(*) FROM app.todos").await, 0);

    let row = insert(&app, "todos", json!({"title": "keep", "priority": 1})).await;
    let id = row["id"].as_i64().expect("id");
    let (status, body) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/todos/rows/{id}"))
                .json(&json!({"title": null, "priority": 2, "updated_at": "2026-01-01"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid"));
    assert_eq!(pointers(&body), ["/updated_at", "/title"]);
    let (_, now) = app
        .send(app.admin(Method::GET, &format!("/tables/todos/rows/{id}")))
        .await;
    assert_eq!(
        now, row,
        "a refused patch changes nothing, not even the valid fields"
    );

    // A value that passes Sluice's checks but not Postgres' range is still a clean 400.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows")
                .json(&json!({"title": "old", "due_at": "0000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid"), "{body}");
    assert_eq!(count(&app, "SELECT count(*) FROM app.todos").await, 1);
}

#[tokio::test]
async fn sql_looking_strings_are_stored_and_matched_verbatim() {
    let app = todos_app().await;
    let evil = [
        "x'); DROP TABLE app.todos; --",
        "Robert\"; DELETE FROM app.todos WHERE 'a'='a",
        "$1::text; SELECT pg_sleep(10)",
    ];
    for title in evil {
        let row = insert(&app, "todos", json!({"title": title})).await;
        assert_eq!(row["title"], title);
    }
    let stored: Vec<String> = sqlx::query_scalar("SELECT title FROM app.todos ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("the table still exists");
    assert_eq!(stored, evil);
    for title in evil {
        let found = matching(
            &app,
            "todos",
            json!({"field": "title", "op": "eq", "value": title}),
            "title",
        )
        .await;
        assert_eq!(found, [json!(title)]);
    }
    let found = matching(
        &app,
        "todos",
        json!({"field": "title", "op": "contains", "value": "' OR 'a'='a"}),
        "title",
    )
    .await;
    assert!(found.is_empty());

    let (status, body) = list(
        &app,
        "todos",
        &[(
            "filter",
            json!({"field": "title\" OR 1=1 --", "op": "eq", "value": "x"}).to_string(),
        )],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "row.unknown_field"));
    assert_eq!(pointers(&body), ["/filter/field"]);
    let (status, body) = list(
        &app,
        "todos",
        &[("sort", "title; DROP TABLE app.todos".into())],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "row.unknown_field"));
    assert_eq!(count(&app, "SELECT count(*) FROM app.todos").await, 3);
}

#[tokio::test]
async fn unknown_tables_fields_and_malformed_ids_are_refused() {
    let app = todos_app().await;
    app.create_table(&json!({"name": "people", "id_type": "uuid", "fields": [
        {"name": "name", "type": "text"}
    ]}))
    .await;
    let (status, body) = list(&app, "nothing", &[]).await;
    assert_eq!((status, error_code(&body)), (404, "table.not_found"));
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/todos/rows/abc"))
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_id"));
    let (status, body) = app
        .send(app.admin(Method::DELETE, "/tables/todos/rows/1%20OR%201=1"))
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_id"));
    let (status, body) = app
        .send(app.admin(Method::GET, "/tables/people/rows/12"))
        .await;
    assert_eq!((status, error_code(&body)), (400, "row.invalid_id"));
    let (status, body) = list(
        &app,
        "todos",
        &[(
            "filter",
            json!({"and": [{"field": "colour", "op": "eq", "value": "red"}]}).to_string(),
        )],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "row.unknown_field"));
    assert_eq!(pointers(&body), ["/filter/and/0/field"]);

    // uuid ids work end to end.
    let person = insert(&app, "people", json!({"name": "Ann"})).await;
    let id = person["id"].as_str().expect("a uuid").to_string();
    let (status, got) = app
        .send(app.admin(
            Method::GET,
            &format!("/tables/people/rows/{}", id.to_uppercase()),
        ))
        .await;
    assert_eq!((status, &got), (200, &person));
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/people/rows/delete")
                .json(&json!({"ids": [id, 5]})),
        )
        .await;
    assert_eq!((status, pointers(&body)), (400, vec!["/ids/1"]));
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/people/rows/delete")
                .json(&json!({ "ids": [id] })),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"deleted": 1})));

    let (status, _) = app
        .send(
            app.client
                .get(format!("{}/_/api/v1/tables/todos/rows", app.base)),
        )
        .await;
    assert_eq!(status, 401, "the rows API needs a token");
}

#[tokio::test]
async fn unique_and_reference_violations_are_clean_409s() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "owners", "id_type": "uuid", "fields": [
        {"name": "email", "type": "email", "unique": true}
    ]}))
    .await;
    app.create_table(&json!({"name": "pets", "fields": [
        {"name": "name", "type": "text", "required": true},
        {"name": "owner", "type": "reference", "table": "owners"}
    ]}))
    .await;
    let ann = insert(&app, "owners", json!({"email": "ann@example.com"})).await;
    let bob = insert(&app, "owners", json!({"email": "bob@example.com"})).await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/owners/rows")
                .json(&json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "db.conflict"), "{body}");
    assert_eq!(pointers(&body), ["/email"]);
    let (status, body) = app
        .send(
            app.admin(
                Method::PATCH,
                &format!("/tables/owners/rows/{}", bob["id"].as_str().unwrap_or("")),
            )
            .json(&json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "db.conflict"));

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/pets/rows")
                .json(&json!({"name": "Rex", "owner": "0b3c2f1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "db.conflict"), "{body}");
    assert_eq!(pointers(&body), ["/owner"]);
    insert(&app, "pets", json!({"name": "Rex", "owner": ann["id"]})).await;

    let ann_id = ann["id"].as_str().expect("uuid");
    let (status, body) = app
        .send(app.admin(Method::DELETE, &format!("/tables/owners/rows/{ann_id}")))
        .await;
    assert_eq!((status, error_code(&body)), (409, "db.conflict"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("pets.owner")),
        "{body}"
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/owners/rows/delete")
                .json(&json!({"ids": [bob["id"], ann_id]})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (409, "db.conflict"));
    assert_eq!(
        count(&app, "SELECT count(*) FROM app.owners").await,
        2,
        "the bulk delete is all or nothing"
    );
}

#[tokio::test]
async fn large_decimals_come_back_digit_for_digit() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "ledger", "fields": [
        {"name": "amount", "type": "decimal", "precision": 40, "scale": 10}
    ]}))
    .await;
    let exact = "123456789012345678901234567890.0123456789";
    let resp = app
        .admin(Method::POST, "/tables/ledger/rows")
        .json(&json!({ "amount": exact }))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 201);
    // The row is Postgres's JSON text as it is: compare the digits, not the spacing.
    let text = resp.text().await.expect("body").replace(": ", ":");
    assert!(text.contains(&format!("\"amount\":{exact}")), "{text}");
    let text = app
        .admin(Method::GET, "/tables/ledger/rows")
        .send()
        .await
        .expect("answered")
        .text()
        .await
        .expect("body")
        .replace(": ", ":");
    assert!(text.contains(&format!("\"amount\":{exact}")), "{text}");
}
