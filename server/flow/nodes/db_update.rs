//! `db.update`: changes one row by id. `values` are always written; `patch` (an object, usually
//! `request.body`) writes only the columns it names. `ok` binds `as` to the updated row;
//! unwired `not_found` is 404 `db.not_found`, unwired `conflict` is 409 `db.conflict`.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const TYPE: NodeType = NodeType {
    name: "db.update",
    ports: &[
        Port {
            name: "ok",
            required: true,
            binds: true,
        },
        Port {
            name: "not_found",
            required: false,
            binds: false,
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
    id: Value,
    #[serde(default)]
    values: BTreeMap<String, Value>,
    patch: Option<Value>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let (table, def) = cx.table(&cfg.table)?;
    let ok = cx.writable(&cfg.values);
    let id = cx.template(&cfg.id, "id");
    let values = cx.column_values(def.as_ref(), &cfg.values, "values");
    let patch = match &cfg.patch {
        Some(p) => Some(cx.template(p, "patch")?),
        None => None,
    };
    ok.then_some(Op::DbUpdate {
        table,
        id: id?,
        values: values?,
        patch,
        ok: cx.required("ok"),
        not_found: cx.port("not_found"),
        conflict: cx.port("conflict"),
    })
}
