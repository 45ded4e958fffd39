//! Validated SQL identifiers. Every table and column name that reaches SQL text goes through
//! [`Ident::parse`] once and is always emitted quoted.

use std::fmt;

/// Words that are refused as names even though quoting would make them legal, because they
/// confuse people reading SQL and collide with columns Sluice manages itself.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
    "oid",
    "ctid",
    "xmin",
    "xmax",
    "cmin",
    "cmax",
    "tableoid",
];

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("name must not be empty")]
    Empty,
    #[error("name `{0}` is longer than 63 characters")]
    TooLong(String),
    #[error("name `{0}` must start with a lowercase letter and contain only a-z, 0-9 and _")]
    BadChars(String),
    #[error("name `{0}` is a reserved word")]
    Reserved(String),
}

/// A lowercase identifier matching `^[a-z][a-z0-9_]{0,62}$` that is not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    /// Validates a name once; the result can be put into SQL text.
    pub fn parse(s: &str) -> Result<Ident, IdentError> {
        if s.is_empty() {
            return Err(IdentError::Empty);
        }
        if s.len() > 63 {
            return Err(IdentError::TooLong(s.chars().take(70).collect()));
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(IdentError::BadChars(s.to_string()));
        }
        if RESERVED.contains(&s) {
            return Err(IdentError::Reserved(s.to_string()));
        }
        Ok(Ident(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier in double quotes. Parsing guarantees there is no quote to escape.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Ident {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Ident {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ident::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_word_is_documented() {
        let api = include_str!("../../docs/API.md");
        let list = api
            .lines()
            .skip_while(|l| !l.contains("The reserved words are"))
            .take(6)
            .collect::<Vec<_>>()
            .join("\n");
        for word in RESERVED {
            assert!(
                list.contains(&format!("`{word}`")),
                "`{word}` in docs/API.md"
            );
        }
    }

    #[test]
    fn plain_lowercase_names_are_accepted() {
        assert_eq!(
            Ident::parse("todos").map(|i| i.quoted()),
            Ok("\"todos\"".to_string())
        );
        assert!(Ident::parse("a1_b").is_ok());
    }

    #[test]
    fn hostile_or_odd_names_are_refused() {
        for bad in [
            "", "Todos", "1abc", "_x", "a-b", "a\"b", "a;drop", "select", "ünï",
        ] {
            assert!(Ident::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(matches!(
            Ident::parse(&"a".repeat(64)),
            Err(IdentError::TooLong(_))
        ));
        assert!(Ident::parse(&"a".repeat(63)).is_ok());
    }
}
