//! The admin API under `/_/api/v1`: login, tables, flows (save, publish, export). JSON in and
//! out; every route but login needs a bearer token from login.

use super::AppState;
use super::error::{ApiError, invalid_flow};
use super::extract::{ApiJson, ApiPath, if_match};
use super::flow_versions::{check, flow_response, publish_draft, saved_response};
use super::session::Editor;
use crate::catalog::flows;
use crate::flow::canonical;
use crate::tables::store as tables;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/flows", get(list_flows).post(create_flow))
        .route(
            "/flows/{id}",
            get(get_flow).put(update_flow).delete(delete_flow),
        )
        .route(
            "/flows/{id}/publish",
            post(publish_flow).delete(super::flow_versions::unpublish),
        )
        .route(
            "/flows/{id}/duplicate",
            get(suggest_duplicate).post(duplicate_flow),
        )
        .route("/flows/{id}/export", get(export_flow))
        .route("/flows/{id}/run", post(run_flow))
        .route("/node-types", get(node_types))
        .route("/openapi.json", get(super::admin_openapi::serve))
        .merge(super::tables::router())
        .merge(super::rows::router())
        .merge(super::csv::router())
        .merge(super::env::router())
        .merge(super::session::router())
        .merge(super::api_tokens::router())
        .merge(super::flow_versions::router())
        .merge(super::token_keys::router())
        .merge(super::user_sessions::router())
        .merge(super::request_log::router())
        .merge(super::groups::router())
        .merge(super::jobs::router())
        .merge(super::sample::router())
        .merge(super::schedules::router())
        .merge(super::project::router())
        .merge(super::flow_tests::router())
        .method_not_allowed_fallback(super::method_not_allowed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Response, ApiError> {
    match crate::auth::login(&state.db, &body.email, &body.password).await? {
        Some(session) => Ok(Json(session).into_response()),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth.invalid_credentials",
            "email or password is wrong",
        )),
    }
}

async fn logout(State(state): State<AppState>, editor: Editor) -> Result<StatusCode, ApiError> {
    if let Some(token) = &editor.token {
        crate::auth::logout(&state.db, token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_flows(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "flows": flows::list(&state.db).await? })))
}

async fn create_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiJson(doc): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let plan = check(&state, &doc).await?;
    let record = flows::insert(&state.db, &plan.name, &doc, &plan.rev).await?;
    Ok(flow_response(StatusCode::CREATED, record))
}

async fn get_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    Ok(flow_response(
        StatusCode::OK,
        flows::get(&state.db, id).await?,
    ))
}

async fn update_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ApiJson(doc): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "flow.rev_required",
            "send the rev you edited in an If-Match header, so a concurrent change is not overwritten",
        )
    })?;
    let plan = check(&state, &doc).await?;
    let saved = flows::update(&state.db, id, &expected, &plan.name, &doc, &plan.rev).await?;
    Ok(saved_response(saved))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DuplicateRequest {
    /// The copy's name; by default the first free `<name>_copy`, `<name>_copy_2`, ….
    name: Option<String>,
    /// The copy's path (endpoints only); by default a free one ([`flows::copy_path`]).
    path: Option<String>,
}

/// The name (and, for an endpoint, the path) a copy of flow `id` gets unless told otherwise.
async fn duplicate_suggestion(
    state: &AppState,
    record: &flows::FlowRecord,
) -> Result<(String, Option<String>), ApiError> {
    let names = flows::names(&state.db).await?;
    let name = flows::copy_name(&record.name, &|n| names.iter().any(|x| x == n));
    let endpoint = record.document.get("endpoint");
    let path = match endpoint {
        Some(ep) => {
            let method = ep.get("method").and_then(Value::as_str).unwrap_or("GET");
            let group = ep.get("group").and_then(Value::as_str);
            let shapes = flows::route_shapes(&state.db, -1).await?;
            let path = ep.get("path").and_then(Value::as_str).unwrap_or("/");
            Some(flows::copy_path(path, &|p| {
                shapes.contains(&flows::route_shape(method, group, p))
            }))
        }
        None => None,
    };
    Ok((name, path))
}

/// What `POST /flows/{id}/duplicate` would name the copy: `{"name", "path"}` (`path` null for
/// a function). Writes nothing.
async fn suggest_duplicate(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let record = flows::get(&state.db, id).await?;
    let (name, path) = duplicate_suggestion(&state, &record).await?;
    Ok(Json(json!({"name": name, "path": path})))
}

