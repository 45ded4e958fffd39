//! `http.request`: calls an HTTP API. `ok` binds `as` to `{status, headers, body}` for any
//! response; refusals (non-public targets), network failures, timeouts and oversized responses
//! are failures (the `error` port). A literal URL and every header name are parsed here, once.

use crate::engine::error::{HttpFailure, RunError};
use crate::engine::outbound::{MAX_RESPONSE_BYTES, refusal};
use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port};
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("http.request", &[OK], compile, NodeOptions::DEFAULT);

/// How an `http.request` sends its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BodyFormat {
    /// JSON text, `application/json`.
    #[default]
    Json,
    /// A string as is, `text/plain; charset=utf-8`.
    Text,
    /// An object as `application/x-www-form-urlencoded`.
    Form,
}

/// The URL of an `http.request`: parsed at compile time when it is a literal.
#[derive(Debug, Clone)]
pub(crate) enum UrlSpec {
    Fixed(url::Url),
    Computed(Template),
}

/// A compiled `http.request`.
#[derive(Debug, Clone)]
pub(crate) struct HttpRequestOp {
    pub method: http::Method,
    pub url: UrlSpec,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Option<Template>,
    pub body_format: BodyFormat,
    pub timeout: std::time::Duration,
    pub ok: usize,
}

/// Default and largest `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// Headers the client computes itself or that would change how the connection works.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-connection",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "get")]
    method: String,
    url: Value,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    #[serde(default)]
    query: BTreeMap<String, Value>,
    body: Option<Value>,
    #[serde(default)]
    body_format: BodyFormat,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
}

fn get() -> String {
    "GET".into()
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let mut ok = true;
    let method = match http::Method::from_bytes(cfg.method.as_bytes()) {
        Ok(m) => Some(m),
        Err(e) => {
            let at = format!("{}/method", cx.pointer);
            cx.expr
                .push(Diagnostic::new("flow.bad_config", at, e.to_string()));
            None
        }
    };
    let url = cx.template(&cfg.url, "url").and_then(|t| url_spec(t, cx));
    let mut headers = Vec::with_capacity(cfg.headers.len());
    for (name, v) in &cfg.headers {
        let field = format!("headers/{}", seg(name));
        let parsed = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| e.to_string())
            .and_then(|h| {
                if RESERVED_HEADERS.contains(&h.as_str()) {
                    Err(format!("`{name}` is set by Sluice and cannot be given"))
                } else {
                    Ok(h)
                }
            });
        let value = cx.template(v, &field);
        match (parsed, value) {
            (Ok(h), Some(t)) => headers.push((h, t)),
            (Err(msg), _) => {
                let at = format!("{}/{field}", cx.pointer);
                cx.expr.push(Diagnostic::new("flow.bad_header", at, msg));
                ok = false;
            }
            (_, None) => ok = false,
        }
    }
    let mut query = Vec::with_capacity(cfg.query.len());
    for (name, v) in &cfg.query {
        match cx.template(v, &format!("query/{}", seg(name))) {
            Some(t) => query.push((name.clone(), t)),
            None => ok = false,
        }
    }
    let body = match &cfg.body {
        Some(b) => Some(cx.template(b, "body")?),
        None => None,
    };
    if !ok {
        return None;
    }
    Some(Box::new(HttpRequestOp {
        method: method?,
        url: url?,
        headers,
        query,
        body,
        body_format: cfg.body_format,
        timeout: Duration::from_millis(cfg.timeout_ms.clamp(1, MAX_TIMEOUT_MS)),
        ok: cx.required(OK.name),
    }))
}

/// A literal URL is parsed and checked now; an expression is kept for run time.
fn url_spec(t: Template, cx: &mut NodeCx<'_, Op>) -> Option<UrlSpec> {
    let text = match t {
        Template::Literal(Value::String(s)) => s,
        Template::Literal(_) | Template::Object(_) | Template::Array(_) => {
            let at = format!("{}/url", cx.pointer);
            cx.expr.push(Diagnostic::new(
                "flow.bad_url",
                at,
                "the URL must be a string or an expression",
            ));
            return None;
        }
        computed @ (Template::Expr(_) | Template::Var(..) | Template::Pick { .. }) => {
            return Some(UrlSpec::Computed(computed));
        }
    };
    match parse_url(&text) {
        Ok(u) => Some(UrlSpec::Fixed(u)),
        Err(msg) => {
            let at = format!("{}/url", cx.pointer);
            cx.expr.push(Diagnostic::new("flow.bad_url", at, msg));
            None
        }
    }
}

