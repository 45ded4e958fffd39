//! The database nodes `db.query` (filters, paging, count, select, include), `db.upsert` and
//! `db.sql` through real HTTP against a real Postgres: published flows called as a frontend
//! would call them.

mod common;

use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

/// `(code, pointer)` of every diagnostic of a refused flow.
fn diagnostics(body: &Value) -> Vec<(String, String)> {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["pointer"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A flow at `POST /<name>` that runs `node` (bound to `out`) and responds with `out`.
fn flow(name: &str, node: Value) -> Value {
    let mut node = node;
    node["as"] = json!("out");
    node["next"] = json!({"ok": "reply"});
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": "POST", "path": format!("/{name}")},
        "entry": "node",
        "nodes": {"node": node, "reply": {"type": "respond", "body": {"$rhai": "out"}}}
    })
}

fn query(name: &str, config: Value) -> Value {
    let mut node = json!({"type": "db.query", "table": "todos"});
    for (k, v) in config.as_object().into_iter().flatten() {
        node[k] = v.clone();
    }
    flow(name, node)
}

/// Saves a flow and returns the 422 body of the refused publish... or of the refused save.
async fn refused(app: &TestApp, doc: &Value) -> Value {
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(doc)).await;
    assert_eq!(status, 422, "the flow should be refused: {body}");
    assert_eq!(code(&body), "flow.invalid");
    body
}

async fn call(app: &TestApp, name: &str, body: Value) -> (u16, Value) {
    app.send(app.api(Method::POST, &format!("/{name}")).json(&body))
        .await
}

fn titles(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["title"].as_str())
        .collect()
}

/// Tables `authors` and `todos` (a reference to authors, every kind of field a filter meets)
/// with four todos.
async fn todo_app() -> TestApp {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "authors", "fields": [
        {"name": "name", "type": "text", "required": true},
        {"name": "email", "type": "email", "unique": true},
        {"name": "secret", "type": "password"}
    ]}))
    .await;
    app.create_table(&json!({"name": "todos", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "done", "type": "boolean", "required": true, "default": false},
        {"name": "priority", "type": "integer"},
        {"name": "level", "type": "enum", "values": ["low", "high"]},
        {"name": "note", "type": "text"},
        {"name": "meta", "type": "json"},
        {"name": "author", "type": "reference", "table": "authors", "on_delete": "set_null"}
    ]}))
    .await;
    sqlx::query(
        "INSERT INTO app.authors (name, email, secret) VALUES ('Ann', 'ann@example.com', 'hash'), ('Bob', 'bob@example.com', NULL)",
    )
    .execute(&app.db)
    .await
    .expect("authors");
    sqlx::query(
        r#"INSERT INTO app.todos (title, done, priority, level, note, meta, author) VALUES
           ('alpha', false, 1, 'low', '100% sure', '{"a": 1}', 1),
           ('beta', true, 2, 'high', NULL, '{"a": 2}', 2),
           ('gamma', false, 3, 'high', 'under_score', NULL, NULL),
           ('Alphabet', true, NULL, 'low', 'back\slash', '[1]', 1)"#,
    )
    .execute(&app.db)
    .await
    .expect("todos");
    app
}

#[tokio::test]
async fn every_filter_operator_selects_the_rows_it_names() {
    let app = todo_app().await;
    let cases: Vec<(&str, &str, Value, Vec<&str>)> = vec![
        ("done", "eq", json!(false), vec!["alpha", "gamma"]),
        (
            "priority",
            "ne",
            json!(2),
            vec!["alpha", "gamma", "Alphabet"],
        ),
        ("priority", "lt", json!(2), vec!["alpha"]),
        ("priority", "le", json!(2), vec!["alpha", "beta"]),
        ("priority", "gt", json!(2), vec!["gamma"]),
        ("priority", "ge", json!(2), vec!["beta", "gamma"]),
        ("priority", "in", json!([1, 3, 99]), vec!["alpha", "gamma"]),
        ("level", "in", json!(["high"]), vec!["beta", "gamma"]),
        ("id", "in", json!([]), vec![]),
        (
            "title",
            "contains",
            json!("ALPHA"),
            vec!["alpha", "Alphabet"],
        ),
        ("note", "contains", json!("%"), vec!["alpha"]),
        ("note", "contains", json!("_"), vec!["gamma"]),
        ("note", "contains", json!("\\"), vec!["Alphabet"]),
        ("title", "starts_with", json!("Alpha"), vec!["Alphabet"]),
        ("title", "starts_with", json!("a"), vec!["alpha"]),
        ("priority", "is_null", json!(true), vec!["Alphabet"]),
        (
            "note",
            "is_null",
            json!(false),
            vec!["alpha", "gamma", "Alphabet"],
        ),
        ("meta", "eq", json!({"a": 2}), vec!["beta"]),
        (
            "meta",
            "in",
            json!([[1], {"a": 1}]),
            vec!["alpha", "Alphabet"],
        ),
        (
            "created_at",
            "le",
            json!("2999-01-01T00:00:00Z"),
            vec!["alpha", "beta", "gamma", "Alphabet"],
        ),
    ];
    for (i, (field, op, value, want)) in cases.into_iter().enumerate() {
        let name = format!("op_{i}");
        let filter = json!({"field": field, "op": op, "value": {"$rhai": "request.body.v"}});
        app.publish(&query(&name, json!({"filter": filter}))).await;
        let (status, rows) = call(&app, &name, json!({"v": value})).await;
        assert_eq!(status, 200, "{field} {op} {value}: {rows}");
        assert_eq!(titles(&rows), want, "{field} {op} {value}");
    }
}

