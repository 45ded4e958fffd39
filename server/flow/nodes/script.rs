//! `script`: runs Rhai statements; `ok` binds `as` to the value of the last statement.
//! The script sees the same names as expressions, read-only.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

pub const TYPE: NodeType = NodeType {
    name: "script",
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
    code: String,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let at = format!("{}/code", cx.pointer);
    let ast = cx.expr.script(&cfg.code, &at)?;
    Some(Op::Script {
        ast: Arc::new(ast),
        ok: cx.required("ok"),
    })
}
