//! `db.query`: reads rows of a managed table. Equality `where`, a nested `filter` with the
//! table data API's operators, `order_by`, `limit`/`offset` or cursor paging, an optional
//! total, a column selection and referenced rows inlined by `include`. `ok` binds `as` to the
//! array of rows, or with `page: true` to `{"rows", "next_cursor"[, "total"]}`.
//!
//! Every name is checked here against the table; the statement is built once from the result
//! by the table-query layer (`tables::query::select_json`), its cursors are the layer's
//! [`Keyset`]s. A condition whose value is `null` at run time is skipped, so optional
//! request parameters need no branching.

use super::db_get::table_def;
use super::reads::{readable, sortable};
use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sql::{self, BuildError, CondParam, CursorSpec, Prepared, Slot};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::seg;
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, Renames, rename_keys,
    rename_list, rename_name,
};
use crate::flow::plan::{ClientSort, ColumnValue, Condition, Filter, FilterOp, OrderTerm, Query};
use crate::tables::def::Tables;
use crate::tables::query::{self, BadKeyset, JsonSelect, Keyset, OrderKey, Paging};
use crate::tables::violation::Action;
use crate::tables::{FieldType, Ident, TableDef};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.query",
    &[OK],
    compile,
    NodeOptions {
        rename: Some(rename),
        ..NodeOptions::DEFAULT
    }
);

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
    sort: Option<SortConfig>,
    limit: Option<Value>,
    offset: Option<Value>,
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    include: Vec<Value>,
    #[serde(default)]
    page: bool,
    #[serde(default)]
    count: bool,
    cursor: Option<Value>,
}

/// `sort`: the client's written order and the columns it may name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SortConfig {
    value: Value,
    allow: Vec<String>,
}

/// Columns a client sort may choose from: each allowed order is a statement of its own.
pub const MAX_SORTABLE: usize = 8;
/// Keys of a client sort (`-created_at,title` is two).
pub const MAX_CLIENT_SORT_KEYS: usize = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    column: String,
    #[serde(default)]
    desc: bool,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let def = def.as_ref();
    let mut ok = true;

    let filters = compile_filters(cx, def, &cfg.filters, cfg.filter.as_ref());
    ok &= filters.is_some();
    let mut order = Vec::new();
    for (i, o) in cfg.order_by.iter().enumerate() {
        match sortable(cx, def, &o.column, &format!("order_by/{i}/column")) {
            Some(column) => order.push(OrderTerm {
                column,
                desc: o.desc,
            }),
            None => ok = false,
        }
    }

    let sort = match &cfg.sort {
        Some(s) => {
            let mut allow: Vec<Ident> = Vec::new();
            if s.allow.is_empty() || s.allow.len() > MAX_SORTABLE {
                cx.problem(
                    "flow.bad_option",
                    "sort/allow",
                    format!(
                        "a client sort allows from 1 to {MAX_SORTABLE} columns, this one {}",
                        s.allow.len()
                    ),
                );
                ok = false;
            }
            for (i, name) in s.allow.iter().enumerate() {
                let field = format!("sort/allow/{i}");
                match sortable(cx, def, name, &field) {
                    Some(c) if allow.contains(&c) => {
                        cx.problem(
                            "flow.bad_option",
                            &field,
                            format!("`{name}` is allowed twice"),
                        );
                        ok = false;
                    }
                    Some(c) => allow.push(c),
                    None => ok = false,
                }
            }
            let value = cx.template(&s.value, "sort/value");
            ok &= value.is_some();
            value.map(|value| ClientSort { value, allow })
        }
        None => None,
    };

    let mut select = Vec::new();
    for (i, name) in cfg.select.iter().enumerate() {
        let field = format!("select/{i}");
        match cx.column(def, name, &field) {
            Some(c) if readable(cx, def, name, &field, "read") => select.push(c),
            _ => ok = false,
        }
    }

    let include = super::include::parse(cx, def, &cfg.include, "include");
    ok &= include.is_some();
    let include = include.unwrap_or_default();

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
    let (filters, filter) = filters?;
    let query = Query {
        table,
        filters,
        filter,
        order,
        sort,
        select,
        include,
        limit: limit?,
        offset: offset?,
        page: cfg.page,
        count: cfg.count,
        cursor,
    };
    ok.then(|| -> Op {
        Box::new(DbQueryOp {
            query,
            ok: cx.required(OK.name),
        })
    })
}

