//! `collect`: ends one iteration of a `for_each` body with its result.

use super::{NodeCx, NodeType};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "collect",
    ports: &[],
    binds: false,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    value: Value,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    Some(Op::Collect {
        value: cx.template(&cfg.value, "value")?,
    })
}
