//! `collect`: ends one iteration of a `for_each` body with its result.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeType, Placement};
use crate::flow::schema::NodeSchema;
use serde::Deserialize;
use serde_json::Value;

pub static TYPE: NodeType<Op> = NodeType {
    name: "collect",
    ports: &[],
    binds: false,
    dynamic_ports: None,
    schema: NodeSchema::new(include_str!(
        "../../flows/schema/nodes/collect.v1.schema.json"
    )),
    nested: None,
    placement: Placement::BodyOnly("`collect` ends an iteration and belongs in a for_each body"),
    compile,
    rename: None,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    value: Value,
}

/// A compiled `collect`.
#[derive(Debug)]
pub struct CollectOp {
    value: Template,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    Some(Box::new(CollectOp {
        value: cx.template(&cfg.value, "value")?,
    }))
}

impl CompiledOp for CollectOp {
    fn type_name(&self) -> &'static str {
        TYPE.name
    }
    fn targets(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
}

impl Runnable for CollectOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move { Ok(Step::Collected(cx.eval(&self.value).await?)) })
    }
}
