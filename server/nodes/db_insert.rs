//! `db.insert`: inserts one row. `ok` binds `as` to the inserted row; unwired `conflict` (a
//! unique constraint refused the row) ends the request with 409 `db.conflict`.

use super::db_get::missing;
use super::db_get::table_def;
use crate::engine::run::{Cx, Step};
use crate::engine::sql::{
    AppliedCreate, AppliedRule, BuildError, ParamKind, Prepared, Slot, write_kind,
};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::Diagnostic;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, Renames, ResponseFact,
    TableWrite, ports_to, rename_keys, row_ref,
};
use crate::flow::plan::ColumnValue;
use crate::tables::Ident;
use crate::tables::TableDef;
use crate::tables::def::Tables;
use crate::tables::query::{self, Returning, Write};
use crate::tables::rules::{self, BindAs, RuleParam};
use crate::tables::violation::Action;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The success port of every write (`db.insert`, `db.update`, `db.delete`, `db.upsert`).
pub(crate) const OK: Port = Port::success("ok");
/// The port of a write a constraint refused (`db.insert`, `db.update`, `db.delete`,
/// `db.upsert`).
/// A refused row: the branch sees the `rule` broken and its `details` in `error`.
pub(crate) const CONFLICT: Port = Port::failure("conflict");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.insert",
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
}

/// A compiled `db.insert`.
#[derive(Debug)]
pub(crate) struct DbInsertOp {
    table: Ident,
    values: Vec<ColumnValue>,
    ok: usize,
    conflict: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let mut ok = cx.writable(&cfg.values);
    if let Some(def) = &def {
        for f in def
            .must_be_given()
            .filter(|f| !cfg.values.contains_key(f.name.as_str()))
        {
            let at = format!("{}/values", cx.pointer);
            let msg = format!(
                "required column `{}` of table `{}` is not given",
                f.name, def.name
            );
            cx.expr
                .push(Diagnostic::new("flow.missing_column", at, msg));
            ok = false;
        }
    }
    let values = cx.column_values(def.as_ref(), &cfg.values, "values")?;
    ok.then(|| -> Op {
        Box::new(DbInsertOp {
            table,
            values,
            ok: cx.required(OK.name),
            conflict: cx.port(CONFLICT.name),
        })
    })
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    rename_keys(node, "values", r);
}

/// The standard 409 of a write with an unwired `conflict` port.
pub(crate) fn conflict_fact(conflict: Option<usize>) -> Option<ResponseFact> {
    conflict.is_none().then_some(ResponseFact::Error {
        status: 409,
        code: "db.conflict",
    })
}

impl CompiledOp for DbInsertOp {
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
        OutputShape::Fixed(Some(row_ref(self.table.as_str())))
    }
}

