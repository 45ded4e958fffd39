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
    /// The `RETURNING` clause; with `check`, a row the check refuses fails the statement
    /// ([`checked`]).
    fn clause<S>(
        self,
        def: &TableDef,
        check: Option<Guard<'_, S>>,
        params: &mut Params<S>,
    ) -> String {
        let row = match self {
            Returning::Nothing => "NULL::json".to_string(),
            Returning::Row => row_json(def, "t"),
            Returning::CappedRow => guarded_row(def),
        };
        match check {
            Some(check) => format!(" RETURNING {}", checked(&row, &check(params))),
            None if self == Returning::Nothing => String::new(),
            None => format!(" RETURNING {row}"),
        }
    }
}

/// The SQLSTATE a write raises when an access rule's check refuses the row it wrote
/// (`sluice.rule_denied`, migration 0016): the statement fails, so nothing is written.
pub const RULE_DENIED: &str = "SLR01";

/// `row` when the written row `t` meets `check`, else the statement fails with
/// [`RULE_DENIED`]. Evaluated in the statement, after the write, on the row as stored (defaults
/// and triggers applied), like a Postgres `WITH CHECK`.
pub fn checked(row: &str, check: &str) -> String {
    format!(
        "(SELECT CASE WHEN {check} THEN j ELSE sluice.rule_denied(j) END \
         FROM (SELECT {row} AS j) AS sluice_check)"
    )
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

/// `INSERT`; with no values, the row of the defaults. With `check`, the new row must meet it
/// ([`checked`]); its parameters come last.
pub fn insert<S>(
    def: &TableDef,
    values: Vec<Write<S>>,
    returning: Returning,
    check: Option<Guard<'_, S>>,
) -> Statement<S> {
    let target = crate::tables::ddl::qualified(&def.name);
    let mut params = Params::default();
    if values.is_empty() {
        let ret = returning.clause(def, check, &mut params);
        return params.statement(format!("INSERT INTO {target} AS t DEFAULT VALUES{ret}"));
    }
    let mut cols = Vec::with_capacity(values.len());
    let mut marks = Vec::with_capacity(values.len());
    for w in values {
        cols.push(w.column.quoted());
        marks.push(params.add(w.value, w.cast));
    }
    let ret = returning.clause(def, check, &mut params);
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
/// write; a caller that must not change anything then reads instead ([`get`]). `guard`
/// narrows the rows that may change, `check` is what the changed row must meet ([`checked`]);
/// their parameters come last, in that order.
pub fn update<S>(
    def: &TableDef,
    id: S,
    values: Vec<Write<S>>,
    patch: Vec<Patch<S>>,
    returning: Returning,
    guard: Option<Guard<'_, S>>,
    check: Option<Guard<'_, S>>,
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
    let ret = returning.clause(def, check, &mut params);
    params.statement(format!(
        "UPDATE {} SET {} WHERE {cond}{ret}",
        from(def),
        sets.join(", "),
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
    let ret = returning.clause(def, None, &mut params);
    params.statement(format!("DELETE FROM {} WHERE {cond}{ret}", from(def)))
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
