//! `db.delete`: deletes one row by id. `ok` binds `as` to the deleted row; unwired `not_found`
//! is 404 `db.not_found`; unwired `conflict` (another row still references it) is 409.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "db.delete",
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
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let table = cx.table(&cfg.table);
    let id = cx.template(&cfg.id, "id");
    Some(Op::DbDelete {
        table: table?.0,
        id: id?,
        ok: cx.required("ok"),
        not_found: cx.port("not_found"),
        conflict: cx.port("conflict"),
    })
}