/// Parses an absolute http(s) URL with a host.
pub fn parse_url(text: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs can be requested, not {}:",
            u.scheme()
        ));
    }
    if u.host().is_none() {
        return Err("the URL has no host".into());
    }
    Ok(u)
}

impl CompiledOp for HttpRequestOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
}

impl Runnable for HttpRequestOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, self))
    }
}

/// `http.request` at run time: builds the request from the compiled op, sends it through the
/// runtime's guarded client, and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
async fn run(cx: &mut Cx<'_>, op: &HttpRequestOp) -> Result<Step, RunError> {
    let fail = |cx: &Cx<'_>, kind: HttpFailure, message: String| RunError::Http {
        node: cx.node_id().to_string(),
        kind,
        message,
    };
    let mut url = match &op.url {
        UrlSpec::Fixed(u) => u.clone(),
        UrlSpec::Computed(t) => match cx.eval(t).await? {
            Value::String(s) => {
                parse_url(&s).map_err(|m| fail(cx, HttpFailure::InvalidRequest, m))?
            }
            other => {
                let m = format!("the URL must be text, not {}", kind_of(&other));
                return Err(fail(cx, HttpFailure::InvalidRequest, m));
            }
        },
    };
    if !op.query.is_empty() {
        let mut pairs = Vec::new();
        for (name, t) in &op.query {
            let v = cx.eval(t).await?;
            let items = match v {
                Value::Array(items) => items,
                other => vec![other],
            };
            for item in items {
                match scalar_text(&item) {
                    Ok(Some(text)) => pairs.push((name.as_str(), text)),
                    Ok(None) => {}
                    Err(kind) => {
                        let m = format!("query parameter `{name}` cannot be {kind}");
                        return Err(fail(cx, HttpFailure::InvalidRequest, m));
                    }
                }
            }
        }
        url.query_pairs_mut()
            .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    }
    cx.note_input(|| json!({"method": op.method.as_str(), "url": shown_url(&url)}));
    let outbound = &cx.rt.outbound;
    outbound
        .check_url(&url)
        .map_err(|r| fail(cx, HttpFailure::Refused, r.0))?;
    let host = url.host_str().unwrap_or_default().to_string();

    let mut headers = http::HeaderMap::with_capacity(op.headers.len() + 1);
    for (name, t) in &op.headers {
        let v = cx.eval(t).await?;
        let text = match scalar_text(&v) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(kind) => {
                let m = format!("header `{name}` cannot be {kind}");
                return Err(fail(cx, HttpFailure::InvalidRequest, m));
            }
        };
        let value = HeaderValue::from_str(&text).map_err(|_| {
            let m = format!("header `{name}` has characters a header cannot carry");
            fail(cx, HttpFailure::InvalidRequest, m)
        })?;
        headers.insert(name.clone(), value);
    }
    // Inside a job: the same key on every attempt, so the receiver can drop a repeat (the
    // call is at least once). A header the builder set wins.
    if let Some(job) = cx.job_id
        && !headers.contains_key("idempotency-key")
        && let Ok(v) = HeaderValue::from_str(&format!("sluice-job-{job}-{}", cx.node_id()))
    {
        headers.insert(http::HeaderName::from_static("idempotency-key"), v);
    }
    let body = match &op.body {
        None => None,
        Some(t) => {
            let v = cx.eval(t).await?;
            let (bytes, content_type) = encode_body(&v, op.body_format)
                .map_err(|m| fail(cx, HttpFailure::InvalidRequest, m))?;
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            Some(bytes)
        }
    };

    if let Some(replay) = &cx.live.replay {
        let method = op.method.as_str();
        return match replay.answer(method, url.as_str()) {
            Some(c) => Ok(Step::Next {
                port: OK.name,
                to: op.ok,
                bind: Some(json!({"status": c.status, "headers": c.headers, "body": c.body})),
            }),
            None => {
                let m = format!("no canned answer for {method} {}", shown_url(&url));
                Err(fail(cx, HttpFailure::Refused, m))
            }
        };
    }
    let left = cx.deadline.saturating_duration_since(Instant::now());
    let mut req = outbound
        .client
        .request(op.method.clone(), url)
        .headers(headers)
        .timeout(op.timeout.min(left));
    if let Some(b) = body {
        req = req.body(b);
    }
    let sent = |cx: &Cx<'_>, e: reqwest::Error| match refusal(&e) {
        Some(r) => fail(cx, HttpFailure::Refused, r.0.clone()),
        None if e.is_timeout() => fail(
            cx,
            HttpFailure::Timeout,
            format!("{host} did not answer within the node's timeout"),
        ),
        None => fail(
            cx,
            HttpFailure::Failed,
            format!("{host}: {}", chain(&e.without_url())),
        ),
    };
    let mut resp = req.send().await.map_err(|e| sent(cx, e))?;
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        let m = format!("{host} sent a body larger than {MAX_RESPONSE_BYTES} bytes");
        return Err(fail(cx, HttpFailure::TooLarge, m));
    }
    let status = resp.status().as_u16();
    let mut out_headers = Map::new();
    for (name, value) in resp.headers() {
        let Ok(text) = value.to_str() else { continue };
        match out_headers.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(text);
            }
            _ => {
                out_headers.insert(name.as_str().to_string(), Value::String(text.into()));
            }
        }
    }
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_type);
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| sent(cx, e))? {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            let m = format!("{host} sent a body larger than {MAX_RESPONSE_BYTES} bytes");
            return Err(fail(cx, HttpFailure::TooLarge, m));
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = if bytes.is_empty() {
        Value::Null
    } else if is_json {
        serde_json::from_slice(&bytes).map_err(|e| {
            let m = format!("{host} said the body is JSON, but it is not: {e}");
            fail(cx, HttpFailure::BadResponse, m)
        })?
    } else {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    };
    Ok(Step::Next {
        port: OK.name,
        to: op.ok,
        bind: Some(json!({"status": status, "headers": out_headers, "body": body})),
    })
}

