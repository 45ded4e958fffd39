//! `collect`: ends one iteration of a `for_each` body with its result.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Placement};
use serde::Deserialize;
use serde_json::Value;

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "collect",
    &[],
    compile,
    NodeOptions {
        placement: Placement::BodyOnly(
            "`collect` ends an iteration and belongs in a for_each body"
        ),
        ..NodeOptions::UNBOUND
    }
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    value: Value,
}

/// A compiled `collect`.
#[derive(Debug)]
pub(crate) struct CollectOp {
    value: Template,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    Some(Box::new(CollectOp {
        value: cx.template(&cfg.value, "value")?,
    }))
}

impl CompiledOp for CollectOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
}

impl Runnable for CollectOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move { Ok(Step::Collected(cx.eval(&self.value).await?)) })
    }
}
