//! `auth.hash_password`, `auth.verify_password` and `auth.issue_token` at run time. Passwords,
//! hashes and tokens are marked secret, so debug runs never show them.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sandbox::format_rfc3339;
use crate::flow::expr::Template;
use crate::flow::nodes::auth_issue_token::RESERVED_CLAIMS;
use crate::flow::plan::Credential;
use serde_json::{Map, Value, json};

/// Longest password the nodes accept, in bytes.
pub const MAX_PASSWORD_BYTES: usize = crate::auth::MAX_PASSWORD_BYTES;

/// The node's error for a failure of the password hasher.
fn hash_error(cx: &Cx<'_>, e: crate::auth::AuthError) -> RunError {
    let node = cx.node_id().to_string();
    match e {
        crate::auth::AuthError::Busy => RunError::Busy { node },
        e => RunError::Auth {
            node,
            message: e.to_string(),
        },
    }
}

pub async fn hash_password(
    cx: &mut Cx<'_>,
    password: &Template,
    ok: usize,
) -> Result<Step, RunError> {
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
        port: "ok",
        to: ok,
        bind: Some(Value::String(hash)),
    })
}

pub async fn verify_password(
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
            port: "valid",
            to: valid,
            bind: row,
        }),
        (false, Some(to)) => Ok(Step::Next {
            port: "invalid",
            to,
            bind: None,
        }),
        (false, None) => Err(RunError::InvalidCredentials {
            node: cx.node_id().to_string(),
        }),
    }
}

pub async fn issue_token(
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
        port: "ok",
        to: ok,
        bind: Some(json!({"token": token, "expires_at": format_rfc3339(exp, 0)})),
    })
}
