//! The editor's server side over real HTTP: the page shell and its files, first-run setup,
//! cookie sessions with CSRF, and admin API tokens.

mod common;

use common::browser::{SETUP_TOKEN, spawn_first_run_app};
use common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};

/// A browser-like client: remembers the session cookie by hand (no cookie jar in the tree).
struct Cookie(String);

async fn sign_in(app: &TestApp) -> (Cookie, String, reqwest::header::HeaderValue) {
    let resp = app
        .client
        .post(format!("{}/_/api/v1/session", app.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 200);
    let set_cookie = resp
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .expect("a session cookie")
        .clone();
    let pair = set_cookie
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    let csrf = body["csrf_token"].as_str().expect("csrf token").to_string();
    (Cookie(pair), csrf, set_cookie)
}

fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &Cookie,
) -> reqwest::RequestBuilder {
    app.client
        .request(method, format!("{}/_/api/v1{path}", app.base))
        .header(reqwest::header::COOKIE, &cookie.0)
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_when_configured() {
    let app = spawn_app().await;
    let (_, _, set_cookie) = sign_in(&app).await;
    let c = set_cookie.to_str().expect("ascii");
    assert!(c.starts_with("sluice_session="), "{c}");
    assert!(c.contains("HttpOnly"), "{c}");
    assert!(c.contains("SameSite=Strict"), "{c}");
    assert!(c.contains("Path=/_/"), "{c}");
    assert!(!c.contains("Secure"), "{c}");

    let tls = spawn_app_with(|c| c.secure_cookies = Some(true)).await;
    let (_, _, set_cookie) = sign_in(&tls).await;
    let c = set_cookie.to_str().expect("ascii");
    assert!(c.starts_with("__Host-sluice_session="), "{c}");
    assert!(
        c.contains("Secure") && c.split("; ").any(|a| a == "Path=/"),
        "{c}"
    );
}

#[tokio::test]
async fn cookie_requests_that_change_things_need_the_csrf_token() {
    let app = spawn_app().await;
    let (cookie, csrf, _) = sign_in(&app).await;
    // Reads need no token.
    let (status, me) = app
        .send(with_cookie(&app, Method::GET, "/session", &cookie))
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert_eq!(me["csrf_token"], csrf);
    let (status, _) = app
        .send(with_cookie(&app, Method::GET, "/tables", &cookie))
        .await;
    assert_eq!(status, 200);
    // A change without the token, or with another one, is refused and changes nothing.
    let def = json!({"name": "notes", "fields": [{"name": "body", "type": "text"}]});
    for header in [None, Some("0".repeat(64)), Some(String::new())] {
        let mut req = with_cookie(&app, Method::POST, "/tables", &cookie).json(&def);
        if let Some(h) = &header {
            req = req.header("x-csrf-token", h);
        }
        let (status, body) = app.send(req).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "auth.csrf");
    }
    let (_, tables) = app.send(app.admin(Method::GET, "/tables")).await;
    assert_eq!(tables["tables"], json!([]));
    // With the token it works.
    let (status, body) = app
        .send(
            with_cookie(&app, Method::POST, "/tables", &cookie)
                .header("x-csrf-token", &csrf)
                .json(&def),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Bearer clients need no token.
    let (status, _) = app
        .send(app.admin(Method::DELETE, "/tables/notes?confirm=notes"))
        .await;
    assert_eq!(status, 200);
    // Logging out needs the token too, and ends the session.
    let (status, _) = app
        .send(with_cookie(&app, Method::DELETE, "/session", &cookie))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .send(with_cookie(&app, Method::DELETE, "/session", &cookie).header("x-csrf-token", &csrf))
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .send(with_cookie(&app, Method::GET, "/session", &cookie))
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.unauthorized");
}

#[tokio::test]
async fn sessions_are_kept_in_postgres_and_a_bad_bearer_never_falls_back_to_the_cookie() {
    let app = spawn_app().await;
    let (cookie, _, _) = sign_in(&app).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.editor_sessions")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 1);
    // Using the session moves its expiry on: it ends after 12 idle hours, not 12 in all.
    let expiry = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT extract(epoch FROM expiry_date)::float8 FROM sluice.editor_sessions",
        )
        .fetch_one(&app.db)
        .await
        .expect("expiry")
    };
    let first = expiry().await;
    let (status, _) = app
        .send(with_cookie(&app, Method::GET, "/tables", &cookie))
        .await;
    assert_eq!(status, 200);
    assert!(expiry().await > first);
    let (status, _) = app
        .send(with_cookie(&app, Method::GET, "/tables", &cookie).bearer_auth("nonsense"))
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/session", app.base))
                .json(&json!({"email": ADMIN_EMAIL, "password": "wrong"})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.invalid_credentials");
}

