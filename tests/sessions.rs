//! End-user sessions through the real server and real Postgres (docs/SESSIONS.md): the auth
//! example's login, refresh, logout and password reset flows; refresh token rotation and reuse
//! (which ends the session); logout of one session, of every session, and by an admin; the role
//! read again at refresh; deleted accounts; token audiences; and the warning for a role claim
//! taken from the request.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// The auth example with its session and reset flows, and one account `ann@example.com`.
async fn auth_app() -> TestApp {
    let app = spawn_app().await;
    app.load_auth_example().await;
    for f in ["refresh", "logout", "logout_everywhere", "reset_password"] {
        app.publish(&example(&format!("auth/{f}.flow.json"))).await;
    }
    let (status, body) =
        app.send(app.api(Method::POST, "/auth/signup").json(
            &json!({"email": "ann@example.com", "password": "correct horse", "name": "Ann"}),
        ))
        .await;
    assert_eq!(status, 201, "{body}");
    app
}

/// Logs in: the login answer (token, refresh_token, ...).
async fn login(app: &TestApp) -> Value {
    let (status, body) = app
        .send(
            app.api(Method::POST, "/auth/login")
                .json(&json!({"email": "ann@example.com", "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 200, "login: {body}");
    body
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> (u16, Value) {
    app.send(
        app.api(Method::POST, "/auth/refresh")
            .json(&json!({"refresh_token": refresh_token})),
    )
    .await
}

/// `method /api{path}` with a bearer token.
async fn with_token(app: &TestApp, method: Method, path: &str, token: &Value) -> (u16, Value) {
    let token = token.as_str().expect("a token");
    app.send(app.api(method, path).bearer_auth(token)).await
}

fn claims_of(token: &Value) -> Value {
    let c = token
        .as_str()
        .expect("text")
        .split('.')
        .nth(1)
        .expect("claims");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).expect("base64url")).expect("JSON")
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_refresh_rotates_and_a_reused_refresh_token_ends_the_session() {
    let app = auth_app().await;
    let first = login(&app).await;
    let claims = claims_of(&first["token"]);
    assert!(claims["sid"].is_string(), "{claims}");
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 900, "access tokens of a session live 15 minutes");
    assert!(
        first["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("srt_") && t.len() == 100)
    );

    let (status, second) = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(claims_of(&second["token"])["sid"], claims["sid"]);
    assert_eq!(claims_of(&second["token"])["role"], "user");
    let (status, me) = with_token(&app, Method::GET, "/me", &second["token"]).await;
    assert_eq!(status, 200, "{me}");

    // The first refresh token again: reuse. The session ends, so the newest refresh token
    // and the access tokens of the session are refused too.
    let (status, body) = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.refresh_reused"),
        "{body}"
    );
    let (status, body) = refresh(&app, &second["refresh_token"]).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.refresh_invalid"),
        "{body}"
    );
    let (status, body) = with_token(&app, Method::GET, "/me", &second["token"]).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.session_revoked"),
        "{body}"
    );

    // Only hashes are stored.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sluice.user_refresh_tokens WHERE octet_length(verifier_hash) = 32",
    )
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert!(stored >= 2);
    let (status, listed) = app
        .send(app.admin(Method::GET, "/user-sessions?subject=1"))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["sessions"][0]["revoked_reason"], "reuse");
    let text = listed.to_string();
    for secret in [&first["refresh_token"], &second["refresh_token"]] {
        assert!(!text.contains(secret.as_str().expect("text")));
    }
}

