//! Checking and normalising one value for one column, from JSON (APIs) or text (CSV), into the
//! text that is bound as a parameter and cast by Postgres. Checking here first means a bad value
//! is reported with its column (and row) instead of failing a whole statement.

pub use super::formats::{is_uuid, parse_date, parse_timestamp};
use super::types::{FieldType, IdType, is_email};
use serde_json::Value;

/// What a value must satisfy: the column's type and options.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub ty: FieldType,
    pub required: bool,
    /// Allowed values of an enum.
    pub values: Vec<String>,
    /// Digits in total and after the point, for decimals.
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    /// Id type of the referenced table, for references.
    pub target_id: IdType,
}

impl ColumnSpec {
    pub fn of(ty: FieldType) -> ColumnSpec {
        ColumnSpec {
            ty,
            required: false,
            values: Vec::new(),
            precision: None,
            scale: None,
            target_id: IdType::Bigint,
        }
    }
}

/// Checks a JSON value; returns the text to bind (`None` is SQL NULL). Passwords come back in
/// clear text: the caller hashes them.
pub fn from_json(spec: &ColumnSpec, v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => null(spec),
        Value::String(s) => from_str(spec, s, false),
        Value::Bool(b) if spec.ty == FieldType::Boolean => Ok(Some(b.to_string())),
        Value::Number(n) => match spec.ty {
            FieldType::Integer if n.is_i64() => Ok(Some(n.to_string())),
            FieldType::Reference if spec.target_id == IdType::Bigint && n.is_i64() => {
                Ok(Some(n.to_string()))
            }
            FieldType::Decimal => from_str(spec, &n.to_string(), false),
            FieldType::Json => Ok(Some(n.to_string())),
            _ => Err(expected(spec)),
        },
        other if spec.ty == FieldType::Json && has_nul(other) => {
            Err("JSON text must not contain \\u0000".into())
        }
        other if spec.ty == FieldType::Json => Ok(Some(other.to_string())),
        _ => Err(expected(spec)),
    }
}

/// Checks text (a CSV cell). An empty cell is NULL, except for text fields where it is "".
pub fn from_text(spec: &ColumnSpec, s: &str) -> Result<Option<String>, String> {
    if s.is_empty() && !matches!(spec.ty, FieldType::Text) {
        return null(spec);
    }
    from_str(spec, s, true)
}

/// Whether a JSON value holds U+0000 in a string or a key: Postgres' text and jsonb cannot
/// store it.
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn null(spec: &ColumnSpec) -> Result<Option<String>, String> {
    if spec.required {
        Err("a value is required".into())
    } else {
        Ok(None)
    }
}

fn expected(spec: &ColumnSpec) -> String {
    let what = match spec.ty {
        FieldType::Text => "text",
        FieldType::Integer => "a whole number",
        FieldType::Decimal => "a number",
        FieldType::Boolean => "true or false",
        FieldType::Timestamp => "a timestamp like 2026-01-31T12:00:00Z",
        FieldType::Date => "a date like 2026-01-31",
        FieldType::Uuid => "a UUID",
        FieldType::Json => "JSON",
        FieldType::Enum => "one of the allowed values",
        FieldType::Email => "an email address",
        FieldType::Password => "a password (text)",
        FieldType::Reference => match spec.target_id {
            IdType::Bigint => "the id (a whole number) of the referenced row",
            IdType::Uuid => "the id (a UUID) of the referenced row",
        },
    };
    format!("expected {what}")
}

fn from_str(spec: &ColumnSpec, s: &str, from_csv: bool) -> Result<Option<String>, String> {
    if s.contains('\0') {
        return Err("text must not contain NUL characters".into());
    }
    let ok = |v: String| Ok(Some(v));
    match spec.ty {
        FieldType::Password if s.len() > crate::passwords::MAX_PASSWORD_BYTES => Err(format!(
            "a password must be at most {} bytes",
            crate::passwords::MAX_PASSWORD_BYTES
        )),
        FieldType::Text | FieldType::Password => ok(s.to_string()),
        FieldType::Integer => match s.trim().parse::<i64>() {
            Ok(n) if from_csv => ok(n.to_string()),
            _ => Err(expected(spec)),
        },
        FieldType::Decimal => check_decimal(spec, s.trim()).map(Some),
        FieldType::Boolean if from_csv => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" => ok("true".into()),
            "false" | "f" | "no" | "n" | "0" => ok("false".into()),
            _ => Err(expected(spec)),
        },
        FieldType::Boolean => Err(expected(spec)),
        FieldType::Timestamp => parse_timestamp(s.trim())
            .map(|_| s.trim().to_string())
            .ok_or_else(|| expected(spec))
            .map(Some),
        FieldType::Date => parse_date(s.trim())
            .map(|_| s.trim().to_string())
            .ok_or_else(|| expected(spec))
            .map(Some),
        FieldType::Uuid => is_uuid(s.trim())
            .then(|| s.trim().to_string())
            .ok_or_else(|| expected(spec))
            .map(Some),
        FieldType::Json if from_csv => match serde_json::from_str::<Value>(s) {
            Ok(v) if has_nul(&v) => Err("JSON text must not contain \\u0000".into()),
            Ok(v) => Ok(Some(v.to_string())),
            Err(_) => Err(expected(spec)),
        },
        // A JSON string is a JSON value in its own right.
        FieldType::Json => ok(Value::String(s.to_string()).to_string()),
        FieldType::Enum if spec.values.iter().any(|v| v == s) => ok(s.to_string()),
        FieldType::Enum => Err(format!("expected one of: {}", spec.values.join(", "))),
        FieldType::Email if is_email(s.trim()) => ok(s.trim().to_string()),
        FieldType::Email => Err(expected(spec)),
        FieldType::Reference => match spec.target_id {
            IdType::Bigint if from_csv => s
                .trim()
                .parse::<i64>()
                .map(|n| Some(n.to_string()))
                .map_err(|_| expected(spec)),
            IdType::Bigint => Err(expected(spec)),
            IdType::Uuid => is_uuid(s.trim())
                .then(|| s.trim().to_string())
                .ok_or_else(|| expected(spec))
                .map(Some),
        },
    }
}

