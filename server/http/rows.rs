//! Admin data API for the rows of managed tables, used by the editor's table view: list with
//! filters, sort, paging and counts; read, insert, patch and delete one row; delete many.
//! The handlers only decode requests and pick statuses; `tables::rows` does the work.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::session::Editor;
use crate::tables::rows::{self, ListRequest, RowError, WriteKind};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tables/{name}/rows", get(list).post(insert))
        .route("/tables/{name}/rows/query", post(query))
        .route("/tables/{name}/rows/delete", post(delete_many))
        .route(
            "/tables/{name}/rows/{id}",
            get(read).patch(update).delete(delete_one),
        )
}

/// The query string of `GET .../rows`; `filter` is JSON text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    filter: Option<String>,
    sort: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    cursor: Option<String>,
    #[serde(default)]
    count: bool,
}

fn list_request(raw: Option<&str>) -> Result<ListRequest, ApiError> {
    let q: ListQuery = serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            format!("the query string cannot be read: {e}"),
        )
    })?;
    let filter = match q.filter.as_deref() {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).map_err(|e| {
            ApiError::from(RowError::Filter(vec![rows::Problem::new(
                "/filter",
                format!("the filter is not valid JSON: {e}"),
            )]))
        })?,
    };
    Ok(ListRequest {
        filter,
        sort: q.sort,
        limit: q.limit,
        offset: q.offset,
        cursor: q.cursor,
        count: q.count,
    })
}

async fn list(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let req = list_request(raw.as_deref())?;
    run_list(&state, &name, &req).await
}

/// The same as `GET .../rows`, with the request in the body, for filters too long for a URL.
async fn query(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<ListRequest>,
) -> Result<Response, ApiError> {
    run_list(&state, &name, &req).await
}

async fn run_list(state: &AppState, name: &str, req: &ListRequest) -> Result<Response, ApiError> {
    let tables = rows::tables(&state.db).await?;
    let def = rows::table(&tables, name)?;
    // Planned before a connection is taken, so a bad request costs no database work.
    let plan = rows::plan_list(def, &tables, req)?;
    let page = if plan.count.is_some() {
        let mut tx = rows::snapshot(&state.db).await?;
        let page = rows::list(&mut tx, def, &tables, &plan, state.runtime.max_result_bytes).await?;
        tx.commit().await?;
        page
    } else {
        let mut conn = state.db.acquire().await?;
        rows::list(
            &mut conn,
            def,
            &tables,
            &plan,
            state.runtime.max_result_bytes,
        )
        .await?
    };
    Ok(Json(page).into_response())
}

async fn read(
    State(state): State<AppState>,
    _: Editor,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let tables = rows::tables(&state.db).await?;
    let def = rows::table(&tables, &name)?;
    let id = rows::parse_id(def, &id)?;
    let mut conn = state.db.acquire().await?;
    let row = rows::get(&mut conn, def, &id).await?;
    Ok(Json(row).into_response())
}

async fn insert(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let tables = rows::tables(&state.db).await?;
    let def = rows::table(&tables, &name)?;
    let values = rows::prepare(def, &tables, &body, WriteKind::Insert).await?;
    let mut conn = state.db.acquire().await?;
    let row = rows::insert(&mut conn, def, &tables, &values).await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

async fn update(
    State(state): State<AppState>,
    _: Editor,
    ApiPath((name, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let tables = rows::tables(&state.db).await?;
    let def = rows::table(&tables, &name)?;
    let id = rows::parse_id(def, &id)?;
    let values = rows::prepare(def, &tables, &body, WriteKind::Patch).await?;
    let mut conn = state.db.acquire().await?;
    let row = rows::update(&mut conn, def, &tables, &id, &values).await?;
    Ok(Json(row).into_response())
}

async fn delete_one(
    State(state): State<AppState>,
    _: Editor,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let tables = rows::tables(&state.db).await?;
    let def = rows::table(&tables, &name)?;
    let id = rows::parse_id(def, &id)?;
    let mut conn = state.db.acquire().await?;
    rows::delete(&mut conn, def, &tables, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteMany {
    ids: Vec<Value>,
}

async fn delete_many(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DeleteMany>,
) -> Result<Json<Value>, ApiError> {
    let tables = rows::tables(&state.db).await?;
    let def = rows::table(&tables, &name)?;
    let ids = rows::parse_ids(def, &body.ids)?;
    let mut conn = state.db.acquire().await?;
    let deleted = rows::delete_many(&mut conn, def, &tables, &ids).await?;
    Ok(Json(json!({ "deleted": deleted })))
}

impl From<RowError> for ApiError {
    fn from(e: RowError) -> ApiError {
        let e = match e {
            RowError::Table(t) => return t.into(),
            other => other,
        };
        let msg = e.to_string();
        // A key violation names its rule, as a flow's 409 does.
        let rule = match &e {
            RowError::Violation(v) if v.kind.is_conflict() => Some(v.kind.rule()),
            _ => None,
        };
        let details: Vec<Value> = e
            .problems()
            .iter()
            .map(|p| match rule {
                Some(rule) => json!({"pointer": p.pointer, "message": p.message, "rule": rule}),
                None => json!({"pointer": p.pointer, "message": p.message}),
            })
            .collect();
        let (status, code) = match &e {
            RowError::Invalid(_) => (StatusCode::BAD_REQUEST, "row.invalid"),
            RowError::UnknownField(_) => (StatusCode::BAD_REQUEST, "row.unknown_field"),
            RowError::Filter(_) => (StatusCode::BAD_REQUEST, "row.invalid_filter"),
            RowError::Query(_) => (StatusCode::BAD_REQUEST, "row.invalid_query"),
            RowError::Cursor(_) => (StatusCode::BAD_REQUEST, "row.invalid_cursor"),
            RowError::InvalidId(_) => (StatusCode::BAD_REQUEST, "row.invalid_id"),
            RowError::TooManyIds(_) => (StatusCode::BAD_REQUEST, "row.too_many_ids"),
            RowError::NotFound(_) => (StatusCode::NOT_FOUND, "row.not_found"),
            // The same status and code a flow answers the violation with.
            RowError::Violation(v) => (
                StatusCode::from_u16(v.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
                v.kind.code(),
            ),
            RowError::TooLarge(_) => (StatusCode::BAD_REQUEST, "row.result_too_large"),
            RowError::Hash(_) => return ApiError::internal("auth.error", msg),
            RowError::Busy => return ApiError::busy(),
            // `Table` was converted above.
            RowError::Db(_) | RowError::Table(_) => return ApiError::internal("db.error", msg),
        };
        ApiError::new(status, code, msg).with_details(details)
    }
}
