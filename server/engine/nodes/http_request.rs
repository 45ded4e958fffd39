//! `http.request` at run time: builds the request from the compiled op, sends it through the
//! runtime's guarded client, and reads at most [`MAX_RESPONSE_BYTES`] of the answer.

use crate::engine::error::{HttpFailure, RunError};
use crate::engine::outbound::{MAX_RESPONSE_BYTES, refusal};
use crate::engine::run::{Cx, Step};
use crate::flow::nodes::http_request::parse_url;
use crate::flow::plan::{BodyFormat, HttpRequestOp, UrlSpec};
use http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value, json};
use std::time::Instant;

pub async fn run(cx: &mut Cx<'_>, op: &HttpRequestOp) -> Result<Step, RunError> {
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
        port: "ok",
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

fn kind_of(v: &Value) -> &'static str {
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
