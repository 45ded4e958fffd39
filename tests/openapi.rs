//! `/api/openapi.json` and `/api/docs` on a real server: the document is valid OpenAPI 3.1
//! (checked against the official schema, vendored in `tests/fixtures/`), follows publishing
//! at once, and is locked by a snapshot for the example todo app.

mod common;

use base64::Engine as _;
use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

/// The official OpenAPI 3.1 schema (`schemas/v3.1/schema.json`, id
/// `https://spec.openapis.org/oas/3.1/schema/2022-02-27`, from OAI/OpenAPI-Specification).
/// It checks the document's structure and treats every Schema Object as any object or boolean.
fn oas_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openapi-3.1.schema.json"
    ))
    .expect("the vendored schema is there");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the OpenAPI schema compiles")
}

/// Every Schema Object of the document, with its JSON pointer.
fn schema_objects(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, s) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        out.push((format!("/components/schemas/{name}"), s.clone()));
    }
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let at = format!("/paths/{path}/{method}");
            for (i, p) in op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                out.push((format!("{at}/parameters/{i}/schema"), p["schema"].clone()));
            }
            let mut contents = vec![(format!("{at}/requestBody"), &op["requestBody"])];
            for (status, r) in op["responses"].as_object().into_iter().flatten() {
                contents.push((format!("{at}/responses/{status}"), r));
            }
            for (at, holder) in contents {
                for (media, m) in holder["content"].as_object().into_iter().flatten() {
                    if let Some(s) = m.get("schema") {
                        out.push((format!("{at}/content/{media}/schema"), s.clone()));
                    }
                }
            }
        }
    }
    out
}

/// The document is valid OpenAPI 3.1, and every Schema Object in it is a valid JSON Schema of
/// the 2020-12 dialect (OpenAPI 3.1's base dialect adds only annotations to it).
fn assert_valid_openapi(doc: &Value) {
    let validator = oas_validator();
    let problems: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "not valid OpenAPI 3.1: {problems:#?}");
    for (at, schema) in schema_objects(doc) {
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{at} is not a valid JSON Schema: {e}");
        }
        // Compiled next to the document's components, so every `$ref` must resolve.
        let rooted = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc["components"],
            "allOf": [schema],
        });
        if let Err(e) = jsonschema::validator_for(&rooted) {
            panic!("{at} does not compile: {e}");
        }
    }
}

#[tokio::test]
async fn the_todo_app_is_described_by_a_valid_openapi_document() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (doc, headers) = app.openapi().await;
    assert_eq!(headers["content-type"], "application/json");
    assert_valid_openapi(&doc);
    let text = serde_json::to_string_pretty(&doc).expect("serializes");
    insta::assert_snapshot!("todo_app_openapi", text);
}

