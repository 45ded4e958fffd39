//! `set`: computes a value and names it (`as`), for later nodes.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port};
use serde::Deserialize;
use serde_json::Value;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!("set", &[OK], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    value: Value,
}

/// A compiled `set`.
#[derive(Debug)]
pub(crate) struct SetOp {
    value: Template,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let value = cx.template(&cfg.value, "value")?;
    Some(Box::new(SetOp {
        value,
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for SetOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn output(&self) -> OutputShape {
        OutputShape::ConfigValue("value")
    }
}

impl Runnable for SetOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let v = cx.eval(&self.value).await?;
            Ok(Step::Next {
                port: OK.name,
                to: self.ok,
                bind: Some(v),
            })
        })
    }
}
