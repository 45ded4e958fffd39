//! `auth.hash_password`: hashes a password with argon2id; `ok` binds `as` to the hash (a PHC
//! string such as `$argon2id$v=19$...`), ready for a text column. Hashing runs off the async
//! workers.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "auth.hash_password",
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
    password: Value,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    Some(Op::AuthHashPassword {
        password: cx.template(&cfg.password, "password")?,
        ok: cx.required("ok"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, problems};
    use serde_json::json;

    #[test]
    fn the_hash_is_visible_after_ok_and_the_password_is_required() {
        let mut doc = flow_with(
            json!({"type": "auth.hash_password", "password": {"$rhai": "request.body.pw"},
                                       "as": "hash", "next": {"ok": "r"}}),
        );
        doc["nodes"]["r"]["body"] = json!({"$rhai": "hash"});
        assert!(problems(&doc).is_empty());
        doc["nodes"]["n"]
            .as_object_mut()
            .map(|n| n.remove("password"));
        assert_eq!(problems(&doc), [("flow.schema", "/nodes/n".to_string())]);
    }
}
