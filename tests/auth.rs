//! End-user authentication through the real server and real Postgres: the example auth app
//! (signup, login, me, an admin-only list), `endpoint.auth` refusing missing and bad tokens
//! with 401 and non-admins with 403, key rotation and purging, `auth` in the flow's scope and
//! debug runs with a token.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestApp, example, fresh_database, spawn_app};
use hmac::Mac;
use reqwest::Method;
use serde_json::{Value, json};

async fn load_auth_example(app: &TestApp) {
    app.load_auth_example().await;
}

async fn signup(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    app.send(
        app.api(Method::POST, "/auth/signup")
            .json(&json!({"email": email, "password": password, "name": "Ann"})),
    )
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    app.send(
        app.api(Method::POST, "/auth/login")
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// Logs in and returns the token.
async fn token_for(app: &TestApp, email: &str, password: &str) -> String {
    let (status, body) = login(app, email, password).await;
    assert_eq!(status, 200, "login: {body}");
    body["token"].as_str().expect("a token").to_string()
}

/// `GET /api{path}` with an optional `Authorization` header: status, body, WWW-Authenticate.
async fn get_with(app: &TestApp, path: &str, authorization: Option<&str>) -> (u16, Value, String) {
    let mut req = app.api(Method::GET, path);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("answered");
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = serde_json::from_str(&resp.text().await.expect("body")).unwrap_or(Value::Null);
    (status, body, challenge)
}

fn header_of(token: &str) -> Value {
    let h = token.split('.').next().expect("a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).expect("base64url")).expect("JSON")
}

fn claims_of(token: &str) -> Value {
    let c = token.split('.').nth(1).expect("claims");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).expect("base64url")).expect("JSON")
}

/// The current signing key, read from the catalog as an attacker with the secret could.
async fn current_key(app: &TestApp) -> (i64, Vec<u8>) {
    sqlx::query_as("SELECT id, secret FROM sluice.token_keys WHERE retired_at IS NULL")
        .fetch_one(&app.db)
        .await
        .expect("a current key")
}

/// A compact JWT with any header and claims, signed with HMAC-SHA256 or -SHA512.
fn forge(header: Value, claims: Value, secret: &[u8], sha512: bool) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = if sha512 {
        let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret).expect("key");
        mac.update(out.as_bytes());
        mac.finalize().into_bytes().to_vec()
    } else {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
        mac.update(out.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

#[tokio::test]
async fn signup_login_and_me_work_with_the_example_files() {
    let app = spawn_app().await;
    load_auth_example(&app).await;

    let (status, body) = signup(&app, "  Ann@Example.com ", "correct horse").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(body["user"]["role"], "user");
    assert!(body["user"].get("password").is_none(), "{body}");
    let id = body["user"]["id"].as_i64().expect("an id");
    let from_signup = body["token"].as_str().expect("a token").to_string();
    assert_eq!(claims_of(&from_signup)["sub"], id.to_string());

    // The same email again, in another spelling: a clean 409, and no second row.
    let (status, body) = signup(&app, "ann@example.COM", "another password").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "user.email_taken");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM app.users")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(rows, 1);
    // The stored password is an argon2 hash, not the text.
    let stored: String = sqlx::query_scalar("SELECT password FROM app.users")
        .fetch_one(&app.db)
        .await
        .expect("hash");
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    // A wrong password and an unknown email get the same answer.
    let (s1, wrong_password) = login(&app, "ann@example.com", "wrong horse").await;
    let (s2, unknown_email) = login(&app, "bob@example.com", "correct horse").await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_password["error"]["code"], "auth.invalid_credentials");
    assert_eq!(wrong_password, unknown_email);

    let token = token_for(&app, "ANN@example.com", "correct horse").await;
    let (status, me, _) = get_with(&app, "/me", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["id"], id);
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["name"], "Ann");
    assert!(me.get("password").is_none(), "{me}");
    // The signup token works as well.
    let (status, _, _) = get_with(&app, "/me", Some(&format!("bearer {from_signup}"))).await;
    assert_eq!(status, 200);

    let (status, body, challenge) = get_with(&app, "/me", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "auth.token_missing");
    assert_eq!(challenge, "Bearer");
}

