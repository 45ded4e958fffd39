//! Admin API `POST /sample-project`: fills an empty instance with the sample project
//! ([`crate::project::sample`]) in one transaction; 409 `project.not_empty` otherwise.

use super::AppState;
use super::error::ApiError;
use super::session::Editor;
use crate::project::sample::{self, SampleError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

pub fn router() -> Router<AppState> {
    Router::new().route("/sample-project", post(create))
}

async fn create(
    State(state): State<AppState>,
    editor: Editor,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let build = async {
        let mut tx = state.db.begin().await.map_err(SampleError::Db)?;
        let created = sample::create(&mut tx, editor.user_id).await?;
        tx.commit().await.map_err(SampleError::Db)?;
        Ok::<_, SampleError>(created)
    };
    let created = state.serving.change(build).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::to_value(created).unwrap_or_default()),
    ))
}

impl From<SampleError> for ApiError {
    fn from(e: SampleError) -> ApiError {
        match e {
            SampleError::NotEmpty => {
                ApiError::new(StatusCode::CONFLICT, "project.not_empty", e.to_string())
            }
            SampleError::Table(t) => t.into(),
            SampleError::Catalog(c) => c.into(),
            SampleError::Broken(detail) => ApiError::internal("project.sample_broken", detail),
            SampleError::Db(db) => db.into(),
        }
    }
}
