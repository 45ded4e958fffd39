//! Admin API for environment values and secrets. Secret values go in and never come out.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::session::Editor;
use crate::catalog::env;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/env", get(list))
        .route("/env/{name}", axum::routing::put(put).delete(delete))
}

async fn list(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "env": env::list(&state.db).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutEnv {
    value: String,
    #[serde(default)]
    secret: bool,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "env.invalid_name",
            "names are A-Z, 0-9 and _, starting with a letter, at most 63 characters",
        ))
    }
}

async fn put(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PutEnv>,
) -> Result<StatusCode, ApiError> {
    check_name(&name)?;
    if body.value.len() > 64 * 1024 || body.value.contains('\0') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "env.invalid_value",
            "values are text of at most 64 KiB without NUL",
        ));
    }
    state
        .serving
        .change(env::put(&state.db, &name, &body.value, body.secret))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if !state.serving.change(env::delete(&state.db, &name)).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "env.not_found",
            format!("there is no entry `{name}`"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
