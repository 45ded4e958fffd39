//! `auth.issue_token`: signs an API token (a JWT, HS256 or EdDSA as the key says) with the
//! current key from the catalog;
//! `ok` binds `as` to `{"token", "expires_at"}`. Claims: `sub`, `iat`, `exp` (now +
//! `expires_in`), `aud` when an `audience` is given, and the keys of `claims`, which may not
//! set those. With `session: true` it also opens a session (docs/SESSIONS.md): the token gets
//! a `sid` claim and `ok` adds `session_id`, `refresh_token` and `refresh_expires_at`.
//! Debug-run traces show the tokens as `***`.
//!
//! A `role` claim computed from request data is a warning (`flow.role_from_request`): anyone
//! could then sign up as an admin.

use crate::auth::sessions::{
    DEFAULT_ACCESS_TTL_SECS, DEFAULT_REFRESH_TTL_SECS, MAX_ACCESS_TTL_SECS,
};
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
pub const RESERVED_CLAIMS: [&str; 5] = ["sub", "exp", "iat", "aud", "sid"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sub: Value,
    claims: Option<Value>,
    expires_in: Option<u32>,
    audience: Option<String>,
    #[serde(default)]
    session: bool,
    refresh_expires_in: Option<u32>,
}

/// A compiled `auth.issue_token`.
#[derive(Debug)]
pub(crate) struct IssueTokenOp {
    sub: Template,
    claims: Option<Template>,
    expires_in: u32,
    audience: Option<String>,
    /// `session: true`: the refresh token's lifetime.
    session: Option<u32>,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let sub = cx.template(&cfg.sub, "sub");
    let claims = match &cfg.claims {
        None => None,
        Some(c) => Some(claims_template(c, cx)?),
    };
    let default_ttl = if cfg.session {
        DEFAULT_ACCESS_TTL_SECS
    } else {
        DEFAULT_EXPIRES_IN
    };
    let expires_in = cfg.expires_in.unwrap_or(default_ttl);
    if cfg.session && expires_in > MAX_ACCESS_TTL_SECS {
        cx.problem(
            "flow.bad_config",
            "expires_in",
            format!(
                "a session's access tokens live at most {MAX_ACCESS_TTL_SECS} s; its refresh token keeps the session going"
            ),
        );
    }
    if !cfg.session && cfg.refresh_expires_in.is_some() {
        cx.problem(
            "flow.bad_config",
            "refresh_expires_in",
            "only a token with `session: true` has a refresh token",
        );
    }
    Some(Box::new(IssueTokenOp {
        sub: sub?,
        claims,
        expires_in: expires_in.clamp(1, MAX_EXPIRES_IN),
        audience: cfg.audience,
        session: cfg
            .session
            .then(|| cfg.refresh_expires_in.unwrap_or(DEFAULT_REFRESH_TTL_SECS)),
        ok: cx.required(OK.name),
    }))
}

/// Compiles `claims`: the keys written in the document are checked now (none of
/// [`RESERVED_CLAIMS`]; a `role` read from the request is a warning), computed ones when run.
pub(crate) fn claims_template(c: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Template> {
    let t = cx.template(c, "claims")?;
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
    let role_from_request = match c.get("$rhai").and_then(Value::as_str) {
        // The whole claims object is computed: its role may be anything in it.
        Some(whole) => cx.reads_request(whole).then(|| "claims".to_string()),
        None => c
            .get("role")
            .and_then(|r| r.get("$rhai"))
            .and_then(Value::as_str)
            .filter(|e| cx.reads_request(e))
            .map(|_| "claims/role".to_string()),
    };
    if let Some(field) = role_from_request {
        let at = format!("{}/{field}", cx.pointer);
        cx.expr.push(Diagnostic::warning(
            "flow.role_from_request",
            at,
            "the `role` claim may come from the request: anyone could give themselves any role (admin endpoints trust it). Read the role from the account's row instead",
        ));
    }
    Some(t)
}

impl CompiledOp for IssueTokenOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(if self.session.is_some() {
            session_shape()
        } else {
            json!({
                "type": "object",
                "properties": {
                    "token": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                },
                "required": ["expires_at", "token"],
            })
        }))
    }
}

