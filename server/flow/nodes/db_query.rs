//! `db.query`: reads rows of a managed table. Equality `where`, a nested `filter` with the
//! table data API's operators, `order_by`, `limit`/`offset` or cursor paging, an optional
//! total, a column selection and referenced rows inlined by `include`. `ok` binds `as` to the
//! array of rows, or with `page: true` to `{"rows", "next_cursor"[, "total"]}`.
//!
//! Every name is checked here against the table; the statement is built once from the result
//! (`engine::sql`). A condition whose value is `null` at run time is skipped, so optional
//! request parameters need no branching.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::seg;
use crate::flow::expr::Template;
use crate::flow::plan::{Condition, Filter, FilterOp, Op, OrderTerm, Query};
use crate::tables::{FieldType, TableDef};
use serde::Deserialize;
use serde_json::{Map, Value, json};
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
/// How deep `and`/`or` groups may nest (as in the table data API).
pub const MAX_DEPTH: usize = 4;
/// Conditions in one filter.
pub const MAX_CONDITIONS: usize = 50;
/// Values of a literal `in` list.
pub const MAX_IN_VALUES: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    #[serde(default, rename = "where")]
    filters: BTreeMap<String, Value>,
    filter: Option<Value>,
    #[serde(default)]
    order_by: Vec<Order>,
    limit: Option<Value>,
    offset: Option<Value>,
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    page: bool,
    #[serde(default)]
    count: bool,
    cursor: Option<Value>,
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
    let def = def.as_ref();
    let mut ok = true;

    let filters = cx.column_values(def, &cfg.filters, "where");
    for col in cfg.filters.keys() {
        ok &= readable(cx, def, col, &format!("where/{}", seg(col)), "filtered");
    }
    let filter = match &cfg.filter {
        Some(f) => {
            let mut count = 0;
            let parsed = parse_filter(cx, def, f, "filter", 0, &mut count);
            if count > MAX_CONDITIONS {
                cx.problem(
                    "flow.bad_filter",
                    "filter",
                    format!(
                        "a filter has at most {MAX_CONDITIONS} conditions, this one has {count}"
                    ),
                );
                ok = false;
            }
            ok &= parsed.is_some();
            parsed
        }
        None => None,
    };

    let mut order = Vec::new();
    for (i, o) in cfg.order_by.iter().enumerate() {
        let field = format!("order_by/{i}/column");
        let Some(column) = cx.column(def, &o.column, &field) else {
            ok = false;
            continue;
        };
        match def.and_then(|d| d.column_type(&o.column)) {
            Some(FieldType::Password) => {
                readable(cx, def, &o.column, &field, "sorted");
                ok = false;
            }
            Some(FieldType::Json) => {
                cx.problem(
                    "flow.unsortable_column",
                    &field,
                    format!("`{}` is a json field; json fields have no order", o.column),
                );
                ok = false;
            }
            _ => order.push(OrderTerm {
                column,
                desc: o.desc,
            }),
        }
    }

    let mut select = Vec::new();
    for (i, name) in cfg.select.iter().enumerate() {
        let field = format!("select/{i}");
        match cx.column(def, name, &field) {
            Some(c) if readable(cx, def, name, &field, "read") => select.push(c),
            _ => ok = false,
        }
    }

    let mut include = Vec::new();
    for (i, name) in cfg.include.iter().enumerate() {
        let field = format!("include/{i}");
        let Some(column) = cx.column(def, name, &field) else {
            ok = false;
            continue;
        };
        if let Some(d) = def
            && d.field(name).is_none_or(|f| f.ty != FieldType::Reference)
        {
            cx.problem(
                "flow.not_a_reference",
                &field,
                format!(
                    "`{name}` is not a reference field of `{}`; only references can be included",
                    d.name
                ),
            );
            ok = false;
            continue;
        }
        include.push(column);
    }

    for (given, field, why) in [
        (
            cfg.count,
            "count",
            "`count` adds `total` to a page; set `page: true`",
        ),
        (
            cfg.cursor.is_some(),
            "cursor",
            "a cursor continues a page; set `page: true` so the node returns `next_cursor`",
        ),
    ] {
        if given && !cfg.page {
            cx.problem("flow.bad_option", field, why);
            ok = false;
        }
    }
    if cfg.cursor.is_some() && cfg.offset.is_some() {
        cx.problem(
            "flow.bad_option",
            "offset",
            "page with either `offset` or `cursor`, not both",
        );
        ok = false;
    }

    let limit = cx.template(cfg.limit.as_ref().unwrap_or(&json!(DEFAULT_LIMIT)), "limit");
    let offset = cx.template(cfg.offset.as_ref().unwrap_or(&json!(0)), "offset");
    let cursor = match &cfg.cursor {
        Some(c) => Some(cx.template(c, "cursor")?),
        None => None,
    };
    let query = Query {
        table,
        filters: filters?,
        filter,
        order,
        select,
        include,
        limit: limit?,
        offset: offset?,
        page: cfg.page,
        count: cfg.count,
        cursor,
    };
    ok.then(|| Op::DbQuery {
        query: Box::new(query),
        ok: cx.required("ok"),
    })
}

