//! `db.update`: changes one row by id. `values` are always written; `patch` (an object, usually
//! `request.body`) writes only the columns it names. `ok` binds `as` to the updated row;
//! unwired `not_found` is 404 `db.not_found`, unwired `conflict` is 409 `db.conflict`.

use super::db_get::{NOT_FOUND, missing, not_found_fact, table_def};
use super::db_insert::{CONFLICT, OK, bind_values, conflict_fact, write, writes};
use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sql::{self, BuildError, PatchColumn, Prepared, Slot, write_kind};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Renames, ResponseFact, TableWrite,
    ports_to, rename_keys, row_ref,
};
use crate::flow::plan::ColumnValue;
use crate::tables::Ident;
use crate::tables::def::Tables;
use crate::tables::query::{self, Patch, Returning, Write};
use crate::tables::violation::Action;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.update",
    &[OK, NOT_FOUND, CONFLICT],
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
    id: Value,
    #[serde(default)]
    values: BTreeMap<String, Value>,
    patch: Option<Value>,
}

/// A compiled `db.update`.
#[derive(Debug)]
pub(crate) struct DbUpdateOp {
    table: Ident,
    id: Template,
    values: Vec<ColumnValue>,
    patch: Option<Template>,
    ok: usize,
    not_found: Option<usize>,
    conflict: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let ok = cx.writable(&cfg.values);
    let id = cx.template(&cfg.id, "id");
    let values = cx.column_values(def.as_ref(), &cfg.values, "values");
    let patch = match &cfg.patch {
        Some(p) => Some(cx.template(p, "patch")?),
        None => None,
    };
    let op = DbUpdateOp {
        table,
        id: id?,
        values: values?,
        patch,
        ok: cx.required(OK.name),
        not_found: cx.port(NOT_FOUND.name),
        conflict: cx.port(CONFLICT.name),
    };
    ok.then(|| -> Op { Box::new(op) })
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    rename_keys(node, "values", r);
}

impl CompiledOp for DbUpdateOp {
    /// Fixed `values` must stay within the `update` rule's `columns`.
    fn unruled(&self, catalog: &dyn crate::flow::node::TableCatalog) -> Option<String> {
        let def = catalog.table(self.table.as_str())?;
        let writable = crate::tables::rules::writable(def)?;
        let outside: Vec<String> = self
            .values
            .iter()
            .filter(|v| !writable.iter().any(|w| w == v.column.as_str()))
            .map(|v| format!("`{}`", v.column))
            .collect();
        (!outside.is_empty()).then(|| {
            format!(
                "db.update writes {}, which the update rule of `{}` does not let callers change",
                outside.join(", "),
                self.table
            )
        })
    }
    fn targets(&self) -> Vec<(&'static str, usize)> {
        ports_to(
            (OK.name, self.ok),
            &[
                (NOT_FOUND.name, self.not_found),
                (CONFLICT.name, self.conflict),
            ],
        )
    }
    fn table_write(&self) -> Option<TableWrite<'_>> {
        Some(TableWrite {
            table: self.table.as_str(),
            success: self.ok,
        })
    }
    fn responses(&self) -> Vec<ResponseFact> {
        not_found_fact(self.not_found)
            .into_iter()
            .chain(conflict_fact(self.conflict))
            .collect()
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(row_ref(self.table.as_str())))
    }
}

impl Runnable for DbUpdateOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        self.prepare_ruled(tables, false)
    }

    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        let def = table_def(tables, &self.table)?;
        let rule = sql::rule_for(def, tables, "update", rules);
        let guard = rule.as_ref().map(sql::guard);
        let check = if rules {
            crate::tables::rules::update_check(def, tables)
        } else {
            None
        };
        let check_guard = check.as_ref().map(sql::guard);
        let values = writes(def, tables, &self.values)?;
        // With `patch`, every other field may be written: column `i` is written only when the
        // patch names it (`Slot::Given(i)`).
        let mut patch = Vec::new();
        let mut columns = Vec::new();
        if self.patch.is_some() {
            for f in def
                .fields
                .iter()
                .filter(|f| !self.values.iter().any(|v| v.column == f.name))
            {
                let i = columns.len();
                let kind = write_kind(def, f.name.as_str());
                let write = Write::new(def, tables, f.name.clone(), Slot::Patch(i, kind))
                    .ok_or_else(|| BuildError(format!("{}.{}", def.name, f.name)))?;
                patch.push(Patch {
                    write,
                    given: Slot::Given(i),
                });
                columns.push(PatchColumn {
                    name: f.name.to_string(),
                    kind,
                });
            }
        }
        let st = query::update(
            def,
            Slot::Id,
            values,
            patch,
            Returning::CappedRow,
            guard.as_ref().map(|g| g as _),
            check_guard.as_ref().map(|g| g as _),
        );
        let mut prepared = Prepared::new(st).on(def, tables, Action::Write).ruled(
            def,
            "update",
            rule.as_ref(),
            check.as_ref(),
        );
        if let Some(applied) = prepared.rule.as_mut() {
            applied.writable = crate::tables::rules::writable(def).map(<[String]>::to_vec);
        }
        prepared.patch = columns;
        Ok(Some(prepared))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(self, cx))
    }
}

/// Fixed `values`, plus the columns a `patch` object names.
async fn run(op: &DbUpdateOp, cx: &mut Cx<'_>) -> Result<Step, RunError> {
    let (ok, not_found, conflict) = (op.ok, op.not_found, op.conflict);
    let prepared = cx.prepared();
    let id = cx.eval(&op.id).await?;
    if id.is_null() {
        return missing(cx, not_found);
    }
    // The statement's parameters are the values, the patch's, then the id (`query::update`).
    let mut binds = Vec::with_capacity(prepared.slots.len());
    bind_values(cx, &op.values, &mut binds, None).await?;
    if let Some(patch) = &op.patch {
        let given = match cx.eval(patch).await? {
            Value::Object(m) => m,
            other => return Err(cx.type_error(format!("patch must be an object, got {other}"))),
        };
        if let Some(unknown) = given
            .keys()
            .find(|k| !prepared.patch.iter().any(|c| &c.name == *k))
        {
            return Err(RunError::InvalidValue {
                node: cx.node_id().to_string(),
                message: format!("`{unknown}` is not a column that can be changed here"),
            });
        }
        // The update rule's `columns`: a patch naming any other field is refused whole.
        let writable = prepared.rule.as_ref().and_then(|r| r.writable.as_ref());
        if let (Some(writable), Some(rule)) = (writable, &prepared.rule)
            && given.keys().any(|k| !writable.contains(k))
        {
            return Err(RunError::RuleDenied {
                node: cx.node_id().to_string(),
                rule: rule.name.clone(),
            });
        }
        for col in &prepared.patch {
            match given.get(&col.name) {
                Some(v) => {
                    cx.check_storable(v, patch, Some(&col.name), || format!("patch/{}", col.name))?;
                    binds.push(Some("true".into()));
                    binds.push(cx.param(col.kind, v).await?);
                }
                None => {
                    binds.push(Some("false".into()));
                    binds.push(None);
                }
            }
        }
    }
    binds.push(bind_text(&id));
    write(cx, binds, ok, Some(not_found), conflict).await
}
