//! The generated API: `/api/...` requests are matched against the route table and run by the
//! engine. Every error is Sluice's JSON envelope. A request loads what is served once and uses
//! that snapshot (routes, functions, keys, env) to its end. [`flow_request`] builds what a flow
//! sees of a request, for these requests and for the editor's debug runs alike.
//!
//! Every response here is sandboxed (`Content-Security-Policy: sandbox ...` without
//! `allow-same-origin`): a page a flow renders gets an opaque origin, so a script injected into
//! it cannot use the editor's session on the same host. An endpoint opts out with
//! `"endpoint": {"sandbox": false}` (docs/FLOW-FORMAT.md).

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{parse_json, read_body};
use super::routes::{Lookup, Route, RouteTable};
use crate::engine::{self, Live, Request as FlowRequest};
use crate::flow::Method;
use crate::flow::plan::ContentType;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Headers a flow never sees: credentials stay out of scripts and traces.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// The request a flow sees, built the same way for a request to a generated endpoint and for
/// an editor's debug run, so a debug run shows what production would: header names in lower
/// case, credentials ([`HIDDEN_HEADERS`]) left out.
pub(crate) fn flow_request(
    auth: Value,
    params: Map<String, Value>,
    query: Map<String, Value>,
    headers: impl IntoIterator<Item = (String, Value)>,
    body: Value,
) -> FlowRequest {
    let headers = headers
        .into_iter()
        .map(|(mut name, value)| {
            name.make_ascii_lowercase();
            (name, value)
        })
        .filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str()))
        .collect();
    FlowRequest {
        params,
        query,
        body,
        headers,
        auth,
    }
}