/// Text of a header or query value: strings as they are, numbers and booleans as JSON text,
/// `null` left out. Objects and arrays have no text form (the error names their kind).
fn scalar_text(v: &Value) -> Result<Option<String>, &'static str> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(_) | Value::Bool(_) => Ok(Some(v.to_string())),
        other => Err(kind_of(other)),
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The body bytes and their default content type.
fn encode_body(v: &Value, format: BodyFormat) -> Result<(Vec<u8>, &'static str), String> {
    match format {
        BodyFormat::Json => Ok((v.to_string().into_bytes(), "application/json")),
        BodyFormat::Text => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Ok((text.into_bytes(), "text/plain; charset=utf-8"))
        }
        BodyFormat::Form => {
            let Value::Object(map) = v else {
                return Err(format!("a form body must be an object, not {}", kind_of(v)));
            };
            let mut pairs = Vec::with_capacity(map.len());
            for (k, item) in map {
                match scalar_text(item) {
                    Ok(Some(text)) => pairs.push((k.as_str(), text)),
                    Ok(None) => {}
                    Err(kind) => return Err(format!("form field `{k}` cannot be {kind}")),
                }
            }
            let text = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
            Ok((text.into_bytes(), "application/x-www-form-urlencoded"))
        }
    }
}

/// `application/json`, `application/problem+json`, ... with any parameters.
fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The URL as a trace shows it: no credentials, no query values (they often carry keys).
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    shown.set_query(None);
    if names.is_empty() {
        shown.to_string()
    } else {
        let masked: Vec<String> = names.iter().map(|k| format!("{k}=***")).collect();
        format!("{shown}?{}", masked.join("&"))
    }
}

