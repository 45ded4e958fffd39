//! `db.aggregate` through real HTTP against a real Postgres: counts, sums, averages and
//! extremes with exact JSON types, groups with order and limit, optional filter values, the
//! table's list rule narrowing what is counted, empty tables, the OpenAPI schema of a flow that
//! answers with an aggregate, and the save-time checks.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

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

/// A `db.aggregate` on `reviews` with `config`.
fn aggregate(name: &str, config: Value) -> Value {
    let mut node = json!({"type": "db.aggregate", "table": "reviews"});
    for (k, v) in config.as_object().into_iter().flatten() {
        node[k] = v.clone();
    }
    flow(name, node)
}

async fn call(app: &TestApp, name: &str, body: Value) -> Value {
    let (status, out) = app
        .send(app.api(Method::POST, &format!("/{name}")).json(&body))
        .await;
    assert_eq!(status, 200, "{name} {body}: {out}");
    out
}

/// The exact JSON text of a value (numbers keep their digits).
fn text(v: &Value) -> String {
    v.to_string()
}

/// Books and five reviews of them (one without a rating, score or date).
async fn review_app() -> TestApp {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true}
    ]}))
    .await;
    app.create_table(&json!({"name": "reviews", "fields": [
        {"name": "book", "type": "reference", "table": "books", "required": true},
        {"name": "rating", "type": "integer"},
        {"name": "score", "type": "decimal", "precision": 4, "scale": 2},
        {"name": "verified", "type": "boolean", "required": true, "default": false},
        {"name": "published_on", "type": "date"},
        {"name": "reviewer", "type": "text", "required": true},
        {"name": "pin", "type": "password"}
    ]}))
    .await;
    sqlx::query("INSERT INTO app.books (title) VALUES ('Dune'), ('Emma'), ('Ulysses')")
        .execute(&app.db)
        .await
        .expect("books");
    sqlx::query(
        "INSERT INTO app.reviews (book, rating, score, verified, published_on, reviewer) VALUES
           (1, 5, 9.50, true, '2026-01-02', 'ann'),
           (1, 4, 8.25, false, '2026-01-01', 'bob'),
           (2, 2, 1.25, true, '2026-02-01', 'cid'),
           (2, NULL, NULL, false, NULL, 'dan'),
           (3, 3, 0.10, true, '2026-03-01', 'eve')",
    )
    .execute(&app.db)
    .await
    .expect("reviews");
    app
}

/// Every function once, over all rows or none.
fn every_function() -> Value {
    json!({
        "n": {"fn": "count"},
        "rated": {"fn": "count", "column": "rating"},
        "total": {"fn": "sum", "column": "rating"},
        "mean": {"fn": "avg", "column": "rating"},
        "score_sum": {"fn": "sum", "column": "score"},
        "score_avg": {"fn": "avg", "column": "score"},
        "lowest": {"fn": "min", "column": "rating"},
        "highest": {"fn": "max", "column": "score"},
        "first_day": {"fn": "min", "column": "published_on"},
        "all_verified": {"fn": "min", "column": "verified"},
        "any_verified": {"fn": "max", "column": "verified"},
        "first_reviewer": {"fn": "min", "column": "reviewer"}
    })
}

#[tokio::test]
async fn counts_sums_averages_and_extremes_keep_exact_json_types() {
    let app = review_app().await;
    app.publish(&aggregate(
        "stats",
        json!({"aggregates": every_function(),
               "filter": {"field": "reviewer", "op": "eq", "value": {"$rhai": "request.body.who"}}}),
    ))
    .await;
    let out = call(&app, "stats", json!({"who": null})).await;
    let want = [
        ("n", "5"),
        ("rated", "4"),
        // sum(bigint) is numeric in Postgres; it stays a JSON integer.
        ("total", "14"),
        ("mean", "3.5"),
        // Decimals are exact: the column's scale for sums, trimmed digits for averages.
        ("score_sum", "19.10"),
        ("score_avg", "4.775"),
        ("lowest", "2"),
        ("highest", "9.50"),
        ("first_day", "\"2026-01-01\""),
        ("all_verified", "false"),
        ("any_verified", "true"),
        ("first_reviewer", "\"ann\""),
    ];
    for (name, value) in want {
        assert_eq!(text(&out[name]), value, "{name} in {out}");
    }
    assert!(out["n"].is_i64() && out["total"].is_i64(), "{out}");
    assert_eq!(out.as_object().map(|o| o.len()), Some(want.len()), "{out}");

    // No row matches: counts are 0, everything else null.
    let none = call(&app, "stats", json!({"who": "nobody"})).await;
    for (name, _) in want {
        let expected = if name == "n" || name == "rated" {
            json!(0)
        } else {
            Value::Null
        };
        assert_eq!(none[name], expected, "{name} in {none}");
    }
}