#[tokio::test]
async fn logging_out_one_session_leaves_the_others_working() {
    let app = auth_app().await;
    let phone = login(&app).await;
    let laptop = login(&app).await;
    let (status, body) = with_token(&app, Method::POST, "/auth/logout", &phone["token"]).await;
    assert_eq!((status, &body), (200, &json!({"ended": 1})));
    let (status, body) = with_token(&app, Method::GET, "/me", &phone["token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.session_revoked"));
    let (status, body) = refresh(&app, &phone["refresh_token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.refresh_invalid"));
    let (status, _) = with_token(&app, Method::GET, "/me", &laptop["token"]).await;
    assert_eq!(status, 200);
    let (status, body) = refresh(&app, &laptop["refresh_token"]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn logging_out_everywhere_ends_every_session_of_the_user() {
    let app = auth_app().await;
    let a = login(&app).await;
    let b = login(&app).await;
    let (status, body) =
        with_token(&app, Method::POST, "/auth/logout-everywhere", &a["token"]).await;
    assert_eq!((status, &body), (200, &json!({"ended": 2})));
    for s in [&a, &b] {
        let (status, body) = refresh(&app, &s["refresh_token"]).await;
        assert_eq!((status, code(&body)), (401, "auth.refresh_invalid"));
        let (status, body) = with_token(&app, Method::GET, "/me", &s["token"]).await;
        assert_eq!((status, code(&body)), (401, "auth.session_revoked"));
    }
}

#[tokio::test]
async fn an_admin_ends_a_users_sessions_and_lists_them_without_secrets() {
    let app = auth_app().await;
    let a = login(&app).await;
    let b = login(&app).await;
    let (status, listed) = app
        .send(app.admin(Method::GET, "/user-sessions?subject=1"))
        .await;
    assert_eq!(status, 200, "{listed}");
    let sessions = listed["sessions"].as_array().expect("a list");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["role"], "user");
    assert_eq!(sessions[0]["audience"], "api");
    assert!(sessions[0]["revoked_at"].is_null());
    assert!(sessions[0].get("refresh_token").is_none());

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/user-sessions/revoke")
                .json(&json!({"session_id": claims_of(&a["token"])["sid"]})),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"ended": 1})));
    let (status, _) = with_token(&app, Method::GET, "/me", &b["token"]).await;
    assert_eq!(status, 200, "the other session goes on");

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/user-sessions/revoke")
                .json(&json!({"subject": "1"})),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"ended": 1})));
    let (status, body) = with_token(&app, Method::GET, "/me", &b["token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.session_revoked"));
    let (status, body) = refresh(&app, &b["refresh_token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.refresh_invalid"));
    let (_, listed) = app
        .send(app.admin(Method::GET, "/user-sessions?subject=1"))
        .await;
    assert!(
        listed["sessions"]
            .as_array()
            .expect("a list")
            .iter()
            .all(|s| s["revoked_reason"] == "admin")
    );

    let (status, body) = app
        .send(
            app.admin(Method::POST, "/user-sessions/revoke")
                .json(&json!({})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "request.invalid_body"));
}

#[tokio::test]
async fn a_changed_role_holds_from_the_next_refresh() {
    let app = auth_app().await;
    let s = login(&app).await;
    let (status, body) = with_token(&app, Method::GET, "/admin/users", &s["token"]).await;
    assert_eq!((status, code(&body)), (403, "auth.forbidden"));
    sqlx::query("UPDATE app.users SET role = 'admin' WHERE id = 1")
        .execute(&app.db)
        .await
        .expect("promoted");
    let (status, next) = refresh(&app, &s["refresh_token"]).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(claims_of(&next["token"])["role"], "admin");
    let (status, body) = with_token(&app, Method::GET, "/admin/users", &next["token"]).await;
    assert_eq!(status, 200, "{body}");

    // And back: a demotion holds from the next refresh too.
    sqlx::query("UPDATE app.users SET role = 'user' WHERE id = 1")
        .execute(&app.db)
        .await
        .expect("demoted");
    let (_, last) = refresh(&app, &next["refresh_token"]).await;
    assert_eq!(claims_of(&last["token"])["role"], "user");
}

#[tokio::test]
async fn a_deleted_user_cannot_refresh() {
    let app = auth_app().await;
    let s = login(&app).await;
    sqlx::query("DELETE FROM app.users WHERE id = 1")
        .execute(&app.db)
        .await
        .expect("deleted");
    let (status, body) = refresh(&app, &s["refresh_token"]).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.refresh_invalid"),
        "{body}"
    );
    // The session is over, and so is its access token.
    let (status, body) = with_token(&app, Method::GET, "/me", &s["token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.session_revoked"));
    let reason: String =
        sqlx::query_scalar("SELECT revoked_reason FROM sluice.user_sessions LIMIT 1")
            .fetch_one(&app.db)
            .await
            .expect("a session");
    assert_eq!(reason, "user_gone");
}

