//! `switch`: compares a value with each case's literal, in order, and fires the first case
//! port that matches, else `default`. Each case is a port of its own, named by the config.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, ERROR_PORT, NodeCx, NodeOptions, NodeType, Port};
use serde::Deserialize;
use serde_json::Value;

const DEFAULT: Port = Port::branch("default");
/// How traces and plans name the port of any case (its own name only the document knows).
const CASE: &str = "case";

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "switch",
    &[DEFAULT],
    compile,
    NodeOptions {
        dynamic_ports: Some(case_ports),
        ..NodeOptions::UNBOUND
    }
);

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

/// A compiled `switch`.
#[derive(Debug)]
pub(crate) struct SwitchOp {
    value: Template,
    /// The literal of each case and its port's target, in order.
    cases: Vec<(Value, usize)>,
    default: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let value = cx.template(&cfg.value, "value");
    let mut cases: Vec<(Value, usize)> = Vec::new();
    for (port, literal) in &cfg.cases {
        if port == DEFAULT.name || port == ERROR_PORT.name {
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
    Some(Box::new(SwitchOp {
        value: value?,
        cases,
        default: cx.required(DEFAULT.name),
    }))
}

impl CompiledOp for SwitchOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        self.cases
            .iter()
            .map(|(_, t)| (CASE, *t))
            .chain([(DEFAULT.name, self.default)])
            .collect()
    }
}

impl Runnable for SwitchOp {
    /// The first case whose literal equals the value (numbers by value).
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let v = cx.eval(&self.value).await?;
            cx.note_input(|| v.clone());
            let (cases, default) = (&self.cases, self.default);
            let to = cases
                .iter()
                // Numbers by value: `1.50` from a body matches a case `1.5`.
                .find(|(literal, _)| crate::tables::decimal::json_eq(literal, &v))
                .map(|(_, to)| *to)
                .unwrap_or(default);
            // The port's name is the case's name, which only the document knows; traces show
            // `case`.
            let port = if to == default && !cases.iter().any(|(_, t)| *t == default) {
                DEFAULT.name
            } else {
                CASE
            };
            Ok(Step::Next {
                port,
                to,
                bind: None,
            })
        })
    }
}
