//! `db.query`: reads rows matching equality filters, ordered, limited. `ok` binds `as` to the
//! array of rows.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::{Op, OrderTerm};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const TYPE: NodeType = NodeType {
    name: "db.query",
    ports: &[Port {
        name: "ok",
        required: true,
        binds: true,
    }],
    binds: true,
    dynamic_ports: None,
    compile,
};

/// Rows returned when the flow gives no limit.
pub const DEFAULT_LIMIT: i64 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    #[serde(default, rename = "where")]
    filters: BTreeMap<String, Value>,
    #[serde(default)]
    order_by: Vec<Order>,
    limit: Option<Value>,
    offset: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    column: String,
    #[serde(default)]
    desc: bool,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let filters = cx.column_values(def.as_ref(), &cfg.filters, "where");
    let mut order = Some(Vec::new());
    for (i, o) in cfg.order_by.iter().enumerate() {
        match (
            cx.column(def.as_ref(), &o.column, &format!("order_by/{i}/column")),
            order.as_mut(),
        ) {
            (Some(column), Some(list)) => list.push(OrderTerm {
                column,
                desc: o.desc,
            }),
            _ => order = None,
        }
    }
    let limit = cx.template(cfg.limit.as_ref().unwrap_or(&json!(DEFAULT_LIMIT)), "limit");
    let offset = cx.template(cfg.offset.as_ref().unwrap_or(&json!(0)), "offset");
    Some(Op::DbQuery {
        table,
        filters: filters?,
        order: order?,
        limit: limit?,
        offset: offset?,
        ok: cx.required("ok"),
    })
}
