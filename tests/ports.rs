//! Every port of every node type, table-driven: each case saves a small flow, runs its draft
//! with the debug runner and checks which port the node under test fired (from the trace) and
//! what the request answered.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    /// The node under test, called `n`; its ports lead to `a` (respond 200), `b` (respond 201)
    /// and `c` (respond 202) as the case wires them.
    node: Value,
    body: Value,
    /// The port `n` fires, and the status the run answers.
    port: &'static str,
    status: u16,
}

fn doc(case: &Case) -> Value {
    let reply = |status: u16| json!({"type": "respond", "status": status, "body": status});
    let mut nodes = json!({"n": case.node, "a": reply(200), "b": reply(201), "c": reply(202)});
    // Remove the replies the node under test does not wire, so no node is unreachable.
    let wired: Vec<String> = case.node["next"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for r in ["a", "b", "c"] {
        if !wired.iter().any(|w| w == r) {
            nodes.as_object_mut().map(|m| m.remove(r));
        }
    }
    json!({"format": "sluice.flow", "format_version": 1, "name": case.name,
           "endpoint": {"method": "POST", "path": format!("/{}", case.name)}, "entry": "n", "nodes": nodes})
}

async fn setup(app: &TestApp) {
    app.create_table(&json!({"name": "things", "fields": [
        {"name": "label", "type": "text", "required": true, "unique": true},
        {"name": "qty", "type": "integer"}
    ]}))
    .await;
    app.create_table(&json!({"name": "parts", "fields": [
        {"name": "thing", "type": "reference", "table": "things"}
    ]}))
    .await;
    sqlx::query("INSERT INTO app.things (label, qty) VALUES ('taken', 1)")
        .execute(&app.db)
        .await
        .expect("seed");
    sqlx::query("INSERT INTO app.parts (thing) VALUES (1)")
        .execute(&app.db)
        .await
        .expect("seed");
    let function = json!({"format": "sluice.flow", "format_version": 1, "name": "echo", "entry": "r",
        "nodes": {"r": {"type": "if", "condition": {"$rhai": "request.body == 0"}, "next": {"then": "f", "else": "o"}},
                  "f": {"type": "fail", "status": 418, "code": "echo.zero", "message": "zero"},
                  "o": {"type": "respond", "body": {"$rhai": "request.body"}}}});
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&function))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, _) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200);
}