#[tokio::test]
async fn missing_garbage_expired_tampered_and_wrong_alg_tokens_get_401() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (status, _) = signup(&app, "ann@example.com", "correct horse").await;
    assert_eq!(status, 201);
    let good = token_for(&app, "ann@example.com", "correct horse").await;
    let (kid, secret) = current_key(&app).await;
    assert_eq!(
        header_of(&good),
        json!({"alg": "HS256", "typ": "JWT", "kid": kid.to_string()})
    );
    let sub = claims_of(&good)["sub"].clone();
    let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": kid.to_string()});

    let expired = forge(
        hs256.clone(),
        json!({"sub": sub, "iat": now() - 7200, "exp": now() - 3600}),
        &secret,
        false,
    );
    let not_yet = forge(
        hs256.clone(),
        json!({"sub": sub, "nbf": now() + 3600, "exp": now() + 7200}),
        &secret,
        false,
    );
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut claims = claims_of(&good);
    claims["sub"] = json!("999");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");
    let wrong_alg = forge(
        json!({"alg": "HS512", "typ": "JWT", "kid": kid.to_string()}),
        json!({"sub": sub, "exp": now() + 3600}),
        &secret,
        true,
    );
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid.to_string()}).to_string()),
        URL_SAFE_NO_PAD.encode(json!({"sub": sub, "exp": now() + 3600}).to_string())
    );
    let other_key = forge(
        hs256.clone(),
        json!({"sub": sub, "exp": now() + 3600}),
        b"a secret that is not Sluice's key at all",
        false,
    );
    let unknown_kid = forge(
        json!({"alg": "HS256", "kid": "424242"}),
        json!({"sub": sub, "exp": now() + 3600}),
        &secret,
        false,
    );
    let no_exp = forge(hs256.clone(), json!({"sub": sub}), &secret, false);

    let cases: [(&str, Option<String>, &str); 12] = [
        ("no header", None, "auth.token_missing"),
        (
            "other scheme",
            Some(format!("Basic {good}")),
            "auth.token_missing",
        ),
        ("empty bearer", Some("Bearer ".into()), "auth.token_missing"),
        (
            "garbage",
            Some("Bearer garbage".into()),
            "auth.token_invalid",
        ),
        (
            "expired",
            Some(format!("Bearer {expired}")),
            "auth.token_expired",
        ),
        (
            "not yet valid",
            Some(format!("Bearer {not_yet}")),
            "auth.token_invalid",
        ),
        (
            "tampered",
            Some(format!("Bearer {tampered}")),
            "auth.token_invalid",
        ),
        (
            "wrong alg",
            Some(format!("Bearer {wrong_alg}")),
            "auth.token_invalid",
        ),
        (
            "alg none",
            Some(format!("Bearer {none_alg}")),
            "auth.token_invalid",
        ),
        (
            "other key",
            Some(format!("Bearer {other_key}")),
            "auth.token_invalid",
        ),
        (
            "unknown kid",
            Some(format!("Bearer {unknown_kid}")),
            "auth.token_invalid",
        ),
        (
            "no exp",
            Some(format!("Bearer {no_exp}")),
            "auth.token_invalid",
        ),
    ];
    for (what, header, code) in cases {
        let (status, body, challenge) = get_with(&app, "/me", header.as_deref()).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
        if code != "auth.token_missing" {
            assert_eq!(challenge, "Bearer error=\"invalid_token\"", "{what}");
        }
    }
    // The token is checked before the body is read: no token and a broken body is still 401,
    // while a good token with the same body gets the body's error.
    let (status, body) = app.send(app.api(Method::GET, "/me").body("{")).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("auth.token_missing"))
    );
    let (status, body) = app
        .send(app.api(Method::GET, "/me").bearer_auth(&good).body("{"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("request.invalid_json"))
    );
    // A token forged with the real key is accepted: the cases above fail for their own reason.
    let forged_good = forge(
        hs256,
        json!({"sub": sub, "exp": now() + 60}),
        &secret,
        false,
    );
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {forged_good}"))).await;
    assert_eq!(status, 200);
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {good}"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn admin_endpoints_refuse_non_admins_with_403_and_serve_admins() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    for email in ["ann@example.com", "bob@example.com"] {
        let (status, _) = signup(&app, email, "correct horse").await;
        assert_eq!(status, 201);
    }
    let user = token_for(&app, "bob@example.com", "correct horse").await;
    let (status, body, challenge) =
        get_with(&app, "/admin/users", Some(&format!("Bearer {user}"))).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "auth.forbidden");
    assert_eq!(challenge, "Bearer error=\"insufficient_scope\"");
    let (status, body, _) = get_with(&app, "/admin/users", None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("auth.token_missing"))
    );

    sqlx::query("UPDATE app.users SET role = 'admin' WHERE email = 'ann@example.com'")
        .execute(&app.db)
        .await
        .expect("promote");
    let admin = token_for(&app, "ann@example.com", "correct horse").await;
    assert_eq!(claims_of(&admin)["role"], "admin");
    let (status, body, _) = get_with(
        &app,
        "/admin/users?limit=10",
        Some(&format!("Bearer {admin}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let users = body["users"].as_array().expect("users");
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u.get("password").is_none()), "{body}");
    assert_eq!(body["by"], claims_of(&admin)["sub"]);
}