#[tokio::test]
async fn and_or_groups_nest_and_a_null_value_skips_only_its_own_condition() {
    let app = todo_app().await;
    let filter = json!({"and": [
        {"field": "done", "op": "eq", "value": {"$rhai": "request.body.done"}},
        {"or": [
            {"field": "title", "op": "contains", "value": {"$rhai": "request.body.q"}},
            {"and": [
                {"field": "priority", "op": "ge", "value": {"$rhai": "request.body.min"}},
                {"field": "level", "op": "eq", "value": {"$rhai": "request.body.level"}}
            ]}
        ]}
    ]});
    app.publish(&query("search", json!({"filter": filter})))
        .await;
    let cases = [
        (
            json!({"done": false, "q": "alp", "min": 3, "level": null}),
            vec!["alpha", "gamma"],
        ),
        (
            json!({"done": null, "q": "alp", "min": null, "level": null}),
            vec!["alpha", "Alphabet"],
        ),
        (
            json!({"done": true, "q": null, "min": null, "level": null}),
            vec!["beta", "Alphabet"],
        ),
        (
            json!({"done": null, "q": null, "min": null, "level": null}),
            vec!["alpha", "beta", "gamma", "Alphabet"],
        ),
        (
            json!({"done": false, "q": "zzz", "min": null, "level": null}),
            vec![],
        ),
        (
            json!({"done": null, "q": "zzz", "min": 2, "level": "high"}),
            vec!["beta", "gamma"],
        ),
        (
            json!({"done": null, "q": null, "min": null, "level": "low"}),
            vec!["alpha", "Alphabet"],
        ),
    ];
    for (input, want) in cases {
        let (status, rows) = call(&app, "search", input.clone()).await;
        assert_eq!(status, 200, "{input}: {rows}");
        assert_eq!(titles(&rows), want, "{input}");
    }
}

#[tokio::test]
async fn where_equality_still_works_and_its_null_matches_nothing() {
    let app = todo_app().await;
    app.publish(&query(
        "by_done",
        json!({"where": {"done": {"$rhai": "request.body.done"}}, "order_by": [{"column": "title", "desc": true}]}),
    ))
    .await;
    let (_, rows) = call(&app, "by_done", json!({"done": true})).await;
    assert_eq!(titles(&rows), ["beta", "Alphabet"]);
    let (_, rows) = call(&app, "by_done", json!({"done": null})).await;
    assert_eq!(rows, json!([]));
}

#[tokio::test]
async fn a_filter_value_of_the_wrong_shape_is_a_400() {
    let app = todo_app().await;
    for (i, (field, op, value)) in [
        ("priority", "in", json!(3)),
        ("title", "contains", json!(3)),
        ("priority", "is_null", json!("yes")),
        ("priority", "eq", json!("three")),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("bad_{i}");
        let filter = json!({"field": field, "op": op, "value": {"$rhai": "request.body.v"}});
        app.publish(&query(&name, json!({"filter": filter}))).await;
        let (status, body) = call(&app, &name, json!({"v": value})).await;
        assert_eq!(
            (status, code(&body)),
            (400, "db.invalid_value"),
            "{op} {value}: {body}"
        );
    }
}

#[tokio::test]
async fn filters_on_unknown_password_or_unordered_fields_are_refused_at_save() {
    let app = todo_app().await;
    let doc = flow(
        "bad_filters",
        json!({"type": "db.query", "table": "authors",
               "filter": {"and": [
                   {"field": "nope", "op": "eq", "value": 1},
                   {"field": "secret", "op": "eq", "value": "x"},
                   {"or": [{"field": "name", "op": "gt", "value": null}]},
                   {"field": "id", "op": "contains", "value": "1"},
                   {"field": "name", "op": "in", "value": "x"}
               ]},
               "order_by": [{"column": "secret"}],
               "select": ["name", "secret"],
               "include": ["name"],
               "count": true}),
    );
    let body = refused(&app, &doc).await;
    let found = diagnostics(&body);
    for (c, p) in [
        ("flow.unknown_column", "/nodes/node/filter/and/0/field"),
        ("flow.password_column", "/nodes/node/filter/and/1/field"),
        ("flow.bad_filter", "/nodes/node/filter/and/2/or/0/value"),
        ("flow.bad_filter", "/nodes/node/filter/and/3/op"),
        ("flow.bad_filter", "/nodes/node/filter/and/4/value"),
        ("flow.password_column", "/nodes/node/order_by/0/column"),
        ("flow.password_column", "/nodes/node/select/1"),
        ("flow.not_a_reference", "/nodes/node/include/0"),
        ("flow.bad_option", "/nodes/node/count"),
    ] {
        assert!(
            found.contains(&(c.to_string(), p.to_string())),
            "missing {c} at {p} in {found:?}"
        );
    }
    let json_order = query("json_order", json!({"order_by": [{"column": "meta"}]}));
    let body = refused(&app, &json_order).await;
    assert_eq!(
        diagnostics(&body),
        [(
            "flow.unsortable_column".to_string(),
            "/nodes/node/order_by/0/column".to_string()
        )]
    );
}

async fn item_table(app: &TestApp) -> Vec<i64> {
    app.create_table(&json!({"name": "items", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "rank", "type": "integer"},
        {"name": "due", "type": "date"},
        {"name": "done", "type": "boolean", "required": true, "default": false}
    ]}))
    .await;
    // Ties and NULLs in every sort column, so paging must use `id` to break them.
    sqlx::query(
        "INSERT INTO app.items (title, rank, due, done)
         SELECT 'item ' || (g % 7), CASE WHEN g % 5 = 0 THEN NULL ELSE g % 4 END,
                CASE WHEN g % 3 = 0 THEN NULL ELSE date '2026-01-01' + (g % 6) END, g % 2 = 0
         FROM generate_series(1, 37) AS g",
    )
    .execute(&app.db)
    .await
    .expect("items");
    sqlx::query_scalar("SELECT id FROM app.items ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("ids")
}

#[tokio::test]
async fn cursor_paging_visits_every_row_exactly_once_in_order() {
    let app = spawn_app().await;
    item_table(&app).await;
    let orders: Vec<(Value, &str)> = vec![
        (json!([]), "id"),
        (json!([{"column": "title"}]), "title, id"),
        (json!([{"column": "rank", "desc": true}]), "rank DESC, id"),
        (json!([{"column": "rank"}]), "rank, id"),
        (
            json!([{"column": "done"}, {"column": "due", "desc": true}]),
            "done, due DESC, id",
        ),
        (
            json!([{"column": "due"}, {"column": "rank", "desc": true}, {"column": "title"}]),
            "due, rank DESC, title, id",
        ),
        (
            json!([{"column": "created_at", "desc": true}]),
            "created_at DESC, id",
        ),
    ];
    for (i, (order_by, sql_order)) in orders.into_iter().enumerate() {
        let name = format!("page_{i}");
        app.publish(&flow(
            &name,
            json!({"type": "db.query", "table": "items", "order_by": order_by, "page": true,
                   "count": true, "limit": 5, "filter": {"field": "title", "op": "ne", "value": "item 3"},
                   "cursor": {"$rhai": "request.body.cursor"}}),
        ))
        .await;
        let want: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM app.items WHERE title <> 'item 3' ORDER BY {sql_order}"
        ))
        .fetch_all(&app.db)
        .await
        .expect("expected order");
        let mut seen = Vec::new();
        let mut cursor = Value::Null;
        for _ in 0..20 {
            let (status, page) = call(&app, &name, json!({"cursor": cursor})).await;
            assert_eq!(status, 200, "{order_by}: {page}");
            assert_eq!(page["total"], json!(want.len()), "{order_by}");
            let rows = page["rows"].as_array().expect("rows");
            assert!(rows.len() <= 5);
            seen.extend(rows.iter().filter_map(|r| r["id"].as_i64()));
            cursor = page["next_cursor"].clone();
            if cursor.is_null() {
                break;
            }
        }
        assert_eq!(seen, want, "{order_by}: every row once, in order");
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
    }
}