/// Copies a flow's draft as a new draft (never published) under a new name and, for an
/// endpoint, a path no other flow has.
async fn duplicate_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body: DuplicateRequest = optional_body(req).await?;
    let source = flows::get(&state.db, id).await?;
    let (suggested_name, suggested_path) = duplicate_suggestion(&state, &source).await?;
    let mut doc = source.document.clone();
    doc["name"] = json!(body.name.unwrap_or(suggested_name));
    if let Some(ep) = doc.get_mut("endpoint").and_then(Value::as_object_mut) {
        let path = body.path.or(suggested_path).unwrap_or_default();
        let method = ep.get("method").and_then(Value::as_str).unwrap_or("GET");
        let group = ep.get("group").and_then(Value::as_str);
        let shape = flows::route_shape(method, group, &path);
        if flows::route_shapes(&state.db, -1).await?.contains(&shape) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "flow.route_taken",
                format!("another flow already has {method} {path}; choose another path"),
            ));
        }
        ep.insert("path".into(), json!(path));
    } else if body.path.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_body",
            "a function has no path: leave `path` out",
        ));
    }
    let plan = check(&state, &doc).await?;
    let record = flows::insert(&state.db, &plan.name, &doc, &plan.rev).await?;
    tracing::info!(flow.id = record.id, from = id, "duplicated flow");
    Ok(flow_response(StatusCode::CREATED, record))
}

/// An optional JSON body: absent or empty is `T::default()`, else it must decode as `T`.
async fn optional_body<T: serde::de::DeserializeOwned + Default>(
    req: axum::extract::Request,
) -> Result<T, ApiError> {
    let bytes = super::extract::read_body(req, super::extract::ADMIN_BODY_LIMIT).await?;
    match super::extract::parse_json(&bytes)? {
        Value::Null => Ok(T::default()),
        value => serde_json::from_value(value).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.invalid_body",
                format!("the body does not have the expected shape: {e}"),
            )
        }),
    }
}

async fn delete_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    state.serving.change(flows::delete(&state.db, id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    /// What changed, kept with the version (plain text, at most 500 characters).
    note: Option<String>,
}

/// Publishes the draft; the body (`{"note"}`) is optional, so a bare POST still publishes.
async fn publish_flow(
    State(state): State<AppState>,
    editor: Editor,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Json<Value>, ApiError> {
    let body: PublishRequest = optional_body(req).await?;
    let note = super::flow_versions::version_note(body.note)?;
    publish_draft(
        &state,
        id,
        if_match(&headers),
        editor.user_id,
        note.as_deref(),
    )
    .await
    .map(Json)
}

async fn export_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let record = flows::get(&state.db, id).await?;
    let text = canonical::to_canonical_string(&record.document);
    let disposition = format!("attachment; filename=\"{}.flow.json\"", record.name);
    let mut resp = text.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", record.rev)) {
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    params: serde_json::Map<String, Value>,
    #[serde(default)]
    query: serde_json::Map<String, Value>,
    #[serde(default)]
    body: Value,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    /// Keep the writes; by default a debug run rolls everything back.
    #[serde(default)]
    commit: bool,
    /// An end-user token to run a `user` or `admin` endpoint as; checked as a real request's.
    #[serde(default)]
    token: Option<String>,
    /// Run as this caller without a token (the run panel's "run as user"): a five-minute token
    /// is signed for it with the current key and checked as `token` would be.
    #[serde(default)]
    as_user: Option<AsUser>,
    /// A flow with a trigger runs as a job with this input (`{"event": ...}` for a table
    /// trigger); the request's parts are not used.
    #[serde(default)]
    input: Option<Value>,
    /// A frozen clock: what `now()` answers during the run (RFC 3339 text).
    #[serde(default)]
    now: Option<String>,
    /// Canned answers for the run's outbound HTTP calls; when given, no call reaches the
    /// network and a call no answer matches fails its node.
    #[serde(default)]
    http: Option<Vec<crate::engine::replay::Canned>>,
}

/// The snapshot a debug run uses: the one served, with the run's frozen clock and canned
/// HTTP answers when it gives them.
fn run_live(
    served: &crate::engine::Live,
    req: &mut RunRequest,
) -> Result<crate::engine::Live, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "request.invalid_body", m);
    let mut live = served.clone();
    if let Some(now) = req.now.take() {
        if crate::tables::formats::parse_timestamp(&now).is_none() {
            return Err(bad(format!("`now` is not a timestamp: {now}")));
        }
        let mut env = (*served.env).clone();
        env.now = Some(now);
        live.env = std::sync::Arc::new(env);
    }
    if let Some(http) = req.http.take() {
        if http.len() > crate::engine::replay::MAX_CANNED {
            return Err(bad(format!(
                "at most {} canned HTTP answers",
                crate::engine::replay::MAX_CANNED
            )));
        }
        live.replay = Some(std::sync::Arc::new(crate::engine::replay::Replay::new(
            http,
        )));
    }
    Ok(live)
}