/// Why a checked value could not be made ready to store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Every password hashing thread stayed busy.
    #[error("the server is busy; retry shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The text stored for a checked value (from [`from_json`] or [`from_text`]) of a column of type
/// `ty`: a password field's clear text becomes its argon2id hash, so a password is never stored
/// in clear; any other value is stored as checked. The one rule of every writer of rows (data
/// API, CSV import; database nodes hash the same way).
pub async fn for_storage(
    ty: FieldType,
    text: Option<String>,
) -> Result<Option<String>, StoreError> {
    match (ty, text) {
        (FieldType::Password, Some(clear)) => crate::passwords::hash(clear)
            .await
            .map(Some)
            .map_err(|e| match e {
                crate::passwords::HashError::Busy => StoreError::Busy,
                e => StoreError::Hash(e.to_string()),
            }),
        (_, text) => Ok(text),
    }
}

/// A decimal exactly as given, in plain notation, within the field's digits (see
/// [`super::decimal`]).
fn check_decimal(spec: &ColumnSpec, s: &str) -> Result<String, String> {
    super::decimal::check(s, spec.precision, spec.scale).map_err(|e| match e.as_str() {
        "expected a number" => expected(spec),
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(ty: FieldType) -> ColumnSpec {
        ColumnSpec::of(ty)
    }

    #[test]
    fn json_values_are_checked_against_the_column_type() {
        assert_eq!(
            from_json(&spec(FieldType::Integer), &json!(5)),
            Ok(Some("5".into()))
        );
        assert!(from_json(&spec(FieldType::Integer), &json!(5.5)).is_err());
        assert!(from_json(&spec(FieldType::Integer), &json!("5")).is_err());
        assert_eq!(
            from_json(&spec(FieldType::Boolean), &json!(true)),
            Ok(Some("true".into()))
        );
        assert!(from_json(&spec(FieldType::Boolean), &json!("yes")).is_err());
        assert_eq!(
            from_json(&spec(FieldType::Json), &json!({"a": [1]})),
            Ok(Some("{\"a\":[1]}".into()))
        );
        assert_eq!(
            from_json(&spec(FieldType::Json), &json!("x")),
            Ok(Some("\"x\"".into()))
        );
        assert!(from_json(&spec(FieldType::Email), &json!("nope")).is_err());
        let mut e = spec(FieldType::Enum);
        e.values = vec!["low".into(), "high".into()];
        assert!(from_json(&e, &json!("high")).is_ok());
        assert_eq!(
            from_json(&e, &json!("mid")),
            Err("expected one of: low, high".into())
        );
        let mut r = spec(FieldType::Text);
        r.required = true;
        assert!(from_json(&r, &Value::Null).is_err());
    }

    #[test]
    fn csv_text_is_coerced() {
        assert_eq!(
            from_text(&spec(FieldType::Integer), " 42 "),
            Ok(Some("42".into()))
        );
        assert_eq!(
            from_text(&spec(FieldType::Boolean), "Yes"),
            Ok(Some("true".into()))
        );
        assert_eq!(from_text(&spec(FieldType::Integer), ""), Ok(None));
        assert_eq!(
            from_text(&spec(FieldType::Text), ""),
            Ok(Some(String::new()))
        );
        assert!(from_text(&spec(FieldType::Json), "{oops").is_err());
        assert!(from_text(&spec(FieldType::Json), r#"{"a":"\u0000"}"#).is_err());
        assert!(from_text(&spec(FieldType::Text), "a\0b").is_err());
        let mut d = spec(FieldType::Decimal);
        d.precision = Some(5);
        d.scale = Some(2);
        assert!(from_text(&d, "123.45").is_ok());
        assert!(from_text(&d, "1234.5").is_err());
        assert!(from_text(&d, "12a").is_err());
    }

    #[test]
    fn dates_timestamps_and_uuids_are_parsed_strictly() {
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2023-02-29").is_none());
        assert!(parse_date("2023-13-01").is_none());
        assert!(parse_date("0000-01-01").is_none());
        for ok in [
            "2026-01-31",
            "2026-01-31T12:00",
            "2026-01-31 12:00:59.123456",
            "2026-01-31T12:00:00Z",
            "2026-01-31T12:00:00+05:30",
            "2026-01-31T12:00:00-0800",
        ] {
            assert!(parse_timestamp(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "2026-01-31T25:00",
            "2026-01-31T12",
            "2026-01-31Tnoon",
            "2026-01-31T12:00:00+5",
            "yesterday",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
        assert!(is_uuid("0b3c2f1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f"));
        assert!(!is_uuid("0b3c2f1e-8d4a-4c7b-9e2f"));
    }
}
