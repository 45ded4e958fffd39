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
use serde::{Deserialize, Serialize};

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

// ---------------------------------------------------------------------------------------------
// Columns and rows

/// `"app"."table" AS t`.
pub fn from(def: &TableDef) -> String {
    format!("{} AS t", super::ddl::qualified(&def.name))
}

/// The JSON of row `alias` without its password fields: the one rule for rows leaving the
/// database (`to_jsonb` keeps decimals exact). The names are validated identifiers, so they
/// can stand in a literal. `alias.*`, never the bare alias: Postgres reads a bare name as a
/// column first, so a field named like the alias (`t`, `s`) would stand in for the row.
pub fn row_json(def: &TableDef, alias: &str) -> String {
    let hidden: Vec<String> = def
        .password_fields()
        .iter()
        .map(|n| format!("'{n}'"))
        .collect();
    if hidden.is_empty() {
        format!("to_jsonb({alias}.*)")
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

// ---------------------------------------------------------------------------------------------
// Filters

/// A filter tree over columns of one table; each condition holds the slot of its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter<S> {
    And(Vec<Filter<S>>),
    Or(Vec<Filter<S>>),
    Cond(Cond<S>),
}

/// One condition: `column op value`. The slot of `in` is bound as an array of the column's
/// type (`$n::bigint[]`), of `contains`/`starts_with` as the LIKE pattern ([`like_pattern`]),
/// of `is_null` as a boolean.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond<S> {
    pub column: Ident,
    pub cast: &'static str,
    pub op: FilterOp,
    pub value: S,
}

/// A rendered filter node. `absent` is the SQL that is true when every condition below was
/// skipped; `None` when some condition is always there.
struct Rendered {
    sql: String,
    absent: Option<String>,
    kind: Group,
}

#[derive(Clone, Copy, PartialEq)]
enum Group {
    Cond,
    And,
    Or,
}

/// Renders a filter as a condition on row `t`, adding its slots to `params` in order.
///
/// A skipped condition ([`Slot::may_skip`]) is neutral in its group: `TRUE` in an `and`,
/// `FALSE` in an `or`, and a group whose conditions are all skipped is itself skipped. So a
/// statement built once serves every request; which conditions apply is decided by the values
/// (`$n IS NULL`). A written empty group is not skipped: `and` matches every row, `or` none.
pub fn render_filter<S: Slot + Clone>(f: &Filter<S>, params: &mut Params<S>) -> String {
    let r = render(f, params);
    match r.absent {
        Some(_) if r.kind != Group::And => in_group(&r, Group::And),
        _ => r.sql,
    }
}

fn render<S: Slot + Clone>(f: &Filter<S>, params: &mut Params<S>) -> Rendered {
    let (items, kind) = match f {
        Filter::And(items) => (items, Group::And),
        Filter::Or(items) => (items, Group::Or),
        Filter::Cond(c) => return condition(c, params),
    };
    if items.is_empty() {
        let sql = if kind == Group::And { "TRUE" } else { "FALSE" };
        return Rendered {
            sql: sql.into(),
            absent: None,
            kind,
        };
    }
    let mut parts = Vec::with_capacity(items.len());
    let mut absents = Some(Vec::new());
    for item in items {
        let r = render(item, params);
        parts.push(in_group(&r, kind));
        match (&mut absents, r.absent) {
            (Some(list), Some(a)) => list.push(a),
            _ => absents = None,
        }
    }
    let sep = if kind == Group::And { " AND " } else { " OR " };
    Rendered {
        sql: format!("({})", parts.join(sep)),
        absent: absents.map(|a| {
            if a.len() == 1 {
                a.concat()
            } else {
                format!("({})", a.join(" AND "))
            }
        }),
        kind,
    }
}

fn condition<S: Slot + Clone>(c: &Cond<S>, params: &mut Params<S>) -> Rendered {
    let col = format!("t.{}", c.column.quoted());
    let skip = c.value.may_skip();
    let (p, sql) = match c.op {
        FilterOp::IsNull => match c.value.known_flag() {
            Some(true) => (None, format!("{col} IS NULL")),
            Some(false) => (None, format!("{col} IS NOT NULL")),
            None => {
                let p = params.add(c.value.clone(), "boolean");
                let sql = format!("({col} IS NULL) = {p}");
                (Some(p), sql)
            }
        },
        FilterOp::In => {
            let p = params.add(c.value.clone(), &format!("{}[]", c.cast));
            let sql = format!("{col} = ANY({p})");
            (Some(p), sql)
        }
        FilterOp::Contains | FilterOp::StartsWith => {
            let p = params.add(c.value.clone(), "text");
            let like = if c.op == FilterOp::Contains {
                "ILIKE"
            } else {
                "LIKE"
            };
            let sql = format!("{col} {like} {p}");
            (Some(p), sql)
        }
        op => {
            let sym = match op {
                FilterOp::Eq => "=",
                // A field that is null differs from any value.
                FilterOp::Ne => "IS DISTINCT FROM",
                FilterOp::Lt => "<",
                FilterOp::Le => "<=",
                FilterOp::Gt => ">",
                _ => ">=",
            };
            let p = params.add(c.value.clone(), c.cast);
            let sql = format!("{col} {sym} {p}");
            (Some(p), sql)
        }
    };
    Rendered {
        sql,
        absent: p.filter(|_| skip).map(|p| format!("{p} IS NULL")),
        kind: Group::Cond,
    }
}