/// The caller of a debug run: `{"id": "7", "claims": {"role": "member"}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AsUser {
    id: String,
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
}

/// The token of a debug run: the given one, or one signed for `as_user` (at most one of them).
fn run_token(
    req: &RunRequest,
    keys: &crate::auth::jwt::KeyRing,
) -> Result<Option<String>, ApiError> {
    let bad = |m: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_body",
            m.to_string(),
        )
    };
    let Some(user) = &req.as_user else {
        return Ok(req.token.clone());
    };
    if req.token.is_some() {
        return Err(bad("give `token` or `as_user`, not both"));
    }
    if user.id.is_empty() || user.id.len() > 200 {
        return Err(bad("`as_user.id` is 1 to 200 characters"));
    }
    if let Some(k) = user
        .claims
        .keys()
        .find(|k| ["sub", "exp", "iat", "nbf"].contains(&k.as_str()))
    {
        return Err(bad(&format!("`as_user.claims` cannot set `{k}`")));
    }
    let Some(key) = keys.current() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "auth.no_token_key",
            "there is no current token signing key to run as a user with",
        ));
    };
    let now = crate::auth::bearer::now();
    let mut claims = user.claims.clone();
    claims.insert("sub".into(), Value::String(user.id.clone()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now + 300));
    Ok(Some(crate::auth::jwt::sign(key, &claims)))
}

/// Runs the draft of a flow with a given request and returns the response and a trace of
/// every node. Writes are rolled back unless `commit` is true.
async fn run_flow(
    State(state): State<AppState>,
    _: Editor,
    ApiPath(id): ApiPath<i64>,
    ApiJson(mut req): ApiJson<RunRequest>,
) -> Result<Json<Value>, ApiError> {
    let record = flows::get(&state.db, id).await?;
    // The snapshot served now: the run calls the functions and uses the keys and environment
    // values a request would.
    let served = state.serving.load();
    let live = run_live(&served.live, &mut req)?;
    let tables = tables::all(&state.db).await?;
    let plan = crate::nodes::compile(&record.document, Some(&tables)).map_err(invalid_flow)?;
    let program = crate::engine::Program::build(plan, &tables)
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "flow.tables_changed", e.to_string()))?;
    if program.plan.trigger.is_some() {
        return Ok(Json(
            run_as_job(&state, &live, &program, &record.document, req).await,
        ));
    }
    let as_text = |m: serde_json::Map<String, Value>| -> serde_json::Map<String, Value> {
        m.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, Value::String(s)),
                other => (k, Value::String(other.to_string())),
            })
            .collect()
    };
    let token = run_token(&req, &live.token_keys)?;
    let checked = super::enduser::check_token(
        &state.serving,
        &live.token_keys,
        &state.runtime.sessions,
        &program,
        token.as_deref(),
    )
    .await;
    let auth = match checked {
        Ok(auth) => auth,
        Err(e) => {
            let error = json!({"code": e.code(), "message": e.to_string(), "node": null});
            // The refusal a request would get, built by the same function.
            let refused = debug_response(super::enduser::refusal(e)).await;
            return Ok(Json(json!({
                "response": refused, "error": error, "trace": [], "duration_us": 0,
                "committed": false,
            })));
        }
    };
    // Built as production builds it: a debug run never sees credentials a request would hide.
    let request = super::generated::flow_request(
        auth,
        as_text(req.params),
        as_text(req.query),
        as_text(req.headers),
        req.body,
    );
    let opts = crate::engine::run::RunOptions { commit: req.commit };
    let started = std::time::Instant::now();
    let (result, trace) =
        crate::engine::run::run_traced(&program, &state.runtime, &live, request, opts).await;
    let duration_us = started.elapsed().as_micros() as u64;
    Ok(Json(
        debug_answer(
            &live,
            &program,
            &record.document,
            result,
            trace,
            duration_us,
            req.commit,
        )
        .await,
    ))
}

