//! Liveness and readiness probes.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

/// The process is up.
pub async fn live() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// The process can serve: the database answers within two seconds.
pub async fn ready(State(state): State<AppState>) -> Response {
    let probe = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&state.db),
    )
    .await;
    match probe {
        Ok(Ok(_)) => axum::Json(json!({"status": "ready"})).into_response(),
        _ => super::error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "db.unavailable",
            "the database does not answer",
        )
        .into_response(),
    }
}
