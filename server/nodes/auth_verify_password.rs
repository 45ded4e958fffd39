//! `auth.verify_password`: checks a password; `valid` or `invalid`. Two forms:
//!
//! - hash form (`hash`): against an argon2 hash the flow has;
//! - table form (`table` + `email`): against the password field of the account whose email
//!   field equals `email`, in any managed table with an email field and a password field;
//!   `valid` binds `as` to that row (without its password fields). Hashes of password fields
//!   never reach the flow this way.
//!
//! A password that is not text, a hash that is null or malformed, and an email no account has
//! are `invalid` after the same hashing work as a real check, so response times do not tell
//! the cases apart. Unwired, `invalid` ends the request with 401 `auth.invalid_credentials`.

use super::auth_hash_password::{MAX_PASSWORD_BYTES, hash_error};
use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sql::{BuildError, Prepared, Slot};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, Port, Renames, ResponseFact, ports_to, rename_name,
};
use crate::tables::def::Tables;
use crate::tables::{FieldType, Ident, TableDef};
use serde::Deserialize;
use serde_json::{Value, json};

const VALID: Port = Port::success("valid");
const INVALID: Port = Port::optional("invalid");

pub(crate) static TYPE: NodeType<Op> = node_type!(
    "auth.verify_password",
    &[VALID, INVALID],
    compile,
    NodeOptions {
        rename: Some(rename),
        ..NodeOptions::DEFAULT
    }
);

/// What the password is checked against.
#[derive(Debug)]
pub(crate) enum Credential {
    /// An argon2 hash the flow computed or loaded.
    Hash(Template),
    /// The password field of the account whose email field equals `email`. Fields left out
    /// are the table's only email and password fields (resolved against the catalog).
    Account {
        table: Ident,
        email: Template,
        email_field: Option<Ident>,
        password_field: Option<Ident>,
    },
}

/// A compiled `auth.verify_password`.
#[derive(Debug)]
pub(crate) struct VerifyPasswordOp {
    password: Template,
    against: Credential,
    valid: usize,
    invalid: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    password: Value,
    hash: Option<Value>,
    table: Option<String>,
    email: Option<Value>,
    email_field: Option<String>,
    password_field: Option<String>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let password = cx.template(&cfg.password, "password");
    let against = match (&cfg.hash, &cfg.table, &cfg.email) {
        (Some(hash), None, None) => {
            // The schema refuses `as` here already; the hash form binds nothing.
            Credential::Hash(cx.template(hash, "hash")?)
        }
        (None, Some(table), Some(email)) => {
            let email = cx.template(email, "email");
            let (table, def) = cx.table(table)?;
            let mut named = |field: &Option<String>, at: &str| match field {
                None => Some(None),
                Some(f) => cx.column(None, f, at).map(Some),
            };
            let email_field = named(&cfg.email_field, "email_field")?;
            let password_field = named(&cfg.password_field, "password_field")?;
            if let Some(def) = &def
                && let Err((at, message)) =
                    account_fields(def, email_field.as_ref(), password_field.as_ref())
            {
                cx.problem("flow.bad_auth_table", at, message);
                return None;
            }
            Credential::Account {
                table,
                email: email?,
                email_field,
                password_field,
            }
        }
        _ => {
            cx.problem(
                "flow.bad_config",
                "hash",
                "give either `hash`, or `table` and `email`",
            );
            return None;
        }
    };
    Some(Box::new(VerifyPasswordOp {
        password: password?,
        against,
        valid: cx.required(VALID.name),
        invalid: cx.port(INVALID.name),
    }))
}

/// The email and password fields of an account table: the named ones, or the table's only
/// field of each type. The email field must be unique (its own flag, or a unique index on it
/// alone), so an email names at most one account. On failure: the config field at fault and
/// why.
pub fn account_fields(
    def: &TableDef,
    email_field: Option<&Ident>,
    password_field: Option<&Ident>,
) -> Result<(Ident, Ident), (&'static str, String)> {
    let pick = |named: Option<&Ident>, ty: FieldType, what: &str, at: &'static str| {
        let of_type: Vec<&Ident> = def
            .fields
            .iter()
            .filter(|f| f.ty == ty)
            .map(|f| &f.name)
            .collect();
        match named {
            Some(n) if of_type.contains(&n) => Ok(n.clone()),
            Some(n) => Err((
                at,
                format!("`{n}` is not a{what} field of table `{}`", def.name),
            )),
            None => match of_type.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(("table", format!("table `{}` has no{what} field", def.name))),
                _ => Err((
                    at,
                    format!(
                        "table `{}` has several{what} fields; name one in `{at}`",
                        def.name
                    ),
                )),
            },
        }
    };
    let email = pick(email_field, FieldType::Email, "n email", "email_field")?;
    let password = pick(
        password_field,
        FieldType::Password,
        " password",
        "password_field",
    )?;
    let unique = def.field(email.as_str()).is_some_and(|f| f.unique)
        || def
            .indexes
            .iter()
            .any(|i| i.unique && i.fields.len() == 1 && i.fields[0] == email);
    if !unique {
        return Err((
            "email_field",
            format!(
                "field `{email}` of table `{}` must be unique, so that an email names one account",
                def.name
            ),
        ));
    }
    Ok((email, password))
}

