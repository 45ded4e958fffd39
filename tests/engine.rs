//! The flow engine through real HTTP: error ports, on_error handlers, debug runs with traces,
//! and the node-type catalog the editor builds its palette from.

mod common;

use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

async fn tags(app: &TestApp) {
    let def = json!({"name": "tags", "fields": [{"name": "label", "type": "text", "required": true, "unique": true}]});
    app.create_table(&def).await;
}

fn flow(name: &str, path: &str, entry: &str, nodes: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": "POST", "path": path}, "entry": entry, "nodes": nodes})
}

#[tokio::test]
async fn an_error_port_handles_a_failing_node_and_sees_the_error() {
    let app = spawn_app().await;
    let doc = flow(
        "divide",
        "/divide",
        "calc",
        json!({
            "calc": {"type": "script", "code": "let n = request.body.n; 10 / n", "as": "q", "next": {"ok": "reply", "error": "oops"}},
            "reply": {"type": "respond", "body": {"q": {"$rhai": "q"}}},
            "oops": {"type": "respond", "status": 422, "body": {"failed": {"$rhai": "error.node"}, "code": {"$rhai": "error.code"}}}
        }),
    );
    app.publish(&doc).await;
    let (status, body) = app
        .send(app.api(Method::POST, "/divide").json(&json!({"n": 2})))
        .await;
    assert_eq!((status, body["q"].as_i64()), (200, Some(5)));
    let (status, body) = app
        .send(app.api(Method::POST, "/divide").json(&json!({"n": 0})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body, json!({"failed": "calc", "code": "script.error"}));
}

#[tokio::test]
async fn on_error_catches_unwired_failures_and_keeps_earlier_writes_consistent() {
    let app = spawn_app().await;
    tags(&app).await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "tag_twice",
        "endpoint": {"method": "POST", "path": "/tag-twice"}, "entry": "first", "on_error": "handler",
        "nodes": {
            "first": {"type": "db.insert", "table": "tags", "values": {"label": {"$rhai": "request.body.a"}}, "as": "a", "next": {"ok": "second"}},
            "second": {"type": "db.insert", "table": "tags", "values": {"label": {"$rhai": "request.body.b"}}, "as": "b", "next": {"ok": "done"}},
            "done": {"type": "respond", "status": 201, "body": {"ok": true}},
            "handler": {"type": "respond", "status": 409, "body": {"handled": {"$rhai": "error.code"}, "at": {"$rhai": "error.node"}}}
        }
    });
    app.publish(&doc).await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/tag-twice")
                .json(&json!({"a": "x", "b": "x"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body, json!({"handled": "db.conflict", "at": "second"}));
    // A 4xx `respond` commits: the first insert stays, the refused one never happened.
    let labels: Vec<String> = sqlx::query_scalar("SELECT label FROM app.tags")
        .fetch_all(&app.db)
        .await
        .expect("q");
    assert_eq!(labels, ["x"]);
}

#[tokio::test]
async fn handlers_see_only_the_error_and_a_failing_handler_ends_with_the_standard_error() {
    let app = spawn_app().await;
    let mut doc = flow(
        "bad_handler",
        "/bad-handler",
        "boom",
        json!({
            "boom": {"type": "script", "code": "throw \"no\"", "as": "x", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": 1},
            "handler": {"type": "respond", "status": 500, "body": {"$rhai": "x"}}
        }),
    );
    doc["on_error"] = json!("handler");
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(
        (status, code(&body)),
        (422, "flow.invalid"),
        "`x` is not set on the way to the handler: {body}"
    );
    doc["nodes"]["handler"]["body"] = json!({"$rhai": "error.no_such_property"});
    app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::POST, "/bad-handler")).await;
    assert_eq!((status, code(&body)), (500, "script.error"), "{body}");
}

