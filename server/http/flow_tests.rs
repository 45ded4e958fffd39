//! Admin API for the test cases stored with a flow (docs/TESTING.md): read them, replace them,
//! add one (the run panel's "Save as test case"), delete them. They are exported as
//! `<flow>.tests.json` with the project and run by `sluice test`.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::session::Editor;
use crate::catalog::{flow_tests as store, flows};
use crate::project::flow_tests::{self, Case, TestsFile};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/flows/{id}/tests", get(read).put(replace).delete(remove))
        .route("/flows/{id}/tests/cases", post(add_case))
}

/// The flow's tests, its current name as `flow`; no cases when it has none.
async fn current(state: &AppState, id: i64) -> Result<TestsFile, ApiError> {
    let record = flows::get(&state.db, id).await?;
    let stored = store::get(&state.db, id).await?;
    let mut file = stored
        .and_then(|doc| serde_json::from_value::<TestsFile>(doc).ok())
        .unwrap_or_else(|| TestsFile {
            format: flow_tests::FORMAT.to_string(),
            format_version: 1,
            flow: String::new(),
            cases: Vec::new(),
        });
    file.flow = record.name;
    Ok(file)
}

/// 422 `tests.invalid` with every problem of a tests document.
fn invalid(problems: Vec<crate::base::Problem>) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "tests.invalid",
        format!("the tests have {} problem(s)", problems.len()),
    )
    .with_details(
        problems
            .into_iter()
            .map(|p| serde_json::json!({"pointer": p.pointer, "message": p.message}))
            .collect(),
    )
}

/// Checks a tests document as a file would be checked.
fn checked(file: &TestsFile) -> Result<(), ApiError> {
    flow_tests::parse(&flow_tests::canonical(file))
        .map(|_| ())
        .map_err(invalid)
}

async fn store_file(state: &AppState, id: i64, file: &TestsFile) -> Result<(), ApiError> {
    let mut conn = state.db.acquire().await?;
    store::put(
        &mut conn,
        id,
        &serde_json::to_value(file).unwrap_or_default(),
    )
    .await?;
    Ok(())
}

async fn read(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TestsFile>, ApiError> {
    Ok(Json(current(&state, id).await?))
}

async fn replace(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<TestsFile>, ApiError> {
    let name = flows::get(&state.db, id).await?.name;
    let mut file = flow_tests::parse(&body.to_string()).map_err(invalid)?;
    file.flow = name;
    store_file(&state, id, &file).await?;
    Ok(Json(file))
}

/// Adds a case; a case of the same name is replaced.
async fn add_case(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(case): ApiJson<Case>,
) -> Result<(StatusCode, Json<TestsFile>), ApiError> {
    let mut file = current(&state, id).await?;
    let status = match file.cases.iter_mut().find(|c| c.name == case.name) {
        Some(existing) => {
            *existing = case;
            StatusCode::OK
        }
        None => {
            file.cases.push(case);
            StatusCode::CREATED
        }
    };
    checked(&file)?;
    store_file(&state, id, &file).await?;
    Ok((status, Json(file)))
}

async fn remove(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    flows::get(&state.db, id).await?;
    let mut conn = state.db.acquire().await?;
    store::delete(&mut conn, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