#[tokio::test]
async fn rotation_keeps_old_tokens_until_their_key_is_purged() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (status, _) = signup(&app, "ann@example.com", "correct horse").await;
    assert_eq!(status, 201);
    let before = token_for(&app, "ann@example.com", "correct horse").await;
    let first_kid = header_of(&before)["kid"].clone();

    let (status, listed) = app.send(app.admin(Method::GET, "/token-keys")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["keys"][0]["current"], true);
    assert!(!listed.to_string().contains("secret"), "{listed}");

    // Rotation needs an editor.
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/token-keys/rotate", app.base)),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("auth.unauthorized"))
    );

    let (status, rotated) = app
        .send(app.admin(Method::POST, "/token-keys/rotate"))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let keys = rotated["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys.iter().filter(|k| k["current"] == true).count(), 1);
    assert_eq!(
        rotated["rotation"]["retired"].to_string(),
        first_kid.as_str().expect("kid")
    );
    assert!(keys.iter().all(|k| k["verifies"] == true), "{rotated}");

    // The old token still works; new tokens carry the new kid.
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {before}"))).await;
    assert_eq!(status, 200);
    let after = token_for(&app, "ann@example.com", "correct horse").await;
    let second_kid = header_of(&after)["kid"].clone();
    assert_ne!(first_kid, second_kid);
    assert_eq!(second_kid, rotated["rotation"]["current"].to_string());
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {after}"))).await;
    assert_eq!(status, 200);

    // Once the first key was retired longer ago than any token can live, the next rotation
    // purges it, and its tokens fail.
    sqlx::query(
        "UPDATE sluice.token_keys SET retired_at = now() - interval '32 days' WHERE id = $1",
    )
    .bind(
        first_kid
            .as_str()
            .expect("kid")
            .parse::<i64>()
            .expect("numeric kid"),
    )
    .execute(&app.db)
    .await
    .expect("age the key");
    let (status, rotated) = app
        .send(app.admin(Method::POST, "/token-keys/rotate"))
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(
        rotated["rotation"]["purged"].to_string(),
        format!("[{}]", first_kid.as_str().expect("kid"))
    );
    assert_eq!(rotated["keys"].as_array().map(Vec::len), Some(2));
    let (status, body, _) = get_with(&app, "/me", Some(&format!("Bearer {before}"))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("auth.token_invalid"))
    );
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {after}"))).await;
    assert_eq!(status, 200, "the second key is retired but young");

    // Revoking: every retired key goes at once, and with it every token issued so far.
    let (status, body) = app
        .send(app.admin(Method::POST, "/token-keys/rotate?revoke=maybe"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("request.invalid_query"))
    );
    let (status, revoked) = app
        .send(app.admin(Method::POST, "/token-keys/rotate?revoke=true"))
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        revoked["rotation"]["purged"].as_array().map(Vec::len),
        Some(2)
    );
    let (status, body, _) = get_with(&app, "/me", Some(&format!("Bearer {after}"))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("auth.token_invalid"))
    );
    let fresh = token_for(&app, "ann@example.com", "correct horse").await;
    assert_eq!(
        header_of(&fresh)["kid"],
        revoked["rotation"]["current"].to_string()
    );
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {fresh}"))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn flows_see_the_caller_as_auth_and_debug_runs_take_a_token() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (status, _) = signup(&app, "ann@example.com", "correct horse").await;
    assert_eq!(status, 201);
    let token = token_for(&app, "ann@example.com", "correct horse").await;
    let sub = claims_of(&token)["sub"].clone();

    let whoami = |auth: &str, path: &str| {
        json!({"format": "sluice.flow", "format_version": 1, "name": format!("who_{auth}"),
               "endpoint": {"method": "GET", "path": path, "auth": auth}, "entry": "r",
               "nodes": {"r": {"type": "respond", "body": {"auth": {"$rhai": "auth"}}}}})
    };
    let user_flow = app.publish(&whoami("user", "/whoami")).await;
    app.publish(&whoami("public", "/whoami-public")).await;

    let (status, body, _) = get_with(&app, "/whoami", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth"]["id"], sub);
    assert_eq!(body["auth"]["claims"]["role"], "user");
    assert_eq!(body["auth"]["claims"]["sub"], sub);
    assert!(body["auth"]["claims"]["exp"].is_i64());
    // Public endpoints do not read tokens, good or bad.
    for header in [
        Some(format!("Bearer {token}")),
        Some("Bearer junk".into()),
        None,
    ] {
        let (status, body, _) = get_with(&app, "/whoami-public", header.as_deref()).await;
        assert_eq!((status, body), (200, json!({"auth": null})));
    }

    let run = |body: Value| {
        app.admin(Method::POST, &format!("/flows/{user_flow}/run"))
            .json(&body)
    };
    let (status, out) = app.send(run(json!({"token": token}))).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"]["status"], 200);
    assert_eq!(out["response"]["body"]["auth"]["id"], sub);
    let (_, out) = app.send(run(json!({}))).await;
    assert_eq!(out["response"]["status"], 401);
    assert_eq!(out["error"]["code"], "auth.token_missing");
    let (_, out) = app.send(run(json!({"token": "junk"}))).await;
    assert_eq!(
        out["response"]["body"]["error"]["code"],
        "auth.token_invalid"
    );
    let (status, out) = app.send(run(json!({"token": 7}))).await;
    assert_eq!(
        (status, out["error"]["code"].clone()),
        (400, json!("request.invalid_body"))
    );
}

