//! The generated API's routing through real HTTP against a real Postgres: API groups (base
//! paths, enable/disable, deletion rules, collisions), CORS preflights and actual responses,
//! OPTIONS and HEAD, JSON 404/405, 413 and the coercion of path and query values.

mod common;

use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

/// An endpoint that answers `{"says": says}`, optionally in a group.
fn hello(name: &str, method: &str, path: &str, group: Option<&str>, says: &str) -> Value {
    let mut doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": method, "path": path},
        "entry": "reply",
        "nodes": {"reply": {"type": "respond", "body": {"says": says}}}
    });
    if let Some(g) = group {
        doc["endpoint"]["group"] = json!(g);
    }
    doc
}

async fn create_group(app: &TestApp, def: Value) -> Value {
    let (status, body) = app
        .send(app.admin(Method::POST, "/groups").json(&def))
        .await;
    assert_eq!(status, 201, "create group: {body}");
    body
}

async fn save(app: &TestApp, doc: &Value) -> i64 {
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(doc)).await;
    assert_eq!(status, 201, "save: {body}");
    body["id"].as_i64().expect("id")
}

fn header<'r>(resp: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_group_serves_its_endpoints_under_its_base_path() {
    let app = spawn_app().await;
    let group = create_group(&app, json!({"name": "shop", "base_path": "/shop/v1"})).await;
    assert_eq!(group["enabled"], true);
    assert_eq!(group["version"], 1);
    let id = save(
        &app,
        &hello("items", "GET", "/items", Some("shop"), "items"),
    )
    .await;
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["url"], "/api/shop/v1/items");
    assert_eq!(body["group"], "shop");

    let (status, body) = app.send(app.api(Method::GET, "/shop/v1/items")).await;
    assert_eq!((status, body), (200, json!({"says": "items"})));
    let (status, body) = app.send(app.api(Method::GET, "/items")).await;
    assert_eq!((status, code(&body)), (404, "route.not_found"));

    // Without a group, an endpoint is in `default`, whose base path is empty.
    app.publish(&hello("plain", "GET", "/items", None, "plain"))
        .await;
    let (status, body) = app.send(app.api(Method::GET, "/items")).await;
    assert_eq!((status, body), (200, json!({"says": "plain"})));

    let (status, body) = app.send(app.admin(Method::GET, "/groups")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "shop"]);
}

#[tokio::test]
async fn publishing_into_an_unknown_group_is_refused_and_serves_nothing() {
    let app = spawn_app().await;
    let id = save(&app, &hello("lost", "GET", "/lost", Some("nowhere"), "x")).await;
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!((status, code(&body)), (422, "flow.unknown_group"), "{body}");
    let (status, _) = app.send(app.api(Method::GET, "/lost")).await;
    assert_eq!(status, 404);
    let (_, flow) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(flow["published_version"], Value::Null);
}

