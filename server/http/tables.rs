//! Admin API for managed tables: list, create (optionally with generated CRUD flows), read,
//! preview and apply changes, drop, history.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::session::Editor;
use crate::catalog::flows;
use crate::flow::generate;
use crate::flow::plan::AuthLevel;
use crate::project::table_changes::{self as changes, ChangeRequest};
use crate::tables::store;
use crate::tables::{IdType, TableDef};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tables", get(list).post(create))
        .route("/tables/{name}", get(read).put(update).delete(drop_table))
        .route("/tables/{name}/plan", post(preview))
        .route("/tables/{name}/history", get(history))
        .route("/tables/{name}/crud", post(generate_crud))
}

async fn list(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "tables": store::all_stored(&state.db).await? }),
    ))
}

fn versioned(status: StatusCode, body: Value, version: i32) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

async fn read(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, ApiError> {
    let t = store::get(&state.db, &name).await?;
    let version = t.version;
    Ok(versioned(
        StatusCode::OK,
        serde_json::to_value(t).unwrap_or_default(),
        version,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateQuery {
    /// `draft` or `publish`: also generate the five CRUD flows.
    crud: Option<String>,
    /// Base path of the generated endpoints; defaults to `/<table name>`.
    crud_path: Option<String>,
    /// Auth level of the generated endpoints (`public`, `user`, `admin`); defaults to
    /// [`crate::flow::generate::default_auth`].
    crud_auth: Option<String>,
}

/// Parses an auth level given in a query string or body.
fn auth_level(v: Option<&str>, field: &str) -> Result<Option<AuthLevel>, ApiError> {
    match v {
        None => Ok(None),
        Some("public") => Ok(Some(AuthLevel::Public)),
        Some("user") => Ok(Some(AuthLevel::User)),
        Some("admin") => Ok(Some(AuthLevel::Admin)),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            format!("{field} must be public, user or admin, not `{other}`"),
        )),
    }
}

async fn create(
    State(state): State<AppState>,
    editor: Editor,
    ApiQuery(q): ApiQuery<CreateQuery>,
    ApiJson(def): ApiJson<TableDef>,
) -> Result<Response, ApiError> {
    let publish = match q.crud.as_deref() {
        None => None,
        Some("draft") => Some(false),
        Some("publish") => Some(true),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.invalid_query",
                format!("crud must be draft or publish, not `{other}`"),
            ));
        }
    };
    let auth = auth_level(q.crud_auth.as_deref(), "crud_auth")?;
    if publish.is_none() && auth.is_some() {
        // Refuse rather than silently ignore: the caller believed endpoints would be made.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            "crud_auth needs crud=draft or crud=publish",
        ));
    }
    if publish.is_some() {
        // Checked before the table is made, so a refusal leaves nothing behind.
        let level = auth.unwrap_or_else(|| generate::default_auth(&def));
        generate::writable_fields(&def, level).map_err(crud_error)?;
    }
    let (table, plan) = crate::tables::store::create(&state.db, def, editor.user_id).await?;
    let mut body = json!({"table": table, "plan": plan});
    if let Some(publish) = publish {
        let path = q
            .crud_path
            .unwrap_or_else(|| format!("/{}", table.def.name));
        let level = auth.unwrap_or_else(|| generate::default_auth(&table.def));
        let how = Crud {
            publish,
            replace: false,
        };
        body["flows"] =
            json!(crud_flows(&state, &table.def, &path, level, how, editor.user_id).await?);
    }
    Ok(versioned(StatusCode::CREATED, body, table.version))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrudRequest {
    path: Option<String>,
    #[serde(default)]
    publish: bool,
    /// Auth level of the generated endpoints; defaults to
    /// [`crate::flow::generate::default_auth`].
    auth: Option<AuthLevel>,
    /// Replace the drafts of flows that already have the generated names (regeneration)
    /// instead of refusing with 409 `table.crud_exists`.
    #[serde(default)]
    replace: bool,
    /// Write owner-only rules for a table with a users-linked `owner` field and no rules yet,
    /// when the endpoints are for signed-in users (default true).
    owner_rules: Option<bool>,
}

async fn generate_crud(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<CrudRequest>,
) -> Result<Response, ApiError> {
    let mut table = store::get(&state.db, &name).await?;
    let path = req.path.unwrap_or_else(|| format!("/{name}"));
    let level = req
        .auth
        .unwrap_or_else(|| generate::default_auth(&table.def));
    // Owner-only rules first, so the endpoints are published with them. What would refuse the
    // endpoints is checked before the rules are written: they generate, and no flow has their
    // names unless they replace it.
    let owner =
        (req.owner_rules.unwrap_or(true) && level == AuthLevel::User && table.def.rules.is_none())
            .then(|| generate::owner_rules(&table.def))
            .flatten();
    let owner_written = owner.is_some();
    if let Some(rules) = owner {
        generate::crud(&table.def, &path, level, |_| IdType::Bigint).map_err(crud_error)?;
        if !req.replace {
            let names =
                ["list", "get", "create", "update", "delete"].map(|k| format!("{name}_{k}"));
            let mut tx = state.db.begin().await?;
            for n in names {
                if flows::find_by_name_in(&mut tx, &n).await?.is_some() {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "table.crud_exists",
                        format!(
                            "a flow named {n} exists; regenerate with replace to overwrite its draft"
                        ),
                    ));
                }
            }
        }
        let mut def = table.def.clone();
        def.rules = Some(rules);
        let change = ChangeRequest {
            table: def,
            confirm_drop: Vec::new(),
            force: false,
            update_flows: false,
        };
        let outcome = state
            .serving
            .change(changes::change(
                &state.db,
                &name,
                Some(table.version),
                change,
                editor.user_id,
                true,
            ))
            .await?;
        table = outcome.table;
    }
    let created = crud_flows(
        &state,
        &table.def,
        &path,
        level,
        Crud {
            publish: req.publish,
            replace: req.replace,
        },
        editor.user_id,
    )
    .await?;
    let status = if created.iter().any(|f| f["replaced"] == true) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({ "flows": created, "owner_rules_written": owner_written })),
    )
        .into_response())
}

