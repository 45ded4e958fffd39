//! Table definitions as builders write them, checked into a [`TableDef`] whose names are
//! [`Ident`]s and whose defaults fit their types.

use super::ident::Ident;
use super::types::FieldType;
use serde::{Deserialize, Serialize};

/// Columns every managed table has; builders cannot define fields with these names.
pub const SYSTEM_COLUMNS: [(&str, FieldType); 3] = [
    ("id", FieldType::Integer),
    ("created_at", FieldType::Timestamp),
    ("updated_at", FieldType::Timestamp),
];

/// A field as stored in the catalog. `id` is stable across renames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: Ident,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A managed table in schema `app`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: Ident,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub fields: Vec<FieldDef>,
}

/// One problem with a table definition, pointing into the request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefProblem {
    pub pointer: String,
    pub message: String,
}

impl TableDef {
    /// Checks what serde cannot: duplicate names, system names, defaults that do not fit.
    pub fn check(&self) -> Vec<DefProblem> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        if self.fields.len() > 200 {
            problems.push(DefProblem {
                pointer: "/fields".into(),
                message: "a table has at most 200 fields".into(),
            });
        }
        for (i, f) in self.fields.iter().enumerate() {
            let at = format!("/fields/{i}");
            if SYSTEM_COLUMNS.iter().any(|(n, _)| *n == f.name.as_str()) {
                problems.push(DefProblem {
                    pointer: format!("{at}/name"),
                    message: format!("`{}` is a column every table already has", f.name),
                });
            }
            if !seen.insert(f.name.as_str()) {
                problems.push(DefProblem {
                    pointer: format!("{at}/name"),
                    message: format!("field `{}` is defined twice", f.name),
                });
            }
            if let Some(d) = &f.default
                && f.ty.default_literal(d).is_none()
            {
                problems.push(DefProblem {
                    pointer: format!("{at}/default"),
                    message: format!("default {d} is not a valid {:?} value", f.ty),
                });
            }
        }
        problems
    }

    /// The type of a column, system columns included.
    pub fn column_type(&self, name: &str) -> Option<FieldType> {
        SYSTEM_COLUMNS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|f| f.name.as_str() == name)
                    .map(|f| f.ty)
            })
    }

    /// Fields a row must be given on insert (required and without a default).
    pub fn must_be_given(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields
            .iter()
            .filter(|f| f.required && f.default.is_none())
    }
}
