//! `auth.logout`: ends end-user sessions (docs/SESSIONS.md). Which ones:
//!
//! - with `refresh_token`: the session of that refresh token (used up or not); an unknown one
//!   ends nothing, and says so only by `ended: 0`;
//! - without: the session of the request's own token (its `sid` claim), on a `user` or
//!   `admin` endpoint; a token without a session fails with 401 `auth.no_session`.
//!
//! With `everywhere: true` every session of that session's subject (or, without a session, of
//! the request's `auth.id`) ends: "log out everywhere". `ok` binds `{"ended": n}`. Access
//! tokens of ended sessions are refused from then on (the revoked set); the ending commits at
//! once, whatever the flow does next.

use super::auth_issue_token::session_db_error;
use crate::engine::error::SessionFailure;
use crate::engine::run::{Cx, Step};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, ResponseFact,
};
use serde::Deserialize;
use serde_json::{Value, json};

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("auth.logout", &[OK], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    refresh_token: Option<Value>,
    #[serde(default)]
    everywhere: bool,
}

/// A compiled `auth.logout`.
#[derive(Debug)]
pub(crate) struct LogoutOp {
    refresh_token: Option<Template>,
    everywhere: bool,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let refresh_token = match &cfg.refresh_token {
        Some(t) => Some(cx.template(t, "refresh_token")?),
        None => None,
    };
    Some(Box::new(LogoutOp {
        refresh_token,
        everywhere: cfg.everywhere,
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for LogoutOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn responses(&self) -> Vec<ResponseFact> {
        (self.refresh_token.is_none() && !self.everywhere)
            .then_some(ResponseFact::Error {
                status: 401,
                code: "auth.no_session",
            })
            .into_iter()
            .collect()
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(json!({
            "type": "object",
            "properties": {"ended": {"type": "integer"}},
            "required": ["ended"],
        })))
    }
}

impl Runnable for LogoutOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(logout(cx, self))
    }
}

async fn logout(cx: &mut Cx<'_>, op: &LogoutOp) -> Result<Step, RunError> {
    let now = crate::auth::bearer::now();
    let pool = cx.rt.db.clone();
    let revoked = cx.rt.sessions.clone();
    let reason = if op.everywhere {
        "logout_everywhere"
    } else {
        "logout"
    };
    let ended = match &op.refresh_token {
        Some(t) => {
            let presented = match cx.eval(t).await? {
                Value::String(s) => s,
                _ => String::new(),
            };
            cx.keep_secret(&presented);
            let (n, subject) = crate::auth::sessions::end_by_refresh_token(
                &pool, &revoked, &presented, reason, now,
            )
            .await
            .map_err(|e| session_db_error(cx, e))?;
            match subject {
                Some(subject) if op.everywhere => {
                    n + crate::auth::sessions::end_subject(&pool, &revoked, &subject, reason, now)
                        .await
                        .map_err(|e| session_db_error(cx, e))?
                }
                _ => n,
            }
        }
        None => {
            let sid = cx
                .auth
                .pointer("/claims/sid")
                .and_then(Value::as_str)
                .map(str::to_string);
            let subject = cx
                .auth
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string);
            match (op.everywhere, sid, subject) {
                (true, _, Some(subject)) => {
                    crate::auth::sessions::end_subject(&pool, &revoked, &subject, reason, now)
                        .await
                        .map_err(|e| session_db_error(cx, e))?
                }
                (false, Some(sid), _) => {
                    crate::auth::sessions::end(&pool, &revoked, &sid, reason, now)
                        .await
                        .map_err(|e| session_db_error(cx, e))?
                }
                _ => {
                    return Err(RunError::Session {
                        node: cx.node_id().to_string(),
                        failure: SessionFailure::NoSession,
                    });
                }
            }
        }
    };
    Ok(Step::Next {
        port: OK.name,
        to: op.ok,
        bind: Some(json!({"ended": ended})),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op};
    use super::*;

    #[test]
    fn logout_ends_the_callers_session_by_default() {
        let LogoutOp {
            refresh_token,
            everywhere,
            ..
        } = op(&flow_with(
            json!({"type": "auth.logout", "next": {"ok": "r"}}),
        ));
        assert!(refresh_token.is_none() && !everywhere);
        let LogoutOp { everywhere, .. } = op(&flow_with(
            json!({"type": "auth.logout", "everywhere": true, "next": {"ok": "r"}}),
        ));
        assert!(everywhere);
    }
}