#[tokio::test]
async fn a_called_function_sees_the_callers_auth() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (_, signed_up) = signup(&app, "ann@example.com", "correct horse").await;
    let token = signed_up["token"].as_str().expect("token").to_string();
    app.publish(
        &json!({"format": "sluice.flow", "format_version": 1, "name": "caller_id",
        "entry": "r", "nodes": {"r": {"type": "respond", "body": {"$rhai": "auth.id"}}}}),
    )
    .await;
    app.publish(
        &json!({"format": "sluice.flow", "format_version": 1, "name": "calls",
        "endpoint": {"method": "GET", "path": "/calls", "auth": "user"}, "entry": "c",
        "nodes": {"c": {"type": "call", "flow": "caller_id", "as": "who", "next": {"ok": "r"}},
                  "r": {"type": "respond", "body": {"who": {"$rhai": "who"}}}}}),
    )
    .await;
    let (status, body, _) = get_with(&app, "/calls", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["who"], signed_up["user"]["id"].to_string());
}

#[tokio::test]
async fn the_auth_examples_are_in_canonical_form() {
    let app = spawn_app().await;
    app.create_table(&example("auth/users.table.json")).await;
    for f in [
        "signup",
        "login",
        "me",
        "list_users",
        "refresh",
        "logout",
        "logout_everywhere",
        "request_password_reset",
        "reset_password",
    ] {
        let id = app.publish(&example(&format!("auth/{f}.flow.json"))).await;
        let exported = app
            .admin(Method::GET, &format!("/flows/{id}/export"))
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("text");
        let path = format!(
            "{}/flows/examples/auth/{f}.flow.json",
            env!("CARGO_MANIFEST_DIR")
        );
        assert_eq!(
            exported,
            std::fs::read_to_string(path).expect("file"),
            "{f}"
        );
    }
}

/// Starts another instance on the same database, as a second Sluice behind a load balancer,
/// that does not follow catalog changes on its own (no listener, a check once an hour), so only
/// the unknown-`kid` refresh can teach it a new key.
async fn second_instance(first: &TestApp, url: &str) -> TestApp {
    common::spawn_app_on(url, &first.db_name, |c| {
        c.reload_listen = false;
        c.reload_check = std::time::Duration::from_secs(3600);
    })
    .await
}