/// How generated CRUD flows are saved.
#[derive(Debug, Clone, Copy)]
struct Crud {
    /// Publish the endpoints too.
    publish: bool,
    /// Replace the drafts of existing flows with the generated names (else refuse).
    replace: bool,
}

/// Saves (and optionally publishes) the generated CRUD flows of a table; all or nothing. Flows
/// that already have a generated name are refused with 409 `table.crud_exists` naming them,
/// or with `replace` get the generated document as their draft (their layout kept).
async fn crud_flows(
    state: &AppState,
    def: &TableDef,
    path: &str,
    auth: AuthLevel,
    how: Crud,
    user_id: i64,
) -> Result<Vec<Value>, ApiError> {
    let publish = how.publish;
    let tables = store::all(&state.db).await?;
    let target = |t: &str| tables.get(t).map(|d| d.id_type).unwrap_or(IdType::Bigint);
    let docs = generate::crud(def, path, auth, target).map_err(crud_error)?;
    let mut plans = Vec::new();
    for doc in &docs {
        plans.push(crate::nodes::compile(doc, Some(&tables)).map_err(super::error::invalid_flow)?);
    }
    let save = async {
        let mut tx = state.db.begin().await?;
        let mut existing = Vec::new();
        for plan in &plans {
            if let Some(found) = flows::find_by_name_in(&mut tx, &plan.name).await? {
                existing.push(found);
            }
        }
        if !existing.is_empty() && !how.replace {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "table.crud_exists",
                format!(
                    "flows with the generated names exist: {}; regenerate with replace to overwrite their drafts",
                    existing.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
            .with_details(
                existing
                    .iter()
                    .map(|f| {
                        let message = match f.published_version {
                            Some(v) => format!("{} exists (live v{v})", f.name),
                            None => format!("{} exists (a draft)", f.name),
                        };
                        json!({"flow_id": f.id, "flow": f.name, "published_version": f.published_version, "message": message})
                    })
                    .collect(),
            ));
        }
        let mut out = Vec::new();
        for (doc, plan) in docs.iter().zip(&plans) {
            let old = existing.iter().find(|f| f.name == plan.name);
            let (id, published_before) = match old {
                Some(old) => {
                    let mut doc = doc.clone();
                    if let Some(ui) = old.document.get("ui") {
                        doc["ui"] = ui.clone();
                    }
                    flows::replace_draft_in(&mut tx, old.id, &doc, &plan.rev).await?;
                    (old.id, old.published_version)
                }
                None => (
                    flows::insert_in(&mut tx, &plan.name, doc, &plan.rev)
                        .await?
                        .id,
                    None,
                ),
            };
            let mut version = published_before;
            if publish && plan.endpoint.is_some() {
                let (published, _, _) =
                    crate::serving::publish_in(&mut tx, id, &plan.rev, plan, user_id, None).await?;
                version = Some(published.version);
            }
            out.push(json!({"id": id, "name": plan.name, "rev": plan.rev, "published_version": version,
                            "replaced": old.is_some(),
                            "method": plan.endpoint.as_ref().map(|e| e.method.as_str()), "path": plan.endpoint.as_ref().map(|e| e.path.clone())}));
        }
        tx.commit().await?;
        Ok::<_, ApiError>(out)
    };
    if publish {
        Ok(state.serving.change(save).await?)
    } else {
        save.await
    }
}

fn crud_error(e: generate::CrudError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "table.crud_password_needs_admin",
        e.to_string(),
    )
}

/// The table version a change expects, from `If-Match` (`"3"` or `3`).
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
                "If-Match must be the table's version number",
            )
        })
}

async fn preview(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChangeRequest>,
) -> Result<Json<Value>, ApiError> {
    let outcome = changes::change(
        &state.db,
        &name,
        expected_version(&headers)?,
        req,
        editor.user_id,
        false,
    )
    .await?;
    Ok(Json(serde_json::to_value(outcome).unwrap_or_default()))
}

async fn update(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChangeRequest>,
) -> Result<Response, ApiError> {
    let expected = expected_version(&headers)?;
    let outcome = state
        .serving
        .change(changes::change(
            &state.db,
            &name,
            expected,
            req,
            editor.user_id,
            true,
        ))
        .await?;
    let version = outcome.table.version;
    Ok(versioned(
        StatusCode::OK,
        serde_json::to_value(outcome).unwrap_or_default(),
        version,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropQuery {
    confirm: Option<String>,
    #[serde(default)]
    force: bool,
}

async fn drop_table(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<DropQuery>,
) -> Result<Json<Value>, ApiError> {
    let plan = state
        .serving
        .change(changes::drop_table(
            &state.db,
            &name,
            q.confirm.as_deref(),
            q.force,
            editor.user_id,
        ))
        .await?;
    Ok(Json(json!({ "plan": plan })))
}

async fn history(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let table = store::get(&state.db, &name).await?;
    Ok(Json(
        json!({ "history": store::history(&state.db, &table.def.id).await? }),
    ))
}
