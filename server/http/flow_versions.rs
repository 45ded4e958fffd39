//! Admin routes around a flow's life after saving: checking a document without saving it,
//! the history of published versions, rollback, unpublish, and the flow templates built into
//! the binary. Store work is in `catalog::flow_versions`; compiling is `admin::check`'s.

use super::AppState;
use super::error::ApiError;
use super::extract::if_match;
use super::extract::{ApiJson, ApiPath};
use super::session::Editor;
use crate::catalog::{flow_versions, flows};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/flows/validate", post(validate))
        .route("/flows/{id}/versions", get(list_versions))
        .route("/flows/{id}/versions/{version}", get(get_version))
        .route("/flows/{id}/rollback", post(rollback))
        .route("/templates", get(templates))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    document: Value,
}

/// Compiles a document against the current tables and published functions and reports the
/// outcome, with the names visible at each node (`scope`, for the editor's completion); never
/// writes. A document that does not compile is still a 200: the diagnostics are the answer,
/// not an error of the request.
async fn validate(
    State(state): State<AppState>,
    _: Editor,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<Json<Value>, ApiError> {
    let catalog = state.serving.catalog().await?;
    let (compiled, mut scope) = crate::nodes::compile_with_scope(&req.document, Some(&catalog));
    // `env.NAME` completes the plain values; secrets are read with `secret("NAME")`.
    let env: Vec<String> = crate::catalog::env::list(&state.db)
        .await?
        .into_iter()
        .filter(|e| !e.secret)
        .map(|e| e.name)
        .collect();
    crate::flow::scope::with_env(&mut scope, &env);
    Ok(Json(match compiled {
        Ok(plan) => json!({
            "ok": true, "name": plan.name, "rev": plan.rev, "diagnostics": plan.warnings, "scope": scope,
        }),
        Err(problems) => json!({"ok": false, "diagnostics": problems, "scope": scope}),
    }))
}

async fn list_versions(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let versions = flow_versions::list(&state.db, id).await?;
    Ok(Json(json!({ "versions": versions })))
}

async fn get_version(
    State(state): State<AppState>,
    _: Editor,
    ApiPath((id, version)): ApiPath<(i64, i32)>,
) -> Result<Json<flow_versions::VersionRecord>, ApiError> {
    Ok(Json(
        flow_versions::get(&state.db, id, version)
            .await
            .map_err(|e| match e {
                crate::catalog::CatalogError::NotFound => ApiError::new(
                    StatusCode::NOT_FOUND,
                    "flow.version_not_found",
                    format!("flow {id} has no published version {version}"),
                ),
                other => other.into(),
            })?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    version: i32,
    #[serde(default)]
    publish: bool,
    /// The note of the version a rollback publishes; defaults to "Rolled back to vN".
    note: Option<String>,
}

/// Makes a published version's document the draft again (If-Match protected, like a save),
/// and publishes it when asked. The document is recompiled against today's tables first.
async fn rollback(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RollbackRequest>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "flow.rev_required",
            "send the draft's rev in an If-Match header, so unsaved work is not overwritten",
        )
    })?;
    flows::get(&state.db, id).await?;
    let old = flow_versions::get(&state.db, id, req.version)
        .await
        .map_err(|e| match e {
            crate::catalog::CatalogError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "flow.version_not_found",
                format!("flow {id} has no published version {}", req.version),
            ),
            other => other.into(),
        })?;
    let plan = check(&state, &old.document).await?;
    let saved = flows::update(
        &state.db,
        id,
        &expected,
        &plan.name,
        &old.document,
        &plan.rev,
    )
    .await?;
    tracing::info!(flow.id = id, version = req.version, "rolled back draft");
    if !req.publish {
        return Ok(saved_response(saved));
    }
    let record = saved.record;
    let note = match req.note {
        Some(n) => version_note(Some(n))?,
        None => Some(format!("Rolled back to v{}", req.version)),
    };
    publish_draft(
        &state,
        id,
        Some(record.rev.clone()),
        editor.user_id,
        note.as_deref(),
    )
    .await?;
    let record = flows::get(&state.db, id).await?;
    Ok(flow_response(StatusCode::OK, record))
}

