//! `db.sql`: one parameterised SQL statement written by the builder. `:name` parameters are
//! rewritten to `$n` here, once (see [`sqlscan`](crate::flow::sqlscan)); every `:name` must be
//! in `params` and every param used. The engine runs the statement as role `sluice_app`, which
//! reaches only schema `app`, inside the request's transaction. `ok` binds `as` to the array
//! of rows (`[]` for a write without `RETURNING`).

use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sql::{self, BuildError, Prepared};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port};
use crate::flow::plan::Statement;
use crate::flow::sqlscan;
use crate::tables::def::Tables;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!("db.sql", &[OK], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sql: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
}

/// A compiled `db.sql`.
#[derive(Debug)]
pub(crate) struct DbSqlOp {
    statement: Statement,
    /// One value per `$n`, in order.
    params: Vec<Template>,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let at = format!("{}/sql", cx.pointer);
    let scanned = match sqlscan::scan(&cfg.sql) {
        Ok(s) => s,
        Err(e) => {
            let mut d = Diagnostic::new("flow.bad_sql", at, e.message);
            d.line = Some(crate::flow::diag::pos(e.line));
            d.column = Some(crate::flow::diag::pos(e.column));
            cx.expr.push(d);
            return None;
        }
    };
    let mut ok = true;
    for name in &scanned.params {
        if cfg.params.contains_key(name) {
            continue;
        }
        ok = false;
        let (line, column) = scanned
            .uses
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, l, c)| (*l, *c))
            .unwrap_or((1, 1));
        let mut d = Diagnostic::new(
            "flow.unknown_param",
            at.clone(),
            format!("`:{name}` is not in `params`"),
        );
        d.line = Some(crate::flow::diag::pos(line));
        d.column = Some(crate::flow::diag::pos(column));
        cx.expr.push(d);
    }
    for name in cfg.params.keys() {
        if !scanned.params.contains(name) {
            cx.problem(
                "flow.unused_param",
                &format!("params/{}", seg(name)),
                format!("the statement does not use `:{name}`"),
            );
            ok = false;
        }
    }
    let mut params = Vec::with_capacity(scanned.params.len());
    for name in &scanned.params {
        if let Some(v) = cfg.params.get(name) {
            match cx.template(v, &format!("params/{}", seg(name))) {
                Some(t) => params.push(t),
                None => ok = false,
            }
        }
    }
    ok.then(|| -> Op {
        Box::new(DbSqlOp {
            statement: Statement {
                text: scanned.text,
                shape: scanned.shape,
                names: scanned.params,
            },
            params,
            ok: cx.required(OK.name),
        })
    })
}

impl CompiledOp for DbSqlOp {
    /// Hand-written SQL cannot have a rule ANDed in: a statement that names a table with
    /// rules (any word of it that is such a table's name, quoted or not) needs a bypass.
    fn unruled(&self, catalog: &dyn crate::flow::node::TableCatalog) -> Option<String> {
        let mut named: Vec<&str> = self
            .statement
            .text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .filter(|w| catalog.table(w).is_some_and(|t| t.rules.is_some()))
            .collect();
        named.sort_unstable();
        named.dedup();
        (!named.is_empty()).then(|| {
            format!(
                "db.sql names {}, which has access rules that hand-written SQL does not apply",
                named
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    /// Always counts as a write: the statement is the builder's, and its role switch needs a
    /// transaction.
    fn writes(&self) -> bool {
        true
    }
}

impl Runnable for DbSqlOp {
    fn prepare(&self, _tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        Ok(Some(sql::sql_statement(&self.statement)))
    }

    /// Parameters are bound as text (the statement casts them), and the statement runs as
    /// role `sluice_app` inside the request's transaction ([`Cx::fetch_as_app`]).
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let mut binds = Vec::with_capacity(self.params.len());
            let mut seen = Map::new();
            for (name, t) in self.statement.names.iter().zip(&self.params) {
                let v = cx.eval(t).await?;
                binds.push(bind_text(&v));
                seen.insert(name.clone(), v);
            }
            cx.note_input(|| Value::Object(seen));
            let rows = cx.fetch_as_app(binds).await?;
            Ok(Step::Next {
                port: OK.name,
                to: self.ok,
                bind: Some(rows.unwrap_or_else(|| Value::Array(Vec::new()))),
            })
        })
    }
}
