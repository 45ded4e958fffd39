//! `auth.issue_token`: signs an API token (JWT, HS256) with the current key from the catalog;
//! `ok` binds `as` to `{"token", "expires_at"}`. Claims: `sub`, `iat`, `exp` (now +
//! `expires_in`) and the keys of `claims`, which may not set those three. Debug-run traces show
//! the token as `***`.

use super::{NodeCx, NodeType, Port};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::expr::Template;
use crate::flow::plan::Op;
use serde::Deserialize;
use serde_json::Value;

pub const TYPE: NodeType = NodeType {
    name: "auth.issue_token",
    ports: &[Port {
        name: "ok",
        required: true,
        binds: true,
    }],
    binds: true,
    dynamic_ports: None,
    compile,
};

/// Default and longest lifetime of a token, in seconds.
pub const DEFAULT_EXPIRES_IN: u32 = 3600;
pub use crate::base::MAX_TOKEN_EXPIRES_IN as MAX_EXPIRES_IN;

/// Claims the node sets itself.
pub const RESERVED_CLAIMS: [&str; 3] = ["sub", "exp", "iat"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sub: Value,
    claims: Option<Value>,
    #[serde(default = "default_expires_in")]
    expires_in: u32,
}

fn default_expires_in() -> u32 {
    DEFAULT_EXPIRES_IN
}

fn compile(node: &Value, cx: &mut NodeCx<'_>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let sub = cx.template(&cfg.sub, "sub");
    let claims = match &cfg.claims {
        None => None,
        Some(c) => {
            let t = cx.template(c, "claims")?;
            // Keys written in the document are known now; computed ones are checked when run.
            let keys: Vec<&str> = match (&t, c) {
                (Template::Literal(Value::Object(m)), _) | (_, Value::Object(m))
                    if !m.contains_key("$rhai") =>
                {
                    m.keys().map(String::as_str).collect()
                }
                (Template::Literal(_), _) => {
                    let at = format!("{}/claims", cx.pointer);
                    cx.expr.push(Diagnostic::new(
                        "flow.bad_config",
                        at,
                        "claims must be an object",
                    ));
                    return None;
                }
                _ => Vec::new(),
            };
            for k in keys.into_iter().filter(|k| RESERVED_CLAIMS.contains(k)) {
                let at = format!("{}/claims/{}", cx.pointer, seg(k));
                cx.expr.push(Diagnostic::new(
                    "flow.reserved_claim",
                    at,
                    format!("`{k}` is set by the node; it cannot be a claim of its own"),
                ));
            }
            Some(t)
        }
    };
    Some(Op::AuthIssueToken {
        sub: sub?,
        claims,
        expires_in: cfg.expires_in.clamp(1, MAX_EXPIRES_IN),
        ok: cx.required("ok"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use crate::flow::plan::Op;
    use serde_json::json;

    fn node(extra: serde_json::Value) -> serde_json::Value {
        let mut n = json!({"type": "auth.issue_token", "sub": {"$rhai": "request.body.id"},
                           "as": "t", "next": {"ok": "r"}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            n[k] = v.clone();
        }
        n
    }

    #[test]
    fn the_default_lifetime_is_one_hour() {
        let Op::AuthIssueToken {
            expires_in, claims, ..
        } = op(&flow_with(node(json!({}))))
        else {
            panic!("an auth.issue_token op")
        };
        assert_eq!((expires_in, claims.is_none()), (3600, true));
    }

    #[test]
    fn claims_cannot_set_sub_exp_or_iat() {
        let doc = flow_with(node(
            json!({"claims": {"role": "x", "iat": 1, "sub": {"$rhai": "1"}}}),
        ));
        assert_eq!(
            problems(&doc),
            [
                ("flow.reserved_claim", "/nodes/n/claims/iat".to_string()),
                ("flow.reserved_claim", "/nodes/n/claims/sub".to_string())
            ]
        );
    }

    #[test]
    fn claims_must_be_an_object_and_lifetimes_are_bounded() {
        assert_eq!(
            problems(&flow_with(node(json!({"claims": [1]})))),
            [("flow.bad_config", "/nodes/n/claims".to_string())]
        );
        assert!(
            problems(&flow_with(node(
                json!({"claims": {"$rhai": "request.body"}})
            )))
            .is_empty()
        );
        for bad in [json!(0), json!(2_592_001), json!("1h")] {
            let found = problems(&flow_with(node(json!({ "expires_in": bad }))));
            assert_eq!(found, [("flow.schema", "/nodes/n/expires_in".to_string())]);
        }
    }
}
