//! SQL of database nodes, built once per published flow: names are validated identifiers,
//! always quoted; values are `$n` parameters cast to the column type. Reads never return
//! password fields; writes to password fields are hashed before binding.

use crate::flow::plan::{ColumnValue, Op, OrderTerm};
use crate::tables::ddl::qualified;
use crate::tables::def::{SYSTEM_COLUMNS, Tables};
use crate::tables::{FieldType, Ident, TableDef};

/// How a value is turned into the text of its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Strings as they are, other JSON as JSON text; Postgres casts.
    Text,
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

fn kinds(def: &TableDef, cols: &[ColumnValue]) -> Vec<ParamKind> {
    cols.iter().map(|c| kind(def, c.column.as_str())).collect()
}

/// The JSON of a row, without its password fields.
fn row_json(def: &TableDef, alias: &str) -> String {
    let hidden = def.password_fields();
    if hidden.is_empty() {
        format!("to_jsonb({alias})")
    } else {
        let names: Vec<String> = hidden.iter().map(|n| format!("'{n}'")).collect();
        format!("(to_jsonb({alias}) - ARRAY[{}]::text[])", names.join(", "))
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
    }
}

/// The statement of a database node, or `None` for other nodes.
pub fn build(op: &Op, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
    Ok(Some(match op {
        Op::DbGet { table: t, .. } => {
            let def = table(tables, t)?;
            plain(format!(
                "SELECT {} FROM {} AS t WHERE {}",
                row_json(def, "t"),
                qualified(t),
                id_condition(def, tables)?
            ))
        }
        Op::DbQuery {
            table: t,
            filters,
            order,
            ..
        } => {
            let def = table(tables, t)?;
            let marks = placeholders(def, filters, 1, tables)?;
            let conds: Vec<String> = filters
                .iter()
                .zip(&marks)
                .map(|(f, m)| format!("t.{} = {m}", f.column.quoted()))
                .collect();
            let filter = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            };
            let n = filters.len();
            let mut p = plain(format!(
                "SELECT coalesce(jsonb_agg({} ORDER BY {}), '[]'::jsonb) FROM \
                 (SELECT * FROM {} AS t{filter} ORDER BY {} LIMIT ${}::bigint OFFSET ${}::bigint) AS s",
                row_json(def, "s"),
                order_clause(order, "s"),
                qualified(t),
                order_clause(order, "t"),
                n + 1,
                n + 2
            ));
            p.kinds = kinds(def, filters);
            p
        }
        Op::DbInsert {
            table: t, values, ..
        } => {
            let def = table(tables, t)?;
            let text = if values.is_empty() {
                format!(
                    "INSERT INTO {} AS t DEFAULT VALUES RETURNING {}",
                    qualified(t),
                    row_json(def, "t")
                )
            } else {
                let cols: Vec<String> = values.iter().map(|v| v.column.quoted()).collect();
                format!(
                    "INSERT INTO {} AS t ({}) VALUES ({}) RETURNING {}",
                    qualified(t),
                    cols.join(", "),
                    placeholders(def, values, 1, tables)?.join(", "),
                    row_json(def, "t")
                )
            };
            Prepared {
                text,
                kinds: kinds(def, values),
                patch: Vec::new(),
            }
        }
        Op::DbUpdate {
            table: t,
            values,
            patch,
            ..
        } => {
            let def = table(tables, t)?;
            let marks = placeholders(def, values, 2, tables)?;
            let mut sets: Vec<String> = values
                .iter()
                .zip(&marks)
                .map(|(v, m)| format!("{} = {m}", v.column.quoted()))
                .collect();
            let mut patch_cols = Vec::new();
            if patch.is_some() {
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
                        kind: kind(def, f.name.as_str()),
                    });
                    n += 2;
                }
            }
            if sets.is_empty() {
                // Nothing to write: still touch the row so `ok`/`not_found` mean the same.
                sets.push("\"updated_at\" = now()".into());
            }
            Prepared {
                text: format!(
                    "UPDATE {} AS t SET {} WHERE {} RETURNING {}",
                    qualified(t),
                    sets.join(", "),
                    id_condition(def, tables)?,
                    row_json(def, "t")
                ),
                kinds: kinds(def, values),
                patch: patch_cols,
            }
        }
        Op::DbDelete { table: t, .. } => {
            let def = table(tables, t)?;
            plain(format!(
                "DELETE FROM {} AS t WHERE {} RETURNING {}",
                qualified(t),
                id_condition(def, tables)?,
                row_json(def, "t")
            ))
        }
        _ => return Ok(None),
    }))
}

/// Columns a patch may not name.
pub fn is_system(name: &str) -> bool {
    SYSTEM_COLUMNS.contains(&name)
}
