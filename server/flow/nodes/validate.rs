//! `validate`: checks a value against a JSON Schema. `ok` (binds `as` to the value) or
//! `invalid`; unwired `invalid` ends the request with 400 `input.invalid`.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::Diagnostic;
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

pub const TYPE: NodeType = NodeType {
    name: "validate",
    ports: &[
        Port {
            name: "ok",
            required: true,
            binds: true,
        },
        Port {
            name: "invalid",
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
    value: Value,
    schema: Value,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let value = cx.template(&cfg.value, "value");
    let schema = match crate::flow::schema::user_validator(&cfg.schema) {
        Ok(v) => Some(Arc::new(v)),
        Err(e) => {
            let at = format!("{}/schema", cx.pointer);
            cx.expr
                .push(Diagnostic::new("flow.bad_schema", at, e.to_string()));
            None
        }
    };
    Some(Op::Validate {
        value: value?,
        schema: schema?,
        ok: cx.required("ok"),
        invalid: cx.port("invalid"),
    })
}
