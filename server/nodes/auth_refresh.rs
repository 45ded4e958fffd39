//! `auth.refresh`: exchanges a refresh token of a session (opened by `auth.issue_token` with
//! `session: true`) for a new access token and a new refresh token of the same family
//! (docs/SESSIONS.md). The old refresh token is used up; presenting it again ends the session
//! (reuse, the theft signal). The role is read anew: the node reads the row of `table` whose
//! id is the session's subject and takes its `role_field` (default `role`) as the `role`
//! claim, so a changed role holds from the next refresh, and an account that is gone ends the
//! session. Other claims are those given when the session was opened.
//!
//! `ok` binds `{token, expires_at, session_id, refresh_token, refresh_expires_at, user}`;
//! `invalid` (a failure port: `error` is set) takes refused tokens, else 401
//! `auth.refresh_invalid` or `auth.refresh_reused`. Both tokens are secret in debug runs.

use super::auth_issue_token::{session_db_error, sign};
use crate::auth::sessions::{DEFAULT_ACCESS_TTL_SECS, MAX_ACCESS_TTL_SECS, Refusal, SessionError};
use crate::engine::error::SessionFailure;
use crate::engine::run::{Cx, Step};
use crate::engine::sandbox::format_rfc3339;
use crate::engine::sql::{BuildError, Prepared, Slot};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, Renames, ResponseFact, ports_to,
    rename_name,
};
use crate::tables::def::Tables;
use crate::tables::violation::Action;
use crate::tables::{FieldType, Ident, query};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const OK: Port = Port::success("ok");
const INVALID: Port = Port::failure("invalid");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "auth.refresh",
    &[OK, INVALID],
    compile,
    NodeOptions {
        rename: Some(rename),
        ..NodeOptions::DEFAULT
    }
);

/// The field read when `role_field` is not given (when the table has it).
pub const DEFAULT_ROLE_FIELD: &str = "role";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    refresh_token: Value,
    table: String,
    role_field: Option<String>,
    expires_in: Option<u32>,
}

/// A compiled `auth.refresh`.
#[derive(Debug)]
pub(crate) struct RefreshOp {
    refresh_token: Template,
    table: Ident,
    role_field: Option<Ident>,
    expires_in: u32,
    ok: usize,
    invalid: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let refresh_token = cx.template(&cfg.refresh_token, "refresh_token");
    let (table, def) = cx.table(&cfg.table)?;
    let role_field = match &cfg.role_field {
        None => None,
        Some(f) => {
            let f = cx.column(def.as_ref(), f, "role_field")?;
            if let Some(field) = def.as_ref().and_then(|d| d.field(f.as_str()))
                && !matches!(field.ty, FieldType::Text | FieldType::Enum)
            {
                cx.problem(
                    "flow.bad_config",
                    "role_field",
                    format!("`{f}` must be a text or enum field to be a role"),
                );
            }
            Some(f)
        }
    };
    let expires_in = cfg.expires_in.unwrap_or(DEFAULT_ACCESS_TTL_SECS);
    if expires_in > MAX_ACCESS_TTL_SECS {
        cx.problem(
            "flow.bad_config",
            "expires_in",
            format!("a session's access tokens live at most {MAX_ACCESS_TTL_SECS} s"),
        );
    }
    Some(Box::new(RefreshOp {
        refresh_token: refresh_token?,
        table,
        role_field,
        expires_in: expires_in.clamp(1, MAX_ACCESS_TTL_SECS),
        ok: cx.required(OK.name),
        invalid: cx.port(INVALID.name),
    }))
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    rename_name(node, "role_field", r);
}

impl CompiledOp for RefreshOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        ports_to((OK.name, self.ok), &[(INVALID.name, self.invalid)])
    }
    fn touches_db(&self) -> bool {
        true
    }
    fn responses(&self) -> Vec<ResponseFact> {
        self.invalid
            .is_none()
            .then_some(ResponseFact::Error {
                status: 401,
                code: "auth.refresh_invalid",
            })
            .into_iter()
            .collect()
    }
    fn output(&self) -> OutputShape {
        let mut shape = super::auth_issue_token::session_shape();
        shape["properties"]["user"] = crate::flow::node::row_ref(self.table.as_str());
        OutputShape::Fixed(Some(shape))
    }
}

impl Runnable for RefreshOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        let def = super::db_get::table_def(tables, &self.table)?;
        let st = query::get(def, Slot::Id, None);
        Ok(Some(Prepared::new(st).on(def, tables, Action::Read)))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(refresh(cx, self))
    }
}

/// Takes the `invalid` port when wired (with `error` set), else fails the request.
fn refused(cx: &mut Cx<'_>, op: &RefreshOp, failure: SessionFailure) -> Result<Step, RunError> {
    let e = RunError::Session {
        node: cx.node_id().to_string(),
        failure,
    };
    match op.invalid {
        Some(to) => {
            let value = e.error_value(cx.node_id());
            cx.bind("error", value);
            Ok(Step::Next {
                port: INVALID.name,
                to,
                bind: None,
            })
        }
        None => Err(e),
    }
}

