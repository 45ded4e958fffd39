//! SQL of database nodes, built once per published flow: names are validated identifiers,
//! always quoted; values are `$n` parameters cast to the column type. Reads never return
//! password fields; writes to password fields are hashed before binding.

use crate::flow::plan::{ColumnValue, Filter, FilterOp, OrderTerm, Query, Statement};
use crate::flow::sqlscan::Shape;
use crate::tables::ddl::qualified;
use crate::tables::def::{SYSTEM_COLUMNS, Tables};
use crate::tables::{FieldType, Ident, TableDef};

/// How a value is turned into the text of its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Strings as they are, other JSON as JSON text; Postgres casts.
    Text,
    /// A value written to a decimal field: a number (or its text) checked against the field's
    /// digits and bound exactly (`tables::decimal::check`).
    Decimal {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    /// Always JSON text, so a JSON string stays a JSON string.
    Json,
    /// Hashed with argon2id first.
    Password,
}

/// A statement and what its parameters need.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub text: String,
    /// For each fixed value parameter (after the id, if any).
    pub kinds: Vec<ParamKind>,
    /// `db.update` with `patch`: the columns a patch may name, in parameter order after the
    /// fixed ones; each takes two parameters, "given" and the value.
    pub patch: Vec<PatchColumn>,
    /// `db.query`: what each `$n` is bound to, in order.
    pub slots: Vec<Slot>,
    /// `db.query` with `page`: what its cursors look like.
    pub cursor: Option<CursorSpec>,
}

/// The source of one `db.query` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Value `i` of `where`.
    Where(usize, ParamKind),
    /// Value `i` of the filter's conditions (in [`Filter::conditions`] order).
    Cond(usize, CondParam),
    Limit,
    Offset,
    /// Key `i` of the cursor: the `order_by` columns, then `id`. NULL without a cursor.
    CursorKey(usize),
}

/// How a condition's value becomes its parameter. `null` always becomes SQL `NULL`, which
/// skips the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CondParam {
    Value(ParamKind),
    /// Text, matched literally: `%` and `_` escaped, then `%` appended (and prepended for
    /// `contains`).
    Like {
        contains: bool,
    },
    /// An array, sent as JSON text.
    List,
    /// `true` or `false`.
    Flag,
}

/// A page cursor names the table and order it was made for, so a cursor of another query is
/// refused instead of silently starting somewhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorSpec {
    pub fingerprint: String,
    /// The `order_by` columns plus `id`.
    pub keys: usize,
}

#[derive(Debug, Clone)]
pub struct PatchColumn {
    pub name: String,
    pub kind: ParamKind,
}

/// A table or column vanished between compile and build (a concurrent schema change).
#[derive(Debug, thiserror::Error)]
#[error("table or column `{0}` no longer exists")]
pub struct BuildError(pub String);

fn table<'c>(tables: &'c Tables, t: &Ident) -> Result<&'c TableDef, BuildError> {
    tables
        .get(t.as_str())
        .ok_or_else(|| BuildError(t.to_string()))
}

fn cast(def: &TableDef, c: &str, tables: &Tables) -> Result<&'static str, BuildError> {
    def.cast_type(c, tables)
        .ok_or_else(|| BuildError(format!("{}.{c}", def.name)))
}

fn kind(def: &TableDef, c: &str) -> ParamKind {
    match def.column_type(c) {
        Some(FieldType::Password) => ParamKind::Password,
        Some(FieldType::Json) => ParamKind::Json,
        _ => ParamKind::Text,
    }
}

/// The kind of a value written to column `c`: [`kind`], and decimals checked against the field.
/// (Filters compare with any number, so they keep [`ParamKind::Text`] for decimals.)
fn write_kind(def: &TableDef, c: &str) -> ParamKind {
    match def.field(c) {
        Some(f) if f.ty == FieldType::Decimal => ParamKind::Decimal {
            precision: f.precision,
            scale: f.scale,
        },
        _ => kind(def, c),
    }
}

fn kinds(def: &TableDef, cols: &[ColumnValue]) -> Vec<ParamKind> {
    cols.iter()
        .map(|c| write_kind(def, c.column.as_str()))
        .collect()
}

/// The result cap of the connection: `SLUICE_MAX_RESULT_BYTES`, set on every pooled connection
/// as the custom setting `sluice.max_result_bytes` (`startup`); no cap where it is not set.
pub const RESULT_CAP: &str =
    "coalesce(current_setting('sluice.max_result_bytes', true)::bigint, 9223372036854775807)";

