//! The one table-query layer for managed tables (schema `app`): turns a table definition plus
//! the shape of a request (filter tree, order, keyset cursor, limit, writes) into statement
//! text and parameter slots. Both the data API (`tables::rows`) and database nodes build their
//! statements here, so filters, cursors, row JSON and write statements mean the same in both.
//!
//! Pure: no sqlx, no IO, no flow or engine types. Identifiers reach SQL text only as validated
//! [`Ident`]s, always quoted; values only as `$n::type` parameters. What a parameter is bound to
//! is the caller's business: each `$n` is one slot of the caller's type `S` (the data API puts
//! concrete values in its slots, a node puts compiled templates it evaluates per request), and
//! [`Slot`] tells the builder the little it needs to know about them.

use super::def::{SYSTEM_COLUMNS, TableDef, Tables};
use super::ident::Ident;
use super::types::FieldType;
use super::value::ColumnSpec;

mod aggregate;
mod cursor;
mod filter;
mod read;
mod write;

pub use aggregate::{AggFn, AggKey, AggOrder, Aggregate, AggregateQuery, BadAggregate, aggregate};
pub use cursor::{
    BadKeyset, Cursor, Keyset, MAX_SORT_KEYS, Sort, SortSyntax, SortTerm, decode_cursor,
    encode_cursor, fingerprint, sort_terms,
};
pub use filter::{Cond, Filter, compare_sql, param_cast, render_filter};
pub use read::{
    Include, IncludeGuard, JsonSelect, NotAReference, OrderKey, Paging, Select, count, credentials,
    get, get_with, select, select_json,
};
pub use write::{
    Patch, RESULT_CAP, RULE_DENIED, Returning, Write, capped, checked, delete, delete_many,
    guarded_row, insert, update, upsert,
};

/// A comparison of a filter condition: the operators of the data API and of `db.query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    IsNull,
}

impl FilterOp {
    /// Every operator with its name in requests and flow documents.
    pub const ALL: [(&'static str, FilterOp); 10] = [
        ("eq", FilterOp::Eq),
        ("ne", FilterOp::Ne),
        ("lt", FilterOp::Lt),
        ("le", FilterOp::Le),
        ("gt", FilterOp::Gt),
        ("ge", FilterOp::Ge),
        ("in", FilterOp::In),
        ("contains", FilterOp::Contains),
        ("starts_with", FilterOp::StartsWith),
        ("is_null", FilterOp::IsNull),
    ];

    pub fn parse(s: &str) -> Option<FilterOp> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, op)| *op)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether the operator needs an ordered column (not json, not password).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge
        )
    }

    /// Whether the operator is a LIKE match (text, email and enum columns only).
    pub fn is_like(self) -> bool {
        matches!(self, FilterOp::Contains | FilterOp::StartsWith)
    }
}

/// Whether `contains`/`starts_with` apply to a column of this type.
pub fn is_text_like(ty: FieldType) -> bool {
    matches!(ty, FieldType::Text | FieldType::Email | FieldType::Enum)
}

/// Escapes `\`, `%` and `_` so a value matches literally inside a LIKE pattern (whose escape
/// character is Postgres' default, the backslash).
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The LIKE pattern a `contains` or `starts_with` value is bound as: the value matched
/// literally, anywhere (`contains`, which also ignores case) or at the start.
pub fn like_pattern(op: FilterOp, value: &str) -> String {
    let e = escape_like(value);
    if op == FilterOp::Contains {
        format!("%{e}%")
    } else {
        format!("{e}%")
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// What the builder needs to know about the caller's parameter slots.
pub trait Slot {
    /// The flag of an `is_null` condition when it is known while building: the condition is
    /// then written inline (`IS NULL`) and takes no parameter. `None` binds it per request.
    fn known_flag(&self) -> Option<bool> {
        None
    }

    /// Whether the value may turn out SQL NULL per request, which skips its condition (a
    /// node's template evaluating to `null`). Values known while building never skip.
    fn may_skip(&self) -> bool {
        false
    }

    /// Whether the slot of an `in` condition is bound as JSON text of an array (a node's
    /// binds are all text) instead of an array of the column's type.
    fn json_list(&self) -> bool {
        false
    }
}

/// A statement and the slot of each `$n`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<S> {
    pub text: String,
    pub slots: Vec<S>,
}

/// The parameters of a statement being built: each [`Params::add`] is the next `$n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params<S> {
    slots: Vec<S>,
}

