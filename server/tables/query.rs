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
use serde::de::DeserializeOwned;
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
        FilterOp::In if c.value.json_list() => {
            let p = params.add(c.value.clone(), "jsonb");
            let list = if c.cast == "jsonb" {
                format!("SELECT value FROM jsonb_array_elements({p})")
            } else {
                format!(
                    "SELECT value::{} FROM jsonb_array_elements_text({p})",
                    c.cast
                )
            };
            let sql = format!("{col} IN ({list})");
            (Some(p), sql)
        }
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

/// The one cursor encoding: hex of a JSON payload. Opaque to clients, and it survives a URL
/// unchanged.
pub fn encode_cursor<T: Serialize>(payload: &T) -> String {
    let text = serde_json::to_string(payload).unwrap_or_default();
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The payload of a cursor made by [`encode_cursor`]; `None` for anything else.
pub fn decode_cursor<T: DeserializeOwned>(s: &str) -> Option<T> {
    if !s.len().is_multiple_of(2) || s.len() > 200_000 {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    serde_json::from_slice(&bytes).ok()
}

/// Where a data API page ended: the sort it was made with, the sort column's value of its
/// last row as Postgres prints it (`None` is NULL), and that row's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub sort: String,
    pub key: Option<String>,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        encode_cursor(self)
    }

    /// `None` for anything [`Cursor::encode`] did not make.
    pub fn decode(s: &str) -> Option<Cursor> {
        decode_cursor(s)
    }
}

/// Where a [`JsonSelect`] page ended: the keys of its last row (the order keys, then the id, as
/// Postgres prints them), under the fingerprint of the query ([`fingerprint`]) so a cursor of
/// another query or order is refused instead of silently starting somewhere else. Encoded as
/// `[fingerprint, key…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyset {
    pub fingerprint: String,
    pub keys: Vec<Option<String>>,
}

/// Why a [`Keyset`] cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadKeyset {
    #[error("is not one this endpoint returned")]
    Foreign,
    #[error("belongs to another query or ordering")]
    OtherQuery,
}

impl Keyset {
    pub fn encode(&self) -> String {
        let mut all = vec![serde_json::Value::String(self.fingerprint.clone())];
        all.extend(self.keys.iter().map(|k| match k {
            Some(s) => serde_json::Value::String(s.clone()),
            None => serde_json::Value::Null,
        }));
        encode_cursor(&all)
    }

    /// The keys of `s` for a query with `fingerprint` and `keys` keys (the last is the id,
    /// never NULL).
    pub fn decode(s: &str, fingerprint: &str, keys: usize) -> Result<Keyset, BadKeyset> {
        let items: Vec<serde_json::Value> = decode_cursor(s).ok_or(BadKeyset::Foreign)?;
        let Some((first, rest)) = items.split_first() else {
            return Err(BadKeyset::Foreign);
        };
        if first.as_str() != Some(fingerprint) {
            return Err(BadKeyset::OtherQuery);
        }
        if rest.len() != keys || !rest.last().is_some_and(serde_json::Value::is_string) {
            return Err(BadKeyset::Foreign);
        }
        let keys = rest
            .iter()
            .map(|k| match k {
                serde_json::Value::Null => Ok(None),
                serde_json::Value::String(s) => Ok(Some(s.clone())),
                _ => Err(BadKeyset::Foreign),
            })
            .collect::<Result<_, _>>()?;
        Ok(Keyset {
            fingerprint: fingerprint.to_string(),
            keys,
        })
    }
}

/// The fingerprint of a [`JsonSelect`] page's cursors: the table and its order keys, then `id`
/// (`todos:priority desc,title,id`).
pub fn fingerprint(def: &TableDef, order: &[OrderKey]) -> String {
    let keys: Vec<String> = order
        .iter()
        .map(|k| format!("{}{}", k.column.ident, if k.desc { " desc" } else { "" }))
        .chain(std::iter::once("id".to_string()))
        .collect();
    format!("{}:{}", def.name, keys.join(","))
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

/// One `ORDER BY` key of a [`JsonSelect`].
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub column: Column,
    pub desc: bool,
}

/// The paging of a [`JsonSelect`].
#[derive(Debug, Clone, PartialEq)]
pub struct Paging<S> {
    /// The keys of the row to start after: one slot per order key, then the id. All of them
    /// SQL NULL is the first page.
    pub after: Option<Vec<S>>,
    /// Adds the number of matching rows as `total`.
    pub count: bool,
}

