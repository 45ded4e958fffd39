//! A whole project as files, against real Postgres: export, plan and apply
//! (`/_/api/v1/project`, docs/PROJECT.md). An apply is all or nothing, and its checks are
//! judged on the state after all of it.

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The shipped example apps as one project: every file under flows/examples, by its path.
fn examples() -> BTreeMap<String, String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).expect("readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let key = p
                    .strip_prefix(root)
                    .expect("below")
                    .to_string_lossy()
                    .to_string();
                out.insert(key, std::fs::read_to_string(&p).expect("text"));
            }
        }
    }
    let root = std::path::PathBuf::from(format!("{}/flows/examples", env!("CARGO_MANIFEST_DIR")));
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

async fn post(
    app: &TestApp,
    what: &str,
    files: &BTreeMap<String, String>,
    opts: Value,
) -> (u16, Value) {
    let mut body = json!({"format": "sluice.project", "version": 1, "files": files});
    if let (Some(b), Some(o)) = (body.as_object_mut(), opts.as_object()) {
        b.extend(o.clone());
    }
    app.send(
        app.admin(Method::POST, &format!("/project/{what}"))
            .json(&body),
    )
    .await
}

async fn export(app: &TestApp) -> BTreeMap<String, String> {
    let (status, body) = app.send(app.admin(Method::GET, "/project")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["format"], "sluice.project");
    serde_json::from_value(body["files"].clone()).expect("files")
}

fn action<'a>(report: &'a Value, kind: &str, name: &str) -> &'a str {
    report[kind]
        .as_array()
        .and_then(|l| l.iter().find(|i| i["name"] == name))
        .and_then(|i| i["action"].as_str())
        .unwrap_or("absent")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_round_trip_byte_for_byte_and_serve_the_same_api() {
    let a = common::spawn_app().await;
    let (status, report) = post(&a, "apply", &examples(), json!({"publish": true})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(action(&report, "tables", "todos"), "create");
    assert_eq!(action(&report, "flows", "create_order"), "create");
    // A secret and a value on the first instance: the value travels, the secret's name only.
    for (name, value, secret) in [
        ("MAIL_API_URL", "http://mail.invalid", false),
        ("MAIL_KEY", "s3cret-value", true),
    ] {
        let (status, body) = a
            .send(
                a.admin(Method::PUT, &format!("/env/{name}"))
                    .json(&json!({"value": value, "secret": secret})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let first = export(&a).await;
    assert_eq!(
        first,
        export(&a).await,
        "two exports of the same state are identical"
    );
    assert!(first.contains_key("todos.table.json"));
    assert!(first.contains_key("create_order.flow.json"));
    assert!(first.contains_key("default.group.json"));
    // Flow tests travel with their flows, in the canonical form the examples ship in.
    assert_eq!(
        first["get_todo.tests.json"],
        examples()["todo/get_todo.tests.json"],
        "tests files are exported canonically"
    );
    let env: Value = serde_json::from_str(&first["env.json"]).expect("env.json");
    assert_eq!(
        env,
        json!({"values": {"MAIL_API_URL": "http://mail.invalid"}, "secrets": ["MAIL_KEY"]})
    );
    assert!(
        !first.values().any(|t| t.contains("s3cret-value")),
        "a secret's value is never exported"
    );

    let b = common::spawn_app().await;
    let (status, plan) = post(&b, "plan", &first, json!({"publish": true})).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["env"]["missing_secrets"], json!(["MAIL_KEY"]));
    assert_eq!(plan["env"]["added"], json!(["MAIL_API_URL"]));
    let (_, tables) = b.send(b.admin(Method::GET, "/tables")).await;
    assert_eq!(tables["tables"], json!([]), "a plan changes nothing");

    let (status, report) = post(&b, "apply", &first, json!({"publish": true})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], true);
    // The secret's value is set on the second instance by hand, as the plan asked.
    let (status, _) = b
        .send(
            b.admin(Method::PUT, "/env/MAIL_KEY")
                .json(&json!({"value": "other", "secret": true})),
        )
        .await;
    assert_eq!(status, 204);
    let second = export(&b).await;
    for (name, text) in &first {
        assert_eq!(
            second.get(name),
            Some(text),
            "{name} differs after the round trip"
        );
    }
    assert_eq!(first.len(), second.len());

    // Both instances serve the same API: the same document, and the same answers.
    let (doc_a, _) = a.openapi().await;
    let (doc_b, _) = b.openapi().await;
    assert_eq!(doc_a["paths"], doc_b["paths"]);
    assert_eq!(doc_a["components"], doc_b["components"]);
    let mut compared = 0;
    for (path, ops) in doc_a["paths"].as_object().expect("paths") {
        if path.contains('{') || ops.get("get").is_none() {
            continue;
        }
        let path = path.strip_prefix("/api").unwrap_or(path);
        let (sa, ba) = a.send(a.api(Method::GET, path)).await;
        let (sb, bb) = b.send(b.api(Method::GET, path)).await;
        assert_eq!((sa, &ba), (sb, &bb), "GET {path}");
        compared += 1;
    }
    assert!(compared >= 2, "{compared} endpoints compared");

    // Applying the same files again changes nothing.
    let (status, again) = post(&b, "plan", &second, json!({"publish": true})).await;
    assert_eq!(status, 200);
    for kind in ["tables", "groups", "flows"] {
        for item in again[kind].as_array().expect("list") {
            assert_eq!(item["action"], "unchanged", "{kind}: {item}");
            assert!(item.get("publish").is_none(), "{item}");
        }
    }
}

fn notes_table() -> Value {
    json!({"name": "notes", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "body", "type": "text"}
    ]})
}