/// The one-row JSON result of a statement (`SELECT <json> ...`), sent only when its size is
/// within the cap: a larger one yields no row at all, so Postgres never sends it. The statements
/// wrapped this way (aggregates) always yield one row otherwise.
fn capped(select: &str) -> String {
    format!("SELECT r FROM ({select}) AS sluice_result(r) WHERE pg_column_size(r) <= {RESULT_CAP}")
}

/// The row a write returns, refused inside the statement when larger than the cap: the write
/// must fail in Postgres, not after it, because a single write may run without `BEGIN` and
/// commit with its statement ([`crate::flow::plan::Plan::needs_transaction`]). The refusal is
/// a division by zero on the row's size, the one error Postgres offers in plain SQL that no
/// statement Sluice builds can otherwise raise (`22012`, mapped to `db.result_too_large`).
fn guarded_row(def: &TableDef) -> String {
    format!(
        "(SELECT CASE WHEN pg_column_size(j) <= {RESULT_CAP} THEN j \
         ELSE to_jsonb(pg_column_size(j) / 0) END FROM (SELECT {} AS j) AS sluice_guard)",
        row_json(def, "t")
    )
}

/// The JSON of a row, without its password fields. The row is named `alias.*`, never by the
/// bare alias: Postgres reads a bare name as a column first, so a field named like the alias
/// (`t`, `s`, `i0`) would stand in for the whole row.
fn row_json(def: &TableDef, alias: &str) -> String {
    let hidden = def.password_fields();
    if hidden.is_empty() {
        format!("to_jsonb({alias}.*)")
    } else {
        let names: Vec<String> = hidden.iter().map(|n| format!("'{n}'")).collect();
        format!(
            "(to_jsonb({alias}.*) - ARRAY[{}]::text[])",
            names.join(", ")
        )
    }
}

fn id_condition(def: &TableDef, tables: &Tables) -> Result<String, BuildError> {
    Ok(format!("t.\"id\" = $1::{}", cast(def, "id", tables)?))
}

fn order_clause(order: &[OrderTerm], alias: &str) -> String {
    let terms: Vec<String> = order
        .iter()
        .map(|o| {
            format!(
                "{alias}.{}{}",
                o.column.quoted(),
                if o.desc { " DESC" } else { "" }
            )
        })
        .chain(std::iter::once(format!("{alias}.\"id\"")))
        .collect();
    terms.join(", ")
}

/// `$n::type` placeholders for `cols`, numbered from `first`.
fn placeholders(
    def: &TableDef,
    cols: &[ColumnValue],
    first: usize,
    tables: &Tables,
) -> Result<Vec<String>, BuildError> {
    cols.iter()
        .enumerate()
        .map(|(i, cv)| {
            Ok(format!(
                "${}::{}",
                first + i,
                cast(def, cv.column.as_str(), tables)?
            ))
        })
        .collect()
}

fn plain(text: String) -> Prepared {
    Prepared {
        text,
        kinds: Vec::new(),
        patch: Vec::new(),
        slots: Vec::new(),
        cursor: None,
    }
}

/// `db.get`: the row with the given id.
pub fn get_sql(t: &Ident, tables: &Tables) -> Result<Prepared, BuildError> {
    let def = table(tables, t)?;
    Ok(plain(format!(
        "SELECT {} FROM {} AS t WHERE {}",
        row_json(def, "t"),
        qualified(t),
        id_condition(def, tables)?
    )))
}

/// `auth.verify_password` against a table: the account row and its password hash, found by
/// the account's email.
pub fn account_sql(
    t: &Ident,
    email: &Ident,
    password: &Ident,
    tables: &Tables,
) -> Result<Prepared, BuildError> {
    let def = table(tables, t)?;
    // The hash leaves the database only into the node, never into the row.
    Ok(plain(format!(
        "SELECT jsonb_build_object('row', {}, 'hash', t.{}) FROM {} AS t WHERE t.{} = $1::text",
        row_json(def, "t"),
        password.quoted(),
        qualified(t),
        email.quoted()
    )))
}

