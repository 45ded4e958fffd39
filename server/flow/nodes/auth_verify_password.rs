//! `auth.verify_password`: checks a password against an argon2 hash; `valid` or `invalid`.
//! A password that is not text, and a hash that is null or malformed, are `invalid` after the
//! same hashing work as a real check, so response times do not tell the cases apart. Unwired,
//! `invalid` ends the request with 401 `auth.invalid_credentials`.

use super::{NodeCx, NodeType, Port};
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "auth.verify_password",
    ports: &[
        Port {
            name: "valid",
            required: true,
            binds: false,
        },
        Port {
            name: "invalid",
            required: false,
            binds: false,
        },
    ],
    binds: false,
    dynamic_ports: None,
    compile,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    password: Value,
    hash: Value,
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let password = cx.template(&cfg.password, "password");
    let hash = cx.template(&cfg.hash, "hash");
    Some(Op::AuthVerifyPassword {
        password: password?,
        hash: hash?,
        valid: cx.required("valid"),
        invalid: cx.port("invalid"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use crate::flow::plan::Op;
    use serde_json::json;

    #[test]
    fn valid_is_required_and_invalid_is_optional() {
        let node = json!({"type": "auth.verify_password", "password": {"$rhai": "request.body.pw"},
                          "hash": "$argon2id$...", "next": {"valid": "r"}});
        assert!(matches!(
            op(&flow_with(node.clone())),
            Op::AuthVerifyPassword { invalid: None, .. }
        ));
        let mut unwired = node.clone();
        unwired["next"] = json!({"invalid": "r"});
        assert_eq!(
            problems(&flow_with(unwired)),
            [("flow.missing_response", "/nodes/n/next".to_string())]
        );
    }

    #[test]
    fn it_binds_nothing() {
        let node = json!({"type": "auth.verify_password", "password": "a", "hash": "b",
                          "as": "ok", "next": {"valid": "r"}});
        assert_eq!(
            problems(&flow_with(node)),
            [("flow.schema", "/nodes/n".to_string())]
        );
    }
}
