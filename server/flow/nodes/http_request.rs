//! `http.request`: calls an HTTP API. `ok` binds `as` to `{status, headers, body}` for any
//! response; refusals (non-public targets), network failures, timeouts and oversized responses
//! are failures (the `error` port). A literal URL and every header name are parsed here, once.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::expr::Template;
use crate::flow::plan::{BodyFormat, HttpRequestOp, Op, UrlSpec};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub const TYPE: NodeType = NodeType {
    name: "http.request",
    ports: &[Port {
        name: "ok",
        required: true,
        binds: true,
    }],
    binds: true,
    dynamic_ports: None,
    compile,
};

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

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
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
    Some(Op::HttpRequest(Box::new(HttpRequestOp {
        method: method?,
        url: url?,
        headers,
        query,
        body,
        body_format: cfg.body_format,
        timeout: Duration::from_millis(cfg.timeout_ms.clamp(1, MAX_TIMEOUT_MS)),
        ok: cx.required("ok"),
    })))
}

/// A literal URL is parsed and checked now; an expression is kept for run time.
fn url_spec(t: Template, cx: &mut NodeCx<'_>) -> Option<UrlSpec> {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use crate::flow::plan::{Op, UrlSpec};
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
        let Op::HttpRequest(op) = op(&doc) else {
            panic!("an http.request op")
        };
        assert!(matches!(&op.url, UrlSpec::Fixed(u) if u.host_str() == Some("api.example.com")));
        assert_eq!(op.method, http::Method::POST);
        assert_eq!(op.headers[0].0.as_str(), "x-api-key");
        assert_eq!(op.timeout, std::time::Duration::from_millis(2500));
    }

    #[test]
    fn a_computed_url_is_kept_for_run_time() {
        let doc = flow_with(node(json!({"url": {"$rhai": "request.body.url"}})));
        let Op::HttpRequest(op) = op(&doc) else {
            panic!("an http.request op")
        };
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