/// A debug run of a flow with a trigger: run as a job would run it (`input`, `event`, `job` in
/// scope; `job.id` 0, attempt 1), with the same answer shape as a request's debug run.
async fn run_as_job(
    state: &AppState,
    live: &crate::engine::Live,
    program: &crate::engine::Program,
    doc: &Value,
    req: RunRequest,
) -> Value {
    let input = req.input.unwrap_or_else(|| json!({}));
    let job = json!({
        "id": 0, "attempt": 1, "flow": program.plan.name,
        "scheduled_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let opts = crate::engine::run::RunOptions { commit: req.commit };
    let started = std::time::Instant::now();
    let (result, trace) =
        crate::engine::run::run_job_traced(program, &state.runtime, live, input, job, opts).await;
    let duration_us = started.elapsed().as_micros() as u64;
    debug_answer(live, program, doc, result, trace, duration_us, req.commit).await
}

/// A debug run's answer. The response is shaped by the functions that shape a request's, so
/// its status, headers and body (an error's envelope above all) are what a client would get.
async fn debug_answer(
    live: &crate::engine::Live,
    program: &crate::engine::Program,
    doc: &Value,
    result: Result<crate::engine::run::Response, crate::engine::RunError>,
    trace: Vec<crate::engine::run::TraceEntry>,
    duration_us: u64,
    commit: bool,
) -> Value {
    let mut schema_problems = None;
    let (response, error) = match result {
        Ok(r) => {
            schema_problems = body_schema_problems(doc, &trace, &r);
            (
                debug_response(super::generated::answer(program, r)).await,
                Value::Null,
            )
        }
        Err(e) => {
            let mut envelope =
                json!({"code": e.code(), "message": e.to_string(), "node": e.node()});
            if let crate::engine::RunError::Input(problems) = &e {
                envelope["details"] = serde_json::to_value(problems).unwrap_or_default();
            }
            let failed = super::generated::failure(live, e).into_response();
            (debug_response(failed).await, envelope)
        }
    };
    let mut answer = json!({
        "response": response, "error": error, "trace": trace,
        "duration_us": duration_us, "committed": commit && error.is_null(),
    });
    if let Some(replay) = &live.replay {
        answer["http_calls"] = serde_json::to_value(replay.calls()).unwrap_or_default();
    }
    if let Some(problems) = schema_problems {
        answer["schema_problems"] = problems;
    }
    answer
}

/// How the body of a response breaks the `schema` its `respond` node declares (the last
/// `respond` of the trace): `None` when the node declares none, `[]` when the body fits.
/// Debug runs and flow tests only: a request's path never checks it.
fn body_schema_problems(
    doc: &Value,
    trace: &[crate::engine::run::TraceEntry],
    response: &crate::engine::run::Response,
) -> Option<Value> {
    let node = trace.iter().rev().find(|t| t.node_type == "respond")?;
    let schema = doc.get("nodes")?.get(&node.node)?.get("schema")?;
    let validator = crate::flow::schema::user_validator(schema).ok()?;
    let problems: Vec<Value> = validator
        .iter_errors(&response.body)
        .take(20)
        .map(|e| {
            json!({"node": node.node, "pointer": e.instance_path().as_str(), "message": e.to_string()})
        })
        .collect();
    Some(Value::Array(problems))
}

/// A response as a debug run shows it: `{"status", "headers", "body", "content_type"}`, the body
/// parsed when it is JSON, else text.
async fn debug_response(resp: Response) -> Value {
    let status = resp.status().as_u16();
    let headers: serde_json::Map<String, Value> = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), Value::String(v.to_str().ok()?.into()))))
        .collect();
    // As `respond` names it: json, text or html.
    let content_type = match headers
        .get("content-type")
        .and_then(Value::as_str)
        .and_then(|c| c.split(';').next())
        .map(str::trim)
    {
        Some("application/json") => Some("json"),
        Some("text/plain") => Some("text"),
        Some("text/html") => Some("html"),
        _ => None,
    };
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else if content_type == Some("json") {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    } else {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    json!({"status": status, "headers": headers, "body": body, "content_type": content_type})
}

/// The node types with their ports and config schemas, for the editor's palette and forms.
async fn node_types(_: Editor) -> Json<Value> {
    let types: Vec<Value> = crate::nodes::builtin()
        .iter()
        .map(|t| {
            let schema = t.schema.document();
            let mut ports: Vec<Value> = t
                .ports
                .iter()
                .map(|p| json!({"name": p.name, "required": p.required, "binds": p.binds}))
                .collect();
            if !t.is_terminal() {
                let e = crate::flow::node::ERROR_PORT;
                ports.push(json!({"name": e.name, "required": e.required, "binds": false}));
            }
            json!({
                "type": t.name, "v": 1, "binds": t.options.binds, "terminal": t.is_terminal(),
                "title": schema.get("title").cloned().unwrap_or(Value::Null),
                "ports": ports, "schema": schema,
            })
        })
        .collect();
    Json(json!({ "node_types": types }))
}
