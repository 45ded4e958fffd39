//! The editor's sign-in: first-run setup, cookie sessions (tower-sessions, stored in Postgres
//! in `sluice.editor_sessions`) and CSRF protection, plus the one function that decides who is
//! calling the admin API (`authenticate`, used by the `Editor` extractor).
//!
//! A request is authenticated either by `Authorization: Bearer` (a login token or an admin API
//! token: CLI, scripts, tests) or by the session cookie (the browser). The cookie is HttpOnly and
//! SameSite=Strict; unless the server listens on loopback (or `SLUICE_SECURE_COOKIES=false`) it
//! is also Secure and named `__Host-sluice_session`. A request authenticated by the cookie that
//! can change anything (every method but GET, HEAD and OPTIONS) must come from the editor's own
//! origin (`Sec-Fetch-Site` / `Origin`, else 403 `auth.cross_origin`) and carry the session's
//! CSRF token in `X-CSRF-Token`, else it is refused with 403 `auth.csrf`.
//!
//! First-run setup needs the one-time setup token that a fresh instance prints in its log, and
//! comes only from this machine unless `SLUICE_SETUP_ALLOW_REMOTE` is on (`SetupGate`).

use super::AppState;
use super::error::ApiError;
use super::extract::ApiJson;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// The session cookie's name on a loopback-only server (plain http, `Path=/_/`).
pub const COOKIE: &str = "sluice_session";
/// The session cookie's name when it is `Secure`. Browsers accept a `__Host-` cookie only with
/// `Secure`, `Path=/` and no `Domain`, so no other host (a sibling subdomain, a plain-http
/// page) can plant or overwrite it.
pub const SECURE_COOKIE: &str = "__Host-sluice_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
const USER_KEY: &str = "user_id";
const CSRF_KEY: &str = "csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/setup", get(setup_status).post(setup))
        .route("/session", get(whoami).post(login).delete(logout))
}

/// The session layer of the editor's pages and admin API. A session idle for 12 hours ends.
pub fn layer(state: &AppState) -> SessionManagerLayer<PostgresStore> {
    let store = PostgresStore::new(state.db.clone())
        .with_schema_name(crate::catalog::SCHEMA)
        .and_then(|s| s.with_table_name("editor_sessions"))
        .expect("constant, valid schema and table names");
    let (name, path) = if state.secure_cookies {
        (SECURE_COOKIE, "/")
    } else {
        (COOKIE, "/_/")
    };
    SessionManagerLayer::new(store)
        .with_name(name)
        .with_path(path)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.secure_cookies)
        .with_expiry(Expiry::OnInactivity(Duration::seconds(
            crate::auth::SESSION_TTL_SECS,
        )))
        // Each request of a signed-in browser moves the expiry on (one small write), so the
        // 12 hours count from the last use, not from sign-in.
        .with_always_save(true)
}

fn session_error(e: tower_sessions::session::Error) -> ApiError {
    ApiError::internal("session.error", e)
}

/// The account signed in through this session, if any.
pub async fn session_user(session: &Session) -> Result<Option<i64>, ApiError> {
    let stored: Option<Value> = session.get(USER_KEY).await.map_err(session_error)?;
    Ok(match stored {
        Some(Value::String(s)) => s.parse().ok(),
        // Sessions written before the id was stored as text.
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    })
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Compares without stopping at the first difference, so timing does not reveal the token.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "auth.unauthorized",
        "sign in first, or send a valid bearer token",
    )
}

/// Who is calling: `(user id, bearer token if one was sent)`. A bearer header that is present
/// but invalid is refused; it never falls back to the cookie.
pub async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
) -> Result<(i64, Option<String>), ApiError> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let user = if token.starts_with(crate::auth::admin_tokens::PREFIX) {
            crate::auth::admin_tokens::user_of(&state.db, token).await?
        } else {
            crate::auth::authenticate(&state.db, token).await?
        };
        let user = user.ok_or_else(ApiError::unauthorized)?;
        return Ok((user, Some(token.to_string())));
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|_| unauthorized())?;
    let user = session_user(&session).await?.ok_or_else(unauthorized)?;
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        same_origin(&parts.headers, &parts.uri)?;
        let expected: Option<String> = session.get(CSRF_KEY).await.map_err(session_error)?;
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let ok = expected.is_some_and(|e| same_secret(e.as_bytes(), sent));
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.csrf",
                "this request needs your session's CSRF token in the X-CSRF-Token header",
            ));
        }
    }
    Ok((user, None))
}