/// The policy of generated responses: scripts, forms and popups work, but in an opaque origin
/// (no `allow-same-origin`), never in the editor's; no top-level navigation of other pages.
pub const SANDBOX: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/// Adds the sandbox policy (next to any policy the flow set itself; browsers enforce each) and
/// forbids content sniffing, unless the endpoint opted out of the sandbox.
fn protect(headers: &mut axum::http::HeaderMap, sandbox: bool) {
    if sandbox {
        headers.append(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Serves a generated-API request: `OPTIONS` (plain or CORS preflight) is answered from the
/// route table, `HEAD` runs the `GET` endpoint (axum drops the body), everything else runs the
/// matched flow. Responses of a group with CORS rules carry its CORS headers, errors included.
pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    let (mut resp, sandbox) = serve(&state, req).await;
    protect(resp.headers_mut(), sandbox);
    resp
}

/// The response of [`dispatch`], and whether it is sandboxed (all but opted-out endpoints).
async fn serve(state: &AppState, req: Request) -> (Response, bool) {
    let path = req
        .uri()
        .path()
        .strip_prefix("/api")
        .unwrap_or("/")
        .to_string();
    // The one snapshot this request uses, from its route to its end.
    let served = state.serving.load();
    if req.method() == axum::http::Method::OPTIONS {
        return (options(&served.routes, &path, &req), true);
    }
    let (route, raw_params) = match served.routes.find(served_by(req.method().as_str()), &path) {
        Lookup::Found(r, params) => (r, params),
        Lookup::MethodNotAllowed(allowed) => {
            let list = allow_list(&allowed);
            let mut resp = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "route.method_not_allowed",
                format!("{} is not allowed here; allowed: {list}", req.method()),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&list) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            state.ops.metrics.unmatched(resp.status().as_u16());
            return (resp, true);
        }
        Lookup::NotFound => {
            state.ops.metrics.unmatched(StatusCode::NOT_FOUND.as_u16());
            let resp = route_not_found(req.method().as_str(), req.uri().path()).into_response();
            return (resp, true);
        }
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let started = std::time::Instant::now();
    // Rate limits first; the in-flight slot only once the whole body is here (under the
    // listener's body deadline), so stalled bodies hold no slot.
    let mut resp = match state.ops.limit(&route.ops, &req) {
        Err(refused) => refused.into_response(),
        Ok(()) => match buffered(req, state.max_body).await {
            Err(e) => e.into_response(),
            Ok(req) => match state.ops.admit() {
                Ok(admitted) => {
                    let resp = run(state, &served.live, &route, raw_params, req)
                        .await
                        .unwrap_or_else(IntoResponse::into_response);
                    drop(admitted);
                    resp
                }
                Err(refused) => refused.into_response(),
            },
        },
    };
    state.ops.record(&route.ops, &path, &resp, started);
    if let Some(cors) = &route.group.cors {
        cors.decorate(origin.as_ref(), resp.headers_mut());
    }
    let sandbox = route
        .program
        .plan
        .endpoint
        .as_ref()
        .is_none_or(|e| e.sandbox);
    (resp, sandbox)
}

/// The request with its whole body read into memory (at most `limit` bytes).
async fn buffered(req: Request, limit: usize) -> Result<Request, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = super::extract::read_body_of(&parts.headers, body, limit).await?;
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// The endpoint method that serves an HTTP method: itself, or `GET` for `HEAD`.
fn served_by(method: &str) -> Option<Method> {
    match method {
        "GET" | "HEAD" => Some(Method::GET),
        "POST" => Some(Method::POST),
        "PUT" => Some(Method::PUT),
        "PATCH" => Some(Method::PATCH),
        "DELETE" => Some(Method::DELETE),
        _ => None,
    }
}

/// The `Allow` list of a path: its methods, `HEAD` where `GET` is, and `OPTIONS`.
fn allow_list(methods: &[Method]) -> String {
    let mut list: Vec<&str> = Vec::with_capacity(methods.len() + 2);
    for m in methods {
        list.push(m.as_str());
        if *m == Method::GET {
            list.push("HEAD");
        }
    }
    list.push("OPTIONS");
    list.join(", ")
}

/// `OPTIONS`: 204 with `Allow` for a path that exists (404 otherwise). With `Origin` and
/// `Access-Control-Request-Method` it is a CORS preflight, answered by the rules of the group
/// whose endpoint would serve the requested method: CORS headers when allowed, none when not.
fn options(routes: &RouteTable, path: &str, req: &Request) -> Response {
    let Lookup::MethodNotAllowed(allowed) = routes.find(None, path) else {
        return route_not_found("OPTIONS", req.uri().path()).into_response();
    };
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&allow_list(&allowed)) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    let h = req.headers();
    let (Some(origin), Some(requested)) = (
        h.get(header::ORIGIN),
        h.get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok()),
    ) else {
        return resp;
    };
    if let Lookup::Found(route, _) = routes.find(served_by(requested), path)
        && let Some(cors) = &route.group.cors
    {
        resp.headers_mut()
            .insert(header::VARY, super::cors::Cors::preflight_vary());
        if let Some(allowed) = cors.preflight(
            origin,
            requested,
            h.get(header::ACCESS_CONTROL_REQUEST_HEADERS),
        ) {
            resp.headers_mut().extend(allowed);
        }
    }
    resp
}

