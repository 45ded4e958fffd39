//! Environment values and secrets as flows see them: plain values in the `env` map, secrets
//! only through `secret("NAME")`. Traces replace secret values with `***` wherever they appear.

use serde_json::Value;
use std::collections::HashMap;

/// The values of one moment; swapped as a whole when an entry changes.
#[derive(Default)]
pub struct Env {
    /// `env` as Rhai sees it (built once per change, cloned per request).
    pub public: rhai::Dynamic,
    pub secrets: HashMap<String, String>,
}

/// Secret values shorter than this are not redacted in traces: they would blank out common
/// short strings and say little.
const MIN_REDACTED_LEN: usize = 4;

impl Env {
    /// Builds from `(name, value, secret)` entries.
    pub fn from_entries(entries: Vec<(String, String, bool)>) -> Env {
        let mut public = rhai::Map::new();
        let mut secrets = HashMap::new();
        for (name, value, secret) in entries {
            if secret {
                secrets.insert(name, value);
            } else {
                public.insert(name.into(), value.into());
            }
        }
        Env {
            public: rhai::Dynamic::from_map(public),
            secrets,
        }
    }

    /// A copy of `v` with every secret value inside its strings replaced by `***`.
    pub fn redact(&self, v: &Value) -> Value {
        if self.secrets.values().all(|s| s.len() < MIN_REDACTED_LEN) {
            return v.clone();
        }
        match v {
            Value::String(s) => Value::String(self.redact_text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.redact(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (self.redact_text(k), self.redact(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub fn redact_text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for secret in self
            .secrets
            .values()
            .filter(|s| s.len() >= MIN_REDACTED_LEN)
        {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_anywhere_in_a_value() {
        let env = Env::from_entries(vec![
            ("KEY".into(), "sk_live_123".into(), true),
            ("REGION".into(), "eu".into(), false),
        ]);
        let v = json!({"auth": "Bearer sk_live_123", "list": ["x", "sk_live_123"], "n": 1});
        assert_eq!(
            env.redact(&v),
            json!({"auth": "Bearer ***", "list": ["x", "***"], "n": 1})
        );
        assert!(env.public.is_map());
    }
}
