//! Admin API for API groups (`/_/api/v1/groups`): list, create, read, replace, delete. Every
//! change reloads the route table here; other instances follow through the catalog's change
//! notification.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::session::Editor;
use crate::catalog::groups::{self, GroupDef, GroupError, GroupRecord};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{name}", get(read).put(replace).delete(remove))
}

impl From<GroupError> for ApiError {
    fn from(e: GroupError) -> ApiError {
        let msg = e.to_string();
        let conflict = |code: &str| ApiError::new(StatusCode::CONFLICT, code, msg.clone());
        match e {
            GroupError::Invalid(problems) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "group.invalid",
                msg.clone(),
            )
            .with_details(
                problems
                    .iter()
                    .map(|p| json!({"pointer": p.pointer, "message": p.message}))
                    .collect(),
            ),
            GroupError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "group.not_found", msg),
            GroupError::NameTaken(_) => conflict("group.name_taken"),
            GroupError::BasePathTaken(_) => conflict("group.base_path_taken"),
            GroupError::Stale { .. } => conflict("group.stale_version"),
            GroupError::InUse(names) => conflict("group.in_use")
                .with_details(names.into_iter().map(|n| json!({"flow": n})).collect()),
            GroupError::IsDefault => conflict("group.default_protected"),
            GroupError::RouteTaken(_) => conflict("group.route_taken"),
            GroupError::Db(db) => ApiError::internal("db.error", db),
        }
    }
}

fn versioned(status: StatusCode, record: GroupRecord) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", record.version)).ok();
    let mut resp = (status, Json(record)).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp
}

/// The version a change expects, from `If-Match` (`"3"` or `3`).
fn expected_version(headers: &HeaderMap) -> Result<Option<i32>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.invalid_header",
                "If-Match must be the group's version number",
            )
        })
}

fn decode(body: Value) -> Result<GroupDef, ApiError> {
    serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_body",
            format!("the body does not have the expected shape: {e}"),
        )
    })
}

async fn list(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "groups": groups::all(&state.db).await? })))
}

async fn create(
    State(state): State<AppState>,
    _: Editor,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let def = decode(body)?;
    let record = state
        .serving
        .change(groups::insert(&state.db, &def))
        .await?;
    tracing::info!(group = %def.name, base_path = %def.base_path, "API group created");
    Ok(versioned(StatusCode::CREATED, record))
}

async fn read(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    Ok(versioned(
        StatusCode::OK,
        groups::get(&state.db, &name).await?,
    ))
}

/// Replaces the whole definition if `If-Match` is still its version; the body may omit `name`,
/// which cannot change.
async fn replace(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let expected = expected_version(&headers)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "group.version_required",
            "send the version you edited in an If-Match header, so a concurrent change is not overwritten",
        )
    })?;
    if let Some(obj) = body.as_object_mut() {
        match obj.get("name") {
            None => {
                obj.insert("name".into(), Value::String(name.clone()));
            }
            Some(n) if n.as_str() == Some(name.as_str()) => {}
            Some(_) => {
                return Err(GroupError::Invalid(vec![groups::Problem {
                    pointer: "/name".into(),
                    message: "a group keeps its name; create a new group instead".into(),
                }])
                .into());
            }
        }
    }
    let def = decode(body)?;
    let record = state
        .serving
        .change(groups::update(&state.db, &def, Some(expected)))
        .await?;
    tracing::info!(group = %name, version = record.version, "API group changed");
    Ok(versioned(StatusCode::OK, record))
}

async fn remove(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = expected_version(&headers)?;
    state
        .serving
        .change(groups::delete(&state.db, &name, expected))
        .await?;
    tracing::info!(group = %name, "API group deleted");
    Ok(StatusCode::NO_CONTENT)
}