async fn refresh(cx: &mut Cx<'_>, op: &RefreshOp) -> Result<Step, RunError> {
    let presented = match cx.eval(&op.refresh_token).await? {
        Value::String(s) => s,
        _ => String::new(),
    };
    cx.keep_secret(&presented);
    let now = crate::auth::bearer::now();
    let access_exp = now + i64::from(op.expires_in);
    let session = match crate::auth::sessions::refresh(
        &cx.rt.db,
        &cx.rt.sessions,
        &presented,
        access_exp,
        now,
    )
    .await
    {
        Ok(s) => s,
        Err(SessionError::Refused(Refusal::Invalid)) => {
            return refused(cx, op, SessionFailure::RefreshInvalid);
        }
        Err(SessionError::Refused(Refusal::Reused)) => {
            return refused(cx, op, SessionFailure::RefreshReused);
        }
        Err(SessionError::Db(e)) => return Err(session_db_error(cx, e)),
    };
    cx.keep_secret(&session.refresh_token);
    cx.note_input(|| json!({"session_id": session.id}));
    let user = match cx.fetch(vec![Some(session.subject.clone())], false).await {
        Ok(Some(row)) => Some(row),
        // No row, or a subject that is no id of the table: the account is gone.
        Ok(None) | Err(RunError::InvalidValue { .. } | RunError::BadValue { .. }) => None,
        Err(e) => return Err(e),
    };
    let Some(user) = user else {
        crate::auth::sessions::end(&cx.rt.db, &cx.rt.sessions, &session.id, "user_gone", now)
            .await
            .map_err(|e| session_db_error(cx, e))?;
        return refused(cx, op, SessionFailure::RefreshInvalid);
    };
    let field = op
        .role_field
        .as_ref()
        .map_or(DEFAULT_ROLE_FIELD, Ident::as_str);
    let role = user.get(field).and_then(Value::as_str).map(str::to_string);
    let mut claims = match session.claims {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(role) = &role {
        claims.insert("role".into(), Value::String(role.clone()));
    }
    let audience = (session.audience != crate::base::DEFAULT_AUDIENCE).then_some(&session.audience);
    let (token, exp) = sign(
        cx,
        session.subject.clone(),
        claims,
        op.expires_in,
        audience.map(String::as_str),
        Some(&session.id),
        now,
    )?;
    if role != session.role {
        crate::auth::sessions::set_role(&cx.rt.db, &session.id, role.as_deref())
            .await
            .map_err(|e| session_db_error(cx, e))?;
    }
    Ok(Step::Next {
        port: OK.name,
        to: op.ok,
        bind: Some(json!({
            "token": token,
            "expires_at": format_rfc3339(exp, 0),
            "session_id": session.id,
            "refresh_token": session.refresh_token,
            "refresh_expires_at": format_rfc3339(session.expires_at, 0),
            "user": user,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use super::*;

    fn node(extra: Value) -> Value {
        let mut n = json!({"type": "auth.refresh", "as": "s", "table": "users",
                           "refresh_token": {"$rhai": "request.body.refresh_token"},
                           "next": {"ok": "r"}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            n[k] = v.clone();
        }
        n
    }

    #[test]
    fn access_tokens_of_a_refresh_are_short_lived() {
        let RefreshOp {
            expires_in,
            invalid,
            role_field,
            ..
        } = op(&flow_with(node(json!({}))));
        assert_eq!((expires_in, invalid, role_field), (900, None, None));
        assert_eq!(
            problems(&flow_with(node(json!({"expires_in": 7200})))),
            [("flow.schema", "/nodes/n/expires_in".to_string())]
        );
    }

    #[test]
    fn the_role_field_must_be_text_or_enum() {
        let def: crate::tables::TableDef =
            serde_json::from_value(json!({"name": "users", "fields": [
            {"name": "email", "type": "email", "unique": true},
            {"name": "role", "type": "text"}, {"name": "age", "type": "integer"}]}))
            .expect("def");
        let tables = std::collections::BTreeMap::from([("users".to_string(), def)]);
        let found = |n: Value| match super::super::compile(&flow_with(n), Some(&tables)) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().map(|d| (d.code, d.pointer)).collect(),
        };
        assert_eq!(found(node(json!({"role_field": "role"}))), []);
        assert_eq!(
            found(node(json!({"role_field": "age"}))),
            [("flow.bad_config", "/nodes/n/role_field".to_string())]
        );
        assert_eq!(
            found(node(json!({"role_field": "nope"}))),
            [("flow.unknown_column", "/nodes/n/role_field".to_string())]
        );
        assert_eq!(
            found(node(json!({"table": "accounts"}))),
            [("flow.unknown_table", "/nodes/n/table".to_string())]
        );
    }
}
