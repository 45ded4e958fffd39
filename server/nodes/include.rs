//! `include` of `db.query` and `db.get`: related rows put into each row read, checked against
//! the tables when the flow is compiled. An item is the name of a reference field (the
//! referenced row replaces the id), `{"field", "include"}` (the same, with the referenced row's
//! own includes), or `{"table", "by", "as", "order_by", "limit", "include"}` (the rows of
//! `table` whose reference field `by` points at the row, as an array). The statement is built
//! by the table-query layer ([`query::Include`]): one statement, no query per row.
//!
//! Also the rules of the included tables a statement applies ([`IncludedRules`]) and the
//! output schema of rows with includes ([`row_shape`]).

use super::reads::sortable;
use crate::engine::Op;
use crate::engine::sql::{self, AppliedRule, Slot};
use crate::flow::node::{NodeCx, ROW_MARK, row_ref};
use crate::tables::def::Tables;
use crate::tables::query::{self, Include};
use crate::tables::rules::Condition;
use crate::tables::{FieldType, Ident, TableDef};
use serde_json::{Map, Value, json};
use std::cell::RefCell;

/// Includes of one node, every level counted.
pub const MAX_INCLUDES: usize = 8;
/// How deep includes nest (a review, its book, the book's author: 2).
pub const MAX_DEPTH: usize = 3;
/// The most rows of one one-to-many include, per row.
pub const MAX_MANY_LIMIT: u64 = 100;
/// Rows of a one-to-many include when it gives no limit.
pub const DEFAULT_MANY_LIMIT: u64 = 20;

/// Checks the `include` list of a node on table `def` at `at` (a pointer suffix below the
/// node), reporting every problem; `None` when there was one.
pub(super) fn parse(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    items: &[Value],
    at: &str,
) -> Option<Vec<Include>> {
    let mut count = 0;
    let parsed = level(cx, def, items, at, 1, &mut count);
    if count > MAX_INCLUDES {
        cx.problem(
            "flow.bad_option",
            at,
            format!("a node includes at most {MAX_INCLUDES} tables, every level counted; this one {count}"),
        );
        return None;
    }
    parsed
}