/// Refuses a browser request sent from any other origin than the one it is sent to: another
/// site, or a sandboxed page of this server (whose origin is opaque, `null`). Browsers say
/// where a request comes from in `Sec-Fetch-Site` (believed when present: `same-origin`, or
/// `none` for what the person typed) or else in `Origin`, which must name the host the request
/// was sent to. A request with neither is not from a browser page and passes (the CSRF token
/// still applies).
pub fn same_origin(headers: &HeaderMap, uri: &Uri) -> Result<(), ApiError> {
    let cross = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.cross_origin",
            "this request comes from another origin; the editor's session works only from the \
             editor's own pages",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(cross()),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(cross()),
    }
}

/// The one-time setup token of a fresh instance and who may use it.
pub struct SetupGate {
    token: std::sync::Mutex<Option<String>>,
    allow_remote: bool,
}

impl SetupGate {
    /// `token`: the instance had no account at start (else setup is closed anyway).
    pub fn new(token: Option<String>, allow_remote: bool) -> SetupGate {
        SetupGate {
            token: std::sync::Mutex::new(token),
            allow_remote,
        }
    }

    /// A new random token (64 hex digits).
    pub fn random_token() -> String {
        random_hex(32)
    }

    /// The token still open, if any.
    pub fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn accepts(&self, sent: &str) -> bool {
        self.token()
            .is_some_and(|t| same_secret(t.as_bytes(), sent.as_bytes()))
    }

    fn consume(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The socket peer of a request (absent when served without connection info).
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A request from this machine: a loopback peer that is not a proxy passing on someone else's
/// request (a forwarding header makes it remote).
fn is_local(peer: Option<std::net::SocketAddr>, headers: &HeaderMap) -> bool {
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h));
    !forwarded && peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
}

fn random_hex(bytes: usize) -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut raw = vec![0u8; bytes];
    OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs `user` in on this session: a new session id (no fixation) and a new CSRF token.
async fn sign_in(state: &AppState, session: &Session, user: i64) -> Result<Value, ApiError> {
    session.cycle_id().await.map_err(session_error)?;
    let csrf = random_hex(32);
    session
        // As text: the session store writes MessagePack, which cannot carry serde_json's
        // exact numbers (they would come back as a one-element array).
        .insert(USER_KEY, user.to_string())
        .await
        .map_err(session_error)?;
    session
        .insert(CSRF_KEY, &csrf)
        .await
        .map_err(session_error)?;
    crate::catalog::editor::sweep_sessions(&state.db).await?;
    let email = crate::catalog::users::email_of(&state.db, user).await?;
    Ok(json!({"user": {"id": user, "email": email}, "csrf_token": csrf}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

/// The first account, with the setup token from the link in the log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    email: String,
    password: String,
    #[serde(default)]
    token: String,
}

async fn setup_status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let required = crate::catalog::users::count(&state.db).await? == 0;
    Ok(Json(json!({ "required": required })))
}

/// Problems with a new account's email and password, as `{pointer, message}` details.
fn check_new_account(email: &str, password: &str) -> Vec<Value> {
    let mut problems = Vec::new();
    let valid_email = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid_email {
        problems.push(
            json!({"pointer": "/email", "message": "enter an email address like you@example.com"}),
        );
    }
    let chars = password.chars().count();
    if chars < 8 {
        problems.push(json!({"pointer": "/password", "message": "use at least 8 characters"}));
    } else if chars > 1024 {
        problems.push(json!({"pointer": "/password", "message": "use at most 1024 characters"}));
    }
    problems
}

/// Creates the first account and signs it in. Allowed only while no account exists, with the
/// setup token, and from this machine unless remote setup is allowed.
async fn setup(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    uri: Uri,
    session: Session,
    ApiJson(body): ApiJson<SetupBody>,
) -> Result<Response, ApiError> {
    same_origin(&headers, &uri)?;
    let done = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "setup.done",
            "Sluice is already set up; sign in with an existing account",
        )
    };
    // Cheap check first so a finished setup does not cost a password hash.
    if crate::catalog::users::count(&state.db).await? > 0 {
        return Err(done());
    }
    if !state.setup.allow_remote && !is_local(peer, &headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "setup.remote",
            "the first account can be created only from the machine Sluice runs on \
             (or set SLUICE_SETUP_ALLOW_REMOTE=true)",
        ));
    }
    if !state.setup.accepts(&body.token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "setup.token",
            "open the setup link printed in Sluice's log (it carries the one-time setup token)",
        ));
    }
    let email = body.email.trim().to_string();
    let problems = check_new_account(&email, &body.password);
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "setup.invalid",
            "the account cannot be created as entered",
        )
        .with_details(problems));
    }
    let hash = crate::auth::hash_password(body.password).await?;
    let user = crate::catalog::editor::create_first_account(&state.db, &email, &hash)
        .await?
        .ok_or_else(done)?;
    state.setup.consume();
    tracing::info!(
        user.id = user,
        "created the first account from the setup page"
    );
    let out = sign_in(&state, &session, user).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    session: Session,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
    // No page of another origin may sign this browser in (into an account of its choosing).
    same_origin(&headers, &uri)?;
    let user = crate::auth::check_credentials(&state.db, body.email.trim(), &body.password)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.invalid_credentials",
                "email or password is wrong",
            )
        })?;
    Ok(Json(sign_in(&state, &session, user).await?))
}

