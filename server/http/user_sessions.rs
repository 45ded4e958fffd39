//! `/_/api/v1/user-sessions`: end users' sessions (docs/SESSIONS.md). Lists a subject's
//! sessions without secrets (no refresh token or hash ever leaves the catalog) and ends
//! sessions, one or all of a subject's, as an admin action: their refresh tokens stop working
//! at once and their access tokens are refused by every instance within about a second.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::session::Editor;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/user-sessions", get(list))
        .route("/user-sessions/revoke", post(revoke))
}

/// Most sessions one listing returns.
const MAX_LIST: i64 = 1000;
/// Longest subject accepted (the debug run's `as_user.id` limit).
const MAX_SUBJECT: usize = 200;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    subject: String,
    limit: Option<i64>,
}

fn check_subject(subject: &str) -> Result<(), ApiError> {
    if subject.is_empty() || subject.len() > MAX_SUBJECT || subject.contains('\0') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_body",
            format!("`subject` must be 1 to {MAX_SUBJECT} characters"),
        ));
    }
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    _: Editor,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    check_subject(&q.subject)?;
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_LIST);
    let sessions = crate::catalog::user_sessions::list(&state.db, &q.subject, limit).await?;
    Ok(Json(json!({"subject": q.subject, "sessions": sessions})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    subject: Option<String>,
    session_id: Option<String>,
}

async fn revoke(
    State(state): State<AppState>,
    _: Editor,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<Value>, ApiError> {
    let now = crate::auth::bearer::now();
    let revoked = &state.runtime.sessions;
    let ended = match (&body.subject, &body.session_id) {
        (Some(subject), None) => {
            check_subject(subject)?;
            crate::auth::sessions::end_subject(&state.db, revoked, subject, "admin", now).await?
        }
        (None, Some(id)) => {
            check_subject(id)?;
            crate::auth::sessions::end(&state.db, revoked, id, "admin", now).await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.invalid_body",
                "give either `subject` (every session of that user) or `session_id`",
            ));
        }
    };
    tracing::info!(ended, "an editor ended end-user sessions");
    Ok(Json(json!({"ended": ended})))
}
