//! `auth.issue_token`: signs an API token (JWT, HS256) with the current key from the catalog;
//! `ok` binds `as` to `{"token", "expires_at"}`. Claims: `sub`, `iat`, `exp` (now +
//! `expires_in`) and the keys of `claims`, which may not set those three. Debug-run traces show
//! the token as `***`.

use crate::engine::run::{Cx, Step};
use crate::engine::sandbox::format_rfc3339;
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::{Diagnostic, seg};
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("auth.issue_token", &[OK], compile, NodeOptions::DEFAULT);

/// Default and longest lifetime of a token, in seconds.
pub const DEFAULT_EXPIRES_IN: u32 = 3600;
pub const MAX_EXPIRES_IN: u32 = crate::auth::MAX_TOKEN_LIFETIME_SECS;

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

/// A compiled `auth.issue_token`.
#[derive(Debug)]
pub(crate) struct IssueTokenOp {
    sub: Template,
    claims: Option<Template>,
    expires_in: u32,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
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
    Some(Box::new(IssueTokenOp {
        sub: sub?,
        claims,
        expires_in: cfg.expires_in.clamp(1, MAX_EXPIRES_IN),
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for IssueTokenOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(json!({
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
            "required": ["expires_at", "token"],
        })))
    }
}

impl Runnable for IssueTokenOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(issue_token(
            cx,
            &self.sub,
            self.claims.as_ref(),
            self.expires_in,
            self.ok,
        ))
    }
}

/// The token is marked secret, so debug runs never show it.
async fn issue_token(
    cx: &mut Cx<'_>,
    sub: &Template,
    claims: Option<&Template>,
    expires_in: u32,
    ok: usize,
) -> Result<Step, RunError> {
    let sub = match cx.eval(sub).await? {
        Value::String(s) if !s.is_empty() => s,
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(cx.type_error(format!(
                "sub must be non-empty text or an integer, not {other}"
            )));
        }
    };
    let claims = match claims {
        Some(c) => Some(cx.eval(c).await?),
        None => None,
    };
    let mut all = match claims {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(cx.type_error("claims must be an object")),
    };
    if let Some(k) = RESERVED_CLAIMS.iter().find(|k| all.contains_key(**k)) {
        return Err(cx.type_error(format!(
            "claims cannot set `{k}`; the node sets sub, exp and iat"
        )));
    }
    let ring = &cx.live.token_keys;
    let Some(key) = ring.current() else {
        return Err(RunError::Auth {
            node: cx.node_id().to_string(),
            message: "there is no token signing key".into(),
        });
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let exp = now + i64::from(expires_in);
    all.insert("sub".into(), Value::String(sub));
    all.insert("iat".into(), Value::from(now));
    all.insert("exp".into(), Value::from(exp));
    let token = crate::auth::jwt::sign(key, &all);
    cx.keep_secret(&token);
    Ok(Step::Next {
        port: OK.name,
        to: ok,
        bind: Some(json!({"token": token, "expires_at": format_rfc3339(exp, 0)})),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use super::IssueTokenOp;
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
        let IssueTokenOp {
            expires_in, claims, ..
        } = op(&flow_with(node(json!({}))));
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
