//! `db.aggregate`: counts, sums, averages, minimums and maximums over the rows of a managed
//! table, without SQL. The same `where` and `filter` as `db.query` (checked by the same code),
//! optional `group_by` columns with `order_by` and `limit`. `ok` binds `as` to one object
//! `{name: value}`, or with `group_by` to an array of `{group columns..., names...}`.
//!
//! The statement is built once at publish time by the table-query layer
//! (`tables::query::aggregate`) with the table's `list` rule ANDed in, so an aggregate never
//! counts rows its caller could not list. The JSON type of every value is fixed there and
//! described here at compile time ([`CompiledOp::output`]), so OpenAPI and later nodes see it.

use super::db_get::table_def;
use super::db_query::{
    DEFAULT_LIMIT, FilterValues, MAX_LIMIT, compile_filters, prepare_filters, rename_filter_fields,
    whole,
};
use super::reads::readable;
use crate::engine::run::{Cx, Step};
use crate::engine::sql::{self, BuildError, Prepared, Slot};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::seg;
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, Renames, rename_keys,
    rename_list, rename_name,
};
use crate::flow::plan::{ColumnValue, Filter};
use crate::tables::def::{Tables, nullable};
use crate::tables::query::{self, AggFn, AggKey, AggOrder, AggregateQuery};
use crate::tables::violation::Action;
use crate::tables::{FieldType, Ident, TableDef};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.aggregate",
    &[OK],
    compile,
    NodeOptions {
        rename: Some(rename),
        binds_rows: false,
        ..NodeOptions::DEFAULT
    }
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    #[serde(default, rename = "where")]
    filters: BTreeMap<String, Value>,
    filter: Option<Value>,
    #[serde(default)]
    group_by: Vec<String>,
    aggregates: BTreeMap<String, AggregateConfig>,
    #[serde(default)]
    order_by: Vec<Order>,
    limit: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateConfig {
    #[serde(rename = "fn")]
    func: String,
    column: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    key: String,
    #[serde(default)]
    desc: bool,
}

/// One compiled aggregate: its output name, function and column (`None`: every row).
#[derive(Debug)]
struct Aggregate {
    name: Ident,
    func: AggFn,
    column: Option<Ident>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let def = def.as_ref();
    let filters = compile_filters(cx, def, &cfg.filters, cfg.filter.as_ref());
    // The output object's properties: the group columns, then the aggregates.
    let mut props = Map::new();
    let group_by = compile_group_by(cx, def, &cfg.group_by, &mut props);
    let mut ok = filters.is_some() && group_by.is_some();
    let mut aggregates = Vec::new();
    for (name, a) in &cfg.aggregates {
        let field = format!("aggregates/{}", seg(name));
        match compile_aggregate(cx, def, &cfg.group_by, name, a, &field) {
            Some((aggregate, schema)) => {
                props.insert(name.clone(), schema);
                aggregates.push(aggregate);
            }
            None => ok = false,
        }
    }
    if cfg.aggregates.is_empty() {
        cx.problem(
            "flow.bad_option",
            "aggregates",
            "name at least one aggregate, e.g. {\"count\": {\"fn\": \"count\"}}",
        );
        ok = false;
    }
    let order = compile_order(cx, &cfg);
    let limit = compile_limit(cx, &cfg);
    ok &= order.is_some() && limit.is_some();

    let required: Vec<&String> = props.keys().collect();
    let object = json!({"type": "object", "properties": props, "required": required});
    let output = if cfg.group_by.is_empty() {
        object
    } else {
        json!({"type": "array", "items": object})
    };
    let (filters, filter) = filters?;
    ok.then(|| -> Op {
        Box::new(DbAggregateOp {
            table,
            filters,
            filter,
            group_by: group_by.unwrap_or_default(),
            aggregates,
            order: order.unwrap_or_default(),
            limit: limit.flatten(),
            output,
            ok: cx.required(OK.name),
        })
    })
}

/// The group columns (not password or json fields, each once), their schemas added to
/// `props`; `None` when one has a problem.
fn compile_group_by(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    names: &[String],
    props: &mut Map<String, Value>,
) -> Option<Vec<Ident>> {
    let mut ok = true;
    let mut group_by = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let field = format!("group_by/{i}");
        let Some(column) = cx.column(def, name, &field) else {
            ok = false;
            continue;
        };
        let problem = match def.and_then(|d| d.column_type(name)) {
            Some(FieldType::Password) => {
                readable(cx, def, name, &field, "grouped");
                true
            }
            Some(FieldType::Json) => {
                cx.problem(
                    "flow.bad_aggregate",
                    &field,
                    format!("`{name}` is a json field; json fields cannot be grouped"),
                );
                true
            }
            _ if group_by.contains(&column) => {
                cx.problem(
                    "flow.bad_option",
                    &field,
                    format!("`{name}` is grouped twice"),
                );
                true
            }
            _ => false,
        };
        if problem {
            ok = false;
            continue;
        }
        props.insert(name.clone(), column_schema(cx, def, name, false));
        group_by.push(column);
    }
    ok.then_some(group_by)
}

