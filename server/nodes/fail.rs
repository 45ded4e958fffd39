//! `fail`: ends the flow with an error in Sluice's envelope,
//! `{"error": {"code", "message"}}`. Writes made earlier in the request are rolled back.

use crate::engine::run::{Cx, Response, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, ResponseFact};
use crate::flow::plan::ContentType;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) static TYPE: NodeType<Op> = node_type!("fail", &[], compile, NodeOptions::UNBOUND);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "bad_request")]
    status: u16,
    code: String,
    message: Value,
}

fn bad_request() -> u16 {
    400
}

/// A compiled `fail`.
#[derive(Debug)]
pub(crate) struct FailOp {
    status: u16,
    code: String,
    message: Template,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let message = cx.template(&cfg.message, "message")?;
    Some(Box::new(FailOp {
        status: cfg.status,
        code: cfg.code,
        message,
    }))
}

impl CompiledOp for FailOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
    fn responses(&self) -> Vec<ResponseFact> {
        vec![ResponseFact::Fail {
            status: self.status,
            code: self.code.clone(),
        }]
    }
}

impl Runnable for FailOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let message = match cx.eval(&self.message).await? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let body = json!({"error": {"code": self.code, "message": message, "details": []}});
            Ok(Step::Done(Response {
                status: self.status,
                headers: Vec::new(),
                body,
                content_type: ContentType::Json,
            }))
        })
    }
}
