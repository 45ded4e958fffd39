//! Admin API tokens: long-lived bearer tokens for the CLI, CI and scripts, created in the
//! editor's settings. The token is shown once, when created; only its SHA-256 hash is kept.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::session::Editor;
use crate::auth::admin_tokens::{PREFIX, hash};
use crate::catalog::editor as store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api-tokens", get(list).post(create))
        .route("/api-tokens/{id}", delete(revoke))
}

async fn list(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "tokens": store::list_api_tokens(&state.db).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    editor: Editor,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "api_token.invalid_name",
            "name the token with 1 to 100 characters, e.g. \"CI deploy\"",
        )
        .with_details(vec![
            json!({"pointer": "/name", "message": "1 to 100 characters"}),
        ]));
    }
    let mut raw = [0u8; 32];
    {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        OsRng.fill_bytes(&mut raw);
    }
    let token = format!(
        "{PREFIX}{}",
        raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let prefix = &token[..PREFIX.len() + 6];
    let record =
        store::create_api_token(&state.db, editor.user_id, name, prefix, &hash(&token)).await?;
    tracing::info!(api_token.id = record.id, "created an admin API token");
    let mut out = serde_json::to_value(&record).unwrap_or_default();
    out["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    if !store::delete_api_token(&state.db, id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "api_token.not_found",
            format!("there is no admin API token {id}"),
        ));
    }
    tracing::info!(api_token.id = id, "revoked an admin API token");
    Ok(StatusCode::NO_CONTENT)
}