/// `db.insert`: one row, returned as written.
pub fn insert_sql(
    t: &Ident,
    values: &[ColumnValue],
    tables: &Tables,
) -> Result<Prepared, BuildError> {
    let def = table(tables, t)?;
    let text = if values.is_empty() {
        format!(
            "INSERT INTO {} AS t DEFAULT VALUES RETURNING {}",
            qualified(t),
            guarded_row(def)
        )
    } else {
        let cols: Vec<String> = values.iter().map(|v| v.column.quoted()).collect();
        format!(
            "INSERT INTO {} AS t ({}) VALUES ({}) RETURNING {}",
            qualified(t),
            cols.join(", "),
            placeholders(def, values, 1, tables)?.join(", "),
            guarded_row(def)
        )
    };
    Ok(Prepared {
        kinds: kinds(def, values),
        ..plain(text)
    })
}

/// `db.update`: the row with the given id, its `values` set and, with `patch`, every other
/// column the patch names.
pub fn update_sql(
    t: &Ident,
    values: &[ColumnValue],
    patch: bool,
    tables: &Tables,
) -> Result<Prepared, BuildError> {
    let def = table(tables, t)?;
    let marks = placeholders(def, values, 2, tables)?;
    let mut sets: Vec<String> = values
        .iter()
        .zip(&marks)
        .map(|(v, m)| format!("{} = {m}", v.column.quoted()))
        .collect();
    let mut patch_cols = Vec::new();
    if patch {
        let mut n = values.len() + 2;
        for f in def
            .fields
            .iter()
            .filter(|f| !values.iter().any(|v| v.column == f.name))
        {
            let c = f.name.quoted();
            let ty = cast(def, f.name.as_str(), tables)?;
            sets.push(format!(
                "{c} = CASE WHEN ${n}::boolean THEN ${}::{ty} ELSE t.{c} END",
                n + 1
            ));
            patch_cols.push(PatchColumn {
                name: f.name.to_string(),
                kind: write_kind(def, f.name.as_str()),
            });
            n += 2;
        }
    }
    if sets.is_empty() {
        // Nothing to write: still touch the row so `ok`/`not_found` mean the same.
        sets.push("\"updated_at\" = now()".into());
    }
    Ok(Prepared {
        kinds: kinds(def, values),
        patch: patch_cols,
        ..plain(format!(
            "UPDATE {} AS t SET {} WHERE {} RETURNING {}",
            qualified(t),
            sets.join(", "),
            id_condition(def, tables)?,
            guarded_row(def)
        ))
    })
}

/// `db.delete`: the row with the given id, returned as it was.
pub fn delete_sql(t: &Ident, tables: &Tables) -> Result<Prepared, BuildError> {
    let def = table(tables, t)?;
    Ok(plain(format!(
        "DELETE FROM {} AS t WHERE {} RETURNING {}",
        qualified(t),
        id_condition(def, tables)?,
        guarded_row(def)
    )))
}

/// `db.sql`: the builder's statement, wrapped by its shape ([`statement_sql`]).
pub fn sql_statement(st: &Statement) -> Prepared {
    plain(statement_sql(st))
}

/// Parameters of a statement being built: each `add` is the next `$n`.
#[derive(Default)]
struct Params {
    slots: Vec<Slot>,
}

impl Params {
    fn add(&mut self, slot: Slot, cast: &str) -> String {
        self.slots.push(slot);
        format!("${}::{cast}", self.slots.len())
    }
}

/// Whether a column can never be NULL: system columns and required fields.
fn not_null(def: &TableDef, c: &str) -> bool {
    is_system(c) || def.field(c).is_some_and(|f| f.required)
}

/// A rendered filter node. `absent` is the SQL that is true when every condition below was
/// skipped (its value was `null`); `None` when some condition is always there.
struct Rendered {
    sql: String,
    absent: Option<String>,
    kind: GroupKind,
}

#[derive(Clone, Copy, PartialEq)]
enum GroupKind {
    Cond,
    And,
    Or,
}