/// The order keys: each a group column or an aggregate name; only with groups.
fn compile_order(cx: &mut NodeCx<'_, Op>, cfg: &Config) -> Option<Vec<AggOrder>> {
    let mut ok = true;
    let mut order = Vec::new();
    for (i, o) in cfg.order_by.iter().enumerate() {
        let key = if let Some(g) = cfg.group_by.iter().position(|c| c == &o.key) {
            AggKey::Group(g)
        } else if let Some(a) = cfg.aggregates.keys().position(|n| n == &o.key) {
            AggKey::Aggregate(a)
        } else {
            cx.problem(
                "flow.bad_option",
                &format!("order_by/{i}/key"),
                format!(
                    "`{}` is neither a group_by column nor an aggregate name of this node",
                    o.key
                ),
            );
            ok = false;
            continue;
        };
        order.push(AggOrder { key, desc: o.desc });
    }
    if !cfg.order_by.is_empty() && cfg.group_by.is_empty() {
        cx.problem(
            "flow.bad_option",
            "order_by",
            "`order_by` orders or limits groups; it needs `group_by`",
        );
        ok = false;
    }
    ok.then_some(order)
}

/// The limit of groups (`Some(None)`: no groups, no limit); a literal one is checked now.
fn compile_limit(cx: &mut NodeCx<'_, Op>, cfg: &Config) -> Option<Option<Template>> {
    let limit = match (&cfg.limit, cfg.group_by.is_empty()) {
        (Some(_), true) => {
            cx.problem(
                "flow.bad_option",
                "limit",
                "`limit` orders or limits groups; it needs `group_by`",
            );
            return None;
        }
        (None, true) => return Some(None),
        (Some(l), false) => cx.template(l, "limit")?,
        (None, false) => Template::Literal(json!(DEFAULT_LIMIT)),
    };
    if let Template::Literal(l) = &limit
        && !l.as_i64().is_some_and(|n| (1..=MAX_LIMIT).contains(&n))
    {
        cx.problem(
            "flow.bad_option",
            "limit",
            format!("limit must be an integer from 1 to {MAX_LIMIT}, got {l}"),
        );
        return None;
    }
    Some(Some(limit))
}

/// Checks one aggregate named `name` (at `field`) and returns it with the schema of its value.
fn compile_aggregate(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    group_by: &[String],
    name: &str,
    a: &AggregateConfig,
    field: &str,
) -> Option<(Aggregate, Value)> {
    let out = match Ident::parse(name) {
        Ok(i) => Some(i),
        Err(e) => {
            cx.problem("flow.bad_name", field, e.to_string());
            None
        }
    };
    let mut ok = out.is_some();
    if group_by.iter().any(|g| g == name) {
        cx.problem(
            "flow.bad_option",
            field,
            format!("`{name}` is also a group_by column; give the aggregate another name"),
        );
        ok = false;
    }
    let Some(func) = AggFn::parse(&a.func) else {
        let names: Vec<&str> = AggFn::ALL.iter().map(|(n, _)| *n).collect();
        cx.problem(
            "flow.bad_aggregate",
            &format!("{field}/fn"),
            format!(
                "unknown function `{}`; use one of {}",
                a.func,
                names.join(", ")
            ),
        );
        return None;
    };
    let column_at = format!("{field}/column");
    let column = match &a.column {
        None if func == AggFn::Count => None,
        None => {
            cx.problem(
                "flow.bad_aggregate",
                field,
                format!("{} needs a column: {}", func.name(), func.needs()),
            );
            return None;
        }
        Some(c) => {
            let ident = cx.column(def, c, &column_at)?;
            match def.and_then(|d| d.column_type(c)) {
                Some(FieldType::Password) => {
                    readable(cx, def, c, &column_at, "aggregated");
                    return None;
                }
                Some(ty) if !func.fits(ty) => {
                    cx.problem(
                        "flow.bad_aggregate",
                        &column_at,
                        format!(
                            "{} needs {}; `{c}` is a {} field",
                            func.name(),
                            func.needs(),
                            ty.name()
                        ),
                    );
                    return None;
                }
                _ => Some(ident),
            }
        }
    };
    let ty = a
        .column
        .as_deref()
        .and_then(|c| def.and_then(|d| d.column_type(c)));
    let schema = match func {
        AggFn::Count => json!({"type": "integer"}),
        AggFn::Sum if ty == Some(FieldType::Integer) => json!({"type": ["integer", "null"]}),
        AggFn::Sum | AggFn::Avg => json!({"type": ["number", "null"]}),
        // The column's own type; null when no row has a value.
        AggFn::Min | AggFn::Max => match (def, a.column.as_deref()) {
            (Some(d), Some(c)) => column_schema(cx, Some(d), c, true),
            _ => json!({}),
        },
    };
    Some((
        Aggregate {
            name: out.filter(|_| ok)?,
            func,
            column,
        },
        schema,
    ))
}