#[tokio::test]
async fn routes_that_collide_after_base_paths_are_refused() {
    let app = spawn_app().await;
    create_group(&app, json!({"name": "v1", "base_path": "/v1"})).await;
    create_group(&app, json!({"name": "v2", "base_path": "/v2"})).await;
    app.publish(&hello("v1_items", "GET", "/items", Some("v1"), "v1"))
        .await;

    // The default group's `/v1/items` is the URL that group v1 serves as `/v1` + `/items`.
    let id = save(&app, &hello("clash", "GET", "/v1/items", None, "clash")).await;
    let (status, body) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!((status, code(&body)), (409, "flow.route_taken"), "{body}");

    // Moving a group onto a path where its routes would collide is refused too.
    app.publish(&hello("v2_items", "GET", "/items", Some("v2"), "v2"))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/v2")
                .header("if-match", "\"1\"")
                .json(&json!({"base_path": "/v1"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "group.base_path_taken"),
        "{body}"
    );
    app.publish(&hello("v3_items", "GET", "/v3/items", None, "v3"))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/v2")
                .header("if-match", "\"1\"")
                .json(&json!({"base_path": "/v3"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "group.route_taken"), "{body}");
    // Nothing moved.
    let (status, body) = app.send(app.api(Method::GET, "/v2/items")).await;
    assert_eq!((status, body), (200, json!({"says": "v2"})));
    let (status, body) = app.send(app.api(Method::GET, "/v1/items")).await;
    assert_eq!((status, body), (200, json!({"says": "v1"})));
    let (status, body) = app.send(app.api(Method::GET, "/v3/items")).await;
    assert_eq!((status, body), (200, json!({"says": "v3"})));
    let (_, group) = app.send(app.admin(Method::GET, "/groups/v2")).await;
    assert_eq!(
        (&group["base_path"], &group["version"]),
        (&json!("/v2"), &json!(1))
    );
}

#[tokio::test]
async fn changing_a_base_path_moves_the_group_s_endpoints_at_once() {
    let app = spawn_app().await;
    let group = create_group(&app, json!({"name": "shop", "base_path": "/shop"})).await;
    app.publish(&hello("items", "GET", "/items", Some("shop"), "items"))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/shop")
                .header("if-match", format!("\"{}\"", group["version"]))
                .json(&json!({"name": "shop", "base_path": "/store/v2"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], 2);
    let (status, _) = app.send(app.api(Method::GET, "/shop/items")).await;
    assert_eq!(status, 404);
    let (status, body) = app.send(app.api(Method::GET, "/store/v2/items")).await;
    assert_eq!((status, body), (200, json!({"says": "items"})));

    // A save from the old view is refused and changes nothing.
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/shop")
                .header("if-match", "\"1\"")
                .json(&json!({"base_path": "/elsewhere"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "group.stale_version"),
        "{body}"
    );
    let (status, _) = app.send(app.api(Method::GET, "/store/v2/items")).await;
    assert_eq!(status, 200);
    // A save that does not say which version it edits is refused.
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/shop")
                .json(&json!({"base_path": "/elsewhere"})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (428, "group.version_required"),
        "{body}"
    );
    // A group keeps its name.
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/shop")
                .header("if-match", "\"2\"")
                .json(&json!({"name": "other", "base_path": "/store/v2"})),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "group.invalid"), "{body}");
}

#[tokio::test]
async fn a_disabled_group_answers_404_until_enabled_again() {
    let app = spawn_app().await;
    create_group(&app, json!({"name": "beta", "base_path": "/beta"})).await;
    app.publish(&hello("feature", "GET", "/feature", Some("beta"), "on"))
        .await;
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/beta")
                .header("if-match", "\"1\"")
                .json(&json!({"base_path": "/beta", "enabled": false})),
        )
        .await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");
    let (status, body) = app.send(app.api(Method::GET, "/beta/feature")).await;
    assert_eq!((status, code(&body)), (404, "route.not_found"));
    let (status, _) = app
        .send(
            app.admin(Method::PUT, "/groups/beta")
                .header("if-match", "\"2\"")
                .json(&json!({"base_path": "/beta"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.send(app.api(Method::GET, "/beta/feature")).await;
    assert_eq!((status, body), (200, json!({"says": "on"})));
}

#[tokio::test]
async fn a_group_in_use_and_the_default_group_cannot_be_deleted() {
    let app = spawn_app().await;
    create_group(&app, json!({"name": "shop", "base_path": "/shop"})).await;
    create_group(&app, json!({"name": "spare", "base_path": "/spare"})).await;
    app.publish(&hello("items", "GET", "/items", Some("shop"), "items"))
        .await;

    let (status, body) = app.send(app.admin(Method::DELETE, "/groups/shop")).await;
    assert_eq!((status, code(&body)), (409, "group.in_use"), "{body}");
    assert_eq!(body["error"]["details"], json!([{"flow": "items"}]));
    let (status, _) = app.send(app.api(Method::GET, "/shop/items")).await;
    assert_eq!(status, 200);

    let (status, body) = app.send(app.admin(Method::DELETE, "/groups/default")).await;
    assert_eq!((status, code(&body)), (409, "group.default_protected"));

    let (status, _) = app.send(app.admin(Method::DELETE, "/groups/spare")).await;
    assert_eq!(status, 204);
    let (status, body) = app.send(app.admin(Method::GET, "/groups/spare")).await;
    assert_eq!((status, code(&body)), (404, "group.not_found"));

    // Once its flow is deleted, the group can go.
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"][0]["id"].as_i64().expect("flow id");
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{id}")))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.send(app.admin(Method::DELETE, "/groups/shop")).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn an_invalid_group_is_refused_with_every_problem_and_nothing_is_created() {
    let app = spawn_app().await;
    let (status, body) = app
        .send(app.admin(Method::POST, "/groups").json(&json!({
            "name": "Shop!", "base_path": "shop/",
            "cors": {"allowed_origins": ["*"], "allow_credentials": true},
            "rate_limit": {"per_ip": {"requests": 0, "window_secs": 60}}
        })))
        .await;
    assert_eq!((status, code(&body)), (422, "group.invalid"), "{body}");
    let pointers: Vec<&str> = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["pointer"].as_str())
        .collect();
    assert_eq!(
        pointers,
        [
            "/name",
            "/base_path",
            "/cors/allow_credentials",
            "/rate_limit/per_ip/requests"
        ]
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/groups")
                .json(&json!({"name": "x", "base_path": "/x", "surprise": 1})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "request.invalid_body"));
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/groups")
                .json(&json!({"name": "default", "base_path": "/d"})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "group.name_taken"));
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/groups")
                .json(&json!({"name": "root", "base_path": ""})),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "group.base_path_taken"));
    let (_, body) = app.send(app.admin(Method::GET, "/groups")).await;
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(1));

    // A stored group reads back with its limits, for the rate limiter.
    let limits = json!({"per_ip": {"requests": 100, "window_secs": 60}});
    create_group(
        &app,
        json!({"name": "metered", "base_path": "/m", "rate_limit": limits}),
    )
    .await;
    let (status, body) = app.send(app.admin(Method::GET, "/groups/metered")).await;
    assert_eq!((status, &body["rate_limit"]), (200, &limits));
    let (status, _) = app
        .send(app.client.get(format!("{}/_/api/v1/groups", app.base)))
        .await;
    assert_eq!(status, 401);
}