#[tokio::test]
async fn a_token_signed_with_a_key_rotated_on_another_instance_is_accepted() {
    let (url, db_name) = fresh_database().await;
    let a = common::spawn_app_on(&url, &db_name, |_| {}).await;
    load_auth_example(&a).await;
    let (status, _) = signup(&a, "ann@example.com", "correct horse").await;
    assert_eq!(status, 201);
    // B loads the published flows and the key ring when it starts.
    let b = second_instance(&a, &url).await;
    let before = token_for(&a, "ann@example.com", "correct horse").await;
    let (status, _, _) = get_with(&b, "/me", Some(&format!("Bearer {before}"))).await;
    assert_eq!(status, 200);

    // A rotates and signs with the new key; B has not reloaded. B's ring must be older than
    // the refresh limit for an unknown kid to make it look again.
    let (status, rotated) = a.send(a.admin(Method::POST, "/token-keys/rotate")).await;
    assert_eq!(status, 200, "{rotated}");
    let after = token_for(&a, "ann@example.com", "correct horse").await;
    assert_eq!(
        header_of(&after)["kid"],
        rotated["rotation"]["current"].to_string()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body, _) = get_with(&b, "/me", Some(&format!("Bearer {after}"))).await;
    assert_eq!(status, 200, "{body}");
    // Its listing now shows both keys as verifying.
    let (_, listed) = b.send(b.admin(Method::GET, "/token-keys")).await;
    let keys = listed["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["verifies"] == true), "{listed}");
    // A made-up kid is still refused after the reload.
    let (kid, secret) = current_key(&a).await;
    let made_up = forge(
        json!({"alg": "HS256", "kid": (kid + 100).to_string()}),
        json!({"sub": "1", "exp": now() + 60}),
        &secret,
        false,
    );
    let (status, body, _) = get_with(&b, "/me", Some(&format!("Bearer {made_up}"))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("auth.token_invalid"))
    );
}

#[tokio::test]
async fn a_debug_run_of_login_shows_neither_the_password_nor_its_hash() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (status, _) = signup(&app, "ann@example.com", "correct horse").await;
    assert_eq!(status, 201);
    let (_, flows) = app.send(app.admin(Method::GET, "/flows")).await;
    let login_id = flows["flows"]
        .as_array()
        .expect("flows")
        .iter()
        .find(|f| f["name"] == "login")
        .and_then(|f| f["id"].as_i64())
        .expect("the login flow");
    let (status, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{login_id}/run"))
                .json(&json!({"body": {"email": "ann@example.com", "password": "correct horse"}})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["response"]["status"], 200, "{out}");
    let check = out["trace"]
        .as_array()
        .expect("trace")
        .iter()
        .find(|t| t["node"] == "check")
        .expect("the check node ran");
    assert_eq!(check["port"], "valid");
    assert_eq!(check["output"]["email"], "ann@example.com");
    assert_eq!(out["response"]["body"]["token"], "***");
    let text = out.to_string();
    assert!(!text.contains("correct horse"), "{text}");
    assert!(!text.contains("$argon2"), "{text}");
    assert!(!text.contains("eyJ"), "{text}");
}

