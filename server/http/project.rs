//! Admin API for the whole project as files (docs/PROJECT.md): `GET /project` (the files of
//! the current state, what `sluice export` writes and the editor downloads),
//! `POST /project/plan` (what applying files would do, nothing changed) and
//! `POST /project/apply` (all of it in one transaction, or nothing).

use super::AppState;
use super::error::ApiError;
use super::extract::decode;
use super::session::Editor;
use crate::project::apply::{self, Options, Report};
use crate::project::files::{Bundle, FORMAT};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A project's files may be larger than one admin request.
pub const PROJECT_BODY_LIMIT: usize = 32 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/project", get(export))
        .route("/project/plan", post(plan))
        .route("/project/apply", post(apply))
}

async fn export(State(state): State<AppState>, _: Editor) -> Result<Json<Bundle>, ApiError> {
    let files = crate::project::export::files(&state.db).await?;
    Ok(Json(Bundle::new(files)))
}

/// The files (as `GET /project` gives them, or read from a directory) and the options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectRequest {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    version: Option<u32>,
    files: BTreeMap<String, String>,
    #[serde(default)]
    allow_drop: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    publish: bool,
}

impl ProjectRequest {
    fn options(&self) -> Result<Options, ApiError> {
        if self.format.as_deref().is_some_and(|f| f != FORMAT)
            || self.version.is_some_and(|v| v != 1)
        {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "project.unsupported",
                format!("this Sluice reads format `{FORMAT}` version 1"),
            ));
        }
        Ok(Options {
            allow_drop: self.allow_drop,
            prune: self.prune,
            publish: self.publish,
        })
    }
}

async fn plan(
    State(state): State<AppState>,
    editor: Editor,
    req: Request,
) -> Result<Json<Report>, ApiError> {
    let body: ProjectRequest = decode(req, PROJECT_BODY_LIMIT).await?;
    let report = apply::run(
        &state.db,
        &body.files,
        body.options()?,
        editor.user_id,
        false,
    )
    .await?;
    Ok(Json(report))
}

async fn apply(
    State(state): State<AppState>,
    editor: Editor,
    req: Request,
) -> Result<Json<Report>, ApiError> {
    let body: ProjectRequest = decode(req, PROJECT_BODY_LIMIT).await?;
    let opts = body.options()?;
    let report = state
        .serving
        .change(apply::run(
            &state.db,
            &body.files,
            opts,
            editor.user_id,
            true,
        ))
        .await?;
    if !report.problems.is_empty() {
        let n = report.problems.len();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "project.invalid",
            format!("nothing was applied: {n} problem(s) with the files"),
        )
        .with_details(
            report
                .problems
                .iter()
                .map(|p| serde_json::to_value(p).unwrap_or_default())
                .collect(),
        ));
    }
    Ok(Json(report))
}