async fn cors_app() -> TestApp {
    let app = spawn_app().await;
    create_group(
        &app,
        json!({"name": "web", "base_path": "/web", "cors": {
            "allowed_origins": ["https://app.example.com"],
            "allowed_methods": ["GET", "POST"],
            "allowed_headers": ["content-type", "x-client"],
            "expose_headers": ["x-total"],
            "allow_credentials": true,
            "max_age_secs": 120
        }}),
    )
    .await;
    app.publish(&hello("things", "POST", "/things", Some("web"), "made"))
        .await;
    app.publish(&hello(
        "thing_list",
        "GET",
        "/things",
        Some("web"),
        "listed",
    ))
    .await;
    let mut missing = hello("gone", "GET", "/gone", Some("web"), "");
    missing["nodes"] =
        json!({"reply": {"type": "fail", "status": 404, "code": "thing.gone", "message": "gone"}});
    app.publish(&missing).await;
    app.publish(&hello("closed", "GET", "/closed", None, "no cors"))
        .await;
    app
}

fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::RequestBuilder {
    app.api(Method::OPTIONS, path)
        .header("origin", origin)
        .header("access-control-request-method", method)
}

#[tokio::test]
async fn an_allowed_cors_preflight_is_answered_with_the_group_s_rules() {
    let app = cors_app().await;
    let resp = preflight(&app, "/web/things", "https://app.example.com", "POST")
        .header("access-control-request-headers", "content-type,x-client")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(header(&resp, "access-control-allow-methods"), Some("POST"));
    assert_eq!(
        header(&resp, "access-control-allow-headers"),
        Some("content-type,x-client")
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&resp, "access-control-max-age"), Some("120"));
    assert!(header(&resp, "vary").is_some_and(|v| v.contains("Origin")));
}

