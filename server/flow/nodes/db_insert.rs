//! `db.insert`: inserts one row. `ok` binds `as` to the inserted row; unwired `conflict` (a
//! unique constraint refused the row) ends the request with 409 `db.conflict`.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::Diagnostic;
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TYPE: NodeType = NodeType {
    name: "db.insert",
    ports: &[
        Port {
            name: "ok",
            required: true,
            binds: true,
        },
        Port {
            name: "conflict",
            required: false,
            binds: false,
        },
    ],
    binds: true,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    table: String,
    values: BTreeMap<String, Value>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
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
    ok.then_some(Op::DbInsert {
        table,
        values,
        ok: cx.required("ok"),
        conflict: cx.port("conflict"),
    })
}
