//! Admin API for the job queue (`/_/api/v1/jobs`, docs/API.md "Jobs"): list jobs newest first
//! with counts per state, read one with its attempts, retry and cancel. Discarded jobs are the
//! dead-letter list (`?state=discarded`). The SQL lives in `crate::queue::admin`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::session::Editor;
use crate::queue::admin::{self, JobError, ListQuery, STATES};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list))
        .route("/jobs/{id}", get(read))
        .route("/jobs/{id}/retry", post(retry))
        .route("/jobs/{id}/cancel", post(cancel))
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> ApiError {
        let msg = e.to_string();
        match e {
            JobError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "job.not_found", msg),
            JobError::NotRetryable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "job.not_retryable", msg)
            }
            JobError::NotCancellable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "job.not_cancellable", msg)
            }
            JobError::Duplicate => ApiError::new(StatusCode::CONFLICT, "job.duplicate", msg),
            JobError::Db(db) => ApiError::internal("db.error", db),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    state: Option<String>,
    flow: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "job.invalid_query", message)
}

async fn list(
    State(state): State<AppState>,
    _: Editor,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Value>, ApiError> {
    let job_state = match q.state.filter(|s| !s.is_empty()) {
        Some(s) if STATES.contains(&s.as_str()) => Some(s),
        Some(s) => {
            return Err(invalid(format!(
                "unknown state `{s}`; one of {}",
                STATES.join(", ")
            )));
        }
        None => None,
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("cursor must be the next_cursor of a previous page"))?,
        ),
    };
    let page = admin::list(
        &state.db,
        &ListQuery {
            state: job_state,
            flow: q.flow.filter(|f| !f.is_empty()),
            limit,
            before,
        },
    )
    .await?;
    Ok(Json(json!({
        "jobs": page.jobs,
        "next_cursor": page.next.map(|id| id.to_string()),
        "counts": page.counts,
    })))
}

fn job_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "job.not_found",
            format!("there is no job `{raw}`"),
        )
    })
}

async fn read(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin::get(&state.db, job_id(&id)?).await?))
}

async fn retry(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(&id)?;
    let job = admin::retry(&state.db, id).await?;
    tracing::info!(job.id = id, "job retried through the admin API");
    Ok(Json(job))
}

async fn cancel(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let id = job_id(&id)?;
    let job = admin::cancel(&state.db, id).await?;
    tracing::info!(job.id = id, "job cancelled through the admin API");
    Ok(Json(job))
}
