//! Admin API for CSV: import into a table, import into a new table, export. The body is
//! streamed in and out (see `tables::csv`); nothing here buffers a file.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;
use super::session::Editor;
use crate::tables::csv::{self, CsvError, Formulas, Mode, Report};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        // `POST /tables/import` is import into a new table. It is a POST on `/tables/{name}`
        // (merged with that route's GET, PUT and DELETE) rather than a route of its own, so a
        // table that happens to be called `import` can still be read, changed and dropped.
        .route("/tables/{name}", post(import_new))
        .route("/tables/{name}/import", post(import))
        .route("/tables/{name}/export", get(export))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    #[serde(default)]
    mode: Mode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    #[serde(default)]
    formulas: Formulas,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportNewQuery {
    name: Option<String>,
    #[serde(default)]
    mode: Mode,
}

/// Parses the query string into our error envelope (axum's `Query` answers in plain text).
fn query<T: DeserializeOwned>(raw: Option<String>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            format!(
                "the query string is invalid: {e} (mode is `all` or `valid`, formulas is `escape` or `keep`)"
            ),
        )
    })
}

/// Runs an import on a task of its own, so that it always ends properly (COPY finished,
/// transaction rolled back or committed) even if the client goes away and axum drops the
/// handler. Errors come back as responses.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, CsvError>> + Send + 'static,
) -> Result<T, Response> {
    match tokio::spawn(work).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(CsvError::InvalidRows(report))) => Err(invalid_rows(report)),
        Ok(Err(e)) => Err(ApiError::from(e).into_response()),
        Err(e) => Err(ApiError::internal("csv.internal", e).into_response()),
    }
}

async fn import(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let q: ImportQuery = query(raw)?;
    let db = state.db.clone();
    let stream = body.into_data_stream();
    let done = detached(async move { csv::import(&db, &name, stream, q.mode).await }).await;
    Ok(match done {
        Ok(report) => Json(report).into_response(),
        Err(resp) => resp,
    })
}

async fn import_new(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(path_name): ApiPath<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    if path_name != "import" {
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "route.method_not_allowed",
            "a table is created with POST /tables or POST /tables/import?name=...; change one with PUT",
        );
        e.details = vec![json!({"allow": ["GET", "PUT", "DELETE"]})];
        return Err(e);
    }
    let q: ImportNewQuery = query(raw)?;
    let Some(name) = q.name else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            "name the new table: POST /tables/import?name=<table>",
        ));
    };
    let db = state.db.clone();
    let stream = body.into_data_stream();
    let user_id = editor.user_id;
    let done =
        detached(async move { csv::import_new(&db, &name, stream, q.mode, user_id).await }).await;
    Ok(match done {
        Ok((table, report)) => {
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            body["table"] = serde_json::to_value(&table).unwrap_or_default();
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(resp) => resp,
    })
}

async fn export(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q: ExportQuery = query(raw)?;
    let stream = csv::export(&state.db, &name, q.formulas).await?;
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    // `name` named an existing table, so it is an identifier: nothing to escape.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// 422 `csv.invalid_rows`: the envelope with the row errors as `details`, plus the counts
/// (`imported` is 0: nothing was written).
fn invalid_rows(report: Report) -> Response {
    let message = CsvError::InvalidRows(Report {
        errors: Vec::new(),
        ..report.clone()
    })
    .to_string();
    let body = json!({"error": {
        "code": "csv.invalid_rows",
        "message": message,
        "details": report.errors,
        "imported": report.imported,
        "rejected": report.rejected,
    }});
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

impl From<CsvError> for ApiError {
    fn from(e: CsvError) -> ApiError {
        let msg = e.to_string();
        let bad = |code: &str| ApiError::new(StatusCode::BAD_REQUEST, code, msg.clone());
        match e {
            CsvError::Empty => bad("csv.empty"),
            CsvError::InvalidHeader(_) => bad("csv.invalid_header"),
            CsvError::UnknownColumns { unknown, known } => bad("csv.unknown_columns")
                .with_details(vec![json!({"unknown": unknown, "columns": known})]),
            CsvError::MissingColumns(missing) => {
                bad("csv.missing_columns").with_details(vec![json!({"missing": missing})])
            }
            CsvError::Body(_) => bad("csv.unreadable_body"),
            CsvError::TableName(_) => bad("request.invalid_query"),
            CsvError::LineTooLarge { line } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "csv.line_too_large", msg)
                    .with_details(vec![json!({"row": line})])
            }
            CsvError::InvalidRows(report) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "csv.invalid_rows", msg)
                    .with_details(
                        report
                            .errors
                            .iter()
                            .map(|r| serde_json::to_value(r).unwrap_or_default())
                            .collect(),
                    )
            }
            CsvError::Constraint {
                kind,
                field,
                row,
                detail,
            } => ApiError::new(StatusCode::CONFLICT, "csv.constraint", msg).with_details(vec![
                json!({"constraint": kind, "field": field, "row": row, "detail": detail}),
            ]),
            CsvError::InvalidValue { row, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "csv.invalid_value", msg)
                    .with_details(vec![json!({"row": row, "message": message})])
            }
            CsvError::Table(t) => t.into(),
            CsvError::Hash(detail) => ApiError::internal("auth.error", detail),
            CsvError::Busy => ApiError::busy(),
            CsvError::Db(db) => ApiError::internal("db.error", db),
        }
    }
}