#[tokio::test]
async fn a_reset_token_is_refused_by_normal_endpoints_and_works_once_for_the_reset() {
    let app = auth_app().await;
    // What request_password_reset mails, answered instead of mailed.
    let mut issue = example("auth/request_password_reset.flow.json");
    issue["name"] = json!("reset_token_for_tests");
    issue["endpoint"]["path"] = json!("/test/reset-token");
    issue["nodes"]["issue"]["next"] = json!({"ok": "give"});
    issue["nodes"]["give"] = json!({"type": "respond", "body": {"$rhai": "reset"}});
    issue["nodes"]
        .as_object_mut()
        .expect("nodes")
        .remove("mail");
    app.publish(&issue).await;
    let (status, reset) = app
        .send(
            app.api(Method::POST, "/test/reset-token")
                .json(&json!({"email": "ann@example.com"})),
        )
        .await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(claims_of(&reset["token"])["aud"], "password_reset");

    let (openapi, _) = app.openapi().await;
    assert_eq!(
        openapi["paths"]["/auth/password-reset/confirm"]["post"]["x-sluice-audience"],
        "password_reset"
    );
    let normal = login(&app).await;
    let (status, body) = with_token(&app, Method::GET, "/me", &reset["token"]).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.wrong_audience"),
        "{body}"
    );
    let confirm = |token: &Value| {
        app.api(Method::POST, "/auth/password-reset/confirm")
            .bearer_auth(token.as_str().expect("text"))
            .json(&json!({"password": "battery staple"}))
    };
    let (status, body) = app.send(confirm(&normal["token"])).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.wrong_audience"),
        "{body}"
    );
    let (status, body) = app.send(confirm(&reset["token"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["sessions_ended"], 2,
        "the sign-in and the reset session"
    );
    // Used once: the reset ended its own session.
    let (status, body) = app.send(confirm(&reset["token"])).await;
    assert_eq!(
        (status, code(&body)),
        (401, "auth.session_revoked"),
        "{body}"
    );
    // The sign-in is over, and the new password works.
    let (status, _) = with_token(&app, Method::GET, "/me", &normal["token"]).await;
    assert_eq!(status, 401);
    let (status, body) = app
        .send(
            app.api(Method::POST, "/auth/login")
                .json(&json!({"email": "ann@example.com", "password": "battery staple"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_role_claim_from_the_request_is_a_warning_that_does_not_block_publishing() {
    let app = spawn_app().await;
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "risky_signup",
        "endpoint": {"method": "POST", "path": "/risky"}, "entry": "issue",
        "nodes": {
            "issue": {"type": "auth.issue_token", "as": "t", "sub": "1",
                      "claims": {"role": {"$rhai": "request.body.role"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "t.token"}}}});
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows/validate")
                .json(&json!({"document": doc})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(
        body["diagnostics"],
        json!([{"code": "flow.role_from_request", "severity": "warning",
                "pointer": "/nodes/issue/claims/role", "node": "issue",
                "message": body["diagnostics"][0]["message"]}])
    );
    app.publish(&doc).await;
    let (status, _) = app
        .send(
            app.api(Method::POST, "/risky")
                .json(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, 200, "published and served");
}

#[tokio::test]
async fn refresh_tokens_that_are_not_ours_are_refused_cleanly() {
    let app = auth_app().await;
    for bad in [
        json!("srt_"),
        json!(format!("srt_{}", "0".repeat(96))),
        json!(format!("srt_{}", "zz".repeat(48))),
        json!("a'; DROP TABLE sluice.user_sessions; --"),
    ] {
        let (status, body) = refresh(&app, &bad).await;
        assert_eq!(
            (status, code(&body)),
            (401, "auth.refresh_invalid"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_session_ended_on_one_instance_is_refused_by_another_within_seconds() {
    let a = auth_app().await;
    let b = common::spawn_app_on(&a.db_url, &a.db_name, |_| {}).await;
    let s = login(&a).await;
    let (status, _) = with_token(&b, Method::GET, "/me", &s["token"]).await;
    assert_eq!(status, 200);
    let (status, _) = with_token(&a, Method::POST, "/auth/logout", &s["token"]).await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    loop {
        let (status, body) = with_token(&b, Method::GET, "/me", &s["token"]).await;
        if status == 401 {
            assert_eq!(code(&body), "auth.session_revoked");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the other instance still accepts the token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_user_has_at_most_twenty_live_sessions_and_the_oldest_ends_first() {
    let app = auth_app().await;
    let oldest = login(&app).await;
    for _ in 0..20 {
        login(&app).await;
    }
    let (status, body) = refresh(&app, &oldest["refresh_token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.refresh_invalid"));
    let (status, body) = with_token(&app, Method::GET, "/me", &oldest["token"]).await;
    assert_eq!((status, code(&body)), (401, "auth.session_revoked"));
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sluice.user_sessions WHERE subject = '1' AND revoked_at IS NULL",
    )
    .fetch_one(&app.db)
    .await
    .expect("count");
    assert_eq!(live, 20);
}

#[tokio::test]
async fn a_debug_run_shows_neither_the_access_token_nor_the_refresh_token() {
    let app = auth_app().await;
    let (_, flows) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = flows["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| f["name"] == "login")
        .and_then(|f| f["id"].as_i64())
        .expect("the login flow");
    let (status, run) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&json!({
                "body": {"email": "ann@example.com", "password": "correct horse"}})),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    let body = &run["response"]["body"];
    assert_eq!(body["token"], "***", "{run}");
    assert_eq!(body["refresh_token"], "***", "{run}");
    let text = run.to_string();
    assert!(!text.contains("srt_") && !text.contains("eyJ"), "{text}");
}