/// Password fields are write-only: reads never filter, sort or return them.
fn readable(
    cx: &mut NodeCx<'_>,
    def: Option<&TableDef>,
    name: &str,
    field: &str,
    verb: &str,
) -> bool {
    if def.and_then(|d| d.column_type(name)) == Some(FieldType::Password) {
        cx.problem(
            "flow.password_column",
            field,
            format!("`{name}` is a password field; password fields cannot be {verb}"),
        );
        return false;
    }
    true
}

fn is_text_like(ty: FieldType) -> bool {
    matches!(ty, FieldType::Text | FieldType::Email | FieldType::Enum)
}

/// Checks one filter node at `at` (a pointer suffix below the node), reporting every problem.
fn parse_filter(
    cx: &mut NodeCx<'_>,
    def: Option<&TableDef>,
    v: &Value,
    at: &str,
    depth: usize,
    count: &mut usize,
) -> Option<Filter> {
    let Some(m) = v.as_object() else {
        cx.problem(
            "flow.bad_filter",
            at,
            "expected a condition or an and/or group",
        );
        return None;
    };
    for (key, and) in [("and", true), ("or", false)] {
        let Some(items) = m.get(key) else { continue };
        if depth + 1 > MAX_DEPTH {
            cx.problem(
                "flow.bad_filter",
                at,
                format!("and/or groups nest at most {MAX_DEPTH} levels deep"),
            );
            return None;
        }
        let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
        let mut children = Vec::with_capacity(items.len());
        let mut all = true;
        for (i, item) in items.iter().enumerate() {
            match parse_filter(cx, def, item, &format!("{at}/{key}/{i}"), depth + 1, count) {
                Some(f) => children.push(f),
                None => all = false,
            }
        }
        return all.then_some(if and {
            Filter::And(children)
        } else {
            Filter::Or(children)
        });
    }
    *count += 1;
    condition(cx, def, m, at)
}

fn condition(
    cx: &mut NodeCx<'_>,
    def: Option<&TableDef>,
    m: &Map<String, Value>,
    at: &str,
) -> Option<Filter> {
    let name = m.get("field").and_then(Value::as_str).unwrap_or_default();
    let op_name = m.get("op").and_then(Value::as_str).unwrap_or_default();
    let raw = m.get("value").unwrap_or(&Value::Null);
    let column = cx.column(def, name, &format!("{at}/field"));
    let op = FilterOp::parse(op_name);
    if op.is_none() {
        let names: Vec<&str> = FilterOp::ALL.iter().map(|(n, _)| *n).collect();
        cx.problem(
            "flow.bad_filter",
            &format!("{at}/op"),
            format!("unknown op `{op_name}`; use one of {}", names.join(", ")),
        );
    }
    let value = cx.template(raw, &format!("{at}/value"));
    let (column, op, value) = (column?, op?, value?);
    let mut ok = readable(cx, def, name, &format!("{at}/field"), "filtered");
    let ty = def.and_then(|d| d.column_type(name));
    let op_at = format!("{at}/op");
    match (op, ty) {
        (FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge, Some(t))
            if ok && !t.is_ordered() =>
        {
            cx.problem(
                "flow.bad_filter",
                &op_at,
                format!("`{name}` has no order, so it cannot be compared with {op_name}"),
            );
            ok = false;
        }
        (FilterOp::Contains | FilterOp::StartsWith, Some(t)) if ok && !is_text_like(t) => {
            cx.problem(
                "flow.bad_filter",
                &op_at,
                format!("{op_name} applies to text, email and enum fields; `{name}` is not one"),
            );
            ok = false;
        }
        _ => {}
    }
    if let Template::Literal(lit) = &value {
        let value_at = format!("{at}/value");
        let problem = match (op, lit) {
            (_, Value::Null) => Some(
                "a literal null would always skip this condition; use {\"op\": \"is_null\", \"value\": true}"
                    .to_string(),
            ),
            (FilterOp::IsNull, v) if !v.is_boolean() => Some("is_null takes true or false".into()),
            (FilterOp::In, Value::Array(a)) if a.len() > MAX_IN_VALUES => {
                Some(format!("in takes at most {MAX_IN_VALUES} values"))
            }
            (FilterOp::In, v) if !v.is_array() => Some("in takes an array of values".into()),
            (FilterOp::Contains | FilterOp::StartsWith, v) if !v.is_string() => {
                Some(format!("{op_name} takes text"))
            }
            _ => None,
        };
        if let Some(p) = problem {
            cx.problem("flow.bad_filter", &value_at, p);
            ok = false;
        }
    }
    ok.then_some(Filter::Cond(Condition { column, op, value }))
}
