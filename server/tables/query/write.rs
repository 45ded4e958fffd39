//! Writing statements of the table-query layer: insert, update (fixed and patch columns),
//! upsert, delete, each with what it returns, and the result guard of returned rows. Pure.

use super::{
    Guard, Ident, Params, Statement, TableDef, Tables, from, guarded, id_condition, row_json,
};

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

/// The result cap as a placeholder: the engine writes `SLUICE_MAX_RESULT_BYTES` in its place
/// (`engine::sql::Prepared::text_capped`). Left in place it reads the custom setting
/// `sluice.max_result_bytes`, with no cap where that is not set.
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
         ELSE (SELECT j WHERE pg_column_size(j) / 0 > 0) END FROM (SELECT {} AS j) AS sluice_guard)",
        row_json(def, "t")
    )
}

/// `INSERT`; with no values, the row of the defaults.
pub fn insert<S>(def: &TableDef, values: Vec<Write<S>>, returning: Returning) -> Statement<S> {
    let target = crate::tables::ddl::qualified(&def.name);
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
    guard: Option<Guard<'_, S>>,
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
    let cond = guarded(cond, guard, &mut params);
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
         RETURNING json_build_object('row', {}, 'inserted', t.xmax = 0)",
        crate::tables::ddl::qualified(&def.name),
        cols.join(", "),
        marks.join(", "),
        target.join(", "),
        sets.join(", "),
        guarded_row(def)
    ))
}

/// A delete of row `id`.
pub fn delete<S>(
    def: &TableDef,
    id: S,
    returning: Returning,
    guard: Option<Guard<'_, S>>,
) -> Statement<S> {
    let mut params = Params::default();
    let cond = id_condition(def, id, &mut params);
    let cond = guarded(cond, guard, &mut params);
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
