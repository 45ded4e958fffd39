//! One origin for the editor and the generated endpoints (issue 10, item 3) and the first-run
//! setup (item 15), over real HTTP against real Postgres.
//!
//! Symptom: a builder's HTML endpoint that reflected a query parameter let a script read the
//! CSRF token from `GET /_/api/v1/session` and mint an admin API token with the signed-in
//! editor's cookie; and `/setup` on a fresh instance belonged to whoever reached it first.
//! Cause: generated pages shared the editor's origin, cookie requests were not checked for
//! where they came from, and setup asked for nothing. Fix: generated responses are sandboxed
//! (opaque origin) unless an endpoint opts out, cookie requests that change things must come
//! from the editor's own origin, the cookie is `__Host-` and `Secure` unless bound to loopback,
//! and setup needs the one-time token printed in the log, from this machine only.
//! The same takeover in real Chromium is in tests/security_browser.rs.

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// Signs in through the cookie session; returns `name=value` of the cookie and the CSRF token.
async fn cookie_sign_in(app: &TestApp) -> (String, String) {
    let resp = app
        .client
        .post(format!("{}/_/api/v1/session", app.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    (cookie, csrf)
}

async fn token_count(app: &TestApp) -> usize {
    let (status, body) = app.send(app.admin(Method::GET, "/api-tokens")).await;
    assert_eq!(status, 200, "{body}");
    body["tokens"].as_array().expect("tokens").len()
}

/// A request to mint an admin API token with the cookie and the right CSRF token.
fn mint(app: &TestApp, cookie: &str, csrf: &str) -> reqwest::RequestBuilder {
    app.client
        .post(format!("{}/_/api/v1/api-tokens", app.base))
        .header(reqwest::header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({"name": "minted"}))
}

#[tokio::test]
async fn cookie_changes_from_another_origin_are_refused_even_with_the_csrf_token() {
    let app = spawn_app().await;
    let (cookie, csrf) = cookie_sign_in(&app).await;
    let before = token_count(&app).await;
    let host = app.base.trim_start_matches("http://").to_string();
    let refused: [(&str, &str); 6] = [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1:1"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("sec-fetch-site", "garbage"),
    ];
    for (name, value) in refused {
        let (status, body) = app
            .send(mint(&app, &cookie, &csrf).header(name, value))
            .await;
        assert_eq!(status, 403, "{name}: {value}: {body}");
        assert_eq!(body["error"]["code"], "auth.cross_origin", "{body}");
    }
    // `Sec-Fetch-Site` is believed over `Origin` when a browser sends both.
    let (status, _) = app
        .send(
            mint(&app, &cookie, &csrf)
                .header("origin", format!("http://{host}"))
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(token_count(&app).await, before, "nothing was minted");
    // Signing in and out from another origin is refused too.
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/session", app.base))
                .header("origin", "http://evil.example")
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "auth.cross_origin");
    let (status, _) = app
        .send(
            app.client
                .delete(format!("{}/_/api/v1/session", app.base))
                .header(reqwest::header::COOKIE, &cookie)
                .header("x-csrf-token", &csrf)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(status, 403);

    // The editor's own pages, and clients that are not browsers, still work with the token.
    let allowed: [Option<(&str, String)>; 4] = [
        Some(("origin", format!("http://{host}"))),
        Some(("sec-fetch-site", "same-origin".into())),
        Some(("sec-fetch-site", "none".into())),
        None,
    ];
    for header in &allowed {
        let mut req = mint(&app, &cookie, &csrf);
        if let Some((name, value)) = header {
            req = req.header(*name, value);
        }
        let (status, body) = app.send(req).await;
        assert_eq!(status, 201, "{header:?}: {body}");
    }
    // Same origin still needs the CSRF token.
    let (status, body) = app
        .send(
            mint(&app, &cookie, "wrong")
                .header("sec-fetch-site", "same-origin")
                .header("origin", format!("http://{host}")),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "auth.csrf");
    // Reads with the cookie are not affected (the session answer is not readable cross-origin
    // anyway, and a navigation must be able to load it).
    let (status, _) = app
        .send(
            app.client
                .get(format!("{}/_/api/v1/session", app.base))
                .header(reqwest::header::COOKIE, &cookie)
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(status, 200);
    // Bearer clients are not browsers' ambient credentials: unaffected.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/api-tokens")
                .header("origin", "http://evil.example")
                .header("sec-fetch-site", "cross-site")
                .json(&json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(token_count(&app).await, before + 5);
}

fn page_flow(name: &str, path: &str, sandbox: Option<bool>, headers: Value) -> Value {
    let mut endpoint = json!({"method": "GET", "path": path});
    if let Some(s) = sandbox {
        endpoint["sandbox"] = json!(s);
    }
    json!({
        "format": "sluice.flow",
        "format_version": 1,
        "name": name,
        "endpoint": endpoint,
        "input": {"query": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "entry": "reply",
        "nodes": {
            "reply": {
                "type": "respond",
                "content_type": "html",
                "headers": headers,
                "body": {"$rhai": "`<!doctype html><h1>Hello ${request.query.name}</h1>`"}
            }
        }
    })
}

#[tokio::test]
async fn generated_responses_get_an_opaque_origin_unless_the_endpoint_opts_out_visibly() {
    let app = spawn_app().await;
    app.publish(&page_flow("page", "/page", None, json!({})))
        .await;
    app.publish(&page_flow(
        "own_policy",
        "/own-policy",
        None,
        json!({"Content-Security-Policy": "default-src 'self'"}),
    ))
    .await;
    app.publish(&page_flow(
        "trusted_page",
        "/trusted",
        Some(false),
        json!({}),
    ))
    .await;
    app.load_todo_example().await;

    let policies = |resp: &reqwest::Response| -> Vec<String> {
        resp.headers()
            .get_all(reqwest::header::CONTENT_SECURITY_POLICY)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect()
    };
    let sandboxed = |p: &[String]| {
        p.iter().any(|p| {
            p.split(';').any(|d| d.trim().starts_with("sandbox"))
                && !p.contains("allow-same-origin")
        })
    };
    // HTML, JSON, errors and unknown paths alike.
    for path in ["/page?name=x", "/todos", "/todos/99", "/nowhere"] {
        let resp = app.api(Method::GET, path).send().await.expect("answered");
        let p = policies(&resp);
        assert!(sandboxed(&p), "{path}: {p:?}");
        assert_eq!(
            resp.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
    }
    // A policy the flow sets is kept, and the sandbox still applies next to it.
    let resp = app
        .api(Method::GET, "/own-policy?name=x")
        .send()
        .await
        .expect("answered");
    let p = policies(&resp);
    assert!(sandboxed(&p), "{p:?}");
    assert!(p.iter().any(|p| p == "default-src 'self'"), "{p:?}");
    // The opted-out endpoint is served without the sandbox, and says so in the API document.
    let resp = app
        .api(Method::GET, "/trusted?name=x")
        .send()
        .await
        .expect("answered");
    assert!(policies(&resp).is_empty());
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let (_, doc) = app.send(app.api(Method::GET, "/openapi.json")).await;
    assert_eq!(doc["paths"]["/trusted"]["get"]["x-sluice-sandbox"], false);
    assert!(
        doc["paths"]["/page"]["get"]
            .get("x-sluice-sandbox")
            .is_none()
    );
}

#[tokio::test]
async fn validate_warns_about_an_endpoint_that_is_not_sandboxed() {
    let dir = std::env::temp_dir().join(format!("sluice-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("trusted_page.flow.json");
    let doc = page_flow("trusted_page", "/trusted", Some(false), json!({}));
    std::fs::write(&file, doc.to_string()).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("warning at /endpoint/sandbox: not sandboxed"),
        "{text}"
    );
    let sandboxed = dir.join("page.flow.json");
    std::fs::write(
        &sandboxed,
        page_flow("page", "/page", None, json!({})).to_string(),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .arg(&sandboxed)
        .output()
        .expect("runs");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn cookie_of(resp: &reqwest::Response) -> String {
    resp.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_string()
}

async fn login_cookie(app: &TestApp) -> String {
    let resp = app
        .client
        .post(format!("{}/_/api/v1/session", app.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    cookie_of(&resp)
}

#[tokio::test]
async fn the_session_cookie_is_host_prefixed_and_secure_unless_bound_to_loopback() {
    let attrs = |c: &str| -> Vec<String> { c.split("; ").map(str::to_string).collect() };
    // Listening on every interface: `__Host-`, Secure, Path=/, no Domain.
    let public = spawn_app_with(|c| c.addr = "0.0.0.0:0".parse().expect("addr")).await;
    let c = login_cookie(&public).await;
    assert!(c.starts_with("__Host-sluice_session="), "{c}");
    let a = attrs(&c);
    for want in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(a.iter().any(|x| x == want), "{want}: {c}");
    }
    assert!(!a.iter().any(|x| x.starts_with("Domain")), "{c}");
    // The `__Host-` cookie is the one the server reads.
    let pair = c.split(';').next().expect("pair").to_string();
    let (status, _) = public
        .send(
            public
                .client
                .get(format!("{}/_/api/v1/session", public.base))
                .header(reqwest::header::COOKIE, &pair),
        )
        .await;
    assert_eq!(status, 200);
    // Loopback keeps plain http working.
    let local = spawn_app().await;
    let c = login_cookie(&local).await;
    assert!(c.starts_with("sluice_session="), "{c}");
    assert!(!attrs(&c).iter().any(|x| x == "Secure"), "{c}");
    // An explicit setting wins either way.
    let off = spawn_app_with(|c| {
        c.addr = "0.0.0.0:0".parse().expect("addr");
        c.secure_cookies = Some(false);
    })
    .await;
    assert!(login_cookie(&off).await.starts_with("sluice_session="));
}

/// A fresh instance as `sluice serve` builds it (a random setup token), bound to `addr`;
/// returns its base URL on 127.0.0.1, the token, and the database pool.
async fn fresh_instance(
    adjust: impl FnOnce(&mut sluice::config::Config),
) -> (
    String,
    u16,
    String,
    std::sync::Arc<sluice::http::session::SetupGate>,
) {
    let (url, _) = common::fresh_database().await;
    let mut config = sluice::config::Config::for_database(&url);
    adjust(&mut config);
    let app = sluice::startup::App::build(config)
        .await
        .expect("the app builds");
    let token = app
        .setup_token()
        .expect("a fresh instance has a setup token");
    let gate = app.state().setup.clone();
    let port = app.port();
    tokio::spawn(app.run_until(std::future::pending()));
    (format!("http://127.0.0.1:{port}"), port, token, gate)
}

async fn post_setup(base: &str, body: Value, extra: Option<(&str, &str)>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/_/api/v1/setup"))
        .json(&body);
    if let Some((k, v)) = extra {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn setup_needs_the_one_time_token_from_the_log() {
    let (base, _, token, gate) = fresh_instance(|_| {}).await;
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let account =
        |t: &str| json!({"email": "owner@example.com", "password": "long enough", "token": t});
    for bad in [
        json!({"email": "owner@example.com", "password": "long enough"}),
        account(""),
        account(&"0".repeat(64)),
        account(&token[..63]),
    ] {
        let (status, body) = post_setup(&base, bad, None).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "setup.token");
    }
    // Another site's page cannot use a token it learned.
    let (status, body) = post_setup(
        &base,
        account(&token),
        Some(("origin", "http://evil.example")),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "auth.cross_origin");
    let (status, body) = post_setup(&base, account(&token), None).await;
    assert_eq!(status, 201, "{body}");
    // Spent: gone from the server, and setup is closed.
    assert_eq!(gate.token(), None);
    let (status, body) = post_setup(&base, account(&token), None).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "setup.done");
    // The link opens the setup page.
    let resp = reqwest::get(format!("{base}/_/setup?token={token}"))
        .await
        .expect("page");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn an_instance_with_an_account_has_no_setup_token() {
    let (url, _) = common::fresh_database().await;
    let mut config = sluice::config::Config::for_database(&url);
    config.admin = Some((
        ADMIN_EMAIL.into(),
        sluice::config::Secret::new(ADMIN_PASSWORD),
    ));
    let app = sluice::startup::App::build(config)
        .await
        .expect("the app builds");
    assert_eq!(app.setup_token(), None);
}

/// A non-loopback address of this machine, if it has one.
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route's source address.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn setup_is_refused_to_other_machines_unless_allowed() {
    let all = |c: &mut sluice::config::Config| c.addr = "0.0.0.0:0".parse().expect("addr");
    let (base, port, token, _) = fresh_instance(all).await;
    let account = json!({"email": "owner@example.com", "password": "long enough", "token": token});
    // A request passed on by a proxy is someone else's, even from loopback.
    for header in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ] {
        let (status, body) = post_setup(&base, account.clone(), Some(header)).await;
        assert_eq!(status, 403, "{header:?}: {body}");
        assert_eq!(body["error"]["code"], "setup.remote");
    }
    // A direct connection from another interface than loopback.
    if let Some(ip) = outside_address() {
        let host = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let (status, body) =
            post_setup(&format!("http://{host}:{port}"), account.clone(), None).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "setup.remote");
    }
    let (status, body) = post_setup(&base, account, None).await;
    assert_eq!(status, 201, "{body}");

    // With remote setup allowed, the token is still needed, and enough.
    let (base, _, token, _) = fresh_instance(|c| {
        all(c);
        c.setup_allow_remote = true;
    })
    .await;
    let (status, _) = post_setup(
        &base,
        json!({"email": "owner@example.com", "password": "long enough"}),
        Some(("x-forwarded-for", "203.0.113.9")),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = post_setup(
        &base,
        json!({"email": "owner@example.com", "password": "long enough", "token": token}),
        Some(("x-forwarded-for", "203.0.113.9")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn an_endpoint_cannot_plant_the_editors_session_cookie() {
    let app = spawn_app().await;
    for (name, path, cookie) in [
        (
            "plant_plain",
            "/plant-plain",
            "sluice_session=chosen; Path=/_/",
        ),
        (
            "plant_host",
            "/plant-host",
            "__Host-sluice_session=chosen; Secure; Path=/",
        ),
        ("own_cookie", "/own-cookie", "theme=dark; Path=/"),
    ] {
        app.publish(&page_flow(name, path, None, json!({"Set-Cookie": cookie})))
            .await;
        let resp = app
            .api(Method::GET, &format!("{path}?name=x"))
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 200);
        let set: Vec<&str> = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii"))
            .collect();
        if name == "own_cookie" {
            assert_eq!(set, [cookie]);
        } else {
            assert!(set.is_empty(), "{name}: {set:?}");
        }
    }
}