#[tokio::test]
async fn a_cursor_of_another_query_or_garbage_is_a_400() {
    let app = spawn_app().await;
    item_table(&app).await;
    for (name, order) in [("by_title", "title"), ("by_rank", "rank")] {
        app.publish(&flow(
            name,
            json!({"type": "db.query", "table": "items", "order_by": [{"column": order}],
                   "page": true, "limit": 2, "cursor": {"$rhai": "request.body.cursor"}}),
        ))
        .await;
    }
    let (_, page) = call(&app, "by_title", json!({"cursor": null})).await;
    let cursor = page["next_cursor"].clone();
    assert!(cursor.is_string(), "{page}");
    let (status, body) = call(&app, "by_rank", json!({"cursor": cursor})).await;
    assert_eq!((status, code(&body)), (400, "db.invalid_cursor"), "{body}");
    for garbage in [json!("zz"), json!("abc"), json!(17), json!("5b5d")] {
        let (status, body) = call(&app, "by_title", json!({"cursor": garbage})).await;
        assert_eq!(
            (status, code(&body)),
            (400, "db.invalid_cursor"),
            "{garbage}: {body}"
        );
    }
}

#[tokio::test]
async fn a_client_sort_chooses_among_allowed_orders_and_its_cursor_stays_in_that_order() {
    let app = spawn_app().await;
    item_table(&app).await;
    app.publish(&flow(
        "sorted",
        json!({"type": "db.query", "table": "items", "page": true, "limit": 4,
               "order_by": [{"column": "title"}],
               "sort": {"value": {"$rhai": "request.body.sort"},
                        "allow": ["rank", "due", "title", "id"]},
               "filter": {"field": "done", "op": "eq", "value": {"$rhai": "request.body.done"}},
               "cursor": {"$rhai": "request.body.cursor"}}),
    ))
    .await;
    let cases: Vec<(Value, &str)> = vec![
        (Value::Null, "title, id"),
        (json!(""), "title, id"),
        (json!("-rank"), "rank DESC, id"),
        (json!("rank"), "rank, id"),
        (json!("due,-rank"), "due, rank DESC, id"),
        (json!("-due, title"), "due DESC, title, id"),
        (json!("-id"), "id DESC, id"),
        (json!("rank,-id"), "rank, id DESC, id"),
    ];
    for (sort, sql_order) in cases {
        for done in [Value::Null, json!(true)] {
            let want: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM app.items WHERE ($1::boolean IS NULL OR done = $1) ORDER BY {sql_order}"
            ))
            .bind(done.as_bool())
            .fetch_all(&app.db)
            .await
            .expect("expected order");
            let mut seen = Vec::new();
            let mut cursor = Value::Null;
            for _ in 0..40 {
                let (status, page) = call(
                    &app,
                    "sorted",
                    json!({"sort": sort, "done": done, "cursor": cursor}),
                )
                .await;
                assert_eq!(status, 200, "{sort}: {page}");
                seen.extend(
                    page["rows"]
                        .as_array()
                        .expect("rows")
                        .iter()
                        .filter_map(|r| r["id"].as_i64()),
                );
                cursor = page["next_cursor"].clone();
                if cursor.is_null() {
                    break;
                }
            }
            assert_eq!(
                seen, want,
                "sort {sort}, done {done}: every row once, in order"
            );
        }
    }

    // A cursor of one order is refused by another.
    let (_, page) = call(
        &app,
        "sorted",
        json!({"sort": "rank", "done": null, "cursor": null}),
    )
    .await;
    let (status, body) = call(
        &app,
        "sorted",
        json!({"sort": "-rank", "done": null, "cursor": page["next_cursor"]}),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "db.invalid_cursor"), "{body}");

    // What the node does not allow is the client's mistake, with the allowed names.
    for bad in [
        json!("done"),
        json!("rank,due,title"),
        json!("rank,rank"),
        json!("id,rank"),
        json!("title; DROP TABLE app.items"),
        json!(",rank"),
        json!(7),
        json!("x".repeat(100_000)),
    ] {
        let (status, body) = call(
            &app,
            "sorted",
            json!({"sort": bad, "done": null, "cursor": null}),
        )
        .await;
        assert_eq!((status, code(&body)), (400, "db.invalid_value"), "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.len() < 400,
            "the message echoes no long client text: {message}"
        );
    }
    let (_, body) = call(
        &app,
        "sorted",
        json!({"sort": "done", "done": null, "cursor": null}),
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rank, due, title, id"),
        "{body}"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM app.items")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 37);

    // The allow-list is checked when the flow is saved.
    for (allow, code, pointer) in [
        (
            json!(["rank", "nope"]),
            "flow.unknown_column",
            "/nodes/node/sort/allow/1",
        ),
        (
            json!(["rank", "rank"]),
            "flow.schema",
            "/nodes/node/sort/allow",
        ),
        (json!([]), "flow.schema", "/nodes/node/sort/allow"),
        (
            json!([
                "id",
                "title",
                "rank",
                "due",
                "done",
                "created_at",
                "updated_at",
                "title",
                "x"
            ]),
            "flow.schema",
            "/nodes/node/sort/allow",
        ),
    ] {
        let body = refused(
            &app,
            &flow(
                "bad_sort",
                json!({"type": "db.query", "table": "items",
                       "sort": {"value": "rank", "allow": allow}}),
            ),
        )
        .await;
        let found = diagnostics(&body);
        assert!(
            found.contains(&(code.into(), pointer.into())),
            "{allow}: {found:?}"
        );
    }
}