/// Who is signed in, and the CSRF token to send with changes (null for bearer clients).
async fn whoami(
    State(state): State<AppState>,
    editor: Editor,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let email = crate::catalog::users::email_of(&state.db, editor.user_id).await?;
    let csrf: Option<String> = session.get(CSRF_KEY).await.map_err(session_error)?;
    Ok(Json(json!({
        "user": {"id": editor.user_id, "email": email},
        "csrf_token": csrf,
    })))
}

async fn logout(_: Editor, session: Session) -> Result<StatusCode, ApiError> {
    session.flush().await.map_err(session_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed-in editor, from `Authorization: Bearer <token>` (a login token or an admin API
/// token) or from the editor's session cookie, whose state-changing requests must carry the
/// session's `X-CSRF-Token` (see `session::authenticate`).
pub struct Editor {
    pub user_id: i64,
    /// The bearer token, when the request carried one.
    pub(crate) token: Option<String>,
}

impl FromRequestParts<AppState> for Editor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (user_id, token) = authenticate(parts, state).await?;
        Ok(Editor { user_id, token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accounts_need_an_email_and_eight_characters() {
        assert!(check_new_account("a@b.co", "12345678").is_empty());
        let p = check_new_account("nobody", "short");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0]["pointer"], "/email");
        assert_eq!(p[1]["pointer"], "/password");
        assert_eq!(check_new_account("a b@c.d", "12345678").len(), 1);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn only_the_editors_own_origin_or_no_browser_may_change_things() {
        let uri: Uri = "/_/api/v1/tables".parse().expect("uri");
        let ok =
            |pairs: &[(&'static str, &'static str)]| same_origin(&headers(pairs), &uri).is_ok();
        assert!(ok(&[]));
        assert!(ok(&[("host", "sluice.example:8080")]));
        assert!(ok(&[
            ("host", "sluice.example"),
            ("origin", "https://sluice.example")
        ]));
        assert!(ok(&[
            ("host", "Sluice.Example"),
            ("origin", "https://sluice.example")
        ]));
        assert!(ok(&[("sec-fetch-site", "same-origin")]));
        assert!(ok(&[("sec-fetch-site", "none")]));
        assert!(!ok(&[
            ("host", "sluice.example"),
            ("origin", "https://evil.example")
        ]));
        assert!(!ok(&[("host", "sluice.example"), ("origin", "null")]));
        assert!(!ok(&[
            ("host", "sluice.example:8080"),
            ("origin", "http://sluice.example")
        ]));
        assert!(!ok(&[("origin", "http://sluice.example")]));
        assert!(!ok(&[("sec-fetch-site", "same-site")]));
        assert!(!ok(&[("sec-fetch-site", "cross-site")]));
        // The fetch metadata header wins over a matching Origin.
        assert!(!ok(&[
            ("host", "sluice.example"),
            ("origin", "https://sluice.example"),
            ("sec-fetch-site", "cross-site"),
        ]));
        let err = same_origin(&headers(&[("origin", "null")]), &uri).expect_err("refused");
        assert_eq!(err.code, "auth.cross_origin");
    }

    #[test]
    fn setup_is_local_only_for_a_loopback_peer_that_is_not_a_proxy() {
        let peer = |s: &str| Some(s.parse::<std::net::SocketAddr>().expect("addr"));
        assert!(is_local(peer("127.0.0.1:5000"), &headers(&[])));
        assert!(is_local(peer("[::1]:5000"), &headers(&[])));
        assert!(is_local(peer("[::ffff:127.0.0.1]:5000"), &headers(&[])));
        assert!(!is_local(peer("192.0.2.7:5000"), &headers(&[])));
        assert!(!is_local(None, &headers(&[])));
        for h in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            assert!(!is_local(
                peer("127.0.0.1:5000"),
                &headers(&[(h, "203.0.113.1")])
            ));
        }
    }

    #[test]
    fn the_setup_token_is_accepted_until_spent() {
        let gate = SetupGate::new(Some("a".repeat(64)), false);
        assert!(!gate.accepts(""));
        assert!(!gate.accepts(&"a".repeat(63)));
        assert!(gate.accepts(&"a".repeat(64)));
        gate.consume();
        assert!(!gate.accepts(&"a".repeat(64)));
        assert!(!SetupGate::new(None, false).accepts(""));
        let t = SetupGate::random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, SetupGate::random_token());
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(!same_secret(b"", b"a"));
    }
}
