//! `respond`: ends the flow with a status, headers and a JSON body.

use super::{NodeCx, NodeType};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TYPE: NodeType = NodeType {
    name: "respond",
    ports: &[],
    binds: false,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "ok_status")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
}

fn ok_status() -> u16 {
    200
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let body = cx.template(&cfg.body, "body")?;
    Some(Op::Respond {
        status: cfg.status,
        headers: cfg.headers.into_iter().collect(),
        body,
    })
}