#[tokio::test]
async fn a_debug_run_returns_the_response_and_a_trace_and_rolls_back_by_default() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == "create_todo")
        .and_then(|f| f["id"].as_i64())
        .expect("id");
    let run = |body: Value| {
        app.admin(Method::POST, &format!("/flows/{id}/run"))
            .json(&body)
    };

    let (status, out) = app.send(run(json!({"body": {"title": "  traced "}}))).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"]["status"], 201);
    assert_eq!(out["response"]["body"]["title"], "traced");
    let trace = out["trace"].as_array().expect("trace");
    let steps: Vec<(&str, &str)> = trace
        .iter()
        .map(|t| {
            (
                t["node"].as_str().unwrap_or(""),
                t["port"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("normalize", "ok"),
            ("check", "then"),
            ("insert", "ok"),
            ("reply", "-")
        ]
    );
    assert_eq!(trace[0]["output"], json!({"title": "traced"}));
    assert!(trace.iter().all(|t| t["duration_us"].as_u64().is_some()));
    assert_eq!(out["committed"], false);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("q");
    assert_eq!(n, 0, "a debug run rolls back unless asked to commit");

    let (_, out) = app
        .send(run(json!({"body": {"title": "kept"}, "commit": true})))
        .await;
    assert_eq!(out["committed"], true);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("q");
    assert_eq!(n, 1);

    let (status, out) = app.send(run(json!({"body": {"title": 5}}))).await;
    assert_eq!(status, 200);
    assert_eq!(out["error"]["code"], "input.invalid");
    assert_eq!(out["response"]["status"], 400);
}

#[tokio::test]
async fn the_node_type_catalog_lists_ports_and_schemas() {
    let app = spawn_app().await;
    let (status, body) = app.send(app.admin(Method::GET, "/node-types")).await;
    assert_eq!(status, 200);
    let types = body["node_types"].as_array().expect("list");
    let get = types
        .iter()
        .find(|t| t["type"] == "db.get")
        .expect("db.get");
    let ports: Vec<&str> = get["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(ports, ["found", "not_found", "error"]);
    assert_eq!(get["schema"]["properties"]["table"]["type"], "string");
    let respond = types
        .iter()
        .find(|t| t["type"] == "respond")
        .expect("respond");
    assert_eq!(respond["terminal"], true);
    assert_eq!(respond["ports"], json!([]));
}

#[tokio::test]
async fn a_loop_inserts_every_item_in_one_transaction_and_switch_picks_a_branch() {
    let app = spawn_app().await;
    tags(&app).await;
    let doc = flow(
        "bulk_tags",
        "/bulk-tags",
        "each",
        json!({
            "each": {"type": "for_each", "as": "made", "items": {"$rhai": "request.body.labels"}, "item": "label",
                     "body": {"entry": "insert", "nodes": {
                         "insert": {"type": "db.insert", "table": "tags", "as": "row", "values": {"label": {"$rhai": "label"}}, "next": {"ok": "keep"}},
                         "keep": {"type": "collect", "value": {"label": {"$rhai": "row.label"}, "position": {"$rhai": "index"}}}
                     }},
                     "next": {"ok": "count"}},
            "count": {"type": "set", "as": "n", "value": {"$rhai": "made.len()"}, "next": {"ok": "kind"}},
            "kind": {"type": "switch", "value": {"$rhai": "n"}, "cases": {"none": 0}, "next": {"none": "empty", "default": "reply"}},
            "empty": {"type": "fail", "status": 422, "code": "tags.none", "message": "no labels"},
            "reply": {"type": "respond", "status": 201, "body": {"made": {"$rhai": "made"}, "n": {"$rhai": "n"}}}
        }),
    );
    app.publish(&doc).await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/bulk-tags")
                .json(&json!({"labels": ["a", "b", "c"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["n"], 3);
    assert_eq!(body["made"][2], json!({"label": "c", "position": 2}));
    let (status, body) = app
        .send(
            app.api(Method::POST, "/bulk-tags")
                .json(&json!({"labels": []})),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "tags.none"));

    // A duplicate in the middle fails the whole request: no label of it is kept.
    let (status, body) = app
        .send(
            app.api(Method::POST, "/bulk-tags")
                .json(&json!({"labels": ["d", "a", "e"]})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "db.conflict"), "{body}");
    let labels: Vec<String> = sqlx::query_scalar("SELECT label FROM app.tags ORDER BY label")
        .fetch_all(&app.db)
        .await
        .expect("q");
    assert_eq!(labels, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_call_runs_a_published_function_and_passes_its_failure_through() {
    let app = spawn_app().await;
    let function = json!({
        "format": "sluice.flow", "format_version": 1, "name": "price",
        "input": {"body": {"type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 1}}}},
        "entry": "check",
        "nodes": {
            "check": {"type": "if", "condition": {"$rhai": "request.body.qty > 100"}, "next": {"then": "too_many", "else": "total"}},
            "too_many": {"type": "fail", "status": 422, "code": "price.too_many", "message": "at most 100"},
            "total": {"type": "respond", "body": {"total": {"$rhai": "request.body.qty * 3"}}}
        }
    });
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&function))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("id");
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["function"], "price");

    let caller = json!({
        "format": "sluice.flow", "format_version": 1, "name": "quote",
        "endpoint": {"method": "GET", "path": "/quote"},
        "input": {"query": {"type": "object", "properties": {"qty": {"type": "integer"}}}},
        "entry": "ask",
        "nodes": {
            "ask": {"type": "call", "flow": "price", "input": {"qty": {"$rhai": "request.query.qty"}}, "as": "p", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"quote": {"$rhai": "p.total"}}}
        }
    });
    app.publish(&caller).await;
    let (status, body) = app.send(app.api(Method::GET, "/quote?qty=4")).await;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"quote": 12})),
        "{body}"
    );
    let (status, body) = app.send(app.api(Method::GET, "/quote?qty=500")).await;
    assert_eq!((status, code(&body)), (422, "price.too_many"), "{body}");
    let (status, body) = app.send(app.api(Method::GET, "/quote?qty=0")).await;
    assert_eq!(
        (status, code(&body)),
        (400, "input.invalid"),
        "the function's own input schema applies: {body}"
    );

    let missing = json!({
        "format": "sluice.flow", "format_version": 1, "name": "bad_caller",
        "endpoint": {"method": "GET", "path": "/bad"}, "entry": "ask",
        "nodes": {
            "ask": {"type": "call", "flow": "nope", "as": "p", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": 1}
        }
    });
    let (status, body) = app
        .send(app.admin(Method::POST, "/flows").json(&missing))
        .await;
    assert_eq!((status, code(&body)), (422, "flow.invalid"));
    assert_eq!(body["error"]["details"][0]["code"], "flow.unknown_function");
}

#[tokio::test]
async fn flows_read_env_and_secrets_and_secrets_never_come_back_or_reach_traces() {
    let app = spawn_app().await;
    let put = |name: &str, body: Value| app.admin(Method::PUT, &format!("/env/{name}")).json(&body);
    let (status, _) = app.send(put("REGION", json!({"value": "eu-west"}))).await;
    assert_eq!(status, 204);
    let (status, _) = app
        .send(put(
            "API_KEY",
            json!({"value": "sk_live_abcdef", "secret": true}),
        ))
        .await;
    assert_eq!(status, 204);
    let (status, body) = app.send(put("bad-name", json!({"value": "x"}))).await;
    assert_eq!((status, code(&body)), (400, "env.invalid_name"));

    let (_, list) = app.send(app.admin(Method::GET, "/env")).await;
    assert!(!list.to_string().contains("sk_live_abcdef"), "{list}");
    assert_eq!(list["env"][1]["name"], "REGION");
    assert_eq!(list["env"][1]["value"], "eu-west");

    let doc = flow(
        "signed",
        "/signed",
        "sign",
        json!({
            "sign": {"type": "set", "as": "header", "value": {"$rhai": "`Bearer ${secret(\"API_KEY\")} for ${env.REGION}`"}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"length": {"$rhai": "header.len()"}, "region": {"$rhai": "env.REGION"}}}
        }),
    );
    let id = app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::POST, "/signed")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"length": "Bearer sk_live_abcdef for eu-west".len(), "region": "eu-west"})
    );

    let (_, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&json!({})),
        )
        .await;
    let trace = out["trace"].to_string();
    assert!(!trace.contains("sk_live_abcdef"), "{trace}");
    assert!(trace.contains("Bearer *** for eu-west"), "{trace}");
}