#[tokio::test]
async fn offset_pages_also_return_a_next_cursor_and_the_last_page_none() {
    let app = spawn_app().await;
    let ids = item_table(&app).await;
    app.publish(&flow(
        "offset_page",
        json!({"type": "db.query", "table": "items", "page": true,
               "limit": 10, "offset": {"$rhai": "request.body.offset"}}),
    ))
    .await;
    let (_, page) = call(&app, "offset_page", json!({"offset": 30})).await;
    assert_eq!(page["rows"].as_array().map(Vec::len), Some(7));
    assert_eq!(page["next_cursor"], Value::Null);
    assert!(page.get("total").is_none(), "{page}");
    let (_, page) = call(&app, "offset_page", json!({"offset": 0})).await;
    assert_eq!(page["rows"][9]["id"], json!(ids[9]));
    assert!(page["next_cursor"].is_string());
}

#[tokio::test]
async fn select_returns_only_the_named_columns_and_include_inlines_referenced_rows() {
    let app = todo_app().await;
    app.publish(&query(
        "slim",
        json!({"select": ["id", "title"], "order_by": [{"column": "id"}], "limit": 2}),
    ))
    .await;
    let (_, rows) = call(&app, "slim", json!({})).await;
    assert_eq!(
        rows,
        json!([{"id": 1, "title": "alpha"}, {"id": 2, "title": "beta"}])
    );

    app.publish(&query("with_authors", json!({"include": ["author"]})))
        .await;
    let (status, rows) = call(&app, "with_authors", json!({})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["title"], "alpha");
    assert_eq!(rows[0]["author"]["name"], "Ann");
    assert_eq!(rows[0]["author"]["email"], "ann@example.com");
    assert!(
        rows[0]["author"].get("secret").is_none(),
        "no password: {rows}"
    );
    assert_eq!(rows[1]["author"]["name"], "Bob");
    assert_eq!(rows[2]["author"], Value::Null);
    assert_eq!(rows[2]["priority"], 3, "other columns stay: {rows}");

    app.publish(&query(
        "titles_and_authors",
        json!({"select": ["title"], "include": ["author"], "filter": {"field": "author", "op": "eq", "value": 1}}),
    ))
    .await;
    let (_, rows) = call(&app, "titles_and_authors", json!({})).await;
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    let keys: Vec<&str> = rows[0]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["author", "title"]);
    assert_eq!(rows[1]["author"]["id"], 1);
}

/// Authors, books, readers and reviews (a review references its book and its reader).
async fn library_app() -> TestApp {
    let app = spawn_app().await;
    for def in [
        json!({"name": "authors", "fields": [{"name": "name", "type": "text", "required": true}]}),
        json!({"name": "books", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "author", "type": "reference", "table": "authors", "required": true}]}),
        json!({"name": "readers", "fields": [
            {"name": "name", "type": "text", "required": true},
            {"name": "secret", "type": "password"}]}),
        json!({"name": "reviews", "fields": [
            {"name": "book", "type": "reference", "table": "books", "required": true},
            {"name": "reader", "type": "reference", "table": "readers"},
            {"name": "rating", "type": "integer", "required": true},
            {"name": "body", "type": "text"}]}),
    ] {
        app.create_table(&def).await;
    }
    for statement in [
        "INSERT INTO app.authors (name) VALUES ('Le Guin'), ('Herbert')",
        "INSERT INTO app.books (title, author) VALUES ('Earthsea', 1), ('Dune', 2), ('Lathe', 1)",
        "INSERT INTO app.readers (name, secret) VALUES ('ann', 'hash'), ('bob', NULL)",
        "INSERT INTO app.reviews (book, reader, rating, body) VALUES
           (1, 1, 5, 'wonderful'), (1, 2, 3, 'slow'), (1, NULL, 4, 'anonymous'), (2, 2, 5, 'spice')",
    ] {
        sqlx::query(statement).execute(&app.db).await.expect("rows");
    }
    app
}