/// What `auth.issue_token` with a session and `auth.refresh` bind.
pub(crate) fn session_shape() -> Value {
    json!({
        "type": "object",
        "properties": {
            "token": {"type": "string"},
            "expires_at": {"type": "string", "format": "date-time"},
            "session_id": {"type": "string"},
            "refresh_token": {"type": "string"},
            "refresh_expires_at": {"type": "string", "format": "date-time"},
        },
        "required": ["expires_at", "refresh_expires_at", "refresh_token", "session_id", "token"],
    })
}

impl Runnable for IssueTokenOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(issue_token(cx, self))
    }
}

/// The claims object a `claims` template gives, checked.
pub(crate) async fn eval_claims(
    cx: &mut Cx<'_>,
    claims: Option<&Template>,
) -> Result<Map<String, Value>, RunError> {
    let claims = match claims {
        Some(c) => Some(cx.eval(c).await?),
        None => None,
    };
    let all = match claims {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(cx.type_error("claims must be an object")),
    };
    if let Some(k) = RESERVED_CLAIMS.iter().find(|k| all.contains_key(**k)) {
        return Err(cx.type_error(format!(
            "claims cannot set `{k}`; the node sets sub, exp, iat, aud and sid"
        )));
    }
    Ok(all)
}

/// Signs a token for `sub` with the current key, valid `expires_in` seconds from `now`;
/// `aud` and `sid` are set when given. Marked secret. Returns the token and its `exp`.
pub(crate) fn sign(
    cx: &mut Cx<'_>,
    sub: String,
    mut claims: Map<String, Value>,
    expires_in: u32,
    audience: Option<&str>,
    sid: Option<&str>,
    now: i64,
) -> Result<(String, i64), RunError> {
    let ring = &cx.live.token_keys;
    let Some(key) = ring.current() else {
        return Err(RunError::Auth {
            node: cx.node_id().to_string(),
            message: "there is no token signing key".into(),
        });
    };
    let exp = now + i64::from(expires_in);
    claims.insert("sub".into(), Value::String(sub));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(exp));
    if let Some(aud) = audience {
        claims.insert("aud".into(), Value::String(aud.to_string()));
    }
    if let Some(sid) = sid {
        claims.insert("sid".into(), Value::String(sid.to_string()));
    }
    let token = crate::auth::jwt::sign(key, &claims);
    cx.keep_secret(&token);
    Ok((token, exp))
}

/// A session node's database failure.
pub(crate) fn session_db_error(cx: &Cx<'_>, e: sqlx::Error) -> RunError {
    RunError::from_db(cx.node_id(), e)
}