#[tokio::test]
async fn a_preflight_that_is_not_allowed_gets_no_cors_headers() {
    let app = cors_app().await;
    for req in [
        preflight(&app, "/web/things", "https://evil.example", "POST"),
        preflight(&app, "/web/things", "https://app.example.com", "DELETE"),
        preflight(&app, "/web/things", "https://app.example.com", "POST")
            .header("access-control-request-headers", "x-forbidden"),
        // The default group has no CORS rules.
        preflight(&app, "/closed", "https://app.example.com", "GET"),
    ] {
        let resp = req.send().await.expect("answered");
        assert_eq!(resp.status().as_u16(), 204);
        assert_eq!(header(&resp, "access-control-allow-origin"), None);
        assert_eq!(header(&resp, "access-control-allow-methods"), None);
    }
}

#[tokio::test]
async fn actual_responses_carry_allow_origin_and_vary_errors_included() {
    let app = cors_app().await;
    let resp = app
        .api(Method::POST, "/web/things")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(&resp, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&resp, "access-control-expose-headers"),
        Some("x-total")
    );
    assert_eq!(header(&resp, "vary"), Some("Origin"));

    // A flow's error must be readable by the page too.
    let resp = app
        .api(Method::GET, "/web/gone")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("https://app.example.com")
    );

    // Another origin: the response varies but does not allow it.
    let resp = app
        .api(Method::GET, "/web/things")
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    assert_eq!(header(&resp, "vary"), Some("Origin"));

    let resp = app
        .api(Method::GET, "/closed")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answered");
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    assert_eq!(header(&resp, "vary"), None);
}

#[tokio::test]
async fn changing_a_group_s_cors_rules_applies_at_once() {
    let app = cors_app().await;
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/groups/web")
                .header("if-match", "1")
                .json(&json!({
                    "base_path": "/web", "cors": {"allowed_origins": ["*"]}
                })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resp = preflight(&app, "/web/things", "https://anyone.example", "POST")
        .send()
        .await
        .expect("answered");
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&resp, "access-control-allow-credentials"), None);
}

#[tokio::test]
async fn plain_options_lists_the_methods_of_a_path() {
    let app = cors_app().await;
    let resp = app
        .api(Method::OPTIONS, "/web/things")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(header(&resp, "allow"), Some("GET, HEAD, POST, OPTIONS"));
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    let (status, body) = app.send(app.api(Method::OPTIONS, "/nothing")).await;
    assert_eq!((status, code(&body)), (404, "route.not_found"));
}

#[tokio::test]
async fn head_runs_the_get_endpoint_and_sends_no_body() {
    let app = cors_app().await;
    let get = app
        .api(Method::GET, "/web/things")
        .send()
        .await
        .expect("answered");
    let get_len = get.bytes().await.expect("body").len();
    let resp = app
        .api(Method::HEAD, "/web/things")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(
        header(&resp, "content-length"),
        Some(get_len.to_string().as_str())
    );
    assert!(resp.bytes().await.expect("no body").is_empty());
    // Only GET endpoints answer HEAD.
    let resp = app
        .api(Method::HEAD, "/closed/nothing")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_with_allow() {
    let app = cors_app().await;
    let (status, body) = app.send(app.api(Method::GET, "/web/nothing")).await;
    assert_eq!((status, code(&body)), (404, "route.not_found"));
    let resp = app
        .api(Method::DELETE, "/web/things")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(header(&resp, "allow"), Some("GET, HEAD, POST, OPTIONS"));
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(code(&body), "route.method_not_allowed");
}

#[tokio::test]
async fn an_oversized_body_to_a_grouped_endpoint_is_a_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 512).await;
    create_group(&app, json!({"name": "web", "base_path": "/web"})).await;
    app.publish(&hello("things", "POST", "/things", Some("web"), "made"))
        .await;
    let big = json!({"blob": "x".repeat(2048)});
    let (status, body) = app
        .send(app.api(Method::POST, "/web/things").json(&big))
        .await;
    assert_eq!((status, code(&body)), (413, "request.too_large"));
}