#[tokio::test]
async fn includes_nest_and_bring_the_rows_that_reference_a_row_limited_and_ordered() {
    let app = library_app().await;
    // A book with its author and its best two reviews, each with its reader.
    app.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "book",
        "endpoint": {"method": "GET", "path": "/books/{id}", "auth": "public"},
        "entry": "load",
        "nodes": {
            "load": {"type": "db.get", "table": "books", "as": "book", "id": {"$rhai": "request.params.id"},
                     "include": ["author", {"table": "reviews", "by": "book", "as": "top_reviews",
                                 "order_by": [{"column": "rating", "desc": true}], "limit": 2,
                                 "include": ["reader"]}],
                     "next": {"found": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "book"}}
        }
    }))
    .await;
    let (status, book) = app.send(app.api(Method::GET, "/books/1")).await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(book["title"], "Earthsea");
    assert_eq!(book["author"]["name"], "Le Guin", "{book}");
    let reviews = book["top_reviews"].as_array().expect("an array");
    assert_eq!(reviews.len(), 2, "limited: {book}");
    assert_eq!(reviews[0]["body"], "wonderful");
    assert_eq!(reviews[0]["reader"]["name"], "ann");
    assert!(
        reviews[0]["reader"].get("secret").is_none(),
        "no password field: {book}"
    );
    assert_eq!(reviews[1]["body"], "anonymous");
    assert_eq!(
        reviews[1]["reader"],
        Value::Null,
        "a null reference reads as null"
    );
    // A book nobody reviewed has an empty array.
    let (_, book) = app.send(app.api(Method::GET, "/books/3")).await;
    assert_eq!(book["top_reviews"], json!([]), "{book}");

    // Reviews with their book and, nested, the book's author; paged, in one statement.
    app.publish(&query_of(
        "reviews",
        "reviews",
        json!({"include": [{"field": "book", "include": ["author"]}, "reader"],
               "order_by": [{"column": "id"}], "select": ["id", "rating", "book"]}),
    ))
    .await;
    let (status, rows) = call(&app, "reviews", json!({})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows[0]["book"]["author"]["name"], "Le Guin", "{rows}");
    assert_eq!(rows[3]["book"]["title"], "Dune");
    assert_eq!(
        rows[0]["reader"]["name"], "ann",
        "included fields are returned: {rows}"
    );
    assert!(
        rows[0].get("body").is_none(),
        "select keeps only the named columns"
    );

    // The OpenAPI document types what is included.
    let (doc, _) = app.openapi().await;
    let schema = &doc["paths"]["/books/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(schema["properties"]["title"]["type"], "string", "{schema}");
    let author = &schema["properties"]["author"]["anyOf"];
    assert_eq!(
        author[0]["properties"]["name"]["type"], "string",
        "{schema}"
    );
    assert_eq!(author[1]["type"], "null");
    let review = &schema["properties"]["top_reviews"]["items"];
    assert_eq!(
        schema["properties"]["top_reviews"]["type"], "array",
        "{schema}"
    );
    assert_eq!(
        review["properties"]["rating"]["type"], "integer",
        "{schema}"
    );
    assert!(review["properties"]["reader"]["anyOf"][0]["properties"]["secret"].is_null());
    assert!(
        schema["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("top_reviews"))),
        "{schema}"
    );
}

#[tokio::test]
async fn includes_are_checked_when_the_flow_is_saved() {
    let app = library_app().await;
    let cases = [
        (
            json!(["title"]),
            "flow.not_a_reference",
            "/nodes/node/include/0",
        ),
        (
            json!([{"field": "author", "include": ["name"]}]),
            "flow.not_a_reference",
            "/nodes/node/include/0/include/0",
        ),
        (
            json!([{"table": "reviews", "by": "reader"}]),
            "flow.not_a_reference",
            "/nodes/node/include/0/by",
        ),
        (
            json!([{"table": "nope", "by": "book"}]),
            "flow.unknown_table",
            "/nodes/node/include/0/table",
        ),
        (
            json!([{"table": "reviews", "by": "book", "as": "title"}]),
            "flow.bad_option",
            "/nodes/node/include/0/as",
        ),
        (
            json!([{"table": "reviews", "by": "book", "order_by": [{"column": "nope"}]}]),
            "flow.unknown_column",
            "/nodes/node/include/0/order_by/0/column",
        ),
        (
            json!(["author", "author"]),
            "flow.bad_option",
            "/nodes/node/include/1",
        ),
        (
            json!([{"field": "author", "include": [{"table": "books", "by": "author", "include": [{"table": "reviews", "by": "book", "include": ["reader"]}]}]}]),
            "flow.bad_option",
            "/nodes/node/include/0/include/0/include/0/include",
        ),
    ];
    for (include, code, pointer) in cases {
        let body = refused(&app, &query_of("bad", "books", json!({"include": include}))).await;
        let found = diagnostics(&body);
        assert!(
            found.contains(&(code.into(), pointer.into())),
            "{include}: {found:?}"
        );
    }
}

/// A `db.query` on `table` at `POST /<name>`.
fn query_of(name: &str, table: &str, config: Value) -> Value {
    let mut node = json!({"type": "db.query", "table": table});
    for (k, v) in config.as_object().into_iter().flatten() {
        node[k] = v.clone();
    }
    flow(name, node)
}

#[tokio::test]
async fn upsert_inserts_then_updates_the_row_with_the_same_unique_key() {
    let app = todo_app().await;
    app.publish(&flow(
        "save_author",
        json!({"type": "db.upsert", "table": "authors", "on": ["email"],
               "values": {"email": {"$rhai": "request.body.email"}, "name": {"$rhai": "request.body.name"},
                          "secret": {"$rhai": "request.body.secret"}}}),
    ))
    .await;
    let (status, first) = call(
        &app,
        "save_author",
        json!({"email": "cy@example.com", "name": "Cy", "secret": "s3cret"}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["inserted"], true);
    assert_eq!(first["row"]["name"], "Cy");
    assert!(first["row"].get("secret").is_none(), "{first}");
    let (_, second) = call(
        &app,
        "save_author",
        json!({"email": "cy@example.com", "name": "Cyrus", "secret": "other"}),
    )
    .await;
    assert_eq!(second["inserted"], false, "{second}");
    assert_eq!(second["row"]["name"], "Cyrus");
    assert_eq!(second["row"]["id"], first["row"]["id"]);
    let (n, hash): (i64, String) = sqlx::query_as(
        "SELECT count(*) OVER (), secret FROM app.authors WHERE email = 'cy@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .expect("row");
    assert_eq!(n, 1);
    assert!(
        hash.starts_with("$argon2id$"),
        "the password is hashed on update too"
    );
}

#[tokio::test]
async fn a_second_upsert_in_the_same_request_updates_the_row_the_first_inserted() {
    let app = todo_app().await;
    let upsert = |name: &str, next: &str| {
        json!({"type": "db.upsert", "table": "authors", "on": ["email"], "as": name,
               "values": {"email": "dee@example.com", "name": name}, "next": {"ok": next}})
    };
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "twice",
        "endpoint": {"method": "POST", "path": "/twice"}, "entry": "first",
        "nodes": {
            "first": upsert("first", "second"),
            "second": upsert("second", "reply"),
            "reply": {"type": "respond", "body": {
                "first": {"$rhai": "first.inserted"}, "second": {"$rhai": "second.inserted"},
                "same": {"$rhai": "first.row.id == second.row.id"}, "name": {"$rhai": "second.row.name"}}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = call(&app, "twice", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"first": true, "second": false, "same": true, "name": "second"})
    );
}

#[tokio::test]
async fn upsert_works_on_a_unique_index_of_several_fields() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "stock", "fields": [
        {"name": "shop", "type": "text", "required": true},
        {"name": "sku", "type": "text", "required": true},
        {"name": "qty", "type": "integer", "required": true}
    ], "indexes": [{"fields": ["sku", "shop"], "unique": true}]}))
        .await;
    app.publish(&flow(
        "set_stock",
        json!({"type": "db.upsert", "table": "stock", "on": ["shop", "sku"],
               "values": {"shop": {"$rhai": "request.body.shop"}, "sku": {"$rhai": "request.body.sku"},
                          "qty": {"$rhai": "request.body.qty"}}}),
    ))
    .await;
    for (shop, sku, qty, inserted) in [
        ("a", "x", 1, true),
        ("a", "y", 2, true),
        ("a", "x", 5, false),
        ("b", "x", 7, true),
    ] {
        let (status, out) = call(
            &app,
            "set_stock",
            json!({"shop": shop, "sku": sku, "qty": qty}),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["inserted"], inserted, "{shop}/{sku}: {out}");
        assert_eq!(out["row"]["qty"], qty);
    }
    let total: i64 = sqlx::query_scalar("SELECT sum(qty)::bigint FROM app.stock")
        .fetch_one(&app.db)
        .await
        .expect("sum");
    assert_eq!(total, 5 + 2 + 7);
}