/// The tokens are marked secret, so debug runs never show them.
async fn issue_token(cx: &mut Cx<'_>, op: &IssueTokenOp) -> Result<Step, RunError> {
    let sub = match cx.eval(&op.sub).await? {
        Value::String(s) if !s.is_empty() => s,
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        other => {
            return Err(cx.type_error(format!(
                "sub must be non-empty text or an integer, not {other}"
            )));
        }
    };
    let claims = eval_claims(cx, op.claims.as_ref()).await?;
    let now = crate::auth::bearer::now();
    let Some(refresh_ttl) = op.session else {
        let (token, exp) = sign(
            cx,
            sub,
            claims,
            op.expires_in,
            op.audience.as_deref(),
            None,
            now,
        )?;
        return Ok(Step::Next {
            port: OK.name,
            to: op.ok,
            bind: Some(json!({"token": token, "expires_at": format_rfc3339(exp, 0)})),
        });
    };
    if cx.live.token_keys.current().is_none() {
        return Err(RunError::Auth {
            node: cx.node_id().to_string(),
            message: "there is no token signing key".into(),
        });
    }
    let role = claims
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut kept = claims.clone();
    kept.remove("role");
    let audience = op
        .audience
        .as_deref()
        .unwrap_or(crate::base::DEFAULT_AUDIENCE);
    let access_exp = now + i64::from(op.expires_in);
    let opened = crate::auth::sessions::open(
        &cx.rt.db,
        &cx.rt.sessions,
        crate::auth::sessions::Open {
            subject: &sub,
            role: role.as_deref(),
            audience,
            claims: &Value::Object(kept),
            refresh_ttl_secs: refresh_ttl,
            access_expires_at: access_exp,
            now,
        },
    )
    .await
    .map_err(|e| session_db_error(cx, e))?;
    cx.keep_secret(&opened.refresh_token);
    let (token, exp) = sign(
        cx,
        sub,
        claims,
        op.expires_in,
        op.audience.as_deref(),
        Some(&opened.id),
        now,
    )?;
    Ok(Step::Next {
        port: OK.name,
        to: op.ok,
        bind: Some(json!({
            "token": token,
            "expires_at": format_rfc3339(exp, 0),
            "session_id": opened.id,
            "refresh_token": opened.refresh_token,
            "refresh_expires_at": format_rfc3339(opened.expires_at, 0),
        })),
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
        let IssueTokenOp {
            expires_in,
            session,
            ..
        } = op(&flow_with(node(json!({"session": true}))));
        assert_eq!((expires_in, session), (900, Some(30 * 24 * 3600)));
    }

    #[test]
    fn a_session_keeps_its_access_tokens_short() {
        assert_eq!(
            problems(&flow_with(node(
                json!({"session": true, "expires_in": 3601})
            ))),
            [("flow.bad_config", "/nodes/n/expires_in".to_string())]
        );
        assert_eq!(
            problems(&flow_with(node(json!({"refresh_expires_in": 60})))),
            [("flow.bad_config", "/nodes/n/refresh_expires_in".to_string())]
        );
        assert_eq!(
            problems(&flow_with(node(json!({"audience": "Not A Slug"})))),
            [("flow.schema", "/nodes/n/audience".to_string())]
        );
    }

    fn warnings(doc: &serde_json::Value) -> Vec<(&'static str, String)> {
        let plan = super::super::compile(doc, None).expect("compiles: warnings block nothing");
        plan.warnings
            .into_iter()
            .map(|d| (d.code, d.pointer))
            .collect()
    }

    #[test]
    fn a_role_from_the_request_is_a_warning() {
        let role_from = |expr: &str| node(json!({"claims": {"role": {"$rhai": expr}}}));
        assert_eq!(
            warnings(&flow_with(role_from("request.body.role"))),
            [("flow.role_from_request", "/nodes/n/claims/role".to_string())]
        );
        assert_eq!(
            warnings(&flow_with(node(
                json!({"claims": {"$rhai": "request.body"}})
            ))),
            [("flow.role_from_request", "/nodes/n/claims".to_string())]
        );
        assert_eq!(warnings(&flow_with(role_from("\"request\""))), []);
        assert_eq!(
            warnings(&flow_with(node(json!({"claims": {"role": "member"}})))),
            []
        );
        // A variable a `validate` node set is request data too.
        let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "t",
            "endpoint": {"method": "POST", "path": "/t"}, "entry": "v",
            "nodes": {
                "v": {"type": "validate", "as": "input", "value": {"$rhai": "request.body"},
                      "schema": {"type": "object"}, "next": {"ok": "n"}},
                "n": {"type": "auth.issue_token", "as": "t", "sub": "1",
                      "claims": {"role": {"$rhai": "input.role"}}, "next": {"ok": "r"}},
                "r": {"type": "respond", "body": null}}});
        assert_eq!(
            warnings(&doc),
            [("flow.role_from_request", "/nodes/n/claims/role".to_string())]
        );
    }

    #[test]
    fn claims_cannot_set_sub_exp_iat_aud_or_sid() {
        let doc = flow_with(node(
            json!({"claims": {"role": "x", "iat": 1, "sub": {"$rhai": "1"}, "aud": "x", "sid": "y"}}),
        ));
        assert_eq!(
            problems(&doc),
            [
                ("flow.reserved_claim", "/nodes/n/claims/aud".to_string()),
                ("flow.reserved_claim", "/nodes/n/claims/iat".to_string()),
                ("flow.reserved_claim", "/nodes/n/claims/sid".to_string()),
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
