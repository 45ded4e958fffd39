//! Field types of managed tables: what each is called in a table definition and in Postgres.

use serde::{Deserialize, Serialize};

/// A field's type as a builder chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Integer,
    Decimal,
    Boolean,
    Timestamp,
    Date,
    Uuid,
    Json,
}

impl FieldType {
    /// The Postgres column type. Also used as the cast applied to bound text parameters.
    pub fn sql_type(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Integer => "bigint",
            FieldType::Decimal => "numeric",
            FieldType::Boolean => "boolean",
            FieldType::Timestamp => "timestamptz",
            FieldType::Date => "date",
            FieldType::Uuid => "uuid",
            FieldType::Json => "jsonb",
        }
    }

    /// The JSON Schema `type` a value of this field has in requests and responses.
    pub fn json_type(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Decimal => "number",
            FieldType::Boolean => "boolean",
            FieldType::Json => "object",
            _ => "string",
        }
    }

    /// Renders a default value as a SQL literal, after checking that it fits the type.
    /// Defaults cannot be bound parameters in DDL, so this is the one place literals are built.
    pub fn default_literal(self, v: &serde_json::Value) -> Option<String> {
        use serde_json::Value as J;
        let quoted = |s: &str| {
            if s.contains('\0') {
                None
            } else {
                Some(format!("'{}'::{}", s.replace('\'', "''"), self.sql_type()))
            }
        };
        match (self, v) {
            (_, J::Null) => Some("NULL".into()),
            (FieldType::Integer, J::Number(n)) if n.is_i64() => Some(n.to_string()),
            (FieldType::Decimal, J::Number(n)) => Some(n.to_string()),
            (FieldType::Boolean, J::Bool(b)) => Some(b.to_string()),
            (FieldType::Json, v) => quoted(&v.to_string()),
            (FieldType::Text, J::String(s)) => quoted(s),
            (FieldType::Timestamp | FieldType::Date, J::String(s)) if s == "now()" => {
                Some("now()".into())
            }
            (FieldType::Uuid, J::String(s)) if s == "uuid()" => Some("gen_random_uuid()".into()),
            (FieldType::Timestamp | FieldType::Date | FieldType::Uuid, J::String(s)) => quoted(s),
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
        assert_eq!(FieldType::Text.default_literal(&json!("a\0b")), None);
    }
}