fn rename(node: &mut Value, r: &Renames<'_>) {
    rename_name(node, "email_field", r);
    rename_name(node, "password_field", r);
}

impl CompiledOp for VerifyPasswordOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        ports_to((VALID.name, self.valid), &[(INVALID.name, self.invalid)])
    }
    fn responses(&self) -> Vec<ResponseFact> {
        Vec::new()
    }
}

impl Runnable for VerifyPasswordOp {
    fn prepare(&self, tables: &Tables) -> Result<Option<Prepared>, BuildError> {
        let Credential::Account {
            table: t,
            email_field,
            password_field,
            ..
        } = &self.against
        else {
            return Ok(None);
        };
        let def = tables
            .get(t.as_str())
            .ok_or_else(|| BuildError(t.to_string()))?;
        let (email, password) = account_fields(def, email_field.as_ref(), password_field.as_ref())
            .map_err(|_| BuildError(t.to_string()))?;
        let st = crate::tables::query::credentials(def, &email, &password, Slot::Email);
        Ok(Some(Prepared::new(st).on(
            def,
            tables,
            crate::tables::violation::Action::Read,
        )))
    }

    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(verify_password(
            cx,
            &self.password,
            &self.against,
            self.valid,
            self.invalid,
        ))
    }
}

/// Failures are throttled per client address and, in the table form, per account. Passwords
/// and hashes are marked secret, so debug runs never show them.
async fn verify_password(
    cx: &mut Cx<'_>,
    password: &Template,
    against: &Credential,
    valid: usize,
    invalid: Option<usize>,
) -> Result<Step, RunError> {
    let password = cx.eval(password).await?;
    let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_default();
    // Failures are throttled per client address and, in the table form, per account.
    let mut account = None;
    // The table form looks the account up; no account is an empty hash (same work, invalid).
    let (hash, row) = match against {
        Credential::Hash(hash) => (text(&cx.eval(hash).await?), None),
        Credential::Account { email: source, .. } => {
            let email = cx.eval(source).await?;
            cx.check_storable(&email, source, None, || "email".into())?;
            account = email.as_str().map(str::to_string);
            cx.note_input(|| json!({"email": email}));
            let found = match &email {
                Value::String(s) if !s.is_empty() => {
                    cx.fetch(vec![bind_text(&email)], false).await?
                }
                _ => None,
            };
            match found {
                Some(Value::Object(mut m)) => {
                    let hash = m.remove("hash").as_ref().map(text).unwrap_or_default();
                    (hash, m.remove("row"))
                }
                _ => (String::new(), None),
            }
        }
    };
    let password = text(&password);
    cx.keep_secret(&password);
    cx.keep_secret(&hash);
    let usable = !password.is_empty() && password.len() <= MAX_PASSWORD_BYTES;
    // An unusable password is checked against an empty hash: the same work, then `invalid`.
    let (password, hash) = if usable {
        (password, hash)
    } else {
        (String::new(), String::new())
    };
    let attempt = crate::auth::throttle::attempt("app", account.as_deref()).map_err(|wait| {
        RunError::Throttled {
            node: cx.node_id().to_string(),
            retry_after_secs: crate::auth::throttle::retry_after_secs(wait),
        }
    })?;
    let matches = crate::auth::verify_password(password, hash)
        .await
        .map_err(|e| hash_error(cx, e))?
        && usable;
    attempt.finish(matches);
    match (matches, invalid) {
        (true, _) => Ok(Step::Next {
            port: VALID.name,
            to: valid,
            bind: row,
        }),
        (false, Some(to)) => Ok(Step::Next {
            port: INVALID.name,
            to,
            bind: None,
        }),
        (false, None) => Err(RunError::InvalidCredentials {
            node: cx.node_id().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, op, problems};
    use super::*;
    use serde_json::json;

    #[test]
    fn valid_is_required_and_invalid_is_optional() {
        let node = json!({"type": "auth.verify_password", "password": {"$rhai": "request.body.pw"},
                          "hash": "$argon2id$...", "next": {"valid": "r"}});
        assert!(matches!(
            op(&flow_with(node.clone())),
            VerifyPasswordOp {
                invalid: None,
                against: Credential::Hash(_),
                ..
            }
        ));
        let mut unwired = node.clone();
        unwired["next"] = json!({"invalid": "r"});
        assert_eq!(
            problems(&flow_with(unwired)),
            [("flow.missing_response", "/nodes/n/next".to_string())]
        );
    }

    fn problems_with(
        node: Value,
        tables: &crate::tables::def::Tables,
    ) -> Vec<(&'static str, String)> {
        match super::super::compile(&flow_with(node), Some(tables)) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().map(|d| (d.code, d.pointer)).collect(),
        }
    }

    fn users(fields: Value) -> crate::tables::def::Tables {
        let def: TableDef =
            serde_json::from_value(json!({"name": "users", "fields": fields})).expect("def");
        std::collections::BTreeMap::from([("users".to_string(), def)])
    }

    #[test]
    fn the_table_form_finds_the_email_and_password_fields() {
        let node = json!({"type": "auth.verify_password", "as": "user", "table": "users",
                          "email": {"$rhai": "request.body.email"},
                          "password": {"$rhai": "request.body.password"},
                          "next": {"valid": "r"}});
        let good = users(json!([
            {"name": "login", "type": "email", "unique": true, "required": true},
            {"name": "secret", "type": "password"},
            {"name": "name", "type": "text"}]));
        assert_eq!(problems_with(node.clone(), &good), []);
        assert!(matches!(
            op(&flow_with(node.clone())),
            VerifyPasswordOp {
                against: Credential::Account { .. },
                ..
            }
        ));
        let def = &good["users"];
        assert_eq!(
            account_fields(def, None, None).map(|(e, p)| (e.to_string(), p.to_string())),
            Ok(("login".to_string(), "secret".to_string()))
        );
        let not_unique = users(json!([
            {"name": "email", "type": "email"}, {"name": "password", "type": "password"}]));
        assert_eq!(
            problems_with(node.clone(), &not_unique),
            [("flow.bad_auth_table", "/nodes/n/email_field".to_string())]
        );
        let unique_index = users(json!([
            {"name": "email", "type": "email"}, {"name": "password", "type": "password"}]));
        let mut with_index = unique_index.clone();
        with_index.get_mut("users").expect("users").indexes = vec![
            serde_json::from_value(json!({"fields": ["email"], "unique": true})).expect("index"),
        ];
        assert_eq!(problems_with(node.clone(), &with_index), []);
        let no_password = users(json!([{"name": "email", "type": "email", "unique": true}]));
        assert_eq!(
            problems_with(node.clone(), &no_password),
            [("flow.bad_auth_table", "/nodes/n/table".to_string())]
        );
        let two_emails = users(json!([
            {"name": "email", "type": "email", "unique": true},
            {"name": "backup", "type": "email"},
            {"name": "password", "type": "password"}]));
        assert_eq!(
            problems_with(node.clone(), &two_emails),
            [("flow.bad_auth_table", "/nodes/n/email_field".to_string())]
        );
        let mut named = node.clone();
        named["email_field"] = json!("email");
        assert_eq!(problems_with(named.clone(), &two_emails), []);
        named["email_field"] = json!("backup");
        assert_eq!(
            problems_with(named, &two_emails),
            [("flow.bad_auth_table", "/nodes/n/email_field".to_string())]
        );
    }

    #[test]
    fn one_form_at_a_time() {
        let both = json!({"type": "auth.verify_password", "password": "a", "hash": "b",
                          "table": "users", "email": "x@y.z", "next": {"valid": "r"}});
        assert_eq!(
            problems(&flow_with(both)),
            [("flow.schema", "/nodes/n".to_string())]
        );
        let neither =
            json!({"type": "auth.verify_password", "password": "a", "next": {"valid": "r"}});
        assert_eq!(
            problems(&flow_with(neither)),
            [("flow.schema", "/nodes/n".to_string())]
        );
    }

    #[test]
    fn the_hash_form_binds_nothing() {
        let node = json!({"type": "auth.verify_password", "password": "a", "hash": "b",
                          "as": "ok", "next": {"valid": "r"}});
        assert_eq!(
            problems(&flow_with(node)),
            [("flow.schema", "/nodes/n".to_string())]
        );
    }
}