/// A query answered as one JSON value, as a flow node reads it: the rows as an array, or (with
/// `paging`) `{"rows", "more", "last"[, "total"]}` where `last` holds the keys of the page's
/// last row for the next cursor. Built once; its values are all slots.
#[derive(Debug, Clone)]
pub struct JsonSelect<'a, S> {
    pub def: &'a TableDef,
    pub tables: &'a Tables,
    /// Equality conditions (`column = value`; a NULL value matches nothing), before the filter.
    pub equal: Vec<(Column, S)>,
    pub filter: Option<&'a Filter<S>>,
    /// The columns to return; empty is every readable column.
    pub columns: &'a [Ident],
    /// References to replace by the referenced row.
    pub include: &'a [Ident],
    /// Order keys; `id` (ascending) always ends the order.
    pub order: &'a [OrderKey],
    pub limit: S,
    pub offset: S,
    pub paging: Option<Paging<S>>,
}

/// A reference of `def` that [`JsonSelect::include`] cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a reference of an existing table")]
pub struct NotAReference(pub String);

/// The statement of a [`JsonSelect`], sent only within the result cap ([`capped`]). The total
/// reuses the filter's parameters in a scalar subquery, so page and total come from one
/// snapshot in one round trip.
pub fn select_json<S: Slot + Clone>(q: JsonSelect<'_, S>) -> Result<Statement<S>, NotAReference> {
    let mut params = Params::default();
    let mut conds = Vec::new();
    let row = row_expr(&q)?;
    for (c, v) in q.equal {
        let p = params.add(v, c.cast);
        conds.push(format!("t.{} = {p}", c.ident.quoted()));
    }
    if let Some(f) = q.filter {
        conds.push(render_filter(f, &mut params));
    }
    let matching = where_clause(&conds);
    let from = from(q.def);
    let limit = params.add(q.limit, "bigint");
    let offset = params.add(q.offset, "bigint");
    let order = |alias: &str| {
        q.order
            .iter()
            .map(|o| {
                let dir = if o.desc { " DESC" } else { "" };
                format!("{alias}.{}{dir}", o.column.ident.quoted())
            })
            .chain(std::iter::once(format!("{alias}.\"id\"")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(paging) = q.paging else {
        return Ok(params.statement(capped(&format!(
            "SELECT coalesce(jsonb_agg({row} ORDER BY {}), '[]'::jsonb) FROM \
             (SELECT * FROM {from}{matching} ORDER BY {} LIMIT {limit} OFFSET {offset}) AS s",
            order("s"),
            order("t"),
        ))));
    };
    let id = column(q.def, q.tables, "id").ok_or_else(|| NotAReference("id".into()))?;
    let keys: Vec<OrderKey> = q
        .order
        .iter()
        .cloned()
        .chain(std::iter::once(OrderKey {
            column: id,
            desc: false,
        }))
        .collect();
    let mut scan = conds;
    if let Some(after) = paging.after {
        let marks: Vec<String> = after
            .into_iter()
            .zip(&keys)
            .map(|(v, k)| params.add(v, k.column.cast))
            .collect();
        let last = marks.last().cloned().unwrap_or_default();
        scan.push(format!("({last} IS NULL OR {})", after_keys(&keys, &marks)));
    }
    let key_cols: Vec<String> = keys
        .iter()
        .map(|k| format!("s.{}::text", k.column.ident.quoted()))
        .collect();
    let total = if paging.count {
        format!(", 'total', (SELECT count(*) FROM {from}{matching})")
    } else {
        String::new()
    };
    Ok(params.statement(capped(&format!(
        "SELECT jsonb_build_object(\
         'rows', coalesce(jsonb_agg(p.r ORDER BY p.n) FILTER (WHERE p.n <= {limit}), '[]'::jsonb), \
         'more', count(*) > {limit}, \
         'last', (jsonb_agg(p.k ORDER BY p.n DESC) FILTER (WHERE p.n <= {limit})) -> 0{total}) \
         FROM (SELECT {row} AS r, jsonb_build_array({}) AS k, row_number() OVER (ORDER BY {}) AS n \
         FROM (SELECT * FROM {from}{} ORDER BY {} LIMIT {limit} + 1 OFFSET {offset}) AS s) AS p",
        key_cols.join(", "),
        order("s"),
        where_clause(&scan),
        order("t"),
    ))))
}

/// The condition "after the cursor row" for `keys` (already `$n::type` placeholders in
/// `marks`), with Postgres' NULL placement: last when ascending, first when descending.
fn after_keys(keys: &[OrderKey], marks: &[String]) -> String {
    let col = |k: &OrderKey| format!("t.{}", k.column.ident.quoted());
    if keys.iter().all(|k| k.column.not_null && !k.desc) {
        let cols: Vec<String> = keys.iter().map(col).collect();
        return format!("({}) > ({})", cols.join(", "), marks.join(", "));
    }
    let mut alternatives = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let mut terms: Vec<String> = keys[..i]
            .iter()
            .zip(marks)
            .map(|(e, m)| {
                if e.column.not_null {
                    format!("{} = {m}", col(e))
                } else {
                    format!("{} IS NOT DISTINCT FROM {m}", col(e))
                }
            })
            .collect();
        let (c, m) = (col(k), &marks[i]);
        terms.push(match (k.desc, k.column.not_null) {
            (false, true) => format!("{c} > {m}"),
            (true, true) => format!("{c} < {m}"),
            (false, false) => format!("({c} > {m} OR ({m} IS NOT NULL AND {c} IS NULL))"),
            (true, false) => format!("({c} < {m} OR ({m} IS NULL AND {c} IS NOT NULL))"),
        });
        alternatives.push(if terms.len() == 1 {
            terms.concat()
        } else {
            format!("({})", terms.join(" AND "))
        });
    }
    format!("({})", alternatives.join(" OR "))
}

/// The JSON of one output row `s` of a [`JsonSelect`]: all readable columns or the chosen
/// ones, each included reference replaced by the referenced row (a correlated subquery on its
/// primary key, evaluated for the returned rows only).
fn row_expr<S>(q: &JsonSelect<'_, S>) -> Result<String, NotAReference> {
    let mut includes = Vec::with_capacity(q.include.len());
    for (n, c) in q.include.iter().enumerate() {
        let not_ref = || NotAReference(format!("{}.{c}", q.def.name));
        let target = q
            .def
            .field(c.as_str())
            .and_then(|f| f.table.as_ref())
            .ok_or_else(not_ref)?;
        let tdef = q.tables.get(target.as_str()).ok_or_else(not_ref)?;
        let alias = format!("i{n}");
        includes.push((
            c,
            format!(
                "(SELECT {} FROM {} AS {alias} WHERE {alias}.\"id\" = s.{})",
                row_json(tdef, &alias),
                super::ddl::qualified(target),
                c.quoted()
            ),
        ));
    }
    let pairs: Vec<String> = q
        .columns
        .iter()
        .filter(|c| !q.include.contains(c))
        .map(|c| format!("'{c}', s.{}", c.quoted()))
        .chain(includes.iter().map(|(c, sub)| format!("'{c}', {sub}")))
        .collect();
    // jsonb_build_object takes at most 100 arguments.
    let objects: Vec<String> = pairs
        .chunks(50)
        .map(|c| format!("jsonb_build_object({})", c.join(", ")))
        .collect();
    Ok(match (q.columns.is_empty(), objects.is_empty()) {
        (true, true) => row_json(q.def, "s"),
        (true, false) => format!("({} || {})", row_json(q.def, "s"), objects.join(" || ")),
        (false, _) => objects.join(" || "),
    })
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

/// What a write statement returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    Nothing,
    /// The row as [`row_json`].
    Row,
    /// The row as [`row_json`], refused inside the statement when larger than the result cap
    /// ([`guarded_row`]).
    CappedRow,
}

impl Returning {
    fn clause(self, def: &TableDef) -> String {
        match self {
            Returning::Nothing => String::new(),
            Returning::Row => format!(" RETURNING {}", row_json(def, "t")),
            Returning::CappedRow => format!(" RETURNING {}", guarded_row(def)),
        }
    }
}

/// The result cap of the connection: `SLUICE_MAX_RESULT_BYTES`, set on every pooled connection
/// as the custom setting `sluice.max_result_bytes`; no cap where it is not set.
pub const RESULT_CAP: &str =
    "coalesce(current_setting('sluice.max_result_bytes', true)::bigint, 9223372036854775807)";

/// The one-row JSON result of a statement (`SELECT <json> ...`), sent only when its size is
/// within the cap: a larger one yields no row at all, so Postgres never sends it.
pub fn capped(select: &str) -> String {
    format!("SELECT r FROM ({select}) AS sluice_result(r) WHERE pg_column_size(r) <= {RESULT_CAP}")
}

/// The row a write returns, refused inside the statement when larger than the cap: the write
/// must fail in Postgres, not after it, because a single write may commit with its statement.
/// The refusal is a division by zero on the row's size (`22012`), which no statement built
/// here can otherwise raise.
pub fn guarded_row(def: &TableDef) -> String {
    format!(
        "(SELECT CASE WHEN pg_column_size(j) <= {RESULT_CAP} THEN j \
         ELSE to_jsonb(pg_column_size(j) / 0) END FROM (SELECT {} AS j) AS sluice_guard)",
        row_json(def, "t")
    )
}

/// `INSERT`; with no values, the row of the defaults.
pub fn insert<S>(def: &TableDef, values: Vec<Write<S>>, returning: Returning) -> Statement<S> {
    let target = super::ddl::qualified(&def.name);
    let ret = returning.clause(def);
    let mut params = Params::default();
    if values.is_empty() {
        return params.statement(format!("INSERT INTO {target} AS t DEFAULT VALUES{ret}"));
    }
    let mut cols = Vec::with_capacity(values.len());
    let mut marks = Vec::with_capacity(values.len());
    for w in values {
        cols.push(w.column.quoted());
        marks.push(params.add(w.value, w.cast));
    }
    params.statement(format!(
        "INSERT INTO {target} AS t ({}) VALUES ({}){ret}",
        cols.join(", "),
        marks.join(", "),
    ))
}

/// A column a patch may write: its value is written only when `given` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch<S> {
    pub write: Write<S>,
    pub given: S,
}

/// An update of row `id`: `values` always, each of `patch` when given. With nothing to write
/// the row is still touched (`updated_at`), so a missing row is told apart from an empty
/// write; a caller that must not change anything then reads instead ([`get`]).
pub fn update<S>(
    def: &TableDef,
    id: S,
    values: Vec<Write<S>>,
    patch: Vec<Patch<S>>,
    returning: Returning,
) -> Statement<S> {
    let mut params = Params::default();
    let mut sets: Vec<String> = values
        .into_iter()
        .map(|w| format!("{} = {}", w.column.quoted(), params.add(w.value, w.cast)))
        .collect();
    for p in patch {
        let c = p.write.column.quoted();
        let given = params.add(p.given, "boolean");
        let value = params.add(p.write.value, p.write.cast);
        sets.push(format!(
            "{c} = CASE WHEN {given} THEN {value} ELSE t.{c} END"
        ));
    }
    if sets.is_empty() {
        sets.push("\"updated_at\" = now()".into());
    }
    let cond = id_condition(def, id, &mut params);
    params.statement(format!(
        "UPDATE {} SET {} WHERE {cond}{}",
        from(def),
        sets.join(", "),
        returning.clause(def)
    ))
}

/// `INSERT ... ON CONFLICT (on) DO UPDATE`, returning `{"row": <capped row>, "inserted": bool}`.
/// A row version written by the insert has `xmax = 0`; one written by the update carries the
/// updating transaction in `xmax`.
pub fn upsert<S>(def: &TableDef, values: Vec<Write<S>>, on: &[Ident]) -> Statement<S> {
    let mut params = Params::default();
    let mut cols = Vec::with_capacity(values.len());
    let mut marks = Vec::with_capacity(values.len());
    let mut sets = Vec::new();
    for w in values {
        let c = w.column.quoted();
        if !on.contains(&w.column) {
            sets.push(format!("{c} = EXCLUDED.{c}"));
        }
        cols.push(c);
        marks.push(params.add(w.value, w.cast));
    }
    if sets.is_empty() {
        // Nothing else to write: still update, so the existing row is locked and returned.
        sets.extend(
            on.first()
                .map(|c| format!("{q} = EXCLUDED.{q}", q = c.quoted())),
        );
    }
    let target: Vec<String> = on.iter().map(Ident::quoted).collect();
    params.statement(format!(
        "INSERT INTO {} AS t ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {} \
         RETURNING jsonb_build_object('row', {}, 'inserted', t.xmax = 0)",
        super::ddl::qualified(&def.name),
        cols.join(", "),
        marks.join(", "),
        target.join(", "),
        sets.join(", "),
        guarded_row(def)
    ))
}

/// A delete of row `id`.
pub fn delete<S>(def: &TableDef, id: S, returning: Returning) -> Statement<S> {
    let mut params = Params::default();
    let cond = id_condition(def, id, &mut params);
    params.statement(format!(
        "DELETE FROM {} WHERE {cond}{}",
        from(def),
        returning.clause(def)
    ))
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