#[tokio::test]
async fn an_empty_table_counts_zero_and_groups_into_an_empty_list() {
    let app = review_app().await;
    sqlx::query("DELETE FROM app.reviews")
        .execute(&app.db)
        .await
        .expect("emptied");
    app.publish(&aggregate(
        "empty_stats",
        json!({"aggregates": every_function()}),
    ))
    .await;
    app.publish(&aggregate(
        "empty_groups",
        json!({"group_by": ["book"], "aggregates": {"n": {"fn": "count"}}}),
    ))
    .await;
    let out = call(&app, "empty_stats", json!({})).await;
    assert_eq!(out["n"], json!(0));
    assert_eq!(out["total"], Value::Null);
    assert_eq!(out["mean"], Value::Null);
    assert_eq!(out["highest"], Value::Null);
    assert_eq!(call(&app, "empty_groups", json!({})).await, json!([]));
}

#[tokio::test]
async fn groups_are_ordered_by_aggregates_then_group_columns_and_limited() {
    let app = review_app().await;
    app.publish(&aggregate(
        "by_book",
        json!({"group_by": ["book"],
               "aggregates": {"n": {"fn": "count"}, "avg_rating": {"fn": "avg", "column": "rating"}},
               "order_by": [{"key": "avg_rating", "desc": true}],
               "limit": {"$rhai": "request.body.limit"}}),
    ))
    .await;
    let out = call(&app, "by_book", json!({"limit": 10})).await;
    assert_eq!(
        out,
        json!([
            {"book": 1, "n": 2, "avg_rating": 4.5},
            {"book": 3, "n": 1, "avg_rating": 3},
            {"book": 2, "n": 2, "avg_rating": 2}
        ])
    );
    let out = call(&app, "by_book", json!({"limit": 2})).await;
    assert_eq!(out.as_array().map(Vec::len), Some(2), "{out}");
    assert_eq!(out[1]["book"], json!(3));
    // Out of range is the caller's mistake.
    let (status, body) = app
        .send(app.api(Method::POST, "/by_book").json(&json!({"limit": 0})))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("db.invalid_value"))
    );

    // Ties on the key fall back to the group columns, ascending; the default limit is 100.
    app.publish(&aggregate(
        "by_count",
        json!({"group_by": ["verified", "book"], "aggregates": {"n": {"fn": "count"}},
               "order_by": [{"key": "n", "desc": true}, {"key": "verified"}]}),
    ))
    .await;
    let out = call(&app, "by_count", json!({})).await;
    assert_eq!(
        out,
        json!([
            {"verified": false, "book": 1, "n": 1},
            {"verified": false, "book": 2, "n": 1},
            {"verified": true, "book": 1, "n": 1},
            {"verified": true, "book": 2, "n": 1},
            {"verified": true, "book": 3, "n": 1}
        ])
    );
}

