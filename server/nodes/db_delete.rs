//! `db.delete`: deletes one row by id. `ok` binds `as` to the deleted row; unwired `not_found`
//! is 404 `db.not_found`; unwired `conflict` (another row still references it) is 409.

use super::db_get::{NOT_FOUND, by_id, missing, not_found_fact, table_def};
use super::db_insert::{CONFLICT, OK, conflict_fact, write};
use crate::engine::run::{Cx, bind_text};
use crate::engine::sql::{self, BuildError, Prepared, Slot};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Renames, ResponseFact, TableWrite,
    ports_to, row_ref,
};
use crate::tables::Ident;
use crate::tables::def::Tables;
use crate::tables::query::{self, Returning};
use crate::tables::violation::Action;
use serde_json::Value;

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.delete",
    &[OK, NOT_FOUND, CONFLICT],
    compile,
    NodeOptions {
        rename: Some(rename),
        ..NodeOptions::DEFAULT
    }
);

/// A compiled `db.delete`.
#[derive(Debug)]
pub(crate) struct DbDeleteOp {
    table: Ident,
    id: Template,
    ok: usize,
    not_found: Option<usize>,
    conflict: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let (table, id) = by_id(node, cx)?;
    Some(Box::new(DbDeleteOp {
        table,
        id,
        ok: cx.required(OK.name),
        not_found: cx.port(NOT_FOUND.name),
        conflict: cx.port(CONFLICT.name),
    }))
}

/// Only the table name follows a rename (done by the caller).
fn rename(_: &mut Value, _: &Renames<'_>) {}

impl CompiledOp for DbDeleteOp {
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

impl Runnable for DbDeleteOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        self.prepare_ruled(tables, false)
    }

    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        let def = table_def(tables, &self.table)?;
        let rule = sql::rule_for(def, tables, "delete", rules);
        let guard = rule.as_ref().map(sql::guard);
        let st = query::delete(
            def,
            Slot::Id,
            Returning::CappedRow,
            guard.as_ref().map(|g| g as _),
        );
        Ok(Some(
            Prepared::new(st).on(def, tables, Action::Delete).ruled(
                def,
                "delete",
                rule.as_ref(),
                None,
            ),
        ))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let id = cx.eval(&self.id).await?;
            if id.is_null() {
                return missing(cx, self.not_found);
            }
            let binds = vec![bind_text(&id)];
            write(cx, binds, self.ok, Some(self.not_found), self.conflict).await
        })
    }
}
