//! `for_each`: runs its body, a graph of its own, once per item of an array, in order, inside
//! the request's transaction. Each iteration ends in `collect` (its result) or `fail` (which
//! ends the request). `ok` binds `as` to the array of results.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::Diagnostic;
use crate::flow::expr::RESERVED;
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "for_each",
    ports: &[Port {
        name: "ok",
        required: true,
        binds: true,
    }],
    binds: true,
    dynamic_ports: None,
    compile,
};

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

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
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
    let mut names = cx.names.clone();
    names.insert(cfg.item.clone());
    names.insert("index".into());
    let pointer = format!("{}/body", cx.pointer);
    let mut diags = Vec::new();
    let body = crate::flow::compile::compile_body(
        &cfg.body,
        &pointer,
        names,
        cx.depth + 1,
        cx.catalog,
        cx.out,
        &mut diags,
    );
    cx.body_diags.extend(diags);
    Some(Op::ForEach {
        items: items?,
        item: cfg.item,
        body: body?,
        ok: cx.required("ok"),
    })
}