/// A filter node as a member of a group of `kind`: made neutral when it is skipped.
fn in_group(r: &Rendered, kind: Group) -> String {
    match (&r.absent, kind) {
        (None, _) => r.sql.clone(),
        // A group handles its own skipped members already when it is of the same kind.
        (Some(_), k) if k == r.kind => r.sql.clone(),
        (Some(a), Group::Or) => format!("(NOT {a} AND {})", r.sql),
        (Some(a), _) => format!("({a} OR {})", r.sql),
    }
}

// ---------------------------------------------------------------------------------------------
// Order and cursor

/// The order of a list: one column, then `id` in the same direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub column: Column,
    pub desc: bool,
}

impl Sort {
    /// `title` or `-title`, as requests and cursors write it.
    pub fn spec(&self) -> String {
        format!("{}{}", if self.desc { "-" } else { "" }, self.column.ident)
    }

    pub fn is_id(&self) -> bool {
        self.column.ident.as_str() == "id"
    }

    /// `ORDER BY` terms on row `t`. NULLs are placed where Postgres puts them by default (last
    /// ascending, first descending), written out because the keyset condition relies on it.
    pub fn order_by(&self) -> String {
        let (dir, nulls) = if self.desc {
            ("DESC", "NULLS FIRST")
        } else {
            ("ASC", "NULLS LAST")
        };
        if self.is_id() {
            format!("t.\"id\" {dir}")
        } else {
            format!(
                "t.{} {dir} {nulls}, t.\"id\" {dir}",
                self.column.ident.quoted()
            )
        }
    }

    /// The condition that selects the rows after the row with sort value `key` (`None` is
    /// NULL) and id `id`, in this order.
    pub fn after<S>(&self, key: Option<S>, id: S, id_cast: &str, params: &mut Params<S>) -> String {
        let (cmp, idc) = (if self.desc { "<" } else { ">" }, "t.\"id\"");
        if self.is_id() {
            let p = params.add(id, id_cast);
            return format!("{idc} {cmp} {p}");
        }
        let col = format!("t.{}", self.column.ident.quoted());
        let cast = self.column.cast;
        match (key, self.column.not_null, self.desc) {
            (Some(k), true, _) | (Some(k), false, true) => {
                let pk = params.add(k, cast);
                let pi = params.add(id, id_cast);
                // Descending, NULLs came first and are behind us; the row comparison is NULL
                // (not true) for them.
                format!("({col}, {idc}) {cmp} ({pk}, {pi})")
            }
            (Some(k), false, false) => {
                let pk = params.add(k, cast);
                let pi = params.add(id, id_cast);
                format!("(({col}, {idc}) > ({pk}, {pi}) OR {col} IS NULL)")
            }
            (None, _, false) => {
                let pi = params.add(id, id_cast);
                format!("({col} IS NULL AND {idc} > {pi})")
            }
            (None, _, true) => {
                let pi = params.add(id, id_cast);
                format!("(({col} IS NULL AND {idc} < {pi}) OR {col} IS NOT NULL)")
            }
        }
    }
}

/// Where a page ended: the sort it was made with, the sort column's value of its last row as
/// Postgres prints it (`None` is NULL), and that row's id. Sent to clients hex-encoded: it is
/// opaque to them and must survive a URL unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub sort: String,
    pub key: Option<String>,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// `None` for anything [`Cursor::encode`] did not make.
    pub fn decode(s: &str) -> Option<Cursor> {
        if !s.len().is_multiple_of(2) || s.len() > 200_000 {
            return None;
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()?;
        serde_json::from_slice(&bytes).ok()
    }
}

// ---------------------------------------------------------------------------------------------
// Statements

/// A page of rows: filter, keyset cursor, order, limit and offset.
#[derive(Debug, Clone)]
pub struct Select<'a, S> {
    pub def: &'a TableDef,
    pub filter: Option<&'a Filter<S>>,
    pub sort: &'a Sort,
    /// The sort value and id of the row the page starts after.
    pub after: Option<(Option<S>, S)>,
    /// Bound as `bigint`: the rows to fetch.
    pub limit: S,
    pub offset: Option<S>,
}