impl Runnable for DbInsertOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        self.prepare_ruled(tables, false)
    }

    /// With the table's `create` rule: a column the rule sets that the node also writes keeps
    /// its place and gets the rule's value at run time; one the node does not write is added
    /// as the statement's last parameter.
    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        let def = table_def(tables, &self.table)?;
        let create = if rules {
            rules::create(def, tables)
        } else {
            None
        };
        let mut writes = writes(def, tables, &self.values)?;
        let mut applied = None;
        let mut check = None;
        if let Some(c) = create {
            let mut overrides = Vec::new();
            let mut params = Vec::new();
            let mut added = Vec::new();
            for (column, source) in c.set {
                let param = RuleParam {
                    source,
                    bind: BindAs::Text,
                };
                match self.values.iter().position(|v| v.column == column) {
                    Some(i) => overrides.push((i, param)),
                    None => {
                        let name = column.to_string();
                        writes.push(
                            Write::new(def, tables, column, Slot::Rule)
                                .ok_or_else(|| BuildError(format!("{}.{name}", def.name)))?,
                        );
                        added.push(name);
                        params.push(param);
                    }
                }
            }
            // The check's parameters follow the added columns': the statement's last.
            params.extend(c.check.iter().flat_map(rules::Condition::params));
            check = c.check;
            applied = Some(AppliedRule {
                name: format!("{}.create", def.name),
                params,
                create: Some(AppliedCreate { overrides, added }),
                writable: None,
            });
        }
        let check_guard = check.as_ref().map(crate::engine::sql::guard);
        let st = query::insert(
            def,
            writes,
            Returning::CappedRow,
            check_guard.as_ref().map(|g| g as _),
        );
        let mut prepared = Prepared::new(st).on(def, tables, Action::Write);
        prepared.rule = applied;
        Ok(Some(prepared))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let mut binds = Vec::with_capacity(self.values.len());
            let create = cx.prepared().rule.as_ref().and_then(|r| r.create.as_ref());
            let Some(create) = create else {
                bind_values(cx, &self.values, &mut binds, None).await?;
                return write(cx, binds, self.ok, None, self.conflict).await;
            };
            bind_values(cx, &self.values, &mut binds, None).await?;
            let rule = cx.prepared().rule.as_ref();
            let denied = || RunError::RuleDenied {
                node: cx.node_id().to_string(),
                rule: rule.map(|r| r.name.clone()).unwrap_or_default(),
            };
            // The rule's values, whatever the node wrote; a value that is null (an anonymous
            // caller's id) cannot be set, so the row is refused. The check runs in the
            // statement, on the row as written (`query::checked`).
            for (i, param) in &create.overrides {
                let bind = rules::bind_text(param, cx.caller()).ok_or_else(denied)?;
                if let Some(slot) = binds.get_mut(*i) {
                    *slot = Some(bind);
                }
            }
            let added = rule.map(|r| &r.params[..create.added.len()]).unwrap_or(&[]);
            if added
                .iter()
                .any(|param| rules::bind_text(param, cx.caller()).is_none())
            {
                return Err(denied());
            }
            write(cx, binds, self.ok, None, self.conflict).await
        })
    }
}

/// The writes of a node's `values`: value `i` is [`Slot::Value`] `i`, bound by its column's
/// kind.
pub(crate) fn writes(
    def: &TableDef,
    tables: &Tables,
    values: &[ColumnValue],
) -> Result<Vec<Write<Slot>>, BuildError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = v.column.as_str();
            let slot = Slot::Value(i, write_kind(def, c));
            Write::new(def, tables, v.column.clone(), slot)
                .ok_or_else(|| BuildError(format!("{}.{c}", def.name)))
        })
        .collect()
}

/// Runs a write's statement: the row goes to `ok`; no row goes to `not_found` when the write
/// names one (`Some`: by id), a write a constraint refused goes to `conflict` when wired.
pub(crate) async fn write(
    cx: &mut Cx<'_>,
    binds: Vec<Option<String>>,
    ok: usize,
    not_found: Option<Option<usize>>,
    conflict: Option<usize>,
) -> Result<Step, RunError> {
    match cx.fetch(binds, conflict.is_some()).await {
        Ok(None) if let Some(not_found) = not_found => missing(cx, not_found),
        Ok(row) => Ok(Step::Next {
            port: OK.name,
            to: ok,
            bind: row,
        }),
        Err(e @ RunError::Conflict { .. }) if let Some(to) = conflict => {
            // The branch sees what was refused in `error`, as an error port's does.
            let value = e.error_value(cx.node_id());
            cx.bind("error", value);
            Ok(Step::Next {
                port: CONFLICT.name,
                to,
                bind: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// Evaluates a write's `values` and binds each by its column's kind in the prepared
/// statement; with `seen`, also keeps them for the trace (clear-text passwords hidden).
pub(crate) async fn bind_values(
    cx: &mut Cx<'_>,
    values: &[ColumnValue],
    binds: &mut Vec<Option<String>>,
    mut seen: Option<&mut Map<String, Value>>,
) -> Result<(), RunError> {
    let kinds = &cx.prepared().kinds;
    for (v, kind) in values.iter().zip(kinds) {
        let value = cx.eval(&v.value).await?;
        cx.check_storable(&value, &v.value, None, || format!("values/{}", v.column))?;
        binds.push(cx.param(*kind, &value).await?);
        if let Some(seen) = seen.as_deref_mut() {
            let shown = match kind {
                ParamKind::Password => Value::String("[hidden]".into()),
                _ => value,
            };
            seen.insert(v.column.to_string(), shown);
        }
    }
    Ok(())
}
