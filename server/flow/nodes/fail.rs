//! `fail`: ends the flow with an error in Sluice's envelope,
//! `{"error": {"code", "message"}}`. Writes made earlier in the request are rolled back.

use super::{NodeCx, NodeType};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "fail",
    ports: &[],
    binds: false,
    dynamic_ports: None,
    compile,
};

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

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let message = cx.template(&cfg.message, "message")?;
    Some(Op::Fail {
        status: cfg.status,
        code: cfg.code,
        message,
    })
}
