//! Admin API of schedule triggers (docs/API.md, "Schedules"): the scheduled flows with their
//! next and last fire times, the recent skipped occurrences of one, and the preview of a cron
//! expression in a time zone that the editor's schedule form shows as it is typed.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::session::Editor;
use crate::events::{schedule, scheduler};
use crate::flow::trigger::{parse_cron, parse_timezone};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Fire times a preview gives unless `count` says otherwise, and the most it may say.
const PREVIEW_DEFAULT: usize = 5;
const PREVIEW_MAX: usize = 20;
/// Skip records listed unless `limit` says otherwise, and the most it may say.
const SKIPS_DEFAULT: i64 = 50;
const SKIPS_MAX: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/schedules", get(list))
        .route("/schedules/preview", post(preview))
        .route("/schedules/{flow}/skips", get(skips))
}

async fn list(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "schedules": scheduler::list(&state.db).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipsQuery {
    limit: Option<i64>,
}

async fn skips(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(flow): ApiPath<String>,
    ApiQuery(q): ApiQuery<SkipsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(SKIPS_DEFAULT);
    if !(1..=SKIPS_MAX).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "schedule.invalid",
            format!("limit must be 1 to {SKIPS_MAX}"),
        ));
    }
    let skips = scheduler::skips(&state.db, &flow, limit).await?;
    if skips.is_empty() && !scheduler::exists(&state.db, &flow).await? {
        return Err(ApiError::not_found(&format!("schedule of flow `{flow}`")));
    }
    Ok(Json(json!({ "flow": flow, "skips": skips })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    cron: String,
    timezone: String,
    count: Option<usize>,
    /// The times after this instant (RFC 3339); now by default.
    after: Option<String>,
}

async fn preview(
    _: Editor,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> Result<Json<Value>, ApiError> {
    let count = body.count.unwrap_or(PREVIEW_DEFAULT);
    let mut details = Vec::new();
    if !(1..=PREVIEW_MAX).contains(&count) {
        details.push(json!({"pointer": "/count",
            "message": format!("count must be 1 to {PREVIEW_MAX}")}));
    }
    let cron = parse_cron(&body.cron)
        .map_err(|m| details.push(json!({"pointer": "/cron", "message": m})))
        .ok();
    let tz = parse_timezone(&body.timezone)
        .map_err(|m| details.push(json!({"pointer": "/timezone", "message": m})))
        .ok();
    let after = match &body.after {
        None => Some(chrono::Utc::now()),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| {
                details.push(json!({"pointer": "/after",
                    "message": format!("`{text}` is not an RFC 3339 time")}))
            })
            .ok(),
    };
    let (Some(cron), Some(tz), Some(after), true) = (cron, tz, after, details.is_empty()) else {
        let message = details
            .iter()
            .filter_map(|d| d["message"].as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "schedule.invalid", message)
                .with_details(details),
        );
    };
    // An expression that rarely or never matches (`0 0 30 2 *`) makes croner search for years
    // of calendar: off the async workers.
    let times: Vec<String> = tokio::task::spawn_blocking(move || {
        schedule::upcoming(&cron, tz, after, count)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect()
    })
    .await
    .map_err(|e| ApiError::internal("schedule.preview_failed", e))?;
    Ok(Json(
        json!({ "cron": body.cron, "timezone": tz.name(), "times": times }),
    ))
}
