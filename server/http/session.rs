//! The editor's sign-in: first-run setup, cookie sessions (tower-sessions, stored in Postgres
//! in `sluice.editor_sessions`) and CSRF protection, plus the one function that decides who is
//! calling the admin API (`authenticate`, used by the `Editor` extractor).
//!
//! A request is authenticated either by `Authorization: Bearer` (a login token or an admin API
//! token: CLI, scripts, tests) or by the session cookie (the browser). The cookie is HttpOnly,
//! SameSite=Strict, and Secure when `SLUICE_SECURE_COOKIES` is on. A request authenticated by
//! the cookie that can change anything (every method but GET, HEAD and OPTIONS) must carry the
//! session's CSRF token in `X-CSRF-Token`, else it is refused with 403 `auth.csrf`.

use super::AppState;
use super::admin::Editor;
use super::error::ApiError;
use super::extract::ApiJson;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// The session cookie's name.
pub const COOKIE: &str = "sluice_session";
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
    SessionManagerLayer::new(store)
        .with_name(COOKIE)
        .with_path("/_/")
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
        let user = if token.starts_with(super::api_tokens::PREFIX) {
            super::api_tokens::user_of(&state.db, token).await?
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

/// Creates the first account and signs it in. Allowed only while no account exists.
async fn setup(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
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
    let hash = crate::auth::hash_password(body.password).await?;
    let user = crate::catalog::editor::create_first_account(&state.db, &email, &hash)
        .await?
        .ok_or_else(done)?;
    tracing::info!(
        user.id = user,
        "created the first account from the setup page"
    );
    let out = sign_in(&state, &session, user).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
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

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
        assert!(!same_secret(b"", b"a"));
    }
}