/// The auth template's owner-only rules (docs/RULES.md): with two signed-up users, hand-written
/// user endpoints on `users` reach only the caller's own account, and the role cannot be
/// changed by its user; admins see every account.
#[tokio::test]
async fn the_auth_templates_rules_keep_each_user_to_their_own_account() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (s, ann) = signup(&app, "ann@example.com", "correct horse").await;
    assert_eq!(s, 201, "{ann}");
    let (s, bob) = signup(&app, "bob@example.com", "battery staple").await;
    assert_eq!(s, 201, "{bob}");
    let (ann_id, bob_id) = (
        ann["user"]["id"].as_i64().expect("id"),
        bob["user"]["id"].as_i64().expect("id"),
    );
    let ann_token = token_for(&app, "ann@example.com", "correct horse").await;
    let flow = |name: &str, method: &str, path: &str, node: Value| {
        json!({"format": "sluice.flow", "format_version": 1, "name": name, "entry": "n",
               "endpoint": {"method": method, "path": path, "auth": "user"},
               "nodes": {"n": node, "reply": {"type": "respond", "body": {"$rhai": "out"}}}})
    };
    app.publish(&flow("user_by_id", "GET", "/users/{id}",
        json!({"type": "db.get", "table": "users", "id": {"$rhai": "request.params.id"}, "as": "out", "next": {"found": "reply"}})))
        .await;
    app.publish(&flow(
        "all_users",
        "GET",
        "/users",
        json!({"type": "db.query", "table": "users", "as": "out", "next": {"ok": "reply"}}),
    ))
    .await;
    app.publish(&flow(
        "edit_user",
        "PATCH",
        "/users/{id}",
        json!({"type": "db.update", "table": "users", "id": {"$rhai": "request.params.id"},
               "patch": {"$rhai": "request.body"}, "as": "out", "next": {"ok": "reply"}}),
    ))
    .await;
    app.publish(&flow("remove_user", "DELETE", "/users/{id}",
        json!({"type": "db.delete", "table": "users", "id": {"$rhai": "request.params.id"}, "as": "out", "next": {"ok": "reply"}})))
        .await;
    let bearer = format!("Bearer {ann_token}");
    let send = |method: Method, path: String, body: Option<Value>| {
        let mut req = app.api(method, &path).header("authorization", &bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        app.send(req)
    };

    let (s, list) = send(Method::GET, "/users".into(), None).await;
    let ids: Vec<i64> = list
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    assert_eq!((s, ids), (200, vec![ann_id]), "{list}");
    let (s, _) = send(Method::GET, format!("/users/{bob_id}"), None).await;
    assert_eq!(s, 404, "another user's account does not exist for ann");
    let (s, _) = send(
        Method::PATCH,
        format!("/users/{bob_id}"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(Method::DELETE, format!("/users/{bob_id}"), None).await;
    assert_eq!(s, 404);
    let (s, out) = send(
        Method::PATCH,
        format!("/users/{ann_id}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(
        (s, out["error"]["code"].as_str()),
        (403, Some("rule.denied")),
        "{out}"
    );
    let (s, out) = send(
        Method::PATCH,
        format!("/users/{ann_id}"),
        Some(json!({"name": "Annie"})),
    )
    .await;
    assert_eq!((s, out["name"].as_str()), (200, Some("Annie")), "{out}");
    let rows: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, name, role::text FROM app.users ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("rows");
    assert_eq!(
        rows,
        [
            (ann_id, "Annie".to_string(), "user".to_string()),
            (bob_id, "Ann".to_string(), "user".to_string())
        ]
    );
    // The template's admin endpoint is exempt: it lists every account.
    sqlx::query("UPDATE app.users SET role = 'admin' WHERE email = 'bob@example.com'")
        .execute(&app.db)
        .await
        .expect("promote");
    let admin = token_for(&app, "bob@example.com", "battery staple").await;
    let (s, all) = app
        .send(app.api(Method::GET, "/admin/users").bearer_auth(&admin))
        .await;

    assert_eq!(s, 200, "{all}");
    assert_eq!(all.to_string().matches("@example.com").count(), 2, "{all}");
}

#[tokio::test]
async fn an_ed25519_key_signs_tokens_and_publishes_its_public_key() {
    let app = spawn_app().await;
    load_auth_example(&app).await;
    let (status, _) = signup(&app, "ann@example.com", "correct horse").await;
    assert_eq!(status, 201);
    let hs256 = token_for(&app, "ann@example.com", "correct horse").await;
    assert_eq!(header_of(&hs256)["alg"], "HS256");

    let (status, body) = app
        .send(app.admin(Method::POST, "/token-keys/rotate?alg=EdDSA"))
        .await;
    assert_eq!(status, 200, "{body}");
    let current = &body["keys"][0];
    assert_eq!(current["alg"], "EdDSA");
    assert_eq!(current["public_jwk"]["kty"], "OKP");
    assert_eq!(current["public_jwk"]["crv"], "Ed25519");
    assert_eq!(body["jwks"]["keys"].as_array().map(Vec::len), Some(1));
    assert!(
        body["keys"][1]["public_jwk"].is_null(),
        "an HMAC key has no public half"
    );

    let eddsa = token_for(&app, "ann@example.com", "correct horse").await;
    assert_eq!(header_of(&eddsa)["alg"], "EdDSA");
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {eddsa}"))).await;
    assert_eq!(status, 200);
    // The HS256 token of the retired key still works.
    let (status, _, _) = get_with(&app, "/me", Some(&format!("Bearer {hs256}"))).await;
    assert_eq!(status, 200);

    // The public key taken as an HMAC secret (algorithm confusion) signs nothing we accept.
    let x = URL_SAFE_NO_PAD
        .decode(current["public_jwk"]["x"].as_str().expect("x"))
        .expect("base64url");
    let kid = current["id"].to_string();
    let forged = forge(
        json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        json!({"sub": "1", "exp": now() + 600, "role": "admin"}),
        &x,
        false,
    );
    let (status, body, _) = get_with(&app, "/me", Some(&format!("Bearer {forged}"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("auth.token_invalid"))
    );

    let (status, body) = app
        .send(app.admin(Method::POST, "/token-keys/rotate?alg=RS256"))
        .await;
    assert_eq!(status, 400, "{body}");
}