fn list_notes(column: &str) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": "list_notes", "entry": "q",
        "endpoint": {"method": "GET", "path": "/notes"},
        "nodes": {
            "q": {"type": "db.query", "table": "notes", "as": "rows",
                  "filter": {"field": column, "op": "ne", "value": ""}, "next": {"ok": "r"}},
            "r": {"type": "respond", "body": {"$rhai": "rows"}}
        }
    })
}

fn files(list: &[(&str, &Value)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                serde_json::to_string_pretty(v).expect("json"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rename_with_the_flows_that_use_it_applies_and_alone_is_refused_with_the_flows_named() {
    let app = common::spawn_app().await;
    let (status, body) = post(
        &app,
        "apply",
        &files(&[
            ("notes.table.json", &notes_table()),
            ("list_notes.flow.json", &list_notes("title")),
        ]),
        json!({"publish": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    sqlx::query("INSERT INTO app.notes (title) VALUES ('kept')")
        .execute(&app.db)
        .await
        .expect("row");

    // The exported table file carries the field ids: renaming `title` there is a rename.
    let exported = export(&app).await;
    let mut table: Value = serde_json::from_str(&exported["notes.table.json"]).expect("table");
    table["fields"][0]["name"] = json!("headline");

    // Alone: the published flow would break; refused, the flow named, nothing changed.
    let alone = files(&[
        ("notes.table.json", &table),
        ("list_notes.flow.json", &list_notes("title")),
    ]);
    let (status, body) = post(&app, "apply", &alone, json!({"publish": true})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "project.invalid");
    let details = body["error"]["details"].to_string();
    assert!(details.contains("list_notes.flow.json"), "{details}");
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'notes' ORDER BY column_name",
    )
    .fetch_all(&app.db)
    .await
    .expect("columns");
    assert!(
        columns.contains(&"title".to_string()),
        "nothing was applied: {columns:?}"
    );
    // Without --publish the published version is what would break, and the message says so.
    let (status, body) = post(
        &app,
        "apply",
        &files(&[
            ("notes.table.json", &table),
            ("list_notes.flow.json", &list_notes("headline")),
        ]),
        json!({}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["details"]
            .to_string()
            .contains("published version of flow `list_notes` would break"),
        "{body}"
    );

    // Together, published: applies, and the data stayed with the renamed field.
    let together = files(&[
        ("notes.table.json", &table),
        ("list_notes.flow.json", &list_notes("headline")),
    ]);
    let (status, body) = post(&app, "apply", &together, json!({"publish": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(action(&body, "tables", "notes"), "change");
    let (status, body) = app.send(app.api(Method::GET, "/notes")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["headline"], "kept", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_file_applies_nothing_and_drops_and_prunes_need_their_flags() {
    let app = common::spawn_app().await;
    let bad_flow = json!({"format": "sluice.flow", "format_version": 1, "name": "bad", "entry": "q",
        "nodes": {"q": {"type": "db.query", "table": "missing_table", "as": "rows"}}});
    let (status, body) = post(
        &app,
        "apply",
        &files(&[
            ("notes.table.json", &notes_table()),
            ("bad.flow.json", &bad_flow),
        ]),
        json!({"publish": true}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["details"]
            .to_string()
            .contains("bad.flow.json"),
        "{body}"
    );
    let (_, tables) = app.send(app.admin(Method::GET, "/tables")).await;
    assert_eq!(
        tables["tables"],
        json!([]),
        "the table of the same apply was not created"
    );

    let (status, body) = post(
        &app,
        "apply",
        &files(&[
            ("notes.table.json", &notes_table()),
            ("list_notes.flow.json", &list_notes("title")),
        ]),
        json!({"publish": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // A table file without a field drops it only with allow_drop.
    let exported = export(&app).await;
    let mut table: Value = serde_json::from_str(&exported["notes.table.json"]).expect("table");
    table["fields"].as_array_mut().expect("fields").pop();
    let flow = list_notes("title");
    let fewer = files(&[
        ("notes.table.json", &table),
        ("list_notes.flow.json", &flow),
    ]);
    let (status, body) = post(&app, "apply", &fewer, json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["details"]
            .to_string()
            .contains("--allow-drop"),
        "{body}"
    );
    let (status, body) = post(&app, "apply", &fewer, json!({"allow_drop": true})).await;
    assert_eq!(status, 200, "{body}");

    // A flow that is not in the files is kept, unless pruning; a table only with allow_drop.
    let only_table = files(&[("notes.table.json", &table)]);
    let (_, plan) = post(&app, "plan", &only_table, json!({})).await;
    assert_eq!(action(&plan, "flows", "list_notes"), "kept", "{plan}");
    let (_, plan) = post(
        &app,
        "plan",
        &BTreeMap::from([("env.json".to_string(), "{}".to_string())]),
        json!({"prune": true}),
    )
    .await;
    assert_eq!(action(&plan, "flows", "list_notes"), "delete", "{plan}");
    assert_eq!(action(&plan, "tables", "notes"), "kept", "{plan}");
    let (status, body) = post(&app, "apply", &only_table, json!({"prune": true})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.send(app.api(Method::GET, "/notes")).await;
    assert_eq!(status, 404, "the pruned flow is no longer served");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_project_bodies_are_refused_with_a_clear_error() {
    let app = common::spawn_app().await;
    for (body, code) in [
        (json!({"files": {"a.flow.json": 5}}), "request.invalid_body"),
        (
            json!({"files": {}, "format": "other"}),
            "project.unsupported",
        ),
        (
            json!({"files": {}, "surprise": true}),
            "request.invalid_body",
        ),
    ] {
        let (status, answer) = app
            .send(app.admin(Method::POST, "/project/apply").json(&body))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    // A table name that looks like SQL is a problem of the file, not a statement.
    let table = json!({"name": "x\"; DROP TABLE sluice.flows; --", "fields": []});
    let (status, body) = post(
        &app,
        "apply",
        &files(&[("x.table.json", &table)]),
        json!({}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(status, 200);
    // Without a session or token: 401.
    let resp = app
        .client
        .get(format!("{}/_/api/v1/project", app.editor_base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 401);
}