/// The `where` map and the `filter` tree of a reading node (`db.query`, `db.aggregate`),
/// checked against the table: every problem is reported; `None` when there was one.
pub(super) fn compile_filters(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    equal: &BTreeMap<String, Value>,
    filter: Option<&Value>,
) -> Option<(Vec<ColumnValue>, Option<Filter>)> {
    let mut ok = true;
    let filters = cx.column_values(def, equal, "where");
    for col in equal.keys() {
        ok &= readable(cx, def, col, &format!("where/{}", seg(col)), "filtered");
    }
    let filter = match filter {
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
    let filters = filters?;
    ok.then_some((filters, filter))
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    rename_keys(node, "where", r);
    for term in node
        .get_mut("order_by")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        rename_name(term, "column", r);
    }
    if let Some(sort) = node.get_mut("sort") {
        rename_list(sort, "allow", r);
    }
    rename_list(node, "select", r);
    if let Some(include) = node.get_mut("include") {
        super::include::rename(include, r);
    }
    if let Some(filter) = node.get_mut("filter") {
        rename_filter_fields(filter, r);
    }
}

/// Follows renames in the `field` of every condition of a filter.
pub(super) fn rename_filter_fields(f: &mut Value, renames: &[(&str, &str)]) {
    for key in ["and", "or"] {
        if let Some(items) = f.get_mut(key).and_then(Value::as_array_mut) {
            items
                .iter_mut()
                .for_each(|i| rename_filter_fields(i, renames));
        }
    }
    rename_name(f, "field", renames);
}

/// A compiled `db.query`.
#[derive(Debug)]
pub(crate) struct DbQueryOp {
    query: Query,
    ok: usize,
}

impl CompiledOp for DbQueryOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn touches_db(&self) -> bool {
        true
    }
    fn output(&self) -> OutputShape {
        let query = &self.query;
        let row = super::include::row_shape(query.table.as_str(), &query.select, &query.include);
        let rows = json!({"type": "array", "items": row});
        if !query.page {
            return OutputShape::Fixed(Some(rows));
        }
        let mut props = json!({
            "rows": rows,
            "next_cursor": {"type": ["string", "null"]},
        });
        let mut required = vec!["rows", "next_cursor"];
        if query.count {
            props["total"] = json!({"type": "integer"});
            required.push("total");
        }
        OutputShape::Fixed(Some(
            json!({"type": "object", "properties": props, "required": required}),
        ))
    }
}

impl Runnable for DbQueryOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        prepare(&self.query, tables, false).map(Some)
    }

    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        prepare(&self.query, tables, rules).map(Some)
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, &self.query, self.ok))
    }
}

fn is_text_like(ty: FieldType) -> bool {
    matches!(ty, FieldType::Text | FieldType::Email | FieldType::Enum)
}