/// Takes a flow off the air: its route (or function) disappears at once; the draft and the
/// version history stay. 204 whether or not it was published.
pub async fn unpublish(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.serving.unpublish(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A flow template file compiled into the binary: its path under `flows/examples/` and text.
/// Adding a template is one line in `TEMPLATES`.
macro_rules! template {
    ($path:literal) => {
        ($path, include_str!(concat!("../../flows/examples/", $path)))
    };
}

const TEMPLATES: &[(&str, &str)] = &[
    template!("todo/list_todos.flow.json"),
    template!("todo/get_todo.flow.json"),
    template!("todo/create_todo.flow.json"),
    template!("auth/signup.flow.json"),
    template!("auth/login.flow.json"),
    template!("auth/me.flow.json"),
    template!("auth/list_users.flow.json"),
];

/// The tables the templates use, by folder: "create from template" creates the missing ones.
const TABLE_TEMPLATES: &[(&str, &str)] = &[
    template!("todo/todos.table.json"),
    template!("auth/users.table.json"),
];

/// The built-in flow templates, grouped by their folder, for "create from template". Each
/// carries the table definitions of its folder, which the editor creates when they are missing.
async fn templates(_: Editor) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::with_capacity(TEMPLATES.len());
    for (path, text) in TEMPLATES {
        let document: Value = serde_json::from_str(text)
            .map_err(|e| ApiError::internal("internal.template", format!("{path}: {e}")))?;
        let group = path.split_once('/').map(|(g, _)| g).unwrap_or("");
        let mut tables = Vec::new();
        for (table_path, table_text) in TABLE_TEMPLATES {
            if table_path.split_once('/').map(|(g, _)| g) == Some(group) {
                let def: Value = serde_json::from_str(table_text).map_err(|e| {
                    ApiError::internal("internal.template", format!("{table_path}: {e}"))
                })?;
                tables.push(def);
            }
        }
        out.push(json!({
            "id": path.trim_end_matches(".flow.json"),
            "group": group,
            "name": document.get("name"),
            "description": document.get("description"),
            "method": document.pointer("/endpoint/method"),
            "path": document.pointer("/endpoint/path"),
            "document": document,
            "tables": tables,
        }));
    }
    Ok(Json(json!({ "templates": out })))
}

/// Compiles a document against the current tables and published functions; 422 with every
/// problem if it does not.
pub(crate) async fn check(state: &AppState, doc: &Value) -> Result<crate::engine::Plan, ApiError> {
    Ok(state.serving.compile(doc).await?)
}

/// A saved draft as `PUT /flows/{id}` answers it: the flow, plus `rewritten_callers` (the
/// flows whose drafts now call the new name) when the save renamed it.
pub(crate) fn saved_response(saved: flows::Saved) -> Response {
    let mut resp = flow_response(StatusCode::OK, saved.record.clone());
    if !saved.rewritten_callers.is_empty() {
        let mut body = serde_json::to_value(&saved.record).unwrap_or_default();
        body["rewritten_callers"] = json!(saved.rewritten_callers);
        let etag = resp.headers().get(header::ETAG).cloned();
        resp = (StatusCode::OK, Json(body)).into_response();
        if let Some(etag) = etag {
            resp.headers_mut().insert(header::ETAG, etag);
        }
    }
    resp
}

pub(crate) fn flow_response(status: StatusCode, record: flows::FlowRecord) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", record.rev)).ok();
    let mut resp = (status, Json(record)).into_response();
    if let Some(etag) = etag {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp
}

/// Longest note of a published version, in characters.
pub(crate) const MAX_NOTE_CHARS: usize = 500;

/// A version note as given (plain text): trimmed, `None` when empty; refused with 400
/// `flow.invalid_note` when longer than [`MAX_NOTE_CHARS`] or holding control characters other
/// than line breaks and tabs.
pub(crate) fn version_note(note: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(note) = note else { return Ok(None) };
    let note = note.trim();
    let invalid = |why: String| ApiError::new(StatusCode::BAD_REQUEST, "flow.invalid_note", why);
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(invalid(format!(
            "a version note has at most {MAX_NOTE_CHARS} characters"
        )));
    }
    if note
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid(
            "a version note is plain text: no control characters".into(),
        ));
    }
    Ok((!note.is_empty()).then(|| note.to_string()))
}

/// Publishes the draft of flow `id` (at rev `expected`, or whatever rev it has) as its next
/// version with an optional note, and serves it. Returns what `POST /flows/{id}/publish`
/// answers; a draft that is the live version already adds nothing and answers that version
/// with `"unchanged": true`.
pub(crate) async fn publish_draft(
    state: &AppState,
    id: i64,
    expected: Option<String>,
    user_id: i64,
    note: Option<&str>,
) -> Result<Value, ApiError> {
    let crate::serving::Publication {
        plan,
        version,
        unchanged,
        base_path,
        ..
    } = state.serving.publish(id, expected, user_id, note).await?;
    let mut out = json!({"id": id, "name": plan.name, "version": version, "rev": plan.rev,
                         "unchanged": unchanged});
    if let Some(ep) = &plan.endpoint {
        out["method"] = json!(ep.method.as_str());
        out["path"] = json!(ep.path);
        out["group"] = json!(ep.group_name());
        out["url"] = json!(format!("/api{base_path}{}", ep.path));
    } else {
        out["function"] = json!(plan.name);
    }
    Ok(out)
}