fn level(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    items: &[Value],
    at: &str,
    depth: usize,
    count: &mut usize,
) -> Option<Vec<Include>> {
    if depth > MAX_DEPTH {
        cx.problem(
            "flow.bad_option",
            at,
            format!("includes nest at most {MAX_DEPTH} levels deep"),
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut keys: Vec<Ident> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        *count += 1;
        let here = format!("{at}/{i}");
        let parsed = match item {
            Value::String(field) => one(cx, def, field, &[], &here, &here, depth, count),
            Value::Object(m) if m.contains_key("table") => many(cx, def, m, &here, depth, count),
            Value::Object(m) => {
                let field = m.get("field").and_then(Value::as_str).unwrap_or_default();
                let nested = m
                    .get("include")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                one(
                    cx,
                    def,
                    field,
                    nested,
                    &format!("{here}/field"),
                    &here,
                    depth,
                    count,
                )
            }
            _ => {
                cx.problem(
                    "flow.bad_option",
                    &here,
                    "an include is a reference field's name, {\"field\", \"include\"} or {\"table\", \"by\", ...}",
                );
                None
            }
        };
        let Some(inc) = parsed else {
            ok = false;
            continue;
        };
        let key = match &inc {
            Include::One { field, .. } => field.clone(),
            Include::Many { name, .. } => name.clone(),
        };
        if keys.contains(&key) {
            cx.problem(
                "flow.bad_option",
                &here,
                format!("`{key}` is included twice"),
            );
            ok = false;
            continue;
        }
        keys.push(key);
        out.push(inc);
    }
    ok.then_some(out)
}

/// A reference field of `def` (named at `pointer`), with the referenced row's own includes.
#[allow(clippy::too_many_arguments)]
fn one(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    field: &str,
    nested: &[Value],
    pointer: &str,
    at: &str,
    depth: usize,
    count: &mut usize,
) -> Option<Include> {
    let column = cx.column(def, field, pointer)?;
    let mut target = None;
    if let Some(d) = def {
        match d.field(field) {
            Some(f) if f.ty == FieldType::Reference => {
                target = f.table.as_ref().and_then(|t| cx.table_def(t.as_str()));
            }
            _ => {
                cx.problem(
                    "flow.not_a_reference",
                    pointer,
                    format!(
                        "`{field}` is not a reference field of `{}`; only references can be included this way",
                        d.name
                    ),
                );
                return None;
            }
        }
    }
    let include = level(
        cx,
        target.as_ref(),
        nested,
        &format!("{at}/include"),
        depth + 1,
        count,
    )?;
    Some(Include::One {
        field: column,
        include,
    })
}

/// The rows of another table that reference the row.
fn many(
    cx: &mut NodeCx<'_, Op>,
    def: Option<&TableDef>,
    m: &Map<String, Value>,
    at: &str,
    depth: usize,
    count: &mut usize,
) -> Option<Include> {
    for key in m.keys() {
        if !["table", "by", "as", "order_by", "limit", "include"].contains(&key.as_str()) {
            cx.problem(
                "flow.bad_option",
                &format!("{at}/{key}"),
                format!("a one-to-many include has no option `{key}`"),
            );
            return None;
        }
    }
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
    let table_name = text("table");
    let table = match Ident::parse(table_name) {
        Ok(t) => t,
        Err(e) => {
            cx.problem("flow.bad_name", &format!("{at}/table"), e.to_string());
            return None;
        }
    };
    let child = cx.table_def(table_name);
    if cx.has_catalog() && child.is_none() {
        cx.problem(
            "flow.unknown_table",
            &format!("{at}/table"),
            format!("there is no table `{table_name}`"),
        );
        return None;
    }
    let by = cx.column(child.as_ref(), text("by"), &format!("{at}/by"))?;
    if let (Some(c), Some(d)) = (&child, def) {
        let points_here = c
            .field(by.as_str())
            .is_some_and(|f| f.ty == FieldType::Reference && f.table.as_ref() == Some(&d.name));
        if !points_here {
            cx.problem(
                "flow.not_a_reference",
                &format!("{at}/by"),
                format!(
                    "`{}.{by}` is not a reference to `{}`; `by` names the field of `{}` that holds the row's id",
                    c.name, d.name, c.name
                ),
            );
            return None;
        }
    }
    let name = match m.get("as") {
        None => table.clone(),
        Some(v) => match v.as_str().map(Ident::parse) {
            Some(Ok(n)) => n,
            _ => {
                cx.problem(
                    "flow.bad_name",
                    &format!("{at}/as"),
                    "`as` is a name: lowercase letters, digits and _",
                );
                return None;
            }
        },
    };
    if let Some(d) = def
        && d.column_type(name.as_str()).is_some()
    {
        cx.problem(
            "flow.bad_option",
            &format!("{at}/as"),
            format!(
                "`{name}` is a column of `{}`; give the included rows another name with `as`",
                d.name
            ),
        );
        return None;
    }
    let mut ok = true;
    let mut order = Vec::new();
    for (i, o) in m
        .get("order_by")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let column = o.get("column").and_then(Value::as_str).unwrap_or_default();
        match sortable(
            cx,
            child.as_ref(),
            column,
            &format!("{at}/order_by/{i}/column"),
        ) {
            Some(c) => order.push((c, o.get("desc").and_then(Value::as_bool).unwrap_or(false))),
            None => ok = false,
        }
    }
    let limit = match m.get("limit") {
        None => DEFAULT_MANY_LIMIT,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_MANY_LIMIT).contains(&n) => n,
            _ => {
                cx.problem(
                    "flow.bad_option",
                    &format!("{at}/limit"),
                    format!("the limit of included rows is a number from 1 to {MAX_MANY_LIMIT}"),
                );
                ok = false;
                DEFAULT_MANY_LIMIT
            }
        },
    };
    let nested = m
        .get("include")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let include = level(
        cx,
        child.as_ref(),
        nested,
        &format!("{at}/include"),
        depth + 1,
        count,
    );
    let include = include?;
    ok.then_some(Include::Many {
        name,
        table,
        by,
        order,
        limit: u32::try_from(limit).unwrap_or(20),
        include,
    })
}