#[tokio::test]
async fn upsert_on_columns_without_a_unique_constraint_is_refused_at_save() {
    let app = todo_app().await;
    let doc = flow(
        "bad_upsert",
        json!({"type": "db.upsert", "table": "todos", "on": ["title"],
               "values": {"title": "x", "id": 3}}),
    );
    let found = diagnostics(&refused(&app, &doc).await);
    assert!(
        found.contains(&("flow.not_unique".into(), "/nodes/node/on".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            "flow.read_only_column".into(),
            "/nodes/node/values/id".into()
        )),
        "{found:?}"
    );
    let doc = flow(
        "upsert_without_key_value",
        json!({"type": "db.upsert", "table": "authors", "on": ["email"], "values": {"name": "x"}}),
    );
    let found = diagnostics(&refused(&app, &doc).await);
    assert_eq!(
        found,
        [("flow.missing_column".into(), "/nodes/node/on/0".into())]
    );
}

#[tokio::test]
async fn an_upsert_refused_by_another_unique_field_takes_the_conflict_port() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "people", "fields": [
        {"name": "email", "type": "email", "required": true, "unique": true},
        {"name": "handle", "type": "text", "required": true, "unique": true}
    ]}))
    .await;
    let mut doc = flow(
        "save_person",
        json!({"type": "db.upsert", "table": "people", "on": ["email"],
               "values": {"email": {"$rhai": "request.body.email"}, "handle": {"$rhai": "request.body.handle"}}}),
    );
    doc["nodes"]["node"]["next"]["conflict"] = json!("taken");
    doc["nodes"]["taken"] = json!({"type": "respond", "status": 409, "body": {"taken": true}});
    app.publish(&doc).await;
    let (status, _) = call(
        &app,
        "save_person",
        json!({"email": "a@x.io", "handle": "a"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(
        &app,
        "save_person",
        json!({"email": "b@x.io", "handle": "a"}),
    )
    .await;
    assert_eq!((status, body), (409, json!({"taken": true})));
}

fn sql_flow(name: &str, sql: &str, params: Value) -> Value {
    flow(
        name,
        json!({"type": "db.sql", "sql": sql, "params": params}),
    )
}

#[tokio::test]
async fn db_sql_selects_and_writes_with_named_parameters() {
    let app = todo_app().await;
    app.publish(&sql_flow(
        "open_todos",
        "select id, title from todos where done = :done::boolean and title ilike :pattern order by id",
        json!({"done": {"$rhai": "request.body.done"}, "pattern": {"$rhai": "request.body.pattern"}}),
    ))
    .await;
    let (status, rows) = call(&app, "open_todos", json!({"done": false, "pattern": "%a"})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows,
        json!([{"id": 1, "title": "alpha"}, {"id": 3, "title": "gamma"}])
    );

    app.publish(&sql_flow(
        "add_todo",
        "insert into app.todos (title, priority) values (:title, :priority::int) returning id, title, priority",
        json!({"title": {"$rhai": "request.body.title"}, "priority": {"$rhai": "request.body.priority"}}),
    ))
    .await;
    let (status, rows) = call(&app, "add_todo", json!({"title": "delta", "priority": 9})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows, json!([{"id": 5, "title": "delta", "priority": 9}]));

    app.publish(&sql_flow(
        "touch_todo",
        "with changed as (update todos set note = :note where id = :id::bigint returning id, updated_at > created_at as touched) \
         select * from changed",
        json!({"note": "edited", "id": 1}),
    ))
    .await;
    let (status, rows) = call(&app, "touch_todo", json!({})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows,
        json!([{"id": 1, "touched": true}]),
        "the updated_at trigger ran"
    );

    app.publish(&sql_flow(
        "forget",
        "delete from todos where id = :id::bigint",
        json!({"id": 4}),
    ))
    .await;
    let (status, rows) = call(&app, "forget", json!({})).await;
    assert_eq!((status, rows), (200, json!([])));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(left, 4);
}

#[tokio::test]
async fn colons_in_literals_comments_and_casts_are_not_parameters() {
    let app = todo_app().await;
    let sql = "select ':not_a_param' as s, $$ :nor_this $$ as d, \"title\" as \":odd\", \
               (:v::int + 1) as n, E'\\':x' as e -- :nope\n from todos /* :no */ where id = :v::bigint";
    app.publish(&sql_flow(
        "colons",
        sql,
        json!({"v": {"$rhai": "request.body.v"}}),
    ))
    .await;
    let (status, rows) = call(&app, "colons", json!({"v": 2})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(
        rows,
        json!([{"s": ":not_a_param", "d": " :nor_this ", ":odd": "beta", "n": 3, "e": "':x"}])
    );
}

#[tokio::test]
async fn db_sql_parameters_must_match_the_statement_exactly() {
    let app = todo_app().await;
    let doc = sql_flow(
        "mismatch",
        "select * from todos where id = :id::bigint or title = :title",
        json!({"id": 1, "extra": 2}),
    );
    let body = refused(&app, &doc).await;
    assert_eq!(
        diagnostics(&body),
        [
            (
                "flow.unused_param".to_string(),
                "/nodes/node/params/extra".to_string()
            ),
            (
                "flow.unknown_param".to_string(),
                "/nodes/node/sql".to_string()
            )
        ]
    );
    let d = &body["error"]["details"][1];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(1), Some(55)),
        "{d}"
    );
}

#[tokio::test]
async fn ddl_and_second_statements_are_refused_at_save() {
    let app = todo_app().await;
    for (i, sql) in [
        "drop table app.todos",
        "select 1; drop table app.todos",
        "create table app.x (a int)",
        "select * from app.todos where id = $1",
    ]
    .into_iter()
    .enumerate()
    {
        let body = refused(&app, &sql_flow(&format!("ddl_{i}"), sql, json!({}))).await;
        assert_eq!(
            diagnostics(&body),
            [("flow.bad_sql".to_string(), "/nodes/node/sql".to_string())],
            "{sql}"
        );
    }
}

#[tokio::test]
async fn db_sql_cannot_reach_sluices_own_tables_or_leave_its_role() {
    let app = todo_app().await;
    for (i, sql) in [
        "select * from sluice.users",
        "select email from sluice.users",
        "delete from sluice.flows returning id",
        "select set_config('role', session_user, true) as r",
        "select set_config('session_authorization', session_user, true) as r",
        "select pg_advisory_lock(1) as l",
        "select * from pg_catalog.pg_authid",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("escape_{i}");
        app.publish(&sql_flow(&name, sql, json!({}))).await;
        let (status, body) = call(&app, &name, json!({})).await;
        assert_eq!(
            (status, code(&body)),
            (500, "db.forbidden"),
            "{sql}: {body}"
        );
        assert_eq!(body["error"]["message"], "internal error");
    }
    let flows: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.flows")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(flows, 7, "nothing was deleted");
}

#[tokio::test]
async fn a_refused_statement_leaves_the_pooled_connection_on_sluices_own_role() {
    // One connection, so every request and the checks below share it.
    let app = spawn_app_with(|c| c.db_max_connections = 1).await;
    app.publish(&sql_flow(
        "who",
        "select current_user as who, current_setting('search_path') as path",
        json!({}),
    ))
    .await;
    app.publish(&sql_flow("peek", "select * from sluice.users", json!({})))
        .await;
    let (status, rows) = call(&app, "who", json!({})).await;
    assert_eq!(
        (status, rows),
        (200, json!([{"who": "sluice_app", "path": "app"}]))
    );
    let mut slow = sql_flow("slow", "select pg_sleep(5) as slept", json!({}));
    slow["settings"] = json!({"timeout_ms": 200});
    app.publish(&slow).await;
    // Refused by a permission check, and cut off by the flow timeout mid-statement.
    for (name, status) in [("peek", 500), ("slow", 504)] {
        let (got, body) = call(&app, name, json!({})).await;
        assert_eq!(got, status, "{name}: {body}");
        let (who, path, timeout): (String, String, String) = sqlx::query_as(
            "SELECT current_user::text, current_setting('search_path'), current_setting('statement_timeout')",
        )
        .fetch_one(&app.db)
        .await
        .expect("query");
        assert_ne!(who, "sluice_app", "after {name}");
        // The server's default search_path: Sluice sets none, every statement names its schema.
        assert_eq!(
            (path.as_str(), timeout.as_str()),
            ("\"$user\", public", "0"),
            "after {name}"
        );
    }
    let (status, _) = call(&app, "who", json!({})).await;
    assert_eq!(status, 200, "the connection still works for db.sql");
}

#[tokio::test]
async fn db_sql_writes_roll_back_with_the_request_and_errors_can_be_handled() {
    let app = todo_app().await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "add_then_fail",
        "endpoint": {"method": "POST", "path": "/add_then_fail"}, "entry": "add",
        "nodes": {
            "add": {"type": "db.sql", "sql": "insert into todos (title) values (:t)", "params": {"t": "doomed"},
                    "next": {"ok": "peek"}},
            "peek": {"type": "db.sql", "sql": "select * from sluice.users", "as": "users",
                     "next": {"ok": "done", "error": "handled"}},
            "done": {"type": "respond", "body": "unexpected"},
            "handled": {"type": "fail", "status": 422, "code": "demo.refused", "message": {"$rhai": "error.code"}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = call(&app, "add_then_fail", json!({})).await;
    assert_eq!((status, code(&body)), (422, "demo.refused"), "{body}");
    assert_eq!(body["error"]["message"], "db.forbidden");
    let doomed: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos WHERE title = 'doomed'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(doomed, 0, "a fail rolls the db.sql insert back");
}

#[tokio::test]
async fn a_long_db_sql_statement_stops_at_the_flow_timeout() {
    let app = todo_app().await;
    let mut doc = sql_flow("slow", "select pg_sleep(5) as slept", json!({}));
    doc["settings"] = json!({"timeout_ms": 300});
    app.publish(&doc).await;
    let started = std::time::Instant::now();
    let (status, body) = call(&app, "slow", json!({})).await;
    assert_eq!((status, code(&body)), (504, "flow.timeout"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

/// Regression. Symptom: a flow whose only writes were `db.update` or `db.delete` kept them
/// when it ended in `fail`. Cause: `Plan::writes` looked for `db.insert` only, so such flows
/// ran without a transaction and each statement committed on its own. Fix: every writing node
/// type counts (`Op::writes`).
#[tokio::test]
async fn an_update_or_delete_followed_by_fail_is_rolled_back() {
    let app = todo_app().await;
    for (name, node) in [
        (
            "update_then_fail",
            json!({"type": "db.update", "table": "todos", "id": 1, "values": {"title": "changed"}}),
        ),
        (
            "delete_then_fail",
            json!({"type": "db.delete", "table": "todos", "id": 2}),
        ),
        (
            "upsert_then_fail",
            json!({"type": "db.upsert", "table": "authors", "on": ["email"],
                                    "values": {"email": "ann@example.com", "name": "Changed"}}),
        ),
    ] {
        let mut doc = flow(name, node);
        doc["nodes"]["reply"] =
            json!({"type": "fail", "status": 409, "code": "demo.undo", "message": "undo"});
        app.publish(&doc).await;
        let (status, body) = call(&app, name, json!({})).await;
        assert_eq!((status, code(&body)), (409, "demo.undo"), "{name}: {body}");
    }
    let state: (String, i64, String) = sqlx::query_as(
        "SELECT (SELECT title FROM app.todos WHERE id = 1), (SELECT count(*) FROM app.todos), \
         (SELECT name FROM app.authors WHERE email = 'ann@example.com')",
    )
    .fetch_one(&app.db)
    .await
    .expect("state");
    assert_eq!(state, ("alpha".to_string(), 4, "Ann".to_string()));
}

/// The `(status, code, fields)` of an error answer, each field as the data API points at it
/// (`/email`). A flow's answer names a conflict's field as `{"field": "email"}` and a refused
/// value by its place in the flow, `/nodes/<node>/values/<field>`.
fn answer(status: u16, body: &Value) -> (u16, String, Vec<String>) {
    let fields = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| match (d["pointer"].as_str(), d["field"].as_str()) {
            (Some(p), _) => Some(match p.strip_prefix("/nodes/node/values") {
                Some(rest) => rest.to_string(),
                None => p.to_string(),
            }),
            (None, Some(f)) => Some(format!("/{f}")),
            _ => None,
        })
        .collect();
    (status, code(body).to_string(), fields)
}

/// A node that knows its table classifies a database error as the data API does: the same
/// status and field for a taken unique key and for a value an enum check refuses, and the same
/// referencing `table.field` for a delete of a row still referenced.
#[tokio::test]
async fn a_flow_and_the_data_api_answer_the_same_violation_alike() {
    let app = todo_app().await;
    let insert = |name: &str, table: &str, values: &Value| {
        let values: serde_json::Map<String, Value> = values
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| (k.clone(), json!({"$rhai": format!("request.body.{k}")})))
            .collect();
        flow(
            name,
            json!({"type": "db.insert", "table": table, "values": values}),
        )
    };
    // Each case: the table, the row, and the status, the codes (the flow's, the data API's) and
    // the field both answers name. The codes differ only where the data API refuses the value
    // before Postgres does (`row.invalid`): a node's value check is Postgres' (`db.invalid_value`).
    let cases = [
        // A unique key: the email is taken.
        (
            "authors",
            json!({"name": "Cat", "email": "ann@example.com"}),
            (409, ("db.conflict", "db.conflict"), "/email"),
        ),
        // An enum check: a value the field does not allow.
        (
            "todos",
            json!({"title": "delta", "level": "urgent"}),
            (400, ("db.invalid_value", "row.invalid"), "/level"),
        ),
    ];
    for (table, row, (status, (flow_code, api_code), field)) in cases {
        let name = format!("add_{table}");
        app.publish(&insert(&name, table, &row)).await;
        let (s, body) = call(&app, &name, row.clone()).await;
        let by_flow = answer(s, &body);
        let (s, body) = app
            .send(
                app.admin(Method::POST, &format!("/tables/{table}/rows"))
                    .json(&row),
            )
            .await;
        let by_api = answer(s, &body);
        assert_eq!(
            by_flow,
            (status, flow_code.to_string(), vec![field.to_string()]),
            "{table}"
        );
        assert_eq!(
            by_api,
            (status, api_code.to_string(), vec![field.to_string()]),
            "{table}"
        );
    }

    // A delete of a row another table still references: both name the referencing field.
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "author", "type": "reference", "table": "authors"}
    ]}))
    .await;
    sqlx::query("INSERT INTO app.notes (author) VALUES (1)")
        .execute(&app.db)
        .await
        .expect("note");
    app.publish(&flow(
        "drop_author",
        json!({"type": "db.delete", "table": "authors", "id": 1}),
    ))
    .await;
    let (s, by_flow) = call(&app, "drop_author", json!({})).await;
    assert_eq!((s, code(&by_flow)), (409, "db.conflict"), "{by_flow}");
    let (s, by_api) = app
        .send(app.admin(Method::DELETE, "/tables/authors/rows/1"))
        .await;
    assert_eq!((s, code(&by_api)), (409, "db.conflict"), "{by_api}");
    for body in [&by_flow, &by_api] {
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("`notes.author`"), "{body}");
    }
}

