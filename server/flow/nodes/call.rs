//! `call`: runs a published function flow (a flow without an endpoint) with `input` as its
//! `request.body`, in the same transaction and under the same deadline. `ok` binds `as` to
//! the body of the function's `respond`; a function that ends in `fail` (or a status of 400
//! or more) fails the call with that status, code and message.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::Diagnostic;
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "call",
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
    flow: String,
    #[serde(default)]
    input: Value,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let input = cx.template(&cfg.input, "input");
    if let Some(known) = cx.catalog.and_then(|c| c.function_exists(&cfg.flow))
        && !known
    {
        let at = format!("{}/flow", cx.pointer);
        cx.expr.push(Diagnostic::new(
            "flow.unknown_function",
            at,
            format!("there is no published function flow `{}`", cfg.flow),
        ));
        return None;
    }
    Some(Op::Call {
        flow: cfg.flow,
        input: input?,
        ok: cx.required("ok"),
    })
}
