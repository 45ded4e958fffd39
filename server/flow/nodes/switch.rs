//! `switch`: compares a value with each case's literal, in order, and fires the first case
//! port that matches, else `default`. Each case is a port of its own, named by the config.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "switch",
    ports: &[Port {
        name: "default",
        required: true,
        binds: false,
    }],
    binds: false,
    dynamic_ports: Some(case_ports),
    compile,
};

fn case_ports(node: &Value) -> Vec<String> {
    node.get("cases")
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    value: Value,
    cases: serde_json::Map<String, Value>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let value = cx.template(&cfg.value, "value");
    let mut cases: Vec<(Value, usize)> = Vec::new();
    for (port, literal) in &cfg.cases {
        if port == "default" || port == "error" {
            let at = format!("{}/cases/{}", cx.pointer, seg(port));
            cx.expr.push(Diagnostic::new(
                "flow.bad_config",
                at,
                format!("`{port}` is a port of every switch; name the case differently"),
            ));
            return None;
        }
        if let Some((earlier, _)) = cases.iter().find(|(v, _)| v == literal) {
            let at = format!("{}/cases/{}", cx.pointer, seg(port));
            cx.expr.push(Diagnostic::new(
                "flow.bad_config",
                at,
                format!("the value {earlier} is already a case"),
            ));
            return None;
        }
        cases.push((literal.clone(), cx.required(port)));
    }
    Some(Op::Switch {
        value: value?,
        cases,
        default: cx.required("default"),
    })
}