#[tokio::test]
async fn path_and_query_values_are_coerced_to_the_declared_types() {
    let app = spawn_app().await;
    create_group(&app, json!({"name": "calc", "base_path": "/calc"})).await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "add",
        "endpoint": {"method": "GET", "path": "/add/{a}", "group": "calc"},
        "input": {
            "params": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "query": {"type": "object", "properties": {"b": {"type": "number"}, "neg": {"type": "boolean"}},
                      "required": ["b"]}
        },
        "entry": "reply",
        "nodes": {"reply": {"type": "respond", "body": {
            "sum": {"$rhai": "request.params.a + request.query.b"},
            "neg": {"$rhai": "if \"neg\" in request.query { request.query.neg } else { false }"}
        }}}
    });
    app.publish(&doc).await;
    let (status, body) = app
        .send(app.api(Method::GET, "/calc/add/40?b=2.5&neg=true"))
        .await;
    assert_eq!((status, body), (200, json!({"sum": 42.5, "neg": true})));
    let (status, body) = app
        .send(app.api(Method::GET, "/calc/add/forty?neg=maybe"))
        .await;
    assert_eq!((status, code(&body)), (400, "input.invalid"), "{body}");
    let pointers: Vec<&str> = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["pointer"].as_str())
        .collect();
    for p in ["/params/a", "/query/neg"] {
        assert!(pointers.contains(&p), "{p} in {body}");
    }
}

#[tokio::test]
async fn groups_travel_with_their_flows_through_export_and_import() {
    let a = spawn_app().await;
    create_group(
        &a,
        json!({"name": "shop", "base_path": "/shop/v1",
        "cors": {"allowed_origins": ["https://shop.example.com"]}}),
    )
    .await;
    a.publish(&hello("items", "GET", "/items", Some("shop"), "items"))
        .await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("routing-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |app: &TestApp, args: Vec<String>| {
        let (base, token) = (app.base.clone(), app.token.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(&args)
                .args(["--url", &base, "--token", &token])
                .output()
                .expect("runs")
        })
    };
    let out = run(&a, vec!["export".into(), dir.display().to_string()])
        .await
        .expect("joined");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("shop.group.json")).expect("group file"),
    )
    .expect("JSON");
    assert_eq!(file["base_path"], "/shop/v1");
    assert_eq!(file.get("version"), None);
    assert!(dir.join("default.group.json").exists());

    let b = spawn_app().await;
    let out = run(
        &b,
        vec![
            "import".into(),
            dir.display().to_string(),
            "--publish".into(),
        ],
    )
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("group shop: create"), "{stdout}");
    assert!(stdout.contains("flow items: create, publish"), "{stdout}");
    let (status, body) = b.send(b.api(Method::GET, "/shop/v1/items")).await;
    assert_eq!((status, body), (200, json!({"says": "items"})));
    let (_, group) = b.send(b.admin(Method::GET, "/groups/shop")).await;
    assert_eq!(
        group["cors"]["allowed_origins"],
        json!(["https://shop.example.com"])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_query_parameter_declared_as_a_list_collects_its_repeated_values() {
    let app = spawn_app().await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "pick",
        "endpoint": {"method": "GET", "path": "/pick"},
        "input": {"query": {"type": "object", "properties": {
            "id": {"type": "array", "items": {"type": "integer"}},
            "tag": {"type": "string"}
        }}},
        "entry": "reply",
        "nodes": {"reply": {"type": "respond", "body": {
            "ids": {"$rhai": "request.query.id"}, "tag": {"$rhai": "request.query.tag"}
        }}}
    });
    app.publish(&doc).await;
    let (status, body) = app
        .send(app.api(Method::GET, "/pick?id=1&id=2&id=40&tag=a&tag=b"))
        .await;
    // Undeclared-as-list keys keep their last value, as before.
    assert_eq!(
        (status, body),
        (200, json!({"ids": [1, 2, 40], "tag": "b"}))
    );
    let (status, body) = app.send(app.api(Method::GET, "/pick?id=7&tag=x")).await;
    assert_eq!((status, body), (200, json!({"ids": [7], "tag": "x"})));
    let (status, body) = app
        .send(app.api(Method::GET, "/pick?id=1&id=two&tag=x"))
        .await;
    assert_eq!((status, code(&body)), (400, "input.invalid"), "{body}");
    assert_eq!(body["error"]["details"][0]["pointer"], "/query/id/1");
}
