//! `set`: computes a value and names it (`as`), for later nodes.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "set",
    ports: &[Port {
        name: "ok",
        required: true,
        binds: true,
    }],
    binds: true,
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
    let value = cx.template(&cfg.value, "value")?;
    Some(Op::Set {
        value,
        ok: cx.required("ok"),
    })
}