/// The error and its causes; the caller strips the URL first (its query may carry keys).
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use super::{HttpRequestOp, UrlSpec};
    use serde_json::json;

    fn node(extra: serde_json::Value) -> serde_json::Value {
        let mut n = json!({"type": "http.request", "url": "https://api.example.com/v1/items",
                           "as": "resp", "next": {"ok": "r"}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            n[k] = v.clone();
        }
        n
    }

    #[test]
    fn a_literal_url_and_header_names_are_parsed_once_at_compile_time() {
        let doc = flow_with(node(
            json!({"method": "POST", "headers": {"X-Api-Key": "k"},
                                        "timeout_ms": 2500}),
        ));
        let op: HttpRequestOp = op(&doc);
        assert!(matches!(&op.url, UrlSpec::Fixed(u) if u.host_str() == Some("api.example.com")));
        assert_eq!(op.method, http::Method::POST);
        assert_eq!(op.headers[0].0.as_str(), "x-api-key");
        assert_eq!(op.timeout, std::time::Duration::from_millis(2500));
    }

    #[test]
    fn a_computed_url_is_kept_for_run_time() {
        let doc = flow_with(node(json!({"url": {"$rhai": "request.body.url"}})));
        let op: HttpRequestOp = op(&doc);
        assert!(matches!(op.url, UrlSpec::Computed(_)));
    }

    #[test]
    fn bad_urls_are_reported_at_the_url() {
        for url in [
            json!("not a url"),
            json!("file:///etc/passwd"),
            json!(42),
            json!({"a": 1}),
        ] {
            let doc = flow_with(node(json!({ "url": url })));
            assert_eq!(
                problems(&doc),
                [("flow.bad_url", "/nodes/n/url".to_string())],
                "{url}"
            );
        }
    }

    #[test]
    fn headers_sluice_sets_itself_are_refused() {
        let doc = flow_with(node(
            json!({"headers": {"Content-Length": "1", "Host": "x", "Accept": "a"}}),
        ));
        assert_eq!(
            problems(&doc),
            [
                (
                    "flow.bad_header",
                    "/nodes/n/headers/Content-Length".to_string()
                ),
                ("flow.bad_header", "/nodes/n/headers/Host".to_string())
            ]
        );
    }

    #[test]
    fn method_timeout_and_header_names_are_checked_by_the_schema() {
        for extra in [
            json!({"method": "TRACE"}),
            json!({"timeout_ms": 60001}),
            json!({"timeout_ms": 0}),
            json!({"headers": {"bad header": "x"}}),
            json!({"body_format": "xml"}),
        ] {
            let found = problems(&flow_with(node(extra.clone())));
            assert!(
                !found.is_empty() && found.iter().all(|(c, _)| *c == "flow.schema"),
                "{extra}: {found:?}"
            );
        }
    }

    #[test]
    fn expressions_see_only_the_names_in_scope() {
        let doc = flow_with(node(json!({"query": {"q": {"$rhai": "resp.status"}}})));
        assert_eq!(
            problems(&doc),
            [("flow.rhai_syntax", "/nodes/n/query/q/$rhai".to_string())],
            "`resp` is set only after the node"
        );
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("Application/JSON; charset=utf-8"));
        assert!(is_json_type("application/problem+json"));
        assert!(!is_json_type("text/plain"));
        assert!(!is_json_type("application/jsonx"));
    }

    #[test]
    fn traces_show_urls_without_credentials_or_query_values() {
        let u =
            url::Url::parse("https://user:pw@api.example.com/v1/x?key=s3cret&a=1").expect("url");
        assert_eq!(shown_url(&u), "https://api.example.com/v1/x?key=***&a=***");
    }

    #[test]
    fn form_bodies_encode_objects_of_scalars() {
        let (bytes, ct) =
            encode_body(&json!({"a": "x y", "b": 2, "c": null}), BodyFormat::Form).expect("ok");
        assert_eq!(
            (String::from_utf8(bytes).expect("utf8"), ct),
            ("a=x+y&b=2".to_string(), "application/x-www-form-urlencoded")
        );
        assert!(encode_body(&json!([1]), BodyFormat::Form).is_err());
        assert!(encode_body(&json!({"a": {"b": 1}}), BodyFormat::Form).is_err());
    }
}
