//! The generated API: `/api/...` requests are matched against the route table and run by the
//! engine. Every error is Sluice's JSON envelope.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::extract::{parse_json, read_body};
use super::routes::Lookup;
use crate::engine::{self, Program, Request as FlowRequest};
use crate::flow::Method;
use crate::flow::plan::ContentType;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Headers a flow never sees: credentials stay out of scripts and traces.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

pub async fn dispatch(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let method = match req.method().as_str() {
        "GET" => Some(Method::GET),
        "POST" => Some(Method::POST),
        "PUT" => Some(Method::PUT),
        "PATCH" => Some(Method::PATCH),
        "DELETE" => Some(Method::DELETE),
        _ => None,
    };
    let path = req
        .uri()
        .path()
        .strip_prefix("/api")
        .unwrap_or("/")
        .to_string();
    let routes = state.routes.load();
    let (route, raw_params) = match routes.find(method, &path) {
        Lookup::Found(r, params) => (r, params),
        Lookup::MethodNotAllowed(allowed) => {
            let list: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            let mut resp = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "route.method_not_allowed",
                format!(
                    "{} is not allowed here; allowed: {}",
                    req.method(),
                    list.join(", ")
                ),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
            state.ops.metrics.unmatched(resp.status().as_u16());
            return Ok(resp);
        }
        Lookup::NotFound => {
            state.ops.metrics.unmatched(StatusCode::NOT_FOUND.as_u16());
            return Err(route_not_found(req.method().as_str(), req.uri().path()));
        }
    };
    drop(routes);
    let started = std::time::Instant::now();
    let resp = match state.ops.admit(&route.ops, &req) {
        Ok(admitted) => {
            let resp = serve(&state, &route.program, raw_params, req)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            drop(admitted);
            resp
        }
        Err(refused) => refused.into_response(),
    };
    state.ops.record(&route.ops, &path, &resp, started);
    Ok(resp)
}

/// Runs a routed request's flow and shapes its answer.
async fn serve(
    state: &AppState,
    program: &Program,
    raw_params: Vec<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let auth = match super::enduser::authenticate(&state.runtime, program, req.headers()).await {
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
    let query: Map<String, Value> = match req.uri().query() {
        None => Map::new(),
        Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "request.invalid_query",
                    format!("the query string is malformed: {e}"),
                )
            })?
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    };
    let headers: Map<String, Value> = req
        .headers()
        .iter()
        .filter(|(n, _)| !HIDDEN_HEADERS.contains(&n.as_str()))
        .filter_map(|(n, v)| {
            Some((
                n.as_str().to_string(),
                Value::String(v.to_str().ok()?.to_string()),
            ))
        })
        .collect();
    let bytes = read_body(req, state.max_body).await?;
    let body = parse_json(&bytes)?;

    let out = engine::run(
        program,
        &state.runtime,
        FlowRequest {
            params,
            query,
            body,
            headers,
            auth,
        },
    )
    .await
    .map_err(|e| {
        // The log line of a failure must not carry secret values a script put into its message.
        let mut err = ApiError::from(e);
        if let Some(detail) = err.internal.take() {
            err.internal = Some(state.runtime.env.load().redact_text(&detail));
        }
        err
    })?;
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
                let h = resp.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(ct.header_value()),
                );
                // The flow chose the type; browsers must not guess another.
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                resp
            }
        }
    };
    for (k, v) in out.headers {
        match (HeaderName::try_from(k.as_str()), HeaderValue::from_str(&v)) {
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
    Ok(resp)
}

pub fn route_not_found(method: &str, path: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        format!("no route for {method} {path}"),
    )
}
