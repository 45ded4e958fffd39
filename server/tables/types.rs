//! Field types of managed tables: what each is called in a definition, how it is stored in
//! Postgres, and how a value of it is checked. One place per type, so adding a type is local.

pub use super::formats::is_email;

use serde::{Deserialize, Serialize};

/// A field's type as a builder chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Any text.
    Text,
    /// 64-bit integer.
    Integer,
    /// Exact number; `precision` and `scale` optional.
    Decimal,
    Boolean,
    /// Timestamp with time zone.
    Timestamp,
    Date,
    Uuid,
    /// Any JSON value (stored as jsonb).
    Json,
    /// One of the field's `values`.
    Enum,
    /// Text that looks like an email address (checked by the database too).
    Email,
    /// Write-only: hashed with argon2id on every write, never returned by a read.
    Password,
    /// The id of a row of another managed table (`table`), with an `on_delete` policy.
    Reference,
}

/// What a table's `id` column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// `bigint` identity (the default).
    #[default]
    Bigint,
    /// `uuid` with a random default.
    Uuid,
}

impl IdType {
    pub fn sql_type(self) -> &'static str {
        match self {
            IdType::Bigint => "bigint",
            IdType::Uuid => "uuid",
        }
    }

    /// The JSON Schema of an id of this type, as reads return it.
    pub fn value_schema(self) -> serde_json::Value {
        match self {
            IdType::Bigint => {
                serde_json::json!({"type": "integer", "format": "int64", "minimum": 1})
            }
            IdType::Uuid => serde_json::json!({"type": "string", "format": "uuid"}),
        }
    }

    pub fn field_type(self) -> FieldType {
        match self {
            IdType::Bigint => FieldType::Integer,
            IdType::Uuid => FieldType::Uuid,
        }
    }
}

/// What happens to referencing rows when the referenced row is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    #[default]
    Restrict,
    Cascade,
    SetNull,
}

impl OnDelete {
    pub fn sql(self) -> &'static str {
        match self {
            OnDelete::Restrict => "RESTRICT",
            OnDelete::Cascade => "CASCADE",
            OnDelete::SetNull => "SET NULL",
        }
    }
}

/// The pattern emails must match, in the database's CHECK constraint and in Sluice.
pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+\.[^@\s]+$";

impl FieldType {
    /// The Postgres type values are cast to when bound (the column type without modifiers).
    /// References use their target's id type, so callers pass it.
    pub fn cast_type(self, reference_id: IdType) -> &'static str {
        match self {
            FieldType::Text | FieldType::Enum | FieldType::Email | FieldType::Password => "text",
            FieldType::Integer => "bigint",
            FieldType::Decimal => "numeric",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamptz",
            FieldType::Date => "date",
            FieldType::Uuid => "uuid",
            FieldType::Json => "jsonb",
            FieldType::Reference => reference_id.sql_type(),
        }
    }

    /// The JSON Schema `type` of a value of this field in requests and responses.
    pub fn json_type(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Decimal => "number",
            FieldType::Boolean => "boolean",
            FieldType::Json => "object",
            _ => "string",
        }
    }

    /// The type's name in table definitions (`text`, `integer`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamp",
            FieldType::Date => "date",
            FieldType::Uuid => "uuid",
            FieldType::Json => "json",
            FieldType::Enum => "enum",
            FieldType::Email => "email",
            FieldType::Password => "password",
            FieldType::Reference => "reference",
        }
    }

    /// Whether a value can be used in `<`/`>` comparisons and sorting.
    pub fn is_ordered(self) -> bool {
        !matches!(self, FieldType::Json | FieldType::Password)
    }

    /// Renders a default as a SQL literal after checking it fits the type. DDL cannot take bound
    /// parameters, so this is the one place literals are built: numbers and booleans are
    /// re-rendered from parsed values, text is single-quoted with quotes doubled.
    pub fn default_literal(self, v: &serde_json::Value) -> Option<String> {
        use serde_json::Value as J;
        let quoted = |s: &str, cast: &str| {
            (!s.contains('\0')).then(|| format!("'{}'::{cast}", s.replace('\'', "''")))
        };
        match (self, v) {
            (FieldType::Password | FieldType::Reference, _) => None,
            (_, J::Null) => Some("NULL".into()),
            (FieldType::Integer, J::Number(n)) if n.is_i64() => Some(n.to_string()),
            (FieldType::Decimal, J::Number(n)) => Some(n.to_string()),
            (FieldType::Boolean, J::Bool(b)) => Some(b.to_string()),
            (FieldType::Json, v) => quoted(&v.to_string(), "jsonb"),
            (FieldType::Text | FieldType::Enum, J::String(s)) => quoted(s, "text"),
            (FieldType::Email, J::String(s)) if is_email(s) => quoted(s, "text"),
            (FieldType::Timestamp | FieldType::Date, J::String(s)) if s == "now()" => {
                Some("now()".into())
            }
            (FieldType::Uuid, J::String(s)) if s == "uuid()" => Some("gen_random_uuid()".into()),
            (FieldType::Timestamp, J::String(s))
                if super::formats::parse_timestamp(s).is_some() =>
            {
                quoted(s, "timestamptz")
            }
            (FieldType::Date, J::String(s)) if super::formats::parse_date(s).is_some() => {
                quoted(s, "date")
            }
            (FieldType::Uuid, J::String(s)) if super::formats::is_uuid(s) => quoted(s, "uuid"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_become_escaped_literals_of_the_right_type() {
        assert_eq!(
            FieldType::Text.default_literal(&json!("it's")).as_deref(),
            Some("'it''s'::text")
        );
        assert_eq!(
            FieldType::Integer.default_literal(&json!(3)).as_deref(),
            Some("3")
        );
        assert_eq!(FieldType::Integer.default_literal(&json!("3")), None);
        assert_eq!(
            FieldType::Boolean.default_literal(&json!(false)).as_deref(),
            Some("false")
        );
        assert_eq!(
            FieldType::Timestamp
                .default_literal(&json!("now()"))
                .as_deref(),
            Some("now()")
        );
        assert_eq!(
            FieldType::Uuid.default_literal(&json!("uuid()")).as_deref(),
            Some("gen_random_uuid()")
        );
        assert_eq!(FieldType::Text.default_literal(&json!("a\0b")), None);
        assert_eq!(
            FieldType::Timestamp.default_literal(&json!("tomorrow")),
            None
        );
        assert_eq!(FieldType::Password.default_literal(&json!("x")), None);
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(is_email("a@b.co"));
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a b@c.de", "a@b@c.de", "a@b.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