/// Runs the matched flow: decodes path parameters, query and body, and shapes its response.
async fn run(
    state: &AppState,
    live: &Live,
    route: &Route,
    raw_params: Vec<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let program = &route.program;
    let authenticated = super::enduser::authenticate(
        &state.serving,
        &live.token_keys,
        &state.runtime.sessions,
        program,
        req.headers(),
    )
    .await;
    let auth = match authenticated {
        Ok(auth) => auth,
        Err(refused) => return Ok(super::enduser::refusal(refused)),
    };
    let mut params = Map::new();
    for (k, v) in raw_params {
        let decoded = percent_encoding::percent_decode_str(&v)
            .decode_utf8()
            .map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "request.invalid_path",
                    format!("path parameter `{k}` is not valid UTF-8"),
                )
            })?;
        params.insert(k, Value::String(decoded.into_owned()));
    }
    let pairs = match req.uri().query() {
        None => Vec::new(),
        Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.invalid_query",
                format!("the query string is malformed: {e}"),
            )
        })?,
    };
    // A repeated key keeps its last value, unless the input schema declares it a list.
    let mut query = Map::new();
    for (k, v) in pairs {
        if program.query_is_list(&k) {
            if let Value::Array(items) = query.entry(k).or_insert_with(|| Value::Array(Vec::new()))
            {
                items.push(Value::String(v));
            }
        } else {
            query.insert(k, Value::String(v));
        }
    }
    let headers = req.headers().iter().filter_map(|(n, v)| {
        Some((
            n.as_str().to_string(),
            Value::String(v.to_str().ok()?.to_string()),
        ))
    });
    let mut request = flow_request(auth, params, query, headers, Value::Null);
    let bytes = read_body(req, state.max_body).await?;
    request.body = parse_json(&bytes)?;
    // Taken before the run, which consumes the request; redacted before it is queued.
    let captured = program
        .plan
        .capture
        .then(|| super::capture::capture(program, &request));

    let mut resp = match engine::run(program, &state.runtime, live, request).await {
        Ok(out) => answer(program, out),
        Err(e) => failure(live, e).into_response(),
    };
    if let Some(captured) = captured {
        resp.extensions_mut().insert(captured);
    }
    Ok(resp)
}

/// The error response of a failed run, for a request and for a debug run alike (so the editor
/// shows the body a client would get).
pub(crate) fn failure(live: &Live, e: engine::RunError) -> ApiError {
    // The log line of a failure must not carry secret values a script put into its message.
    let mut err = ApiError::from(e);
    if let Some(detail) = err.internal.take() {
        err.internal = Some(live.env.redact_text(&detail));
    }
    err
}

/// The HTTP response of a flow's answer, for a request and for a debug run alike: a 5xx error
/// body gets the request id, 204 and 304 no body, the flow's headers but those refused.
pub(crate) fn answer(program: &engine::Program, out: engine::Response) -> Response {
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
    let mut body = out.body;
    let code = (status.as_u16() >= 400)
        .then(|| body.pointer("/error/code").and_then(Value::as_str))
        .flatten()
        .map(|c| ErrorCode(c.to_string()));
    if status.is_server_error()
        && let Some(error) = body.get_mut("error").and_then(Value::as_object_mut)
        && let Ok(id) = super::error::REQUEST_ID.try_with(Clone::clone)
    {
        error.insert("request_id".into(), Value::String(id));
    }
    // 204 and 304 carry no body, whatever the flow computed.
    let mut resp = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        status.into_response()
    } else {
        match (out.content_type, body) {
            (ContentType::Json, body) => (status, axum::Json(body)).into_response(),
            (ct, body) => {
                let text = match body {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                let mut resp = (status, text).into_response();
                // The flow chose the type; browsers must not guess another (`protect`).
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(ct.header_value()),
                );
                resp
            }
        }
    };
    for (k, v) in out.headers {
        match (HeaderName::try_from(k.as_str()), HeaderValue::from_str(&v)) {
            (Ok(name), _) if name == header::SET_COOKIE && sets_editor_cookie(&v) => {
                tracing::warn!(flow = %program.plan.name, "respond header would set the editor's session cookie; dropped")
            }
            (Ok(name), Ok(value)) => {
                resp.headers_mut().insert(name, value);
            }
            _ => {
                tracing::warn!(flow = %program.plan.name, header = %k, "respond header is not a valid HTTP header; dropped")
            }
        }
    }
    if let Some(code) = code {
        resp.extensions_mut().insert(code);
    }
    resp
}

/// Whether a `Set-Cookie` value names the editor's session cookie: an endpoint must not plant
/// a session (of an account of someone else's choosing) in an editor's browser.
fn sets_editor_cookie(value: &str) -> bool {
    let name = value.split('=').next().unwrap_or_default().trim();
    [super::session::COOKIE, super::session::SECURE_COOKIE]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

pub fn route_not_found(method: &str, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        format!("no route for {method} {path}"),
    )
}
