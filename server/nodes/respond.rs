//! `respond`: ends the flow with a status, headers and a body: JSON by default, or a string
//! sent as `text/plain` or `text/html` (`content_type`).

use super::http_request::kind_of;
use crate::engine::RunError;
use crate::engine::run::{Cx, Response, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::Diagnostic;
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Placement, ResponseFact};
use crate::flow::plan::ContentType;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "respond",
    &[],
    compile,
    NodeOptions {
        placement: Placement::TopOnly(
            "a for_each body cannot respond; `collect` a value or `fail`"
        ),
        ..NodeOptions::UNBOUND
    }
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "ok_status")]
    status: u16,
    /// Names are literal; values are text or expressions (`{"$rhai": ...}`).
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    #[serde(default)]
    body: Value,
    #[serde(default)]
    content_type: ContentType,
    /// A JSON Schema of the body: shown in the OpenAPI document, checked by debug runs and
    /// flow tests (never on a request's path).
    #[serde(default)]
    schema: Option<Value>,
}

fn ok_status() -> u16 {
    200
}

/// A header value of a `respond`.
#[derive(Debug)]
enum HeaderValue {
    Text(String),
    Computed(Template),
}

/// A compiled `respond`.
#[derive(Debug)]
pub(crate) struct RespondOp {
    status: u16,
    /// Literal values are kept as text; expressions are evaluated per response.
    headers: Vec<(String, HeaderValue)>,
    body: Template,
    content_type: ContentType,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let body = cx.template(&cfg.body, "body");
    if let Some(schema) = &cfg.schema {
        let at = format!("{}/schema", cx.pointer);
        if cfg.content_type != ContentType::Json {
            cx.expr.push(Diagnostic::new(
                "flow.bad_schema",
                at,
                "a body schema is for JSON bodies (content_type json)",
            ));
        } else if let Err(e) = crate::flow::schema::user_validator(schema) {
            cx.expr
                .push(Diagnostic::new("flow.bad_schema", at, e.to_string()));
        }
    }
    let mut headers = Vec::new();
    for (name, value) in &cfg.headers {
        let field = format!("headers/{}", crate::flow::diag::seg(name));
        match value {
            Value::String(text) => headers.push((name.clone(), HeaderValue::Text(text.clone()))),
            v @ (Value::Number(_) | Value::Bool(_)) => {
                headers.push((name.clone(), HeaderValue::Text(v.to_string())))
            }
            other => {
                let t = cx.template(other, &field)?;
                headers.push((name.clone(), HeaderValue::Computed(t)));
            }
        }
    }
    let body = body?;
    Some(Box::new(RespondOp {
        status: cfg.status,
        headers,
        body,
        content_type: cfg.content_type,
    }))
}

impl CompiledOp for RespondOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
    fn ends_cleanly(&self) -> bool {
        self.status < 400
            && self.body.cannot_fail()
            && self
                .headers
                .iter()
                .all(|(_, v)| matches!(v, HeaderValue::Text(_)))
    }
    fn is_respond(&self) -> bool {
        true
    }
    fn responses(&self) -> Vec<ResponseFact> {
        vec![ResponseFact::Respond {
            status: self.status,
            content_type: self.content_type,
            headers: self.headers.iter().map(|(h, _)| h.clone()).collect(),
        }]
    }
}

impl Runnable for RespondOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let mut headers = Vec::with_capacity(self.headers.len());
            for (name, value) in &self.headers {
                let text = match value {
                    HeaderValue::Text(t) => t.clone(),
                    HeaderValue::Computed(t) => match cx.eval(t).await? {
                        Value::Null => continue,
                        Value::String(s) => s,
                        v @ (Value::Number(_) | Value::Bool(_)) => v.to_string(),
                        other => {
                            return Err(RunError::Type {
                                node: cx.node_id().to_string(),
                                message: format!(
                                    "header `{name}` must be text, a number or a boolean, not {}",
                                    kind_of(&other)
                                ),
                            });
                        }
                    },
                };
                // A computed value must not end the header and start another.
                if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                    return Err(RunError::Type {
                        node: cx.node_id().to_string(),
                        message: format!("header `{name}` cannot carry a line break or NUL"),
                    });
                }
                headers.push((name.clone(), text));
            }
            let mut body = cx.eval(&self.body).await?;
            // Text and HTML bodies are strings; anything else is sent as its JSON text.
            if self.content_type != ContentType::Json && !body.is_string() {
                body = Value::String(body.to_string());
            }
            Ok(Step::Done(Response {
                status: self.status,
                headers,
                body,
                content_type: self.content_type,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{op, problems};
    use super::RespondOp;
    use crate::flow::plan::ContentType;
    use serde_json::json;

    fn doc(respond: serde_json::Value) -> serde_json::Value {
        json!({"format": "sluice.flow", "format_version": 1, "name": "t", "entry": "n",
               "nodes": {"n": respond}})
    }

    #[test]
    fn content_type_defaults_to_json_and_takes_text_or_html() {
        for (given, want) in [
            (None, ContentType::Json),
            (Some("text"), ContentType::Text),
            (Some("html"), ContentType::Html),
        ] {
            let mut node = json!({"type": "respond", "body": "hi"});
            if let Some(g) = given {
                node["content_type"] = json!(g);
            }
            assert_eq!(op::<RespondOp>(&doc(node)).content_type, want);
        }
        assert_eq!(
            problems(&doc(json!({"type": "respond", "content_type": "xml"}))),
            [("flow.schema", "/nodes/n/content_type".to_string())]
        );
    }

    #[test]
    fn header_values_are_text_or_expressions_and_names_stay_literal() {
        let node = json!({"type": "respond", "headers": {
            "Location": {"$rhai": "`/api/todos/${1 + 1}`"}, "X-Max": 5, "Cache-Control": "no-store"}});
        assert!(problems(&doc(node)).is_empty());
        assert_eq!(
            problems(&doc(
                json!({"type": "respond", "headers": {"X-A": {"nested": 1}}})
            )),
            [("flow.schema", "/nodes/n/headers/X-A".to_string())]
        );
        assert_eq!(
            problems(&doc(
                json!({"type": "respond", "headers": {"Bad Name": "x"}})
            )),
            [("flow.schema", "/nodes/n/headers".to_string())]
        );
        assert_eq!(
            problems(&doc(
                json!({"type": "respond", "headers": {"X-A": {"$rhai": "nope("}}})
            ))
            .len(),
            1
        );
    }

    #[test]
    fn a_body_schema_must_be_a_schema_of_a_json_body() {
        let ok = json!({"type": "respond", "body": {"$rhai": "1"}, "schema": {"type": "integer"}});
        assert!(problems(&doc(ok)).is_empty());
        assert_eq!(
            problems(&doc(json!({"type": "respond", "schema": {"type": 5}}))),
            [("flow.bad_schema", "/nodes/n/schema".to_string())]
        );
        assert_eq!(
            problems(&doc(
                json!({"type": "respond", "content_type": "text", "schema": {"type": "string"}})
            )),
            [("flow.bad_schema", "/nodes/n/schema".to_string())]
        );
    }
}