impl<S> Default for Params<S> {
    fn default() -> Self {
        Params { slots: Vec::new() }
    }
}

impl<S> Params<S> {
    /// Adds a parameter; returns its placeholder with the cast, e.g. `$3::bigint`.
    pub fn add(&mut self, slot: S, cast: &str) -> String {
        self.slots.push(slot);
        format!("${}::{cast}", self.slots.len())
    }

    pub fn statement(self, text: String) -> Statement<S> {
        Statement {
            text,
            slots: self.slots,
        }
    }
}

/// An extra condition on row `t` that a statement is built with: a table's access rule
/// (`tables::rules`). Called after every other parameter is added, so its parameters are the
/// statement's last ones.
pub type Guard<'g, S> = &'g dyn Fn(&mut Params<S>) -> String;

/// `cond AND guard`, the guard rendered now.
fn guarded<S>(cond: String, guard: Option<Guard<'_, S>>, params: &mut Params<S>) -> String {
    match guard {
        Some(g) => format!("{cond} AND {}", g(params)),
        None => cond,
    }
}

// ---------------------------------------------------------------------------------------------
// Columns and rows

/// `"app"."table" AS t`.
pub fn from(def: &TableDef) -> String {
    format!("{} AS t", super::ddl::qualified(&def.name))
}

/// The JSON of row `alias` without its password fields: the one rule for rows leaving the
/// database. `to_json` (text built once, keys in column order) where nothing is hidden: Postgres
/// builds it several times faster than `jsonb`, which parses and sorts every row; `to_jsonb`
/// minus the hidden keys otherwise. Both keep decimals exact. Readers accept `json` and `jsonb`
/// alike, and a reader that needs `jsonb` operators casts (`::jsonb`). The names are validated
/// identifiers, so they can stand in a literal. `alias.*`, never the bare alias: Postgres reads
/// a bare name as a column first, so a field named like the alias (`t`, `s`) would stand in for
/// the row.
pub fn row_json(def: &TableDef, alias: &str) -> String {
    let hidden: Vec<String> = def
        .password_fields()
        .iter()
        .map(|n| format!("'{n}'"))
        .collect();
    if hidden.is_empty() {
        format!("to_json({alias}.*)")
    } else {
        format!(
            "(to_jsonb({alias}.*) - ARRAY[{}]::text[])",
            hidden.join(", ")
        )
    }
}

/// A column of a table (system columns included) as filters, sorts and cursors see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub ident: Ident,
    pub ty: FieldType,
    /// What a compared value must satisfy: the column's spec, never required (NULL is the
    /// operators' business), decimals as wide as Postgres reads them.
    pub spec: ColumnSpec,
    /// The SQL type parameters are cast to.
    pub cast: &'static str,
    /// System columns and required fields.
    pub not_null: bool,
}

/// The column `name` of `def`, or `None` when the table has none.
pub fn column(def: &TableDef, tables: &Tables, name: &str) -> Option<Column> {
    let ident = match def.field(name) {
        Some(f) => f.name.clone(),
        None if SYSTEM_COLUMNS.contains(&name) => Ident::parse(name).ok()?,
        None => return None,
    };
    let mut spec = def.column_spec(name, tables)?;
    let not_null = spec.required || SYSTEM_COLUMNS.contains(&name);
    // Filters never write: a decimal may be compared with one wider than its column.
    spec.required = false;
    spec.precision = (spec.ty == FieldType::Decimal).then_some(1000);
    spec.scale = None;
    Some(Column {
        ty: spec.ty,
        cast: spec.ty.cast_type(spec.target_id),
        ident,
        spec,
        not_null,
    })
}

fn where_clause(conds: &[String]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

fn id_condition<S>(def: &TableDef, id: S, params: &mut Params<S>) -> String {
    format!("t.\"id\" = {}", params.add(id, def.id_type.sql_type()))
}

#[cfg(test)]
mod tests;
