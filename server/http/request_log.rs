//! Admin API `GET /request-log`: the sampled log of generated-API requests, newest first,
//! filtered by flow and status, paged with a `before` cursor.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::session::Editor;
use crate::catalog::request_log::{self, Filter};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// Rows per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/request-log", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    flow: Option<String>,
    status: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

fn invalid(message: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "request_log.invalid_filter",
        message,
    )
}

async fn list(
    State(state): State<AppState>,
    _: Editor,
    ApiQuery(q): ApiQuery<Query>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let (status, class) = match q.status.as_deref().map(str::trim) {
        None | Some("") => (None, None),
        Some(s) => parse_status(s).ok_or_else(|| {
            invalid(format!(
                "status `{s}` is neither a status code (100 to 599) nor a class (1xx to 5xx)"
            ))
        })?,
    };
    let filter = Filter {
        flow: q.flow.filter(|f| !f.is_empty()),
        status,
        class,
        before: q.before,
        limit,
    };
    let entries = request_log::list(&state.db, &filter).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().and_then(|e| e.get("id")).cloned())
        .flatten();
    Ok(Json(
        json!({ "entries": entries, "next_before": next_before }),
    ))
}

/// `404` → an exact status; `4xx` → a class.
fn parse_status(s: &str) -> Option<(Option<u16>, Option<u16>)> {
    if let Some(d) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
        let class: u16 = d.parse().ok().filter(|c| (1..=5).contains(c))?;
        return Some((None, Some(class)));
    }
    let code: u16 = s.parse().ok().filter(|c| (100..=599).contains(c))?;
    Some((Some(code), None))
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_filters_are_codes_or_classes() {
        assert_eq!(parse_status("404"), Some((Some(404), None)));
        assert_eq!(parse_status("5xx"), Some((None, Some(5))));
        for bad in ["600", "0xx", "abc", "99", "6xx"] {
            assert_eq!(parse_status(bad), None, "{bad}");
        }
    }
}