#[tokio::test]
async fn the_auth_app_is_described_with_its_bearer_scheme() {
    let app = spawn_app().await;
    app.load_auth_example().await;
    let (doc, _) = app.openapi().await;
    assert_valid_openapi(&doc);
    assert_eq!(
        doc["paths"]["/me"]["get"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    assert!(
        doc["paths"]["/auth/login"]["post"]
            .get("security")
            .is_none()
    );
    let text = serde_json::to_string_pretty(&doc).expect("serializes");
    insta::assert_snapshot!("auth_app_openapi", text);
}

#[tokio::test]
async fn generated_crud_endpoints_are_described_by_a_valid_openapi_document() {
    let app = spawn_app().await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables?crud=publish")
                .json(&json!({
                    "name": "notes",
                    "fields": [
                        {"name": "body", "type": "text", "required": true},
                        {"name": "pinned", "type": "boolean", "default": false},
                        {"name": "kind", "type": "enum", "values": ["idea", "task"]},
                        {"name": "secret", "type": "password"}
                    ]
                })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (doc, _) = app.openapi().await;
    assert_valid_openapi(&doc);
    let text = serde_json::to_string_pretty(&doc).expect("serializes");
    insta::assert_snapshot!("crud_openapi", text);
}

#[tokio::test]
async fn an_instance_with_nothing_published_has_a_valid_empty_document() {
    let app = spawn_app().await;
    let (doc, _) = app.openapi().await;
    assert_valid_openapi(&doc);
    assert_eq!(doc["paths"], json!({}));
}

#[tokio::test]
async fn the_validation_would_catch_a_broken_document() {
    // The check above must be able to fail: a document with a path that is not a path, an
    // operation without responses and a parameter without a location is refused.
    let validator = oas_validator();
    let broken = json!({
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": {"todos": {}, "/a": {"get": {"parameters": [{"name": "id", "schema": {}}], "responses": {}}}}
    });
    assert!(validator.iter_errors(&broken).count() >= 2);
    assert!(jsonschema::draft202012::meta::validate(&json!({"type": 12})).is_err());
}

#[tokio::test]
async fn publishing_and_deleting_flows_change_the_document_at_once() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (before, _) = app.openapi().await;
    let paths = |d: &Value| {
        d["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(&before), ["/todos", "/todos/{id}"]);

    let (_, flows) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = flows["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| f["name"] == "get_todo")
        .and_then(|f| f["id"].as_i64())
        .expect("get_todo is there");
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{id}")))
        .await;
    assert_eq!(status, 204);
    let (after, _) = app.openapi().await;
    assert_eq!(paths(&after), ["/todos"]);
    assert_ne!(before["info"]["version"], after["info"]["version"]);

    app.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "ping",
        "description": "Answers pong.",
        "endpoint": {"method": "GET", "path": "/ping"}, "entry": "r",
        "nodes": {"r": {"type": "respond", "body": {"pong": true}}}
    }))
    .await;
    let (after, _) = app.openapi().await;
    assert_valid_openapi(&after);
    let ping = &after["paths"]["/ping"]["get"];
    assert_eq!(ping["operationId"], "ping");
    assert_eq!(ping["summary"], "Answers pong.");
    assert_eq!(
        ping["responses"]["200"]["content"]["application/json"]["example"],
        json!({"pong": true})
    );
}

#[tokio::test]
async fn the_docs_page_names_the_endpoints_under_a_strict_policy() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let resp = app
        .api(Method::GET, "/docs")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = resp.text().await.expect("text");
    // The policy allows exactly the inline script and style the page carries.
    let inline = |open: &str, close: &str| {
        let start = html.find(open).expect("inline element") + open.len();
        let end = start + html[start..].find(close).expect("closed");
        let digest = sha2::Sha256::digest(&html[start..end]);
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    };
    assert!(
        csp.contains(&format!("script-src {}", inline("<script>", "</script>"))),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("style-src {}", inline("<style>", "</style>"))),
        "{csp}"
    );
    for needle in [
        "/api/todos/{id}",
        "/api/todos",
        "list_todos",
        "get_todo",
        "create_todo",
        "todo.not_found",
        "todo.blank_title",
    ] {
        assert!(html.contains(needle), "the page names {needle}");
    }
    assert!(
        !html.contains("https://") && !html.contains("http://cdn"),
        "nothing loads from elsewhere"
    );
}

#[tokio::test]
async fn endpoints_cannot_be_published_over_the_documentation() {
    let app = spawn_app().await;
    for path in ["/docs", "/openapi.json"] {
        let doc = json!({
            "format": "sluice.flow", "format_version": 1, "name": "shadow",
            "endpoint": {"method": "GET", "path": path}, "entry": "r",
            "nodes": {"r": {"type": "respond", "body": "mine"}}
        });
        let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "flow.invalid");
        assert_eq!(
            body["error"]["details"][0]["code"], "flow.reserved_path",
            "{body}"
        );
        assert_eq!(body["error"]["details"][0]["pointer"], "/endpoint/path");
    }
    let (_, flows) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(flows["flows"], json!([]), "nothing was saved");
}

#[tokio::test]
async fn a_client_with_the_current_document_gets_304() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let (doc, headers) = app.openapi().await;
    let etag = headers["etag"].to_str().expect("ascii").to_string();
    assert_eq!(
        etag,
        format!("\"{}\"", doc["info"]["version"].as_str().expect("version"))
    );
    for path in ["/openapi.json", "/docs"] {
        let resp = app
            .api(Method::GET, path)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 304, "{path}");
        let resp = app
            .api(Method::GET, path)
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 200, "{path}");
    }
    // A table change alters the row schema, and with it the version.
    let (_, table) = app.send(app.admin(Method::GET, "/tables/todos")).await;
    let mut changed = table.clone();
    changed["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "note", "type": "text"}));
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/todos")
                .header("if-match", table["version"].to_string())
                .json(&json!({"table": changed})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (after, _) = app.openapi().await;
    assert!(after["components"]["schemas"]["todos"]["properties"]["note"].is_object());
    assert_ne!(after["info"]["version"], doc["info"]["version"]);
}

#[tokio::test]
async fn other_methods_on_the_documentation_get_405_json() {
    let app = spawn_app().await;
    for path in ["/openapi.json", "/docs"] {
        let (status, body) = app.send(app.api(Method::POST, path)).await;
        assert_eq!(status, 405, "{path}");
        assert_eq!(body["error"]["code"], "route.method_not_allowed", "{path}");
    }
}