/// Regression: a flow whose only write is a `db.update` or `db.delete` ran its statements
/// outside a transaction (`Plan::writes` looked only for `db.insert`), so a later `fail` or a
/// debug run could not roll the change back. Every write node now opens the transaction.
#[tokio::test]
async fn an_update_followed_by_fail_is_rolled_back_and_debug_runs_of_deletes_change_nothing() {
    let app = spawn_app().await;
    tags(&app).await;
    sqlx::query("INSERT INTO app.tags (label) VALUES ('keep')")
        .execute(&app.db)
        .await
        .expect("seed");
    let id: i64 = sqlx::query_scalar("SELECT id FROM app.tags")
        .fetch_one(&app.db)
        .await
        .expect("id");
    let doc = flow(
        "rename_then_fail",
        "/rename",
        "update",
        json!({
            "update": {"type": "db.update", "table": "tags", "id": {"$rhai": "request.body.id"},
                       "values": {"label": "changed"}, "as": "row", "next": {"ok": "stop"}},
            "stop": {"type": "fail", "status": 409, "code": "tag.nope", "message": "no"}
        }),
    );
    app.publish(&doc).await;
    let (status, _) = app
        .send(app.api(Method::POST, "/rename").json(&json!({"id": id})))
        .await;
    assert_eq!(status, 409);
    let label: String = sqlx::query_scalar("SELECT label FROM app.tags")
        .fetch_one(&app.db)
        .await
        .expect("label");
    assert_eq!(label, "keep", "the update must be rolled back by `fail`");

    let doc = flow(
        "remove_tag",
        "/remove",
        "delete",
        json!({
            "delete": {"type": "db.delete", "table": "tags", "id": {"$rhai": "request.body.id"},
                       "as": "row", "next": {"ok": "done"}},
            "done": {"type": "respond", "body": {"$rhai": "row"}}
        }),
    );
    let (_, saved) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    let flow_id = saved["id"].as_i64().expect("flow id");
    let (status, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{flow_id}/run"))
                .json(&json!({"body": {"id": id}})),
        )
        .await;
    assert_eq!(
        (status, out["committed"].as_bool()),
        (200, Some(false)),
        "{out}"
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.tags")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 1, "a debug run rolls its delete back");
}

/// Symptom: a debug run showed a flow the `authorization` and `cookie` headers it was given,
/// which a real request never shows a flow. Cause: the debug run built its request apart from
/// the generated API. Fix: both build it with one function; this runs the same headers both
/// ways and compares what the flow saw.
#[tokio::test]
async fn a_debug_run_hides_the_credential_headers_a_real_request_hides() {
    let app = spawn_app().await;
    let doc = flow(
        "echo_headers",
        "/echo-headers",
        "reply",
        json!({"reply": {"type": "respond", "body": {"$rhai": "request.headers"}}}),
    );
    let id = app.publish(&doc).await;
    let (status, real) = app
        .send(
            app.api(Method::POST, "/echo-headers")
                .header("Authorization", "Bearer not-a-token")
                .header("Cookie", "session=abc")
                .header("Proxy-Authorization", "Basic eDp5")
                .header("X-Probe", "seen"),
        )
        .await;
    assert_eq!(status, 200, "{real}");
    let (status, debug) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&json!({"headers": {
                    "Authorization": "Bearer not-a-token",
                    "cookie": "session=abc",
                    "Proxy-Authorization": "Basic eDp5",
                    "X-Probe": "seen",
                }})),
        )
        .await;
    assert_eq!(status, 200, "{debug}");
    let seen = &debug["response"]["body"];
    for hidden in ["authorization", "cookie", "proxy-authorization"] {
        assert!(
            real.get(hidden).is_none(),
            "a request shows `{hidden}`: {real}"
        );
        assert!(
            seen.get(hidden).is_none(),
            "a debug run shows `{hidden}`: {seen}"
        );
    }
    assert_eq!(real["x-probe"], "seen", "{real}");
    assert_eq!(seen["x-probe"], "seen", "{seen}");
}

