//! `db.get`: reads one row by id. `found` binds `as` to the row; unwired `not_found` ends the
//! request with 404 `db.not_found`.

use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sql::{BuildError, Prepared, Slot};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, Renames, ResponseFact, ports_to,
};
use crate::tables::Ident;
use crate::tables::def::Tables;
use crate::tables::violation::Action;
use crate::tables::{TableDef, query};
use serde::Deserialize;
use serde_json::Value;

const FOUND: Port = Port::success("found");
/// The port of a node that found no row by its id (`db.get`, `db.update`, `db.delete`).
pub(crate) const NOT_FOUND: Port = Port::optional("not_found");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "db.get",
    &[FOUND, NOT_FOUND],
    compile,
    NodeOptions {
        rename: Some(rename),
        ..NodeOptions::DEFAULT
    }
);

/// The config of a node on one row by id (`db.get`, `db.delete`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ById {
    table: String,
    id: Value,
}

/// Compiles the config of a node on one row by id: its table and the id's template.
pub(crate) fn by_id(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<(Ident, Template)> {
    let cfg: ById = cx.config(node)?;
    let table = cx.table(&cfg.table);
    let id = cx.template(&cfg.id, "id");
    Some((table?.0, id?))
}

/// The config of `db.get`: a row by id, with related rows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    id: Value,
    #[serde(default)]
    include: Vec<Value>,
}

/// A compiled `db.get`.
#[derive(Debug)]
pub(crate) struct DbGetOp {
    table: Ident,
    id: Template,
    include: Vec<query::Include>,
    found: usize,
    not_found: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let table = cx.table(&cfg.table);
    let id = cx.template(&cfg.id, "id");
    let include = match &table {
        Some((_, def)) => super::include::parse(cx, def.as_ref(), &cfg.include, "include"),
        None => None,
    };
    Some(Box::new(DbGetOp {
        table: table?.0,
        id: id?,
        include: include?,
        found: cx.required(FOUND.name),
        not_found: cx.port(NOT_FOUND.name),
    }))
}

/// The table name follows a rename (done by the caller); the node's own reference fields in
/// `include` follow here.
fn rename(node: &mut Value, r: &Renames<'_>) {
    if let Some(include) = node.get_mut("include") {
        super::include::rename(include, r);
    }
}

/// The definition of a node's table at publish time.
pub(crate) fn table_def<'t>(tables: &'t Tables, t: &Ident) -> Result<&'t TableDef, BuildError> {
    tables
        .get(t.as_str())
        .ok_or_else(|| BuildError(t.to_string()))
}

/// The standard 404 of a node with an unwired `not_found` port.
pub(crate) fn not_found_fact(not_found: Option<usize>) -> Option<ResponseFact> {
    not_found.is_none().then_some(ResponseFact::Error {
        status: 404,
        code: "db.not_found",
    })
}

impl CompiledOp for DbGetOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        ports_to(
            (FOUND.name, self.found),
            &[(NOT_FOUND.name, self.not_found)],
        )
    }
    fn touches_db(&self) -> bool {
        true
    }
    fn responses(&self) -> Vec<ResponseFact> {
        not_found_fact(self.not_found).into_iter().collect()
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(super::include::row_shape(
            self.table.as_str(),
            &[],
            &self.include,
        )))
    }
}

impl Runnable for DbGetOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        self.prepare_ruled(tables, false)
    }

    fn prepare_ruled(&self, tables: &Tables, rules: bool) -> Result<Option<Prepared>, BuildError> {
        let def = table_def(tables, &self.table)?;
        let rule = crate::engine::sql::rule_for(def, tables, "view", rules);
        let guard = rule.as_ref().map(crate::engine::sql::guard);
        let included = super::include::IncludedRules::new(tables, rules);
        let include_guard =
            |table: &str, action: &str, alias: &str, params: &mut query::Params<Slot>| {
                included.guard(table, action, alias, params)
            };
        let st = query::get_with(
            def,
            tables,
            Slot::Id,
            guard.as_ref().map(|g| g as _),
            &self.include,
            Some(&include_guard),
        )
        .map_err(|e| BuildError(e.0))?;
        let mut prepared =
            Prepared::new(st)
                .on(def, tables, Action::Read)
                .ruled(def, "view", rule.as_ref(), None);
        included.note(&mut prepared.rule);
        Ok(Some(prepared))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let id = cx.eval(&self.id).await?;
            if id.is_null() {
                return missing(cx, self.not_found);
            }
            match cx.fetch(vec![bind_text(&id)], false).await? {
                Some(row) => Ok(Step::Next {
                    port: FOUND.name,
                    to: self.found,
                    bind: Some(row),
                }),
                None => missing(cx, self.not_found),
            }
        })
    }
}

/// The `not_found` port, or the standard 404.
pub(crate) fn missing(cx: &Cx<'_>, not_found: Option<usize>) -> Result<Step, RunError> {
    match not_found {
        Some(to) => Ok(Step::Next {
            port: NOT_FOUND.name,
            to,
            bind: None,
        }),
        None => Err(RunError::NotFound {
            node: cx.node_id().to_string(),
        }),
    }
}