/// Checks one filter node at `at` (a pointer suffix below the node), reporting every problem.
fn parse_filter(
    cx: &mut NodeCx<'_, Op>,
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
    cx: &mut NodeCx<'_, Op>,
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

/// The statement of `q` in its `order_by`, and with a client sort one more for every order
/// the sort allows ([`Prepared::orders`]).
fn prepare(q: &Query, tables: &Tables, rules: bool) -> Result<Prepared, BuildError> {
    let mut prepared = prepare_order(q, &q.order, tables, rules)?;
    if let Some(sort) = &q.sort {
        for order in client_orders(&sort.allow, MAX_CLIENT_SORT_KEYS) {
            let variant = prepare_order(q, &order, tables, rules)?;
            prepared.orders.push((sort_spec(&order), variant));
        }
        prepared.orders.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(prepared)
}

/// Every order of at most `max` distinct columns of `allow`, each ascending or descending;
/// `id`, being unique, only as the last key.
fn client_orders(allow: &[Ident], max: usize) -> Vec<Vec<OrderTerm>> {
    fn extend(
        allow: &[Ident],
        max: usize,
        prefix: &mut Vec<OrderTerm>,
        out: &mut Vec<Vec<OrderTerm>>,
    ) {
        if prefix.len() == max || prefix.last().is_some_and(|t| t.column.as_str() == "id") {
            return;
        }
        for column in allow {
            if prefix.iter().any(|t| &t.column == column) {
                continue;
            }
            for desc in [false, true] {
                prefix.push(OrderTerm {
                    column: column.clone(),
                    desc,
                });
                out.push(prefix.clone());
                extend(allow, max, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    extend(allow, max, &mut Vec::new(), &mut out);
    out
}

/// An order as a client writes it, in canonical form: `-created_at,title`.
fn sort_spec(order: &[OrderTerm]) -> String {
    order
        .iter()
        .map(|t| format!("{}{}", if t.desc { "-" } else { "" }, t.column))
        .collect::<Vec<_>>()
        .join(",")
}

/// The statement of `q` in `order`: parameters are `where` values, filter values, then limit
/// and offset, then the cursor keys ([`query::select_json`]).
fn prepare_order(
    q: &Query,
    order: &[OrderTerm],
    tables: &Tables,
    rules: bool,
) -> Result<Prepared, BuildError> {
    let def = table_def(tables, &q.table)?;
    let rule = sql::rule_for(def, tables, "list", rules);
    let guard = rule.as_ref().map(sql::guard);
    let included = super::include::IncludedRules::new(tables, rules);
    let include_guard =
        |table: &str, action: &str, alias: &str, params: &mut query::Params<Slot>| {
            included.guard(table, action, alias, params)
        };
    let column = |name: &str| {
        query::column(def, tables, name).ok_or_else(|| BuildError(format!("{}.{name}", def.name)))
    };
    let (equal, filter) = prepare_filters(def, tables, &q.filters, q.filter.as_ref())?;
    let order = order
        .iter()
        .map(|o| {
            Ok(OrderKey {
                column: column(o.column.as_str())?,
                desc: o.desc,
            })
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    // The keys: the order's, then the id.
    let keys = order.len() + 1;
    let paging = q.page.then(|| Paging {
        after: q
            .cursor
            .is_some()
            .then(|| (0..keys).map(Slot::CursorKey).collect()),
        count: q.count,
    });
    let st = query::select_json(JsonSelect {
        def,
        tables,
        equal,
        filter: filter.as_ref(),
        columns: &q.select,
        include: &q.include,
        order: &order,
        limit: Slot::Limit,
        offset: Slot::Offset,
        paging,
        guard: guard.as_ref().map(|g| g as _),
        include_guard: (!q.include.is_empty()).then_some(&include_guard as _),
    })
    .map_err(|e| BuildError(e.0))?;
    let mut prepared =
        Prepared::new(st)
            .on(def, tables, Action::Read)
            .ruled(def, "list", rule.as_ref(), None);
    // The included tables' rules come after the list rule, in the statement and in the name
    // the trace shows.
    included.note(&mut prepared.rule);
    if q.page {
        prepared.cursor = Some(CursorSpec {
            fingerprint: query::fingerprint(def, &order),
            keys,
        });
    }
    Ok(prepared)
}

/// The layer's `where` equalities and filter tree of a reading node: `where` value `i` is
/// bound from [`Slot::Where`] `i`, filter condition `i` from [`Slot::Cond`] `i`.
pub(super) type LayerFilters = (Vec<(query::Column, Slot)>, Option<query::Filter<Slot>>);

/// [`LayerFilters`] of `equal` and `filter` on `def`.
pub(super) fn prepare_filters(
    def: &TableDef,
    tables: &Tables,
    equal: &[ColumnValue],
    filter: Option<&Filter>,
) -> Result<LayerFilters, BuildError> {
    let equal = equal
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f.column.as_str();
            let column = query::column(def, tables, name)
                .ok_or_else(|| BuildError(format!("{}.{name}", def.name)))?;
            Ok((column, Slot::Where(i, sql::kind(def, name))))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let filter = match filter {
        Some(f) => Some(layer_filter(f, def, tables, &mut 0)?),
        None => None,
    };
    Ok((equal, filter))
}

/// A `filter` as the layer's filter tree: condition `i` (in [`Filter::conditions`] order) is
/// bound from [`Slot::Cond`] `i`.
fn layer_filter(
    f: &Filter,
    def: &TableDef,
    tables: &Tables,
    next: &mut usize,
) -> Result<query::Filter<Slot>, BuildError> {
    let mut group = |items: &[Filter]| {
        items
            .iter()
            .map(|f| layer_filter(f, def, tables, next))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match f {
        Filter::And(items) => query::Filter::And(group(items)?),
        Filter::Or(items) => query::Filter::Or(group(items)?),
        Filter::Cond(c) => {
            let i = *next;
            *next += 1;
            let name = c.column.as_str();
            let cast = def
                .cast_type(name, tables)
                .ok_or_else(|| BuildError(format!("{}.{name}", def.name)))?;
            let param = match c.op {
                FilterOp::In => CondParam::List,
                FilterOp::Contains | FilterOp::StartsWith => CondParam::Like {
                    contains: c.op == FilterOp::Contains,
                },
                FilterOp::IsNull => CondParam::Flag,
                _ => CondParam::Value(sql::kind(def, name)),
            };
            query::Filter::Cond(query::Cond {
                column: c.column.clone(),
                cast,
                op: c.op,
                value: Slot::Cond(i, param),
            })
        }
    })
}

/// The most rows one query returns.
pub const MAX_LIMIT: i64 = 1000;

/// Evaluates the values, binds them to the prepared statement's parameters (see [`Slot`]),
/// and shapes the result (the array, or a page with its cursor).
async fn run(cx: &mut Cx<'_>, q: &Query, ok: usize) -> Result<Step, RunError> {
    let (prepared, sort_value) = match &q.sort {
        Some(sort) => {
            let v = cx.eval(&sort.value).await?;
            (chosen_order(cx, cx.prepared(), sort, &v)?, v)
        }
        None => (cx.prepared(), Value::Null),
    };
    let values = FilterValues::eval(cx, &q.filters, q.filter.as_ref()).await?;
    let limit = whole(cx, &q.limit, "limit", 1, MAX_LIMIT).await?;
    let offset = whole(cx, &q.offset, "offset", 0, i64::MAX).await?;
    let cursor_value = match &q.cursor {
        Some(t) => cx.eval(t).await?,
        None => Value::Null,
    };
    let cursor = match &prepared.cursor {
        Some(spec) => decode_cursor(cx, &cursor_value, spec)?,
        None => None,
    };
    let mut binds = Vec::with_capacity(prepared.slots.len());
    for slot in &prepared.slots {
        binds.push(match *slot {
            Slot::Where(..) | Slot::Cond(..) => values.bind(cx, *slot).await?,
            Slot::Limit => Some(limit.to_string()),
            Slot::Offset => Some(offset.to_string()),
            Slot::CursorKey(i) => cursor
                .as_ref()
                .and_then(|k| k.keys.get(i).cloned().flatten()),
            // Slots of other nodes' statements; the rule's are bound by `Cx::fetch`.
            Slot::Id
            | Slot::Value(..)
            | Slot::Given(_)
            | Slot::Patch(..)
            | Slot::Email
            | Slot::Rule => None,
        });
    }
    cx.note_input(|| {
        json!({"where": values.equal, "filter": values.conditions, "limit": limit,
               "offset": offset, "cursor": cursor_value, "sort": sort_value})
    });
    // The statement's aggregate always yields a row, unless Postgres held it back for being
    // over the result cap (`tables::query::capped`).
    let Some(out) = cx.fetch_with(prepared, binds, false).await? else {
        return Err(RunError::ResultTooLarge {
            node: cx.node_id().to_string(),
            bytes: None,
            limit: cx.rt.max_result_bytes,
        });
    };
    let bind = match (q.page, &prepared.cursor) {
        (true, Some(spec)) => page(out, spec, q.count),
        _ => match out {
            Value::Array(_) => out,
            _ => Value::Array(Vec::new()),
        },
    };
    Ok(Step::Next {
        port: OK.name,
        to: ok,
        bind: Some(bind),
    })
}

/// The statement of the order a client wrote (`-created_at,title`); `null` or an empty text is
/// the node's `order_by`. A sort the node does not allow is the client's mistake (400).
fn chosen_order<'p>(
    cx: &Cx<'_>,
    default: &'p Prepared,
    sort: &ClientSort,
    v: &Value,
) -> Result<&'p Prepared, RunError> {
    let invalid = |message: String| RunError::InvalidValue {
        node: cx.node_id().to_string(),
        message,
    };
    let written = match v {
        Value::Null => return Ok(default),
        Value::String(s) if s.trim().is_empty() => return Ok(default),
        Value::String(s) => s.as_str(),
        _ => {
            return Err(invalid(
                "sort takes text: field names separated by commas, `-` for descending".into(),
            ));
        }
    };
    let allowed = || {
        sort.allow
            .iter()
            .map(Ident::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let terms = query::sort_terms(written, MAX_CLIENT_SORT_KEYS).map_err(|e| match e {
        // Echo no client text longer than a field name could be.
        query::SortSyntax::Twice(_) | query::SortSyntax::EmptyKey(_) if written.len() > 200 => {
            invalid("sort is not a list of field names".into())
        }
        e => invalid(e.to_string()),
    })?;
    for (i, t) in terms.iter().enumerate() {
        if !sort.allow.iter().any(|a| a.as_str() == t.name) {
            let name: String = t.name.chars().take(64).collect();
            return Err(invalid(format!(
                "cannot sort by `{name}`; sort by {}",
                allowed()
            )));
        }
        if t.name == "id" && i + 1 < terms.len() {
            return Err(invalid(
                "`id` is unique: it can only be the last sort key".into(),
            ));
        }
    }
    let spec = terms
        .iter()
        .map(|t| format!("{}{}", if t.desc { "-" } else { "" }, t.name))
        .collect::<Vec<_>>()
        .join(",");
    default
        .orders
        .binary_search_by(|(k, _)| k.as_str().cmp(&spec))
        .map(|i| &default.orders[i].1)
        .map_err(|_| invalid(format!("cannot sort by `{spec}`; sort by {}", allowed())))
}

/// The values of a reading node's `where` and `filter`, evaluated once per run, in the order
/// of their slots ([`Slot::Where`], [`Slot::Cond`]).
pub(super) struct FilterValues {
    pub(super) equal: Vec<Value>,
    pub(super) conditions: Vec<Value>,
    ops: Vec<FilterOp>,
}

impl FilterValues {
    /// Evaluates every value, refusing text no column can hold.
    pub(super) async fn eval(
        cx: &mut Cx<'_>,
        equal: &[ColumnValue],
        filter: Option<&Filter>,
    ) -> Result<FilterValues, RunError> {
        let mut equal_values = Vec::with_capacity(equal.len());
        for f in equal {
            let v = cx.eval(&f.value).await?;
            cx.check_storable(&v, &f.value, None, || format!("where/{}", f.column))?;
            equal_values.push(v);
        }
        let conditions = filter.map(Filter::conditions).unwrap_or_default();
        let mut values = Vec::with_capacity(conditions.len());
        for c in &conditions {
            let v = cx.eval(&c.value).await?;
            cx.check_storable(&v, &c.value, None, || "filter".into())?;
            values.push(v);
        }
        Ok(FilterValues {
            equal: equal_values,
            conditions: values,
            ops: conditions.iter().map(|c| c.op).collect(),
        })
    }

    /// The parameter of a [`Slot::Where`] or [`Slot::Cond`] slot (`None` for other slots).
    pub(super) async fn bind(&self, cx: &Cx<'_>, slot: Slot) -> Result<Option<String>, RunError> {
        match slot {
            Slot::Where(i, kind) => {
                let v = self.equal.get(i).unwrap_or(&Value::Null);
                cx.param(kind, v).await
            }
            Slot::Cond(i, conv) => {
                let v = self.conditions.get(i).unwrap_or(&Value::Null);
                let op = self.ops.get(i).copied().unwrap_or(FilterOp::Eq);
                match conv {
                    CondParam::Value(kind) => cx.param(kind, v).await,
                    other => condition_param(cx, op, other, v),
                }
            }
            _ => Ok(None),
        }
    }
}

/// `{"rows", "next_cursor"[, "total"]}` from the statement's `{"rows", "more", "last"[, "total"]}`.
fn page(mut out: Value, spec: &CursorSpec, count: bool) -> Value {
    let more = out.get("more").and_then(Value::as_bool).unwrap_or(false);
    let next_cursor = match out.get_mut("last").map(Value::take) {
        Some(Value::Array(keys)) if more => Value::String(encode_cursor(spec, keys)),
        _ => Value::Null,
    };
    let mut page = json!({
        "rows": out.get_mut("rows").map(Value::take).unwrap_or_else(|| json!([])),
        "next_cursor": next_cursor,
    });
    if count {
        page["total"] = out.get_mut("total").map(Value::take).unwrap_or(json!(0));
    }
    page
}

/// A cursor is opaque to clients: the layer's [`Keyset`] of the page's last row.
fn encode_cursor(spec: &CursorSpec, keys: Vec<Value>) -> String {
    Keyset {
        fingerprint: spec.fingerprint.clone(),
        keys: keys
            .into_iter()
            .map(|k| match k {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
    }
    .encode()
}

/// The keys of a cursor (`None` without one: the first page).
fn decode_cursor(cx: &Cx<'_>, v: &Value, spec: &CursorSpec) -> Result<Option<Keyset>, RunError> {
    let bad = |why: &dyn std::fmt::Display| RunError::InvalidCursor {
        node: cx.node_id().to_string(),
        message: format!("the cursor {why}"),
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Keyset::decode(s, &spec.fingerprint, spec.keys)
            .map(Some)
            .map_err(|e: BadKeyset| bad(&e)),
        _ => Err(bad(&"must be the text of a next_cursor")),
    }
}

/// The parameter of an `in`, `contains`, `starts_with` or `is_null` condition.
fn condition_param(
    cx: &Cx<'_>,
    op: FilterOp,
    conv: CondParam,
    v: &Value,
) -> Result<Option<String>, RunError> {
    let invalid = |message: String| RunError::InvalidValue {
        node: cx.node_id().to_string(),
        message,
    };
    match (conv, v) {
        (_, Value::Null) => Ok(None),
        (CondParam::Like { .. }, Value::String(s)) => Ok(Some(query::like_pattern(op, s))),
        (CondParam::Like { .. }, other) => {
            Err(invalid(format!("{} takes text, got {other}", op.name())))
        }
        (CondParam::List, Value::Array(items)) if items.len() > MAX_IN_VALUES => {
            Err(invalid(format!(
                "in takes at most {MAX_IN_VALUES} values, got {}",
                items.len()
            )))
        }
        (CondParam::List, list @ Value::Array(_)) => Ok(Some(list.to_string())),
        (CondParam::List, other) => Err(invalid(format!("in takes an array, got {other}"))),
        (CondParam::Flag, Value::Bool(_)) => Ok(bind_text(v)),
        (CondParam::Flag, other) => {
            Err(invalid(format!("is_null takes true or false, got {other}")))
        }
        (CondParam::Value(_), v) => Ok(bind_text(v)),
    }
}

/// A limit or offset: an integer within bounds (a client-supplied value out of bounds is the
/// client's mistake, so it is a 400).
pub(super) async fn whole(
    cx: &mut Cx<'_>,
    t: &Template,
    what: &str,
    min: i64,
    max: i64,
) -> Result<i64, RunError> {
    let v = cx.eval(t).await?;
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(RunError::InvalidValue {
            node: cx.node_id().to_string(),
            message: format!("{what} must be an integer from {min} to {max}, got {v}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(names: &[&str]) -> Vec<Ident> {
        names
            .iter()
            .map(|n| Ident::parse(n).expect("ident"))
            .collect()
    }

    #[test]
    fn client_orders_are_every_order_of_distinct_columns_with_id_only_last() {
        let specs = |allow: &[&str], max| -> Vec<String> {
            client_orders(&idents(allow), max)
                .iter()
                .map(|o| sort_spec(o))
                .collect()
        };
        assert_eq!(specs(&["a"], 2), ["a", "-a"]);
        assert_eq!(
            specs(&["a", "b"], 2),
            [
                "a", "a,b", "a,-b", "-a", "-a,b", "-a,-b", "b", "b,a", "b,-a", "-b", "-b,a",
                "-b,-a"
            ]
        );
        // `id` orders everything after it: nothing follows it.
        let with_id = specs(&["id", "a"], 2);
        assert!(with_id.contains(&"a,-id".to_string()));
        assert!(
            !with_id
                .iter()
                .any(|s| s.starts_with("id,") || s.starts_with("-id,"))
        );
        // The largest allow-list stays a bounded number of statements.
        let names: Vec<String> = (0..MAX_SORTABLE).map(|i| format!("c{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let n = MAX_SORTABLE;
        assert_eq!(
            specs(&names, MAX_CLIENT_SORT_KEYS).len(),
            2 * n + 4 * n * (n - 1)
        );
    }
}