/// `SELECT <row JSON> AS row, <sort key>::text AS sort_key, id::text AS id`, one result row
/// per table row, so the caller can stop reading at its result cap and build the next cursor
/// from the last row's `sort_key` and `id`.
pub fn select<S: Slot + Clone>(s: Select<'_, S>) -> Statement<S> {
    let mut params = Params::default();
    let mut conds = Vec::new();
    if let Some(f) = s.filter {
        conds.push(render_filter(f, &mut params));
    }
    if let Some((key, id)) = s.after {
        conds.push(s.sort.after(key, id, s.def.id_type.sql_type(), &mut params));
    }
    let limit = params.add(s.limit, "bigint");
    let offset = s
        .offset
        .map(|o| format!(" OFFSET {}", params.add(o, "bigint")))
        .unwrap_or_default();
    params.statement(format!(
        "SELECT {} AS row, t.{}::text AS sort_key, t.\"id\"::text AS id FROM {}{} ORDER BY {} LIMIT {limit}{offset}",
        row_json(s.def, "t"),
        s.sort.column.ident.quoted(),
        from(s.def),
        where_clause(&conds),
        s.sort.order_by(),
    ))
}

/// The number of rows matching `filter`.
pub fn count<S: Slot + Clone>(def: &TableDef, filter: Option<&Filter<S>>) -> Statement<S> {
    let mut params = Params::default();
    let conds: Vec<String> = filter
        .map(|f| render_filter(f, &mut params))
        .into_iter()
        .collect();
    params.statement(format!(
        "SELECT count(*) FROM {}{}",
        from(def),
        where_clause(&conds)
    ))
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

/// The row with id `id`, as [`row_json`].
pub fn get<S>(def: &TableDef, id: S) -> Statement<S> {
    let mut params = Params::default();
    let cond = id_condition(def, id, &mut params);
    params.statement(format!(
        "SELECT {} FROM {} WHERE {cond}",
        row_json(def, "t"),
        from(def)
    ))
}

/// One value of a write: the column, the type its parameter is cast to, and its slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Write<S> {
    pub column: Ident,
    pub cast: &'static str,
    pub value: S,
}

impl<S> Write<S> {
    /// A write of column `name` of `def` (a field, checked by the caller), cast to its type.
    pub fn new(def: &TableDef, tables: &Tables, column: Ident, value: S) -> Option<Write<S>> {
        let cast = def.cast_type(column.as_str(), tables)?;
        Some(Write {
            column,
            cast,
            value,
        })
    }
}

/// `INSERT ... RETURNING <row JSON>`; with no values, the row of the defaults.
pub fn insert<S>(def: &TableDef, values: Vec<Write<S>>) -> Statement<S> {
    let target = super::ddl::qualified(&def.name);
    let row = row_json(def, "t");
    let mut params = Params::default();
    if values.is_empty() {
        return params.statement(format!(
            "INSERT INTO {target} AS t DEFAULT VALUES RETURNING {row}"
        ));
    }
    let mut cols = Vec::with_capacity(values.len());
    let mut marks = Vec::with_capacity(values.len());
    for w in values {
        cols.push(w.column.quoted());
        marks.push(params.add(w.value, w.cast));
    }
    params.statement(format!(
        "INSERT INTO {target} AS t ({}) VALUES ({}) RETURNING {row}",
        cols.join(", "),
        marks.join(", "),
    ))
}

/// An update of the given columns of row `id`, `RETURNING <row JSON>`. With no values, a plain
/// read ([`get`]): an empty patch changes nothing, not even `updated_at`.
pub fn update<S>(def: &TableDef, id: S, values: Vec<Write<S>>) -> Statement<S> {
    if values.is_empty() {
        return get(def, id);
    }
    let mut params = Params::default();
    let sets: Vec<String> = values
        .into_iter()
        .map(|w| format!("{} = {}", w.column.quoted(), params.add(w.value, w.cast)))
        .collect();
    let cond = id_condition(def, id, &mut params);
    params.statement(format!(
        "UPDATE {} SET {} WHERE {cond} RETURNING {}",
        from(def),
        sets.join(", "),
        row_json(def, "t")
    ))
}

/// A delete of row `id`.
pub fn delete<S>(def: &TableDef, id: S) -> Statement<S> {
    let mut params = Params::default();
    let cond = id_condition(def, id, &mut params);
    params.statement(format!("DELETE FROM {} WHERE {cond}", from(def)))
}

/// One statement for all ids (an array slot), so a bulk delete is all or nothing.
pub fn delete_many<S>(def: &TableDef, ids: S) -> Statement<S> {
    let mut params = Params::default();
    let p = params.add(ids, &format!("{}[]", def.id_type.sql_type()));
    params.statement(format!(
        "DELETE FROM {} WHERE t.\"id\" = ANY({p})",
        from(def)
    ))
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
