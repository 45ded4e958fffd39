//! `if`: evaluates a boolean condition and fires `then` or `else`.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port};
use serde::Deserialize;
use serde_json::Value;

const THEN: Port = Port::branch("then");
const ELSE: Port = Port::branch("else");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("if", &[THEN, ELSE], compile, NodeOptions::UNBOUND);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    condition: Value,
}

/// A compiled `if`.
#[derive(Debug)]
pub(crate) struct IfOp {
    condition: Template,
    then: usize,
    otherwise: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let condition = cx.template(&cfg.condition, "condition")?;
    Some(Box::new(IfOp {
        condition,
        then: cx.required(THEN.name),
        otherwise: cx.required(ELSE.name),
    }))
}

impl CompiledOp for IfOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(THEN.name, self.then), (ELSE.name, self.otherwise)]
    }
}

impl Runnable for IfOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            match cx.eval(&self.condition).await? {
                Value::Bool(b) => Ok(Step::Next {
                    port: if b { THEN.name } else { ELSE.name },
                    to: if b { self.then } else { self.otherwise },
                    bind: None,
                }),
                other => {
                    Err(cx.type_error(format!("condition must be true or false, got {other}")))
                }
            }
        })
    }
}