/// Renders a filter on row `t`. A skipped condition is neutral in its group: `TRUE` in an
/// `and`, `FALSE` in an `or`, and a group whose conditions are all skipped is itself skipped.
/// So the statement is the same for every request; which conditions apply is decided by the
/// values (`$n IS NULL`), not by building SQL per request.
fn render_filter(
    f: &Filter,
    def: &TableDef,
    tables: &Tables,
    params: &mut Params,
    next: &mut usize,
) -> Result<Rendered, BuildError> {
    let (items, kind) = match f {
        Filter::And(items) => (items, GroupKind::And),
        Filter::Or(items) => (items, GroupKind::Or),
        Filter::Cond(c) => {
            let i = *next;
            *next += 1;
            let name = c.column.as_str();
            let col = format!("t.{}", c.column.quoted());
            let ty = cast(def, name, tables)?;
            let (p, sql) = match c.op {
                FilterOp::Eq
                | FilterOp::Ne
                | FilterOp::Lt
                | FilterOp::Le
                | FilterOp::Gt
                | FilterOp::Ge => {
                    let p = params.add(Slot::Cond(i, CondParam::Value(kind(def, name))), ty);
                    let sym = match c.op {
                        FilterOp::Eq => "=",
                        // A NULL field differs from any value, as in the table data API.
                        FilterOp::Ne => "IS DISTINCT FROM",
                        FilterOp::Lt => "<",
                        FilterOp::Le => "<=",
                        FilterOp::Gt => ">",
                        _ => ">=",
                    };
                    let sql = format!("{col} {sym} {p}");
                    (p, sql)
                }
                FilterOp::In => {
                    let p = params.add(Slot::Cond(i, CondParam::List), "jsonb");
                    let list = if ty == "jsonb" {
                        format!("SELECT value FROM jsonb_array_elements({p})")
                    } else {
                        format!("SELECT value::{ty} FROM jsonb_array_elements_text({p})")
                    };
                    let sql = format!("{col} IN ({list})");
                    (p, sql)
                }
                FilterOp::Contains | FilterOp::StartsWith => {
                    let contains = c.op == FilterOp::Contains;
                    let p = params.add(Slot::Cond(i, CondParam::Like { contains }), "text");
                    let like = if contains { "ILIKE" } else { "LIKE" };
                    let sql = format!("{col} {like} {p}");
                    (p, sql)
                }
                FilterOp::IsNull => {
                    let p = params.add(Slot::Cond(i, CondParam::Flag), "boolean");
                    let sql = format!("({col} IS NULL) = {p}");
                    (p, sql)
                }
            };
            return Ok(Rendered {
                sql,
                absent: Some(format!("{p} IS NULL")),
                kind: GroupKind::Cond,
            });
        }
    };
    if items.is_empty() {
        // Written empty groups are not skipped: `and` matches every row, `or` none.
        let sql = if kind == GroupKind::And {
            "TRUE"
        } else {
            "FALSE"
        };
        return Ok(Rendered {
            sql: sql.into(),
            absent: None,
            kind,
        });
    }
    let mut parts = Vec::with_capacity(items.len());
    let mut absents = Some(Vec::new());
    for item in items {
        let r = render_filter(item, def, tables, params, next)?;
        parts.push(in_group(&r, kind));
        match (&mut absents, r.absent) {
            (Some(list), Some(a)) => list.push(a),
            _ => absents = None,
        }
    }
    let sep = if kind == GroupKind::And {
        " AND "
    } else {
        " OR "
    };
    Ok(Rendered {
        sql: format!("({})", parts.join(sep)),
        absent: absents.map(|a| {
            if a.len() == 1 {
                a.concat()
            } else {
                format!("({})", a.join(" AND "))
            }
        }),
        kind,
    })
}

/// A filter node as a member of a group of `kind`: made neutral when it is skipped.
fn in_group(r: &Rendered, kind: GroupKind) -> String {
    match (&r.absent, kind) {
        (None, _) => r.sql.clone(),
        // The group handles its own skipped members already when it is of the same kind.
        (Some(_), k) if k == r.kind => r.sql.clone(),
        (Some(a), GroupKind::Or) => format!("(NOT {a} AND {})", r.sql),
        (Some(a), _) => format!("({a} OR {})", r.sql),
    }
}

/// `ORDER BY` terms as the cursor sees them: column, direction, nullability, cast.
struct Key<'a> {
    column: &'a Ident,
    desc: bool,
    not_null: bool,
    cast: &'static str,
}

