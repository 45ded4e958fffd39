//! Nodes that reach outside the flow, through real HTTP against real Postgres:
//! `http.request` (against a local server started here, and the SSRF guard), `template` with
//! `respond` sending text and HTML, and the auth nodes (argon2 hashes, HS256 tokens signed with
//! the key from the catalog, secrets kept out of debug-run traces).
//!
//! Only loopback addresses are ever connected to. Refusals of other private ranges
//! (10/8, 169.254.169.254, ...) are checked where no packet can leave: in the guard's unit
//! tests (`engine::outbound`).

mod common;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{any, get};
use common::{TestApp, fresh_database, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use sluice::auth::jwt::{self, SigningKey};
use sluice::config::{Config, HttpAllow};
use sluice::startup::App;

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

fn flow(name: &str, method: &str, path: &str, entry: &str, nodes: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": method, "path": path}, "entry": entry, "nodes": nodes})
}

/// A small upstream API on 127.0.0.1 with a free port.
async fn upstream() -> u16 {
    async fn echo(
        method: axum::http::Method,
        headers: HeaderMap,
        uri: axum::http::Uri,
        body: String,
    ) -> axum::Json<Value> {
        axum::Json(json!({
            "method": method.as_str(),
            "query": uri.query(),
            "x_test": headers.get("x-test").and_then(|v| v.to_str().ok()),
            "content_type": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            "body": body,
        }))
    }
    async fn hop(uri: axum::http::Uri) -> Redirect {
        let to = uri
            .query()
            .and_then(|q| q.strip_prefix("to="))
            .unwrap_or("/");
        Redirect::to(to)
    }
    let app = Router::new()
        .route("/echo", any(echo))
        .route(
            "/text",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .route("/big", get(|| async { "x".repeat(6 << 20) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/not-json",
            get(|| async {
                ([(header::CONTENT_TYPE, "application/json")], "{oops").into_response()
            }),
        )
        .route("/hop", get(hop));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the upstream");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn allow(entries: &[&str]) -> impl FnOnce(&mut Config) {
    let allow = HttpAllow::parse(entries).expect("a valid allow-list");
    move |c: &mut Config| c.http_allow = allow
}

/// `POST /call` with `{"url": ...}` requests that URL; failures are answered with their code.
async fn publish_caller(app: &TestApp, timeout_ms: u64) {
    let doc = flow(
        "caller",
        "POST",
        "/call",
        "call",
        json!({
            "call": {"type": "http.request", "url": {"$rhai": "request.body.url"}, "as": "resp",
                     "timeout_ms": timeout_ms, "next": {"ok": "reply", "error": "failed"}},
            "reply": {"type": "respond", "body": {"$rhai": "resp"}},
            "failed": {"type": "respond", "status": 502, "body": {"code": {"$rhai": "error.code"}, "message": {"$rhai": "error.message"}}}
        }),
    );
    app.publish(&doc).await;
}

async fn call(app: &TestApp, url: &str) -> (u16, Value) {
    app.send(app.api(Method::POST, "/call").json(&json!({"url": url})))
        .await
}

#[tokio::test]
async fn http_request_sends_method_query_headers_and_json_body_and_binds_the_json_answer() {
    let port = upstream().await;
    let app = spawn_app_with(allow(&["127.0.0.1"])).await;
    let doc = flow(
        "proxy",
        "POST",
        "/proxy",
        "call",
        json!({
            "call": {"type": "http.request", "method": "PUT",
                     "url": format!("http://127.0.0.1:{port}/echo"),
                     "query": {"q": {"$rhai": "request.body.q"}, "tags": ["a", "b"], "skip": null},
                     "headers": {"X-Test": {"$rhai": "request.body.q + \"!\""}},
                     "body": {"n": 1, "who": {"$rhai": "request.body.q"}},
                     "as": "resp", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"status": {"$rhai": "resp.status"}, "upstream": {"$rhai": "resp.body"},
                                                   "type": {"$rhai": "resp.headers[\"content-type\"]"}}}
        }),
    );
    app.publish(&doc).await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/proxy")
                .json(&json!({"q": "hi there"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(body["type"], "application/json");
    let up = &body["upstream"];
    assert_eq!(up["method"], "PUT");
    assert_eq!(up["query"], "q=hi+there&tags=a&tags=b");
    assert_eq!(up["x_test"], "hi there!");
    assert_eq!(up["content_type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(up["body"].as_str().unwrap_or("")).expect("JSON body"),
        json!({"n": 1, "who": "hi there"})
    );
}

#[tokio::test]
async fn any_status_takes_the_ok_port_and_a_text_answer_is_bound_as_text() {
    let port = upstream().await;
    let app = spawn_app_with(allow(&["127.0.0.0/8"])).await;
    publish_caller(&app, 10_000).await;
    let (status, body) = call(&app, &format!("http://127.0.0.1:{port}/text")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 418);
    assert_eq!(body["body"], "short and stout");
    assert!(
        body["headers"]["content-type"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/plain"))
    );
}

#[tokio::test]
async fn oversized_slow_and_malformed_answers_are_failures_with_their_own_codes() {
    let port = upstream().await;
    let app = spawn_app_with(allow(&["127.0.0.1"])).await;
    publish_caller(&app, 300).await;
    let base = format!("http://127.0.0.1:{port}");
    let (_, body) = call(&app, &format!("{base}/big")).await;
    assert_eq!(body["code"], "http.response_too_large", "{body}");
    let (_, body) = call(&app, &format!("{base}/slow")).await;
    assert_eq!(body["code"], "http.timeout", "{body}");
    let (_, body) = call(&app, &format!("{base}/not-json")).await;
    assert_eq!(body["code"], "http.bad_response", "{body}");
    let (_, body) = call(&app, "http://127.0.0.1:1/?key=s3cret").await;
    assert_eq!(body["code"], "http.failed", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("127.0.0.1"), "{body}");
    assert!(
        !message.contains("s3cret"),
        "the query never reaches messages: {body}"
    );
    let (_, body) = call(&app, "gopher://127.0.0.1/").await;
    assert_eq!(body["code"], "http.invalid_request", "{body}");
}

#[tokio::test]
async fn without_the_allow_list_loopback_targets_are_refused_by_address_and_by_name() {
    let port = upstream().await;
    let app = spawn_app().await;
    publish_caller(&app, 10_000).await;
    for url in [
        format!("http://127.0.0.1:{port}/echo"),
        format!("http://[::1]:{port}/echo"),
        format!("http://[::ffff:127.0.0.1]:{port}/echo"),
        format!("http://localhost:{port}/echo"),
        format!("http://2130706433:{port}/echo"),
    ] {
        let (status, body) = call(&app, &url).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (502, Some("http.refused")),
            "{url}: {body}"
        );
    }
    // Unwired, a refusal is the standard 502 envelope.
    let doc = flow(
        "plain",
        "GET",
        "/plain",
        "call",
        json!({
            "call": {"type": "http.request", "url": format!("http://127.0.0.1:{port}/echo"), "as": "r", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "r"}}
        }),
    );
    app.publish(&doc).await;
    let (status, body) = app.send(app.api(Method::GET, "/plain")).await;
    assert_eq!((status, code(&body)), (502, "http.refused"), "{body}");
    assert_eq!(body["error"]["message"], "internal error");
}

#[tokio::test]
async fn an_allowed_host_name_is_reached_and_redirects_are_checked_at_every_hop() {
    let port = upstream().await;
    let app = spawn_app_with(allow(&["localhost", "127.0.0.1"])).await;
    publish_caller(&app, 10_000).await;
    let (status, body) = call(&app, &format!("http://localhost:{port}/echo")).await;
    assert_eq!((status, &body["status"]), (200, &json!(200)), "{body}");
    // A redirect to an allowed target is followed...
    let ok = format!("http://127.0.0.1:{port}/hop?to=http://localhost:{port}/echo");
    let (_, body) = call(&app, &ok).await;
    assert_eq!(body["body"]["method"], "GET", "{body}");
    // ...one to a loopback address outside the list is refused before it is connected to.
    let bad = format!("http://127.0.0.1:{port}/hop?to=http://127.0.0.2:{port}/echo");
    let (_, body) = call(&app, &bad).await;
    assert_eq!(body["code"], "http.refused", "{body}");
}

#[tokio::test]
async fn a_template_renders_escaped_html_that_respond_sends_as_text_html() {
    let app = spawn_app().await;
    let doc = flow(
        "hello",
        "GET",
        "/hello",
        "render",
        json!({
            "render": {"type": "template", "template": "<h1>Hello {{ user.name }}</h1>{% for t in tags %}<i>{{ t }}</i>{% endfor %}",
                       "context": {"user": {"name": {"$rhai": "request.query.name"}}, "tags": ["a&b"]},
                       "as": "page", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "content_type": "html", "body": {"$rhai": "page"}}
        }),
    );
    app.publish(&doc).await;
    let resp = app
        .api(
            Method::GET,
            "/hello?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(
        resp.text().await.expect("text"),
        "<h1>Hello &lt;script&gt;alert(1)&lt;/script&gt;</h1><i>a&amp;b</i>"
    );
}

#[tokio::test]
async fn a_text_template_is_not_escaped_and_is_sent_as_plain_text() {
    let app = spawn_app().await;
    let doc = flow(
        "note",
        "POST",
        "/note",
        "render",
        json!({
            "render": {"type": "template", "format": "text", "template": "Dear {{ name }}, you owe {{ amount | round }} <EUR>.",
                       "context": {"$rhai": "request.body"}, "as": "text", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "content_type": "text", "body": {"$rhai": "text"}}
        }),
    );
    app.publish(&doc).await;
    let resp = app
        .api(Method::POST, "/note")
        .json(&json!({"name": "A & B", "amount": 4.6}))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        resp.text().await.expect("text"),
        "Dear A & B, you owe 5.0 <EUR>."
    );
    // A variable the context lacks is an error, never an empty string.
    let (status, body) = app
        .send(app.api(Method::POST, "/note").json(&json!({"name": "x"})))
        .await;
    assert_eq!((status, code(&body)), (500, "template.error"), "{body}");
}

#[tokio::test]
async fn a_template_syntax_error_is_reported_when_the_flow_is_saved() {
    let app = spawn_app().await;
    let doc = flow(
        "broken",
        "GET",
        "/broken",
        "render",
        json!({
            "render": {"type": "template", "template": "line one\n{% if x %}never closed", "as": "t", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "t"}}
        }),
    );
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!((status, code(&body)), (422, "flow.invalid"), "{body}");
    let d = &body["error"]["details"][0];
    assert_eq!(d["code"], "flow.template_syntax", "{body}");
    assert_eq!(d["pointer"], "/nodes/render/template");
    assert!(d["line"].as_u64().is_some(), "{body}");
}

/// Signs up (hash + insert), then logs in (query + verify + token).
async fn accounts(app: &TestApp) {
    app.create_table(&json!({"name": "accounts", "fields": [
        {"name": "email", "type": "text", "required": true, "unique": true},
        {"name": "password_hash", "type": "text", "required": true}]}))
        .await;
    app.publish(&flow(
        "signup",
        "POST",
        "/signup",
        "hash",
        json!({
            "hash": {"type": "auth.hash_password", "password": {"$rhai": "request.body.password"}, "as": "hash", "next": {"ok": "insert"}},
            "insert": {"type": "db.insert", "table": "accounts", "as": "account",
                       "values": {"email": {"$rhai": "request.body.email"}, "password_hash": {"$rhai": "hash"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"id": {"$rhai": "account.id"}}}
        }),
    ))
    .await;
    app.publish(&flow(
        "login",
        "POST",
        "/login",
        "find",
        json!({
            "find": {"type": "db.query", "table": "accounts", "as": "found",
                     "where": {"email": {"$rhai": "request.body.email"}}, "limit": 1, "next": {"ok": "check"}},
            "check": {"type": "auth.verify_password", "password": {"$rhai": "request.body.password"},
                      "hash": {"$rhai": "if found.len() > 0 { found[0].password_hash } else { () }"},
                      "next": {"valid": "issue"}},
            "issue": {"type": "auth.issue_token", "sub": {"$rhai": "found[0].id"}, "expires_in": 600,
                      "claims": {"role": "member", "email": {"$rhai": "found[0].email"}}, "as": "session", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"token": {"$rhai": "session.token"}, "expires_at": {"$rhai": "session.expires_at"},
                                                   "bearer": {"$rhai": "`Bearer ${session.token}`"}}}
        }),
    ))
    .await;
}

async fn current_key(app: &TestApp) -> SigningKey {
    let (id, secret): (i64, Vec<u8>) =
        sqlx::query_as("SELECT id, secret FROM sluice.token_keys WHERE retired_at IS NULL")
            .fetch_one(&app.db)
            .await
            .expect("a current key");
    SigningKey::new(id, secret)
}

#[tokio::test]
async fn a_password_hashed_by_a_flow_verifies_and_login_issues_a_signed_token() {
    let app = spawn_app().await;
    accounts(&app).await;
    let creds = json!({"email": "ann@example.com", "password": "open sesame"});
    let (status, body) = app
        .send(app.api(Method::POST, "/signup").json(&creds))
        .await;
    assert_eq!(status, 201, "{body}");
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM app.accounts")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    let (status, body) = app.send(app.api(Method::POST, "/login").json(&creds)).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("a token");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let claims = jwt::verify(&current_key(&app).await, token, now).expect("a valid token");
    let id: i64 = sqlx::query_scalar("SELECT id FROM app.accounts")
        .fetch_one(&app.db)
        .await
        .expect("id");
    assert_eq!(claims["sub"], id.to_string());
    assert_eq!(claims["role"], "member");
    assert_eq!(claims["email"], "ann@example.com");
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(600));
    assert!(
        body["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );

    // A wrong password, an unknown account and a hash that is not a hash are all 401.
    for attempt in [
        json!({"email": "ann@example.com", "password": "open sesame!"}),
        json!({"email": "bob@example.com", "password": "open sesame"}),
        json!({"email": "ann@example.com", "password": 42}),
    ] {
        let (status, body) = app
            .send(app.api(Method::POST, "/login").json(&attempt))
            .await;
        assert_eq!(
            (status, code(&body)),
            (401, "auth.invalid_credentials"),
            "{attempt}: {body}"
        );
    }
    sqlx::query("UPDATE app.accounts SET password_hash = 'not-a-hash'")
        .execute(&app.db)
        .await
        .expect("update");
    let (status, body) = app.send(app.api(Method::POST, "/login").json(&creds)).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.invalid_credentials"),
        "{body}"
    );

    // An empty password cannot be hashed.
    let (status, body) = app
        .send(
            app.api(Method::POST, "/signup")
                .json(&json!({"email": "c@example.com", "password": ""})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "auth.invalid_value"), "{body}");
}

#[tokio::test]
async fn debug_runs_show_passwords_hashes_and_tokens_as_stars() {
    let app = spawn_app().await;
    accounts(&app).await;
    let creds = json!({"email": "ann@example.com", "password": "open sesame"});
    app.send(app.api(Method::POST, "/signup").json(&creds))
        .await;
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM app.accounts")
        .fetch_one(&app.db)
        .await
        .expect("row");
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id_of = |name: &str| {
        list["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == name)
            .and_then(|f| f["id"].as_i64())
            .expect("flow id")
    };

    let (status, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{}/run", id_of("login")))
                .json(&json!({"body": creds})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"]["status"], 200, "{out}");
    let text = out.to_string();
    assert!(!text.contains("open sesame"), "the password leaked: {text}");
    assert!(!text.contains(&hash), "the hash leaked: {text}");
    assert!(!text.contains("eyJ"), "a token leaked: {text}");
    let issue = out["trace"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["node"] == "issue")
        .expect("the issue node ran");
    assert_eq!(issue["output"]["token"], "***");
    assert!(issue["output"]["expires_at"].is_string());
    assert_eq!(out["response"]["body"]["bearer"], "***");

    let (_, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{}/run", id_of("signup")))
                .json(&json!({"body": {"email": "b@example.com", "password": "hunter22"}})),
        )
        .await;
    let text = out.to_string();
    assert!(
        !text.contains("hunter22") && !text.contains("$argon2"),
        "{text}"
    );
    assert_eq!(out["trace"][0]["output"], "***", "{out}");
}

#[tokio::test]
async fn the_first_token_key_is_created_once_and_kept_across_restarts() {
    let (url, _) = fresh_database().await;
    let first = App::build(Config::for_database(&url))
        .await
        .expect("builds");
    let key = first
        .state()
        .serving
        .load()
        .live
        .token_keys
        .current()
        .cloned()
        .expect("a key is loaded");
    drop(first);
    let second = App::build(Config::for_database(&url))
        .await
        .expect("builds again");
    let again = second
        .state()
        .serving
        .load()
        .live
        .token_keys
        .current()
        .cloned()
        .expect("a key is loaded");
    assert_eq!(key.id, again.id);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.token_keys")
        .fetch_one(&second.state().db)
        .await
        .expect("count");
    assert_eq!(keys, 1);
    let claims = serde_json::Map::from_iter([("exp".to_string(), json!(4_102_444_800i64))]);
    let token = jwt::sign(&key, &claims);
    assert!(
        jwt::verify(&again, &token, 0).is_ok(),
        "the same secret signs after a restart"
    );
}

#[tokio::test]
async fn reserved_claims_and_bad_header_names_are_refused_when_the_flow_is_saved() {
    let app = spawn_app().await;
    let doc = flow(
        "bad_nodes",
        "GET",
        "/bad-nodes",
        "issue",
        json!({
            "issue": {"type": "auth.issue_token", "sub": "x", "claims": {"exp": 1}, "as": "t", "next": {"ok": "call"}},
            "call": {"type": "http.request", "url": "ftp://example.com/", "headers": {"Host": "evil"}, "as": "r", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": null}
        }),
    );
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(status, 422, "{body}");
    let found: Vec<(String, String)> = body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_string(),
                d["pointer"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = |c: &str, p: &str| (c.to_string(), p.to_string());
    assert!(
        found.contains(&want("flow.bad_header", "/nodes/call/headers/Host")),
        "{found:?}"
    );
    assert!(
        found.contains(&want("flow.bad_url", "/nodes/call/url")),
        "{found:?}"
    );
    assert!(
        found.contains(&want("flow.reserved_claim", "/nodes/issue/claims/exp")),
        "{found:?}"
    );
}
