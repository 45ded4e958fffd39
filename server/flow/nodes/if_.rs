//! `if`: evaluates a boolean condition and fires `then` or `else`.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "if",
    ports: &[
        Port {
            name: "then",
            required: true,
            binds: false,
        },
        Port {
            name: "else",
            required: true,
            binds: false,
        },
    ],
    binds: false,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    condition: Value,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let condition = cx.template(&cfg.condition, "condition")?;
    Some(Op::If {
        condition,
        then: cx.required("then"),
        otherwise: cx.required("else"),
    })
}