/// A publish prepares the new flow's statements on the server's idle connections before it
/// is served, so its first request does not pay for the prepare (the cold-start aim of the
/// benchmark, bench/README.md). The `db.sql` flow below reads its own connection's prepared
/// statements: the `db.get` statement is there although no request has run it yet.
#[tokio::test]
async fn a_published_flows_statements_are_prepared_before_its_first_request() {
    let app = todo_app().await;
    app.publish(&sql_flow(
        "prepared_here",
        "select count(*)::int as n from pg_prepared_statements \
         where statement like '%FROM \"app\".\"todos\" AS t WHERE t.\"id\" = $1::bigint%' \
         and statement not like '%pg_prepared_statements%'",
        json!({}),
    ))
    .await;
    let (status, rows) = call(&app, "prepared_here", json!({})).await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows, json!([{"n": 0}]), "nothing prepared it yet");
    let mut get = flow(
        "get_todo",
        json!({"type": "db.get", "table": "todos", "id": 1}),
    );
    get["nodes"]["node"]["next"] = json!({"found": "reply"});
    app.publish(&get).await;
    for _ in 0..3 {
        let (status, rows) = call(&app, "prepared_here", json!({})).await;
        assert_eq!(status, 200, "{rows}");
        assert_eq!(rows, json!([{"n": 1}]), "prepared on every idle connection");
    }
}

