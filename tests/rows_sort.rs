//! Sorting the admin data API's rows by several keys (`sort=-priority,title`): the order with
//! NULLs, cursor pages over a multi-key order, and refused sorts. Real HTTP, real Postgres.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

async fn list(app: &TestApp, params: &[(&str, String)]) -> (u16, Value) {
    app.send(app.admin(Method::GET, "/tables/tasks/rows").query(params))
        .await
}

/// A table where both sort keys have NULLs and ties, so every branch of the keyset condition
/// is crossed by a walk.
async fn tasks_app() -> (TestApp, Vec<(Option<i64>, Option<&'static str>)>) {
    let app = spawn_app().await;
    app.create_table(&json!({
        "name": "tasks",
        "fields": [
            {"name": "priority", "type": "integer"},
            {"name": "title", "type": "text"},
            {"name": "kind", "type": "enum", "values": ["bug", "chore"]}
        ]
    }))
    .await;
    let rows = vec![
        (Some(2), Some("b")),
        (None, Some("a")),
        (Some(1), None),
        (Some(2), Some("a")),
        (None, None),
        (Some(1), Some("c")),
        (Some(2), None),
        (Some(3), Some("a")),
        (None, Some("b")),
        (Some(1), Some("c")),
        (Some(2), Some("b")),
        (Some(3), None),
    ];
    for (priority, title) in &rows {
        let (status, body) = app
            .send(
                app.admin(Method::POST, "/tables/tasks/rows")
                    .json(&json!({"priority": priority, "title": title, "kind": "bug"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    (app, rows)
}

fn ids(page: &Value) -> Vec<i64> {
    page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

fn pairs(page: &Value) -> Vec<(Value, Value)> {
    page["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["priority"].clone(), r["title"].clone()))
        .collect()
}

/// The ids of `rows` (id = position + 1) in the order a multi-key sort must give: each key in
/// its direction with NULLs last ascending and first descending, then id in the direction of
/// the last key.
fn expected(
    rows: &[(Option<i64>, Option<&str>)],
    priority_desc: bool,
    title_desc: bool,
) -> Vec<i64> {
    use std::cmp::Ordering;
    fn key<T: Ord>(a: &Option<T>, b: &Option<T>, desc: bool) -> Ordering {
        // Ascending: values first, NULLs last. Descending is the exact reverse.
        let asc = match (a, b) {
            (Some(x), Some(y)) => x.cmp(y),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
        };
        if desc { asc.reverse() } else { asc }
    }
    let mut ids: Vec<i64> = (1..=rows.len() as i64).collect();
    ids.sort_by(|a, b| {
        let (ra, rb) = (&rows[*a as usize - 1], &rows[*b as usize - 1]);
        key(&ra.0, &rb.0, priority_desc)
            .then(key(&ra.1, &rb.1, title_desc))
            .then(if title_desc { b.cmp(a) } else { a.cmp(b) })
    });
    ids
}

#[tokio::test]
async fn several_sort_keys_order_rows_with_nulls_in_their_place() {
    let (app, rows) = tasks_app().await;
    for (sort, pd, td) in [
        ("-priority,title", true, false),
        ("priority,-title", false, true),
        ("priority,title", false, false),
        ("-priority,-title", true, true),
    ] {
        let (status, page) = list(&app, &[("sort", sort.into()), ("limit", "100".into())]).await;
        assert_eq!(status, 200, "{sort}: {page}");
        assert_eq!(ids(&page), expected(&rows, pd, td), "{sort}");
        assert_eq!(page["next_cursor"], Value::Null);
    }
    // Spelled out for one of them, so the rule above is not only checked against itself.
    let (_, page) = list(&app, &[("sort", "-priority,title".into())]).await;
    let n = Value::Null;
    assert_eq!(
        pairs(&page),
        vec![
            (n.clone(), json!("a")),
            (n.clone(), json!("b")),
            (n.clone(), n.clone()),
            (json!(3), json!("a")),
            (json!(3), n.clone()),
            (json!(2), json!("a")),
            (json!(2), json!("b")),
            (json!(2), json!("b")),
            (json!(2), n.clone()),
            (json!(1), json!("c")),
            (json!(1), json!("c")),
            (json!(1), n.clone()),
        ]
    );
    // An explicit `id` last key sets the direction of the tie-break.
    let (status, page) = list(&app, &[("sort", "priority,-id".into())]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        ids(&page),
        vec![10, 6, 3, 11, 7, 4, 1, 12, 8, 9, 5, 2],
        "{page}"
    );
    // The POST form takes the same sort.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/tasks/rows/query")
                .json(&json!({"sort": "-priority,title", "limit": 100})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), expected(&rows, true, false));
}

#[tokio::test]
async fn a_cursor_walk_over_a_multi_key_sort_returns_every_row_once() {
    let (app, rows) = tasks_app().await;
    for sort in [
        "-priority,title",
        "priority,-title",
        "title,priority",
        "-title,-priority",
        "kind,priority,title",
        "priority,-id",
    ] {
        for limit in [1, 2, 5] {
            let mut seen = Vec::new();
            let mut params = vec![("sort", sort.to_string()), ("limit", limit.to_string())];
            let mut pages = 0;
            loop {
                let (status, page) = list(&app, &params).await;
                assert_eq!(status, 200, "{sort} {limit}: {page}");
                seen.extend(ids(&page));
                pages += 1;
                assert!(
                    pages <= rows.len() + 1,
                    "{sort} {limit}: the walk does not end"
                );
                match page["next_cursor"].as_str() {
                    Some(c) => {
                        // The cursor carries its sort: the next request may leave `sort` out.
                        params = vec![("cursor", c.to_string()), ("limit", limit.to_string())];
                    }
                    None => break,
                }
            }
            let (_, all) = list(&app, &[("sort", sort.into()), ("limit", "100".into())]).await;
            assert_eq!(
                seen,
                ids(&all),
                "{sort} {limit}: the walk is the full order"
            );
            let unique: HashSet<i64> = seen.iter().copied().collect();
            assert_eq!(unique.len(), rows.len(), "{sort} {limit}: every row once");
        }
    }
    // A cursor keeps its place while rows change: a row inserted before it is not shown
    // again, the ones after it still come.
    let (_, first) = list(
        &app,
        &[("sort", "-priority,title".into()), ("limit", "4".into())],
    )
    .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (status, _) = app
        .send(
            app.admin(Method::POST, "/tables/tasks/rows")
                .json(&json!({"priority": null, "title": "0"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, rest) = list(&app, &[("cursor", cursor.clone()), ("limit", "100".into())]).await;
    let mut walked = ids(&first);
    walked.extend(ids(&rest));
    let all: Vec<i64> = expected(&rows, true, false);
    assert_eq!(
        walked, all,
        "the new row sorts before the cursor and is not on the rest"
    );
    // A cursor is refused with another sort.
    let (status, body) = list(
        &app,
        &[("cursor", cursor), ("sort", "priority,title".into())],
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "row.invalid_cursor"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_sort_keys_are_refused_and_nothing_is_read() {
    let (app, _) = tasks_app().await;
    let nine = [
        "priority",
        "title",
        "kind",
        "created_at",
        "updated_at",
        "id",
    ]
    .join(",")
        + ",-priority,-title,-kind";
    for (sort, code) in [
        ("priority,nope", "row.unknown_field"),
        ("nope", "row.unknown_field"),
        ("priority,", "row.invalid_query"),
        (",priority", "row.invalid_query"),
        ("priority,,title", "row.invalid_query"),
        ("-", "row.invalid_query"),
        ("priority,-priority", "row.invalid_query"),
        ("id,priority", "row.invalid_query"),
        (nine.as_str(), "row.invalid_query"),
    ] {
        let (status, body) = list(&app, &[("sort", sort.into())]).await;
        assert_eq!((status, error_code(&body)), (400, code), "{sort}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    // Every column of the table as a key is fine.
    let six = "priority,title,kind,created_at,updated_at,-id";
    let (status, body) = list(&app, &[("sort", six.into())]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body).len(), 12);
}
