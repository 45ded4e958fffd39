//! `db.upsert`: inserts a row, or updates the row that already has the same values in the
//! `on` columns (`INSERT … ON CONFLICT (on) DO UPDATE`). `on` must be exactly the columns of a
//! unique field or unique index of the table, checked here. `ok` binds `as` to
//! `{"row": <the row>, "inserted": true|false}`; unwired `conflict` (another unique constraint
//! or a reference refused the row) is 409 `db.conflict`.

use super::db_get::table_def;
use super::db_insert::{CONFLICT, OK, bind_values, conflict_fact, write, writes};
use crate::engine::run::Cx;
use crate::engine::sql::{BuildError, Prepared};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Renames, ResponseFact, TableWrite,
    ports_to, rename_keys, rename_list, row_ref,
};
use crate::flow::plan::ColumnValue;
use crate::tables::def::{SYSTEM_COLUMNS, Tables};
use crate::tables::violation::Action;
use crate::tables::{Ident, TableDef, query};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.upsert",
    &[OK, CONFLICT],
    compile,
    NodeOptions {
        rename: Some(rename),
        ..NodeOptions::DEFAULT
    }
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    values: BTreeMap<String, Value>,
    on: Vec<String>,
}

/// The column sets Postgres can use as the conflict target of an upsert on `def`: each unique
/// field and each unique index (the primary key `id` cannot be written, so it is not one).
pub fn unique_keys(def: &TableDef) -> Vec<BTreeSet<&str>> {
    def.fields
        .iter()
        .filter(|f| f.unique)
        .map(|f| BTreeSet::from([f.name.as_str()]))
        .chain(
            def.indexes
                .iter()
                .filter(|ix| ix.unique)
                .map(|ix| ix.fields.iter().map(|f| f.as_str()).collect()),
        )
        .collect()
}

/// A compiled `db.upsert`.
#[derive(Debug)]
pub(crate) struct DbUpsertOp {
    table: Ident,
    values: Vec<ColumnValue>,
    /// The conflict target: columns covered by a unique constraint or index.
    on: Vec<Ident>,
    ok: usize,
    conflict: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let mut ok = true;
    for col in cfg
        .values
        .keys()
        .filter(|c| SYSTEM_COLUMNS.contains(&c.as_str()))
    {
        cx.problem(
            "flow.read_only_column",
            &format!("values/{col}"),
            format!("`{col}` is set by Sluice"),
        );
        ok = false;
    }
    if let Some(def) = &def {
        for f in def
            .must_be_given()
            .filter(|f| !cfg.values.contains_key(f.name.as_str()))
        {
            let msg = format!(
                "required column `{}` of table `{}` is not given (an upsert may insert)",
                f.name, def.name
            );
            cx.problem("flow.missing_column", "values", msg);
            ok = false;
        }
    }
    let mut on = Vec::new();
    for (i, name) in cfg.on.iter().enumerate() {
        let field = format!("on/{i}");
        let Some(column) = cx.column(def.as_ref(), name, &field) else {
            ok = false;
            continue;
        };
        if !cfg.values.contains_key(name) {
            cx.problem(
                "flow.missing_column",
                &field,
                format!("`{name}` is a conflict column, so `values` must give it"),
            );
            ok = false;
        }
        on.push(column);
    }
    if let Some(def) = &def
        && on.len() == cfg.on.len()
    {
        let wanted: BTreeSet<&str> = cfg.on.iter().map(String::as_str).collect();
        if !unique_keys(def).contains(&wanted) {
            let keys: Vec<String> = unique_keys(def)
                .iter()
                .map(|k| format!("[{}]", k.iter().copied().collect::<Vec<_>>().join(", ")))
                .collect();
            let known = if keys.is_empty() {
                "the table has no unique field or unique index".to_string()
            } else {
                format!("its unique keys are {}", keys.join(", "))
            };
            cx.problem(
                "flow.not_unique",
                "on",
                format!(
                    "no unique field or unique index of `{}` covers exactly [{}]; {known}",
                    def.name,
                    cfg.on.join(", ")
                ),
            );
            ok = false;
        }
    }
    let values = cx.column_values(def.as_ref(), &cfg.values, "values")?;
    ok.then(|| -> Op {
        Box::new(DbUpsertOp {
            table,
            values,
            on,
            ok: cx.required(OK.name),
            conflict: cx.port(CONFLICT.name),
        })
    })
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    rename_keys(node, "values", r);
    rename_list(node, "on", r);
}

impl CompiledOp for DbUpsertOp {
    /// An upsert may update an existing row, which the table's `update` rule does not judge
    /// here.
    fn unruled(&self, catalog: &dyn crate::flow::node::TableCatalog) -> Option<String> {
        let rules = catalog.table(self.table.as_str())?.rules.as_ref()?;
        let which = match (&rules.create, &rules.update) {
            (Some(_), Some(_)) => "create and update rules",
            (Some(_), None) => "a create rule",
            (None, Some(_)) => "an update rule",
            (None, None) => return None,
        };
        Some(format!(
            "table `{}` has {which}, which db.upsert does not apply",
            self.table
        ))
    }
    fn targets(&self) -> Vec<(&'static str, usize)> {
        ports_to((OK.name, self.ok), &[(CONFLICT.name, self.conflict)])
    }
    fn table_write(&self) -> Option<TableWrite<'_>> {
        Some(TableWrite {
            table: self.table.as_str(),
            success: self.ok,
        })
    }
    fn responses(&self) -> Vec<ResponseFact> {
        conflict_fact(self.conflict).into_iter().collect()
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(json!({
            "type": "object",
            "properties": {"row": row_ref(self.table.as_str()), "inserted": {"type": "boolean"}},
            "required": ["inserted", "row"],
        })))
    }
}

impl Runnable for DbUpsertOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        let def = table_def(tables, &self.table)?;
        let st = query::upsert(def, writes(def, tables, &self.values)?, &self.on);
        Ok(Some(Prepared::new(st).on(def, tables, Action::Write)))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let mut binds = Vec::with_capacity(self.values.len());
            let mut seen = Map::new();
            bind_values(cx, &self.values, &mut binds, Some(&mut seen)).await?;
            cx.note_input(|| Value::Object(seen));
            write(cx, binds, self.ok, None, self.conflict).await
        })
    }
}
