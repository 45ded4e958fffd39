//! `auth.hash_password`: hashes a password with argon2id; `ok` binds `as` to the hash (a PHC
//! string such as `$argon2id$v=19$...`), ready for a text column. Hashing runs off the async
//! workers.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port};
use serde::Deserialize;
use serde_json::{Value, json};

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("auth.hash_password", &[OK], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    password: Value,
}

/// A compiled `auth.hash_password`.
#[derive(Debug)]
pub(crate) struct HashPasswordOp {
    password: Template,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    Some(Box::new(HashPasswordOp {
        password: cx.template(&cfg.password, "password")?,
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for HashPasswordOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(json!({"type": "string"})))
    }
}

impl Runnable for HashPasswordOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(hash_password(cx, &self.password, self.ok))
    }
}

/// Passwords and hashes are marked secret, so debug runs never show them.
async fn hash_password(cx: &mut Cx<'_>, password: &Template, ok: usize) -> Result<Step, RunError> {
    let password = match cx.eval(password).await? {
        Value::String(s) if !s.is_empty() && s.len() <= MAX_PASSWORD_BYTES => s,
        other => {
            if let Value::String(s) = &other {
                cx.keep_secret(s);
            }
            return Err(RunError::AuthValue {
                node: cx.node_id().to_string(),
                message: format!("a password must be text of 1 to {MAX_PASSWORD_BYTES} bytes"),
            });
        }
    };
    cx.keep_secret(&password);
    let hash = crate::auth::hash_password(password)
        .await
        .map_err(|e| hash_error(cx, e))?;
    cx.keep_secret(&hash);
    Ok(Step::Next {
        port: OK.name,
        to: ok,
        bind: Some(Value::String(hash)),
    })
}

/// Longest password the nodes accept, in bytes.
pub(crate) const MAX_PASSWORD_BYTES: usize = crate::auth::MAX_PASSWORD_BYTES;

/// The node's error for a failure of the password hasher.
pub(crate) fn hash_error(cx: &Cx<'_>, e: crate::auth::AuthError) -> RunError {
    let node = cx.node_id().to_string();
    match e {
        crate::auth::AuthError::Busy => RunError::Busy { node },
        e => RunError::Auth {
            node,
            message: e.to_string(),
        },
    }
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