#[tokio::test]
async fn where_and_filter_values_that_are_null_skip_their_condition() {
    let app = review_app().await;
    app.publish(&aggregate(
        "filtered",
        json!({"aggregates": {"n": {"fn": "count"}},
               "where": {"book": {"$rhai": "if \"book\" in request.body { request.body.book } else { 1 }"}},
               "filter": {"or": [
                   {"field": "verified", "op": "eq", "value": {"$rhai": "request.body.verified"}},
                   {"field": "rating", "op": "ge", "value": {"$rhai": "request.body.min"}}
               ]}}),
    ))
    .await;
    let n = |out: Value| out["n"].as_i64().unwrap_or(-1);
    let cases = [
        // Both skipped: every review of book 1.
        (json!({"verified": null, "min": null}), 2),
        (json!({"verified": true, "min": null}), 1),
        (json!({"verified": null, "min": 5}), 1),
        (json!({"verified": false, "min": 5}), 2),
        (json!({"book": 2, "verified": null, "min": null}), 2),
        // `where` keeps its meaning: null matches nothing.
        (json!({"book": null, "verified": null, "min": null}), 0),
    ];
    for (body, want) in cases {
        assert_eq!(
            n(call(&app, "filtered", body.clone()).await),
            want,
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_list_rule_hides_rows_from_the_count() {
    let app = spawn_app().await;
    let mine = json!({"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}});
    app.create_table(&json!({"name": "notes", "fields": [
        {"name": "owner", "type": "integer"}, {"name": "words", "type": "integer"}
    ], "rules": {"list": mine}}))
        .await;
    sqlx::query("INSERT INTO app.notes (owner, words) VALUES (1, 10), (1, 5), (2, 100)")
        .execute(&app.db)
        .await
        .expect("notes");
    app.publish(
        &json!({"format": "sluice.flow", "format_version": 1, "name": "token",
        "endpoint": {"method": "POST", "path": "/token"}, "entry": "issue", "nodes": {
            "issue": {"type": "auth.issue_token", "sub": {"$rhai": "request.body.id"}, "as": "s",
                      "claims": {"role": {"$rhai": "request.body.role"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "s.token"}}}}),
    )
    .await;
    for (name, auth) in [("my_notes", "user"), ("all_notes", "admin")] {
        let mut doc = flow(
            name,
            json!({"type": "db.aggregate", "table": "notes",
                   "aggregates": {"n": {"fn": "count"}, "words": {"fn": "sum", "column": "words"}}}),
        );
        doc["endpoint"]["auth"] = json!(auth);
        app.publish(&doc).await;
    }
    let stats = |path: &'static str, id: &'static str, role: &'static str| {
        let app = app.clone();
        async move {
            let (_, token) = app
                .send(
                    app.api(Method::POST, "/token")
                        .json(&json!({"id": id, "role": role})),
                )
                .await;
            let token = token.as_str().expect("a token").to_string();
            let (status, out) = app
                .send(app.api(Method::POST, path).bearer_auth(token))
                .await;
            assert_eq!(status, 200, "{out}");
            out
        }
    };
    assert_eq!(
        stats("/my_notes", "1", "member").await,
        json!({"n": 2, "words": 15})
    );
    assert_eq!(
        stats("/my_notes", "2", "member").await,
        json!({"n": 1, "words": 100})
    );
    assert_eq!(
        stats("/my_notes", "3", "member").await,
        json!({"n": 0, "words": null})
    );
    // Admin endpoints apply no rule.
    assert_eq!(
        stats("/all_notes", "9", "admin").await,
        json!({"n": 3, "words": 115})
    );
}

#[tokio::test]
async fn the_openapi_document_types_an_answered_aggregate() {
    let app = review_app().await;
    let mut doc = aggregate(
        "review_stats",
        json!({"group_by": ["book"],
               "aggregates": {"count": {"fn": "count"}, "avg_rating": {"fn": "avg", "column": "rating"},
                              "best": {"fn": "max", "column": "rating"}}}),
    );
    doc["endpoint"] = json!({"method": "GET", "path": "/review_stats"});
    app.publish(&doc).await;
    let (openapi, _) = app.openapi().await;
    let schema = &openapi["paths"]["/review_stats"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(
        schema,
        &json!({"type": "array", "items": {"type": "object",
            "properties": {
                "book": {"type": "integer", "format": "int64", "minimum": 1},
                "count": {"type": "integer"},
                "avg_rating": {"type": ["number", "null"]},
                "best": {"type": ["integer", "null"], "format": "int64"}
            },
            "required": ["avg_rating", "best", "book", "count"]}}),
        "{openapi}"
    );
}

#[tokio::test]
async fn sums_of_text_unknown_columns_and_password_fields_are_refused_at_save() {
    let app = review_app().await;
    let doc = aggregate(
        "bad",
        json!({"group_by": ["pin"],
               "aggregates": {"total": {"fn": "sum", "column": "reviewer"},
                              "mean": {"fn": "avg", "column": "stars"},
                              "last": {"fn": "max", "column": "pin"}}}),
    );
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "flow.invalid");
    let found: Vec<(String, String)> = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["pointer"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want = [
        ("flow.password_column", "/nodes/node/aggregates/last/column"),
        ("flow.unknown_column", "/nodes/node/aggregates/mean/column"),
        ("flow.bad_aggregate", "/nodes/node/aggregates/total/column"),
        ("flow.password_column", "/nodes/node/group_by/0"),
    ];
    assert_eq!(
        found,
        want.map(|(c, p)| (c.to_string(), p.to_string())).to_vec(),
        "{body}"
    );
}
