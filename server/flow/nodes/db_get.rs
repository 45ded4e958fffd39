//! `db.get`: reads one row by id. `found` binds `as` to the row; unwired `not_found` ends the
//! request with 404 `db.not_found`.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "db.get",
    ports: &[
        Port {
            name: "found",
            required: true,
            binds: true,
        },
        Port {
            name: "not_found",
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
    Some(Op::DbGet {
        table: table?.0,
        id: id?,
        found: cx.required("found"),
        not_found: cx.port("not_found"),
    })
}