/// The condition "after the cursor row" for keys `k` (already `$n::type` placeholders), with
/// Postgres' NULL placement: last when ascending, first when descending.
fn after_cursor(keys: &[Key<'_>], marks: &[String]) -> String {
    let col = |k: &Key<'_>| format!("t.{}", k.column.quoted());
    if keys.iter().all(|k| k.not_null && !k.desc) {
        let cols: Vec<String> = keys.iter().map(col).collect();
        return format!("({}) > ({})", cols.join(", "), marks.join(", "));
    }
    let mut alternatives = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let mut terms: Vec<String> = keys[..i]
            .iter()
            .zip(marks)
            .map(|(e, m)| {
                if e.not_null {
                    format!("{} = {m}", col(e))
                } else {
                    format!("{} IS NOT DISTINCT FROM {m}", col(e))
                }
            })
            .collect();
        let (c, m) = (col(k), &marks[i]);
        terms.push(match (k.desc, k.not_null) {
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

/// The JSON of one output row of `s`: all readable columns or the selected ones, with each
/// included reference replaced by the referenced row (a correlated subquery on its primary
/// key, evaluated for the returned rows only).
fn row_expr(q: &Query, def: &TableDef, tables: &Tables) -> Result<String, BuildError> {
    let mut includes = Vec::with_capacity(q.include.len());
    for (n, c) in q.include.iter().enumerate() {
        let target = def
            .field(c.as_str())
            .and_then(|f| f.table.as_ref())
            .ok_or_else(|| BuildError(format!("{}.{c}", def.name)))?;
        let tdef = table(tables, target)?;
        let alias = format!("i{n}");
        includes.push((
            c,
            format!(
                "(SELECT {} FROM {} AS {alias} WHERE {alias}.\"id\" = s.{})",
                row_json(tdef, &alias),
                qualified(target),
                c.quoted()
            ),
        ));
    }
    let pairs: Vec<String> = q
        .select
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
    Ok(match (q.select.is_empty(), objects.is_empty()) {
        (true, true) => row_json(def, "s"),
        (true, false) => format!("({} || {})", row_json(def, "s"), objects.join(" || ")),
        (false, _) => objects.join(" || "),
    })
}

/// `db.query`: one statement. Parameters are `where` values, filter values, then limit and
/// offset, then the cursor keys; the total (with `count`) reuses the filter's parameters in a
/// scalar subquery, so page and total come from one snapshot in one round trip.
pub fn query_sql(q: &Query, tables: &Tables) -> Result<Prepared, BuildError> {
    let def = table(tables, &q.table)?;
    let mut params = Params::default();
    let mut conds = Vec::new();
    for (i, f) in q.filters.iter().enumerate() {
        let name = f.column.as_str();
        let p = params.add(Slot::Where(i, kind(def, name)), cast(def, name, tables)?);
        conds.push(format!("t.{} = {p}", f.column.quoted()));
    }
    if let Some(f) = &q.filter {
        let r = render_filter(f, def, tables, &mut params, &mut 0)?;
        conds.push(in_group(&r, GroupKind::And));
    }
    let matching = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let from = qualified(&q.table);
    let row = row_expr(q, def, tables)?;
    let limit = params.add(Slot::Limit, "bigint");
    let offset = params.add(Slot::Offset, "bigint");
    if !q.page {
        return Ok(Prepared {
            slots: params.slots,
            ..plain(capped(&format!(
                "SELECT coalesce(jsonb_agg({row} ORDER BY {}), '[]'::jsonb) FROM \
                 (SELECT * FROM {from} AS t{matching} ORDER BY {} LIMIT {limit} OFFSET {offset}) AS s",
                order_clause(&q.order, "s"),
                order_clause(&q.order, "t"),
            )))
        });
    }
    let id = Ident::parse("id").map_err(|e| BuildError(e.to_string()))?;
    let mut keys = Vec::with_capacity(q.order.len() + 1);
    for o in &q.order {
        keys.push(Key {
            column: &o.column,
            desc: o.desc,
            not_null: not_null(def, o.column.as_str()),
            cast: cast(def, o.column.as_str(), tables)?,
        });
    }
    keys.push(Key {
        column: &id,
        desc: false,
        not_null: true,
        cast: cast(def, "id", tables)?,
    });
    let mut scan = conds.clone();
    if q.cursor.is_some() {
        let marks: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| params.add(Slot::CursorKey(i), k.cast))
            .collect();
        let last = marks.last().cloned().unwrap_or_default();
        scan.push(format!(
            "({last} IS NULL OR {})",
            after_cursor(&keys, &marks)
        ));
    }
    let scan = if scan.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", scan.join(" AND "))
    };
    let key_cols: Vec<String> = keys
        .iter()
        .map(|k| format!("s.{}::text", k.column.quoted()))
        .collect();
    let total = if q.count {
        format!(", 'total', (SELECT count(*) FROM {from} AS t{matching})")
    } else {
        String::new()
    };
    let fingerprint: Vec<String> = keys
        .iter()
        .map(|k| format!("{}{}", k.column, if k.desc { " desc" } else { "" }))
        .collect();
    Ok(Prepared {
        slots: params.slots,
        cursor: Some(CursorSpec {
            fingerprint: format!("{}:{}", q.table, fingerprint.join(",")),
            keys: keys.len(),
        }),
        ..plain(capped(&format!(
            "SELECT jsonb_build_object(\
             'rows', coalesce(jsonb_agg(p.r ORDER BY p.n) FILTER (WHERE p.n <= {limit}), '[]'::jsonb), \
             'more', count(*) > {limit}, \
             'last', (jsonb_agg(p.k ORDER BY p.n DESC) FILTER (WHERE p.n <= {limit})) -> 0{total}) \
             FROM (SELECT {row} AS r, jsonb_build_array({}) AS k, row_number() OVER (ORDER BY {}) AS n \
             FROM (SELECT * FROM {from} AS t{scan} ORDER BY {} LIMIT {limit} + 1 OFFSET {offset}) AS s) AS p",
            key_cols.join(", "),
            order_clause(&q.order, "s"),
            order_clause(&q.order, "t"),
        )))
    })
}

/// `db.upsert`: `INSERT … ON CONFLICT (on) DO UPDATE`, returning the row and whether it was
/// inserted. A row version written by the insert has `xmax = 0`; one written by the update
/// carries the updating transaction in `xmax`.
pub fn upsert_sql(
    t: &Ident,
    values: &[ColumnValue],
    on: &[Ident],
    tables: &Tables,
) -> Result<Prepared, BuildError> {
    let def = table(tables, t)?;
    let cols: Vec<String> = values.iter().map(|v| v.column.quoted()).collect();
    let mut sets: Vec<String> = values
        .iter()
        .filter(|v| !on.contains(&v.column))
        .map(|v| format!("{c} = EXCLUDED.{c}", c = v.column.quoted()))
        .collect();
    if sets.is_empty() {
        // Nothing else to write: still update, so the existing row is locked and returned.
        sets.extend(
            on.first()
                .map(|c| format!("{q} = EXCLUDED.{q}", q = c.quoted())),
        );
    }
    let target: Vec<String> = on.iter().map(Ident::quoted).collect();
    Ok(Prepared {
        kinds: kinds(def, values),
        ..plain(format!(
            "INSERT INTO {} AS t ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {} \
             RETURNING jsonb_build_object('row', {}, 'inserted', t.xmax = 0)",
            qualified(t),
            cols.join(", "),
            placeholders(def, values, 1, tables)?.join(", "),
            target.join(", "),
            sets.join(", "),
            guarded_row(def)
        ))
    })
}

/// The name of the CTE a `db.sql` statement runs in when it cannot be a subquery.
const STATEMENT_CTE: &str = "\"sluice_statement\"";

/// `db.sql`: the statement with its rows aggregated into one JSON array, sent only within the
/// result cap ([`capped`]). A query becomes a subquery; a data-modifying statement (which
/// Postgres allows only at the top level) becomes a CTE, added to the statement's own `WITH`
/// list if it has one.
pub fn statement_sql(st: &Statement) -> String {
    // `q.*`: the statement's own columns may be called `q`.
    let rows = "coalesce(jsonb_agg(to_jsonb(q.*)), '[]'::jsonb)";
    let collect = |returns: bool| {
        if returns {
            capped(&format!("SELECT {rows} FROM {STATEMENT_CTE} AS q"))
        } else {
            "SELECT '[]'::jsonb".to_string()
        }
    };
    match &st.shape {
        Shape::Query => capped(&format!("SELECT {rows} FROM ({}) AS q", st.text)),
        Shape::Modify { returning } => format!(
            "WITH {STATEMENT_CTE} AS ({}) {}",
            st.text,
            collect(*returning)
        ),
        Shape::With {
            main,
            modifies,
            returning,
        } => {
            let (list, statement) = st.text.split_at((*main).min(st.text.len()));
            format!(
                "{}, {STATEMENT_CTE} AS ({statement}) {}",
                list.trim_end(),
                collect(!modifies || *returning)
            )
        }
    }
}

/// Columns a patch may not name.
pub fn is_system(name: &str) -> bool {
    SYSTEM_COLUMNS.contains(&name)
}