#[tokio::test]
async fn setup_creates_exactly_one_first_account_even_when_raced() {
    let app = spawn_first_run_app().await;
    let (status, body) = app
        .send(app.client.get(format!("{}/_/api/v1/setup", app.base)))
        .await;
    assert_eq!((status, body["required"].clone()), (200, json!(true)));
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/setup", app.base))
                .json(&json!({"email": "nobody", "password": "short", "token": SETUP_TOKEN})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "setup.invalid");
    assert_eq!(body["error"]["details"].as_array().map(Vec::len), Some(2));

    let attempts = (0..6).map(|i| {
        let req = app
            .client
            .post(format!("{}/_/api/v1/setup", app.base))
            .json(&json!({"email": format!("admin{i}@example.com"), "password": "long enough password", "token": SETUP_TOKEN}));
        async move { req.send().await.expect("answered").status().as_u16() }
    });
    let mut statuses = futures_join(attempts).await;
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice.users")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(n, 1);
    let (_, body) = app
        .send(app.client.get(format!("{}/_/api/v1/setup", app.base)))
        .await;
    assert_eq!(body["required"], false);
}

/// Runs futures concurrently on this task (no extra crate).
async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn admin_api_tokens_are_shown_once_work_as_bearer_and_stop_when_revoked() {
    let app = spawn_app().await;
    let (status, created) = app
        .send(
            app.admin(Method::POST, "/api-tokens")
                .json(&json!({"name": "CI deploy"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_string();
    assert!(
        token.starts_with("sluice_at_") && token.len() == 74,
        "{token}"
    );
    let (status, list) = app.send(app.admin(Method::GET, "/api-tokens")).await;
    assert_eq!(status, 200);
    assert_eq!(list["tokens"][0]["name"], "CI deploy");
    assert_eq!(list["tokens"][0]["created_by"], ADMIN_EMAIL);
    assert!(token.starts_with(list["tokens"][0]["prefix"].as_str().expect("prefix")));
    assert!(
        !list.to_string().contains(&token),
        "listed without the token"
    );
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM sluice.api_tokens")
        .fetch_one(&app.db)
        .await
        .expect("hash");
    assert_eq!(stored.len(), 32, "only a SHA-256 hash is stored");

    let as_token = |m: Method, p: &str| {
        app.client
            .request(m, format!("{}/_/api/v1{p}", app.base))
            .bearer_auth(&token)
    };
    let (status, _) = app.send(as_token(Method::GET, "/tables")).await;
    assert_eq!(status, 200);
    let (_, list) = app.send(app.admin(Method::GET, "/api-tokens")).await;
    assert!(list["tokens"][0]["last_used_at"].is_string(), "{list}");

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/api-tokens")
                .json(&json!({"name": "  "})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (422, json!("api_token.invalid_name"))
    );

    let id = created["id"].as_i64().expect("id");
    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/api-tokens/{id}")))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.send(as_token(Method::GET, "/tables")).await;
    assert_eq!(status, 401);
    let (status, body) = app
        .send(app.admin(Method::DELETE, &format!("/api-tokens/{id}")))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("api_token.not_found"))
    );
    // A made-up token of the right shape is refused too.
    let (status, _) = app
        .send(
            app.client
                .get(format!("{}/_/api/v1/tables", app.base))
                .bearer_auth(format!("sluice_at_{}", "a".repeat(64))),
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_editor_is_served_with_a_strict_policy_and_revalidated_assets() {
    let app = spawn_first_run_app().await;
    let resp = app
        .client
        .get(format!("{}/_/", app.base))
        .send()
        .await
        .expect("shell");
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let csp = h["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(
        h["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/html")
    );
    assert_eq!(h["cache-control"], "no-store");
    let html = resp.text().await.expect("html");
    assert!(html.contains("data-page=\"setup\""), "{html}");
    assert!(html.contains("<script type=\"module\" src=\"/_/js/app.js\">"));
    assert!(!html.contains("<script>"), "no inline script");

    let js = app
        .client
        .get(format!("{}/_/js/api.js", app.base))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(js.headers()["cache-control"], "no-cache");
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    let etag = js.headers()["etag"].clone();
    assert!(
        js.text()
            .await
            .expect("body")
            .contains("export class ApiError")
    );
    let again = app
        .client
        .get(format!("{}/_/js/api.js", app.base))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("js");
    assert_eq!(again.status(), 304);
    let css = app
        .client
        .get(format!("{}/_/css/app.css", app.base))
        .send()
        .await
        .expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    for (path, status, code) in [
        ("/_/templates/index.html", 404, "api.not_found"),
        ("/_/js/../templates/index.html", 404, "api.not_found"),
        ("/_/js/missing.js", 404, "api.not_found"),
        ("/_/api/v1/nothing-here", 404, "api.not_found"),
    ] {
        let (s, body) = app
            .send(app.client.get(format!("{}{path}", app.base)))
            .await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    let (s, body) = app
        .send(app.client.post(format!("{}/_/js/app.js", app.base)))
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (405, Some("route.method_not_allowed"))
    );
    let (s, _) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/nothing-here", app.base)),
        )
        .await;
    assert_eq!(s, 404);

    // Once an account exists, the shell opens on the login form.
    let configured = spawn_app().await;
    let html = configured
        .client
        .get(format!("{}/_/", configured.base))
        .send()
        .await
        .expect("shell")
        .text()
        .await
        .expect("html");
    assert!(html.contains("data-page=\"login\""), "{html}");
}