/// `settings.transaction`. `serializable`: concurrent read-then-write runs are serialized by
/// Postgres, and a run that hits a serialization failure runs again, so no increment is lost.
/// `none`: each statement commits on its own, so a write before a failure stays. A flow with a
/// trigger cannot say `none`.
#[tokio::test(flavor = "multi_thread")]
async fn transaction_settings_serialize_or_commit_each_statement() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "counters", "fields": [
        {"name": "name", "type": "text", "unique": true},
        {"name": "n", "type": "integer", "required": true}
    ]}))
    .await;
    sqlx::query("INSERT INTO app.counters (name, n) VALUES ('c', 0)")
        .execute(&app.db)
        .await
        .expect("row");
    let mut bump = flow(
        "bump",
        "/bump",
        "read",
        json!({
            "read": {"type": "db.query", "table": "counters", "as": "rows",
                     "filter": {"field": "name", "op": "eq", "value": "c"}, "next": {"ok": "write"}},
            "write": {"type": "db.update", "table": "counters", "as": "row",
                      "id": {"$rhai": "rows[0].id"}, "values": {"n": {"$rhai": "rows[0].n + 1"}},
                      "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"n": {"$rhai": "row.n"}}}
        }),
    );
    bump["settings"] = json!({"transaction": "serializable"});
    app.publish(&bump).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let req = app.api(Method::POST, "/bump");
        calls.spawn(async move {
            let resp = req.send().await.expect("answered");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let answers: Vec<(u16, Value)> = calls.join_all().await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    for (status, body) in &answers {
        assert!(
            *status == 200 || (*status == 409 && code(body) == "db.serialization_failure"),
            "{status} {body}"
        );
    }
    let n: i64 = sqlx::query_scalar("SELECT n::bigint FROM app.counters WHERE name = 'c'")
        .fetch_one(&app.db)
        .await
        .expect("n");
    assert!(ok > 0, "{answers:?}");
    assert_eq!(
        n as usize, ok,
        "every answered increment is stored, none is lost"
    );

    // `none`: the insert before the failure stays.
    let mut keep = flow(
        "keep",
        "/keep",
        "add",
        json!({
            "add": {"type": "db.insert", "table": "counters", "as": "row",
                    "values": {"name": "kept", "n": 1}, "next": {"ok": "boom"}},
            "boom": {"type": "fail", "status": 500, "code": "demo.failed", "message": "after the write"}
        }),
    );
    keep["settings"] = json!({"transaction": "none"});
    app.publish(&keep).await;
    let (status, _) = app.send(app.api(Method::POST, "/keep")).await;
    assert_eq!(status, 500);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM app.counters WHERE name = 'kept'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(kept, 1, "with `none` the write committed on its own");

    let job = json!({"format": "sluice.flow", "format_version": 1, "name": "job_none",
        "trigger": {"kind": "job"}, "settings": {"transaction": "none"}, "entry": "r",
        "nodes": {"r": {"type": "respond", "body": null}}});
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&job)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"][0]["code"], "flow.bad_setting",
        "{body}"
    );
}