/// A conflict says which rule the row broke and on which field, in the data API's shape: in
/// the 409 a client gets, in the data API's own answer, and in `error` on a `conflict` branch.
#[tokio::test]
async fn a_conflict_names_its_rule_and_field_in_the_answer_and_on_the_conflict_branch() {
    let app = todo_app().await;
    let insert = |name: &str, table: &str, values: Value, conflict: bool| {
        let mut doc = flow(
            name,
            json!({"type": "db.insert", "table": table, "values": values}),
        );
        if conflict {
            doc["nodes"]["node"]["next"]["conflict"] = json!("clash");
            doc["nodes"]["clash"] = json!({"type": "respond", "status": 409,
                "body": {"rule": {"$rhai": "error.rule"}, "field": {"$rhai": "error.details[0].pointer"}}});
        }
        doc
    };
    let taken = json!({"name": "Cat", "email": "ann@example.com"});
    let values =
        json!({"name": {"$rhai": "request.body.name"}, "email": {"$rhai": "request.body.email"}});
    app.publish(&insert("add_author", "authors", values.clone(), false))
        .await;
    let (status, body) = call(&app, "add_author", taken.clone()).await;
    assert_eq!((status, code(&body)), (409, "db.conflict"), "{body}");
    let detail = &body["error"]["details"][0];
    assert_eq!(
        (&detail["pointer"], &detail["rule"]),
        (&json!("/email"), &json!("unique")),
        "{body}"
    );
    let (status, by_api) = app
        .send(app.admin(Method::POST, "/tables/authors/rows").json(&taken))
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        by_api["error"]["details"][0], *detail,
        "the same shape from the data API"
    );

    app.publish(&insert("add_author_handled", "authors", values, true))
        .await;
    let (status, body) = call(&app, "add_author_handled", taken).await;
    assert_eq!(
        (status, &body),
        (409, &json!({"rule": "unique", "field": "/email"}))
    );

    // A reference to a row that does not exist.
    app.publish(&insert(
        "add_todo_handled",
        "todos",
        json!({"title": "x", "author": {"$rhai": "request.body.author"}}),
        true,
    ))
    .await;
    let (status, body) = call(&app, "add_todo_handled", json!({"author": 999})).await;
    assert_eq!(
        (status, &body),
        (
            409,
            &json!({"rule": "missing_reference", "field": "/author"})
        )
    );
}