/// The output schema of a row of `table` read with `select` and `include`: the row's
/// reference when it has neither, else the [`ROW_MARK`] description the OpenAPI document
/// writes out in full.
pub(super) fn row_shape(table: &str, select: &[Ident], include: &[Include]) -> Value {
    if select.is_empty() && include.is_empty() {
        return row_ref(table);
    }
    let mut shape = Map::new();
    shape.insert(ROW_MARK.into(), json!(table));
    if !select.is_empty() {
        shape.insert("x-sluice-select".into(), json!(select));
    }
    if !include.is_empty() {
        shape.insert("x-sluice-include".into(), Value::Object(included(include)));
    }
    Value::Object(shape)
}

fn included(include: &[Include]) -> Map<String, Value> {
    include
        .iter()
        .map(|inc| match inc {
            Include::One { field, include } => {
                let mut m = Map::new();
                if !include.is_empty() {
                    m.insert("x-sluice-include".into(), Value::Object(included(include)));
                }
                (field.to_string(), Value::Object(m))
            }
            Include::Many {
                name,
                table,
                include,
                ..
            } => {
                let mut m = Map::new();
                m.insert(ROW_MARK.into(), json!(table));
                if !include.is_empty() {
                    m.insert("x-sluice-include".into(), Value::Object(included(include)));
                }
                (name.to_string(), Value::Object(m))
            }
        })
        .collect()
}

/// The access rules of the tables a statement includes, as the builder asks for them (table
/// and action, in the order their parameters are added), kept to note in the statement's
/// [`AppliedRule`].
pub(super) struct IncludedRules<'t> {
    tables: &'t Tables,
    rules: bool,
    asked: RefCell<Vec<(String, Condition)>>,
}

impl<'t> IncludedRules<'t> {
    /// `rules`: whether access rules apply to the node at all.
    pub(super) fn new(tables: &'t Tables, rules: bool) -> IncludedRules<'t> {
        IncludedRules {
            tables,
            rules,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// The guard the table-query layer renders an included table's rule with.
    pub(super) fn guard(
        &self,
        table: &str,
        action: &str,
        alias: &str,
        params: &mut query::Params<Slot>,
    ) -> Option<String> {
        let def = self.tables.get(table)?;
        let rule = sql::rule_for(def, self.tables, action, self.rules)?;
        let text = rule.sql(alias, params, &|_| Slot::Rule);
        self.asked
            .borrow_mut()
            .push((format!("{table}.{action}"), rule));
        Some(text)
    }

    /// Adds the included tables' rules to the statement's rule: their parameters after its
    /// own, their names after its name.
    pub(super) fn note(self, rule: &mut Option<AppliedRule>) {
        let asked = self.asked.into_inner();
        if asked.is_empty() {
            return;
        }
        let applied = rule.get_or_insert_with(|| AppliedRule {
            name: String::new(),
            params: Vec::new(),
            create: None,
            writable: None,
        });
        let mut names: Vec<String> = (!applied.name.is_empty())
            .then(|| applied.name.clone())
            .into_iter()
            .collect();
        for (name, rule) in asked {
            applied.params.extend(rule.params());
            if !names.contains(&name) {
                names.push(name);
            }
        }
        applied.name = names.join(", ");
    }
}

/// Follows a rename of the node's own table's columns in its include list: the reference
/// fields named at the top level. Nested names belong to other tables.
pub(super) fn rename(include: &mut Value, renames: &[(&str, &str)]) {
    for item in include.as_array_mut().into_iter().flatten() {
        match item {
            Value::String(_) => {
                if let Some((_, to)) = renames.iter().find(|(f, _)| item == *f) {
                    *item = Value::String(to.to_string());
                }
            }
            Value::Object(_) if item.get("table").is_none() => {
                crate::flow::node::rename_name(item, "field", renames);
            }
            _ => {}
        }
    }
}
