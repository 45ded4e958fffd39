//! Environment values and secrets as flows see them: plain values in the `env` map, secrets
//! only through `secret("NAME")`. Traces, debug-run answers and run errors (in responses and in
//! the log) replace secret values with `***` wherever they appear, in the forms a flow most
//! often passes them on: as they are, base64 (standard and URL-safe, with and without padding),
//! hex (either case) and percent-encoded. Any other transformation (a hash, a substring, a
//! value combined with others before encoding) cannot be recognised; docs/FLOW-FORMAT.md says so.

use serde_json::Value;
use std::collections::HashMap;

/// The values of one moment; swapped as a whole when an entry changes.
#[derive(Default, Clone)]
pub struct Env {
    /// `env` as Rhai sees it (built once per change, cloned per request).
    pub public: rhai::Dynamic,
    pub secrets: HashMap<String, String>,
    /// Every form of every secret that is hidden, longest first (so a longer form is replaced
    /// before a shorter one inside it).
    hidden: Vec<String>,
    /// A frozen clock: what `now()` answers (RFC 3339), in a debug run or a flow test that
    /// gives one. `None` everywhere else.
    pub now: Option<String>,
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
        let hidden = hidden_forms(secrets.values().map(String::as_str));
        Env {
            public: rhai::Dynamic::from_map(public),
            secrets,
            hidden,
            now: None,
        }
    }

    /// Whether any secret is long enough to be hidden.
    pub fn has_hidden(&self) -> bool {
        !self.hidden.is_empty()
    }

    /// A copy of `v` with every secret value inside its strings replaced by `***`.
    pub fn redact(&self, v: &Value) -> Value {
        if self.hidden.is_empty() {
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

    /// `s` with every form of every secret replaced by `***`.
    pub fn redact_text(&self, s: &str) -> String {
        hide(s, &self.hidden)
    }
}

/// `s` with every one of `forms` (longest first) replaced by `***`.
pub fn hide(s: &str, forms: &[String]) -> String {
    let mut out = std::borrow::Cow::Borrowed(s);
    for form in forms {
        if out.contains(form.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(form.as_str(), "***"));
        }
    }
    out.into_owned()
}

/// The forms of `secrets` that are hidden: each as it is, base64 (standard and URL-safe, padded
/// or not), hex (lower and upper case) and percent-encoded; secrets shorter than
/// [`MIN_REDACTED_LEN`] are left out. Sorted longest first, without repeats.
pub fn hidden_forms<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = Vec::new();
    for secret in secrets.into_iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
        let bytes = secret.as_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        forms.extend([
            secret.to_string(),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            hex.to_ascii_uppercase(),
            hex,
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
            // What `application/x-www-form-urlencoded` and most URL builders make.
            serde_urlencoded::to_string([("", secret)])
                .map(|s| s.trim_start_matches('=').to_string())
                .unwrap_or_default(),
        ]);
    }
    forms.retain(|f| f.len() >= MIN_REDACTED_LEN);
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
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

    #[test]
    fn encoded_forms_of_secrets_are_redacted_too() {
        let secret = "s3cr3t/+?&= value";
        let env = Env::from_entries(vec![("KEY".into(), secret.into(), true)]);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let hex: String = secret.bytes().map(|b| format!("{b:02X}")).collect();
        let url = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        let form = serde_urlencoded::to_string([("k", secret)]).expect("encodes");
        for text in [
            format!("Basic {b64}"),
            format!("x={b64url}."),
            format!("sig {hex}"),
            format!("sig {}", hex.to_lowercase()),
            format!("https://h/?q={url}"),
            form.clone(),
        ] {
            let shown = env.redact_text(&text);
            assert!(shown.contains("***"), "{text} -> {shown}");
            for f in [secret, &b64, &b64url, &hex, &url] {
                assert!(!shown.contains(f), "{text} -> {shown}");
            }
        }
        assert_eq!(env.redact_text("nothing here"), "nothing here");
    }
}
