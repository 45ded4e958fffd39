//! Capture of requests for the request log, opt-in per endpoint (`settings.capture`), so the
//! editor can replay a recorded request on the draft. What is kept is what the flow saw:
//! path params, query, body and headers, after [`super::generated::flow_request`] has already
//! dropped the credential headers (`authorization`, `cookie`, `proxy-authorization`).
//!
//! Redaction, before anything is queued: a property (at any depth of the body, and any query,
//! param or header name) whose name, lower-cased with `-` read as `_`, contains one of
//! [`SECRET_WORDS`], or equals a password field of a table the flow writes, keeps its key but
//! its value becomes `"***"`, and its JSON pointer is listed in `redacted`. A body whose JSON
//! text is over [`MAX_BODY`] bytes is left out (`body_omitted: true`). Never logged elsewhere.

use crate::engine::{Program, Request};
use serde_json::{Map, Value, json};

/// Largest body kept, in bytes of its JSON text.
pub const MAX_BODY: usize = 16 * 1024;

/// Parts of names that mark a secret.
pub const SECRET_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credential",
    "authorization",
    "cookie",
];

/// What replaces a secret value.
pub const REDACTED: &str = "***";

/// The captured request of a response, in its extensions, for [`super::ops::Ops::record`].
#[derive(Clone, Debug)]
pub struct Captured(pub Value);

/// Whether a property named `name` holds a secret for `program`.
pub fn is_secret(name: &str, password_fields: &[String]) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|w| n.contains(w))
        || password_fields.iter().any(|p| p.eq_ignore_ascii_case(&n))
}

/// The request as the request log keeps it: `{"params", "query", "headers", "body",
/// "redacted": [pointer...], "body_omitted": bool}`.
pub fn capture(program: &Program, request: &Request) -> Captured {
    let secret = |name: &str| is_secret(name, &program.password_fields);
    let mut redacted = Vec::new();
    let mut part = |name: &str, map: &Map<String, Value>| -> Value {
        let mut v = Value::Object(map.clone());
        redact(&mut v, &mut format!("/{name}"), &secret, &mut redacted);
        v
    };
    let params = part("params", &request.params);
    let query = part("query", &request.query);
    let headers = part("headers", &request.headers);
    let mut body = request.body.clone();
    redact(
        &mut body,
        &mut String::from("/body"),
        &secret,
        &mut redacted,
    );
    let omitted = body.to_string().len() > MAX_BODY;
    if omitted {
        body = Value::Null;
    }
    Captured(json!({
        "params": params, "query": query, "headers": headers, "body": body,
        "redacted": redacted, "body_omitted": omitted,
    }))
}

/// Replaces the values of secret-named properties at any depth; `at` is the JSON pointer of
/// `v`, `out` collects the pointers replaced.
fn redact(v: &mut Value, at: &mut String, secret: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    let len = at.len();
    match v {
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                if secret(k) {
                    *item = Value::String(REDACTED.into());
                    out.push(at.clone());
                } else {
                    redact(item, at, secret, out);
                }
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                at.push('/');
                at.push_str(&i.to_string());
                redact(item, at, secret, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_matched_case_insensitively_and_password_fields_exactly() {
        let pw = vec!["pin".to_string()];
        for name in [
            "password",
            "New_Password",
            "API-Key",
            "x-auth-token",
            "client_secret",
            "PIN",
        ] {
            assert!(is_secret(name, &pw), "{name}");
        }
        for name in ["title", "author", "pages", "pinned", "email"] {
            assert!(!is_secret(name, &pw), "{name}");
        }
    }

    #[test]
    fn nested_secrets_are_replaced_and_listed() {
        let mut v = json!({"user": {"name": "ann", "Password": "hunter2"},
                           "items": [{"token": "t"}, {"x": 1}]});
        let mut out = Vec::new();
        redact(
            &mut v,
            &mut String::from("/body"),
            &|n| is_secret(n, &[]),
            &mut out,
        );
        assert_eq!(
            v,
            json!({"user": {"name": "ann", "Password": "***"},
                                "items": [{"token": "***"}, {"x": 1}]})
        );
        assert_eq!(out, vec!["/body/items/0/token", "/body/user/Password"]);
    }
}
