//! `db.sql`: one parameterised SQL statement written by the builder. `:name` parameters are
//! rewritten to `$n` here, once (see [`sqlscan`](crate::flow::sqlscan)); every `:name` must be
//! in `params` and every param used. The engine runs the statement as role `sluice_app`, which
//! reaches only schema `app`, inside the request's transaction. `ok` binds `as` to the array
//! of rows (`[]` for a write without `RETURNING`).

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::plan::{Op, Statement};
use crate::flow::sqlscan;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TYPE: NodeType = NodeType {
    name: "db.sql",
    ports: &[Port {
        name: "ok",
        required: true,
        binds: true,
    }],
    binds: true,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sql: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let at = format!("{}/sql", cx.pointer);
    let scanned = match sqlscan::scan(&cfg.sql) {
        Ok(s) => s,
        Err(e) => {
            let mut d = Diagnostic::new("flow.bad_sql", at, e.message);
            d.line = Some(e.line);
            d.column = Some(e.column);
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
        d.line = Some(line);
        d.column = Some(column);
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
    ok.then(|| Op::DbSql {
        statement: Statement {
            text: scanned.text,
            shape: scanned.shape,
            names: scanned.params,
        },
        params,
        ok: cx.required("ok"),
    })
}
