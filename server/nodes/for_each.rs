//! `for_each`: runs its body, a graph of its own, once per item of an array, in order, inside
//! the request's transaction. Each iteration ends in `collect` (its result) or `fail` (which
//! ends the request). `ok` binds `as` to the array of results.

use crate::engine::run::{Cx, End, Step, walk_graph};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::Diagnostic;
use crate::flow::expr::{RESERVED, Template};
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port};
use serde::Deserialize;
use serde_json::Value;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "for_each",
    &[OK],
    compile,
    NodeOptions {
        nested: Some("body"),
        ..NodeOptions::DEFAULT
    }
);

/// The most items one `for_each` runs.
pub const MAX_ITEMS: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    items: Value,
    #[serde(default = "default_item")]
    item: String,
    body: Value,
}

fn default_item() -> String {
    "item".into()
}

/// A compiled `for_each`.
#[derive(Debug)]
pub(crate) struct ForEachOp {
    items: Template,
    item: String,
    /// Entry of the body in the plan's node list.
    body: usize,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let items = cx.template(&cfg.items, "items");
    if RESERVED.contains(&cfg.item.as_str()) || cfg.item == "index" {
        let at = format!("{}/item", cx.pointer);
        cx.expr.push(Diagnostic::new(
            "flow.reserved_name",
            at,
            format!("`{}` is a reserved name", cfg.item),
        ));
        return None;
    }
    let body = cx.compile_body(&cfg.body, "body", &[&cfg.item, "index"]);
    Some(Box::new(ForEachOp {
        items: items?,
        item: cfg.item,
        body: body?,
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for ForEachOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn runs_nested(&self) -> bool {
        true
    }
    fn body(&self) -> Option<usize> {
        Some(self.body)
    }
}

impl Runnable for ForEachOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, &self.items, &self.item, self.body, self.ok))
    }
}

/// The body runs once per item, with the item and its index in scope; names set inside the
/// body end with the iteration.
async fn run(
    cx: &mut Cx<'_>,
    items: &Template,
    item: &str,
    body: usize,
    ok: usize,
) -> Result<Step, RunError> {
    let list = match cx.eval(items).await? {
        Value::Array(a) => a,
        other => return Err(cx.type_error(format!("items must be an array, got {other}"))),
    };
    if list.len() > MAX_ITEMS {
        return Err(cx.type_error(format!(
            "for_each runs at most {MAX_ITEMS} items, got {}",
            list.len()
        )));
    }
    let me = cx.node;
    let mut results = Vec::with_capacity(list.len());
    for (i, value) in list.into_iter().enumerate() {
        let mark = cx.bound_mark();
        cx.bind(item, value);
        cx.bind("index", Value::from(i));
        let end = walk_graph(cx, body, None).await;
        cx.rewind(mark);
        cx.node = me;
        match end? {
            End::Collected(v) => results.push(v),
            // A `fail` inside the body ends the whole request.
            End::Respond { response, .. } => return Ok(Step::Done(response)),
        }
    }
    Ok(Step::Next {
        port: OK.name,
        to: ok,
        bind: Some(Value::Array(results)),
    })
}