/// The JSON Schema of column `name`'s values (open when the table is not known), with `null`
/// allowed when `or_null`.
fn column_schema(cx: &NodeCx<'_, Op>, def: Option<&TableDef>, name: &str, or_null: bool) -> Value {
    let Some(def) = def else {
        return json!({});
    };
    let target = def
        .field(name)
        .and_then(|f| f.table.as_ref())
        .and_then(|t| match t == &def.name {
            true => Some(def.id_type),
            false => cx.catalog?.table(t.as_str()).map(|d| d.id_type),
        });
    let mut s = def.column_schema(name, target).unwrap_or_else(|| json!({}));
    if or_null && s.get("type").is_some_and(Value::is_string) {
        nullable(&mut s);
    }
    s
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    // Order keys that name group columns follow them; aggregate names are the node's own.
    let grouped: Vec<String> = node
        .get("group_by")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    rename_keys(node, "where", r);
    if let Some(filter) = node.get_mut("filter") {
        rename_filter_fields(filter, r);
    }
    rename_list(node, "group_by", r);
    for a in node
        .get_mut("aggregates")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        rename_name(a, "column", r);
    }
    for term in node
        .get_mut("order_by")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if term
            .get("key")
            .and_then(Value::as_str)
            .is_some_and(|k| grouped.iter().any(|g| g == k))
        {
            rename_name(term, "key", r);
        }
    }
}

/// A compiled `db.aggregate`.
#[derive(Debug)]
pub(crate) struct DbAggregateOp {
    table: Ident,
    filters: Vec<ColumnValue>,
    filter: Option<Filter>,
    group_by: Vec<Ident>,
    aggregates: Vec<Aggregate>,
    order: Vec<AggOrder>,
    /// With `group_by` only.
    limit: Option<Template>,
    /// The schema of what `ok` binds.
    output: Value,
    ok: usize,
}

impl CompiledOp for DbAggregateOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn touches_db(&self) -> bool {
        true
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(self.output.clone()))
    }
}

impl Runnable for DbAggregateOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        self.statement(tables, false).map(Some)
    }

    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        self.statement(tables, rules).map(Some)
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, self))
    }
}

impl DbAggregateOp {
    /// The statement: `where` values, filter values, the limit, then the `list` rule's
    /// parameters ([`query::aggregate`]).
    fn statement(&self, tables: &Tables, rules: bool) -> Result<Prepared, BuildError> {
        let def = table_def(tables, &self.table)?;
        let rule = sql::rule_for(def, tables, "list", rules);
        let guard = rule.as_ref().map(sql::guard);
        let column = |name: &Ident| {
            query::column(def, tables, name.as_str())
                .ok_or_else(|| BuildError(format!("{}.{name}", def.name)))
        };
        let (equal, filter) = prepare_filters(def, tables, &self.filters, self.filter.as_ref())?;
        let group_by = self
            .group_by
            .iter()
            .map(column)
            .collect::<Result<Vec<_>, _>>()?;
        let aggregates = self
            .aggregates
            .iter()
            .map(|a| {
                Ok(query::Aggregate {
                    name: a.name.clone(),
                    func: a.func,
                    column: a.column.as_ref().map(column).transpose()?,
                })
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        let st = query::aggregate(AggregateQuery {
            def,
            equal,
            filter: filter.as_ref(),
            group_by: &group_by,
            aggregates: &aggregates,
            order: &self.order,
            limit: self.limit.is_some().then_some(Slot::Limit),
            guard: guard.as_ref().map(|g| g as _),
        })
        .map_err(|e| BuildError(format!("{}: {e}", def.name)))?;
        Ok(Prepared::new(st)
            .on(def, tables, Action::Read)
            .ruled(def, "list", rule.as_ref(), None))
    }
}

/// Evaluates the values, binds them to the prepared statement's parameters and binds the
/// statement's one JSON value.
async fn run(cx: &mut Cx<'_>, op: &DbAggregateOp) -> Result<Step, RunError> {
    let prepared = cx.prepared();
    let values = FilterValues::eval(cx, &op.filters, op.filter.as_ref()).await?;
    let limit = match &op.limit {
        Some(t) => Some(whole(cx, t, "limit", 1, MAX_LIMIT).await?),
        None => None,
    };
    let mut binds = Vec::with_capacity(prepared.slots.len());
    for slot in &prepared.slots {
        binds.push(match *slot {
            Slot::Where(..) | Slot::Cond(..) => values.bind(cx, *slot).await?,
            Slot::Limit => limit.map(|l| l.to_string()),
            // The rule's are bound by `Cx::fetch`; the others are other nodes' slots.
            _ => None,
        });
    }
    cx.note_input(|| json!({"where": values.equal, "filter": values.conditions, "limit": limit}));
    // The statement always yields a row, unless Postgres held it back for being over the
    // result cap (`tables::query::capped`).
    let Some(out) = cx.fetch(binds, false).await? else {
        return Err(RunError::ResultTooLarge {
            node: cx.node_id().to_string(),
            bytes: None,
            limit: cx.rt.max_result_bytes,
        });
    };
    Ok(Step::Next {
        port: OK.name,
        to: op.ok,
        bind: Some(out),
    })
}