fn cases() -> Vec<Case> {
    let x = |body: Value| body;
    let q = |expr: &str| json!({"$rhai": expr});
    vec![
        Case {
            name: "validate_ok",
            node: json!({"type": "validate", "value": q("request.body"), "schema": {"type": "integer"}, "next": {"ok": "a", "invalid": "b"}}),
            body: x(json!(1)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "validate_invalid",
            node: json!({"type": "validate", "value": q("request.body"), "schema": {"type": "integer"}, "next": {"ok": "a", "invalid": "b"}}),
            body: x(json!("no")),
            port: "invalid",
            status: 201,
        },
        Case {
            name: "validate_error",
            node: json!({"type": "validate", "value": q("request.body.missing"), "schema": {}, "next": {"ok": "a", "error": "c"}}),
            body: x(json!({})),
            port: "error",
            status: 202,
        },
        Case {
            name: "get_found",
            node: json!({"type": "db.get", "table": "things", "id": 1, "next": {"found": "a", "not_found": "b"}}),
            body: x(json!(null)),
            port: "found",
            status: 200,
        },
        Case {
            name: "get_not_found",
            node: json!({"type": "db.get", "table": "things", "id": 99, "next": {"found": "a", "not_found": "b"}}),
            body: x(json!(null)),
            port: "not_found",
            status: 201,
        },
        Case {
            name: "get_error",
            node: json!({"type": "db.get", "table": "things", "id": "abc", "next": {"found": "a", "error": "c"}}),
            body: x(json!(null)),
            port: "error",
            status: 202,
        },
        Case {
            name: "query_ok",
            node: json!({"type": "db.query", "table": "things", "next": {"ok": "a"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "query_error",
            node: json!({"type": "db.query", "table": "things", "limit": 0, "next": {"ok": "a", "error": "c"}}),
            body: x(json!(null)),
            port: "error",
            status: 202,
        },
        Case {
            name: "insert_ok",
            node: json!({"type": "db.insert", "table": "things", "values": {"label": "new"}, "next": {"ok": "a", "conflict": "b"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "insert_conflict",
            node: json!({"type": "db.insert", "table": "things", "values": {"label": "taken"}, "next": {"ok": "a", "conflict": "b"}}),
            body: x(json!(null)),
            port: "conflict",
            status: 201,
        },
        Case {
            name: "insert_error",
            node: json!({"type": "db.insert", "table": "things", "values": {"label": "x", "qty": "many"}, "next": {"ok": "a", "error": "c"}}),
            body: x(json!(null)),
            port: "error",
            status: 202,
        },
        Case {
            name: "update_ok",
            node: json!({"type": "db.update", "table": "things", "id": 1, "values": {"qty": 5}, "next": {"ok": "a", "not_found": "b"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "update_not_found",
            node: json!({"type": "db.update", "table": "things", "id": 99, "values": {"qty": 5}, "next": {"ok": "a", "not_found": "b"}}),
            body: x(json!(null)),
            port: "not_found",
            status: 201,
        },
        Case {
            name: "update_patch_ok",
            node: json!({"type": "db.update", "table": "things", "id": 1, "patch": {"label": "renamed"}, "next": {"ok": "a", "conflict": "b"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "update_error",
            node: json!({"type": "db.update", "table": "things", "id": 1, "patch": q("request.body"), "next": {"ok": "a", "error": "c"}}),
            body: x(json!({"nope": 1})),
            port: "error",
            status: 202,
        },
        Case {
            name: "delete_conflict",
            node: json!({"type": "db.delete", "table": "things", "id": 1, "next": {"ok": "a", "conflict": "b"}}),
            body: x(json!(null)),
            port: "conflict",
            status: 201,
        },
        Case {
            name: "delete_not_found",
            node: json!({"type": "db.delete", "table": "things", "id": 99, "next": {"ok": "a", "not_found": "b"}}),
            body: x(json!(null)),
            port: "not_found",
            status: 201,
        },
        Case {
            name: "delete_ok",
            node: json!({"type": "db.delete", "table": "parts", "id": 1, "next": {"ok": "a"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "upsert_ok",
            node: json!({"type": "db.upsert", "table": "things", "on": ["label"], "values": {"label": "taken", "qty": 2}, "next": {"ok": "a"}}),
            body: json!(null),
            port: "ok",
            status: 200,
        },
        Case {
            name: "upsert_error",
            node: json!({"type": "db.upsert", "table": "things", "on": ["label"], "values": {"label": "taken", "qty": "many"}, "next": {"ok": "a", "error": "c"}}),
            body: json!(null),
            port: "error",
            status: 202,
        },
        Case {
            name: "sql_ok",
            node: json!({"type": "db.sql", "sql": "select label from app.things where id = :id::bigint", "params": {"id": 1}, "as": "r", "next": {"ok": "a"}}),
            body: json!(null),
            port: "ok",
            status: 200,
        },
        Case {
            name: "sql_error",
            node: json!({"type": "db.sql", "sql": "select 1 / :zero::int as x", "params": {"zero": 0}, "as": "r", "next": {"ok": "a", "error": "c"}}),
            body: json!(null),
            port: "error",
            status: 202,
        },
        Case {
            name: "script_ok",
            node: json!({"type": "script", "code": "1 + 1", "as": "v", "next": {"ok": "a"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "script_error",
            node: json!({"type": "script", "code": "throw \"x\"", "next": {"ok": "a", "error": "c"}}),
            body: x(json!(null)),
            port: "error",
            status: 202,
        },
        Case {
            name: "set_ok",
            node: json!({"type": "set", "as": "v", "value": q("40 + 2"), "next": {"ok": "a"}}),
            body: x(json!(null)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "set_error",
            node: json!({"type": "set", "as": "v", "value": q("request.body.nope"), "next": {"ok": "a", "error": "c"}}),
            body: x(json!({})),
            port: "error",
            status: 202,
        },
        Case {
            name: "if_then",
            node: json!({"type": "if", "condition": q("request.body == 1"), "next": {"then": "a", "else": "b"}}),
            body: x(json!(1)),
            port: "then",
            status: 200,
        },
        Case {
            name: "if_else",
            node: json!({"type": "if", "condition": q("request.body == 1"), "next": {"then": "a", "else": "b"}}),
            body: x(json!(2)),
            port: "else",
            status: 201,
        },
        Case {
            name: "if_error",
            node: json!({"type": "if", "condition": q("request.body"), "next": {"then": "a", "else": "b", "error": "c"}}),
            body: x(json!("yes")),
            port: "error",
            status: 202,
        },
        Case {
            name: "switch_case",
            node: json!({"type": "switch", "value": q("request.body"), "cases": {"one": 1}, "next": {"one": "a", "default": "b"}}),
            body: x(json!(1)),
            port: "case",
            status: 200,
        },
        Case {
            name: "switch_default",
            node: json!({"type": "switch", "value": q("request.body"), "cases": {"one": 1}, "next": {"one": "a", "default": "b"}}),
            body: x(json!(7)),
            port: "default",
            status: 201,
        },
        Case {
            name: "switch_error",
            node: json!({"type": "switch", "value": q("request.body.x"), "cases": {"one": 1}, "next": {"one": "a", "default": "b", "error": "c"}}),
            body: x(json!({})),
            port: "error",
            status: 202,
        },
        Case {
            name: "loop_ok",
            node: json!({"type": "for_each", "items": q("request.body"), "as": "out", "body": {"entry": "k", "nodes": {"k": {"type": "collect", "value": q("item * 2")}}}, "next": {"ok": "a"}}),
            body: x(json!([1, 2])),
            port: "ok",
            status: 200,
        },
        Case {
            name: "loop_error",
            node: json!({"type": "for_each", "items": q("request.body"), "as": "out", "body": {"entry": "k", "nodes": {"k": {"type": "collect", "value": 1}}}, "next": {"ok": "a", "error": "c"}}),
            body: x(json!("not a list")),
            port: "error",
            status: 202,
        },
        Case {
            name: "call_ok",
            node: json!({"type": "call", "flow": "echo", "input": q("request.body"), "as": "r", "next": {"ok": "a"}}),
            body: x(json!(5)),
            port: "ok",
            status: 200,
        },
        Case {
            name: "call_error",
            node: json!({"type": "call", "flow": "echo", "input": 0, "as": "r", "next": {"ok": "a", "error": "c"}}),
            body: x(json!(null)),
            port: "error",
            status: 202,
        },
    ]
}

#[tokio::test]
async fn every_port_of_every_node_type_fires_when_it_should() {
    let app = spawn_app().await;
    setup(&app).await;
    let mut failures = Vec::new();
    for case in cases() {
        let (status, saved) = app
            .send(app.admin(Method::POST, "/flows").json(&doc(&case)))
            .await;
        if status != 201 {
            failures.push(format!("{}: save {status} {saved}", case.name));
            continue;
        }
        let id = saved["id"].as_i64().expect("id");
        let (_, out) = app
            .send(
                app.admin(Method::POST, &format!("/flows/{id}/run"))
                    .json(&json!({"body": case.body})),
            )
            .await;
        let fired = out["trace"]
            .as_array()
            .and_then(|t| t.iter().find(|e| e["node"] == "n"))
            .map(|e| e["port"].clone());
        let status = out["response"]["status"].as_u64();
        if fired != Some(json!(case.port)) || status != Some(u64::from(case.status)) {
            failures.push(format!(
                "{}: fired {fired:?}, answered {status:?}; run: {out}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
