//! Table definitions as builders write them, checked into a [`TableDef`] whose names are
//! [`Ident`]s, whose options fit their types and whose references point at real tables.
//! Tables, fields and indexes carry stable ids apart from their names, so a rename is a rename.

use super::ident::Ident;
use super::types::{FieldType, IdType, OnDelete};
use super::value::ColumnSpec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Columns every managed table has; builders cannot define fields with these names.
pub const SYSTEM_COLUMNS: [&str; 3] = ["id", "created_at", "updated_at"];

/// A field as stored in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Stable id (`f_...`), assigned by Sluice when the field is added.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: Ident,
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// NOT NULL.
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    /// A btree index (GIN for json).
    #[serde(default)]
    pub indexed: bool,
    /// A literal, or `"now()"` (timestamp, date) or `"uuid()"` (uuid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Decimal: total digits and digits after the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Enum: the allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Reference: the referenced table and what deleting its row does here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Ident>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<OnDelete>,
}

/// How an index is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    #[default]
    Btree,
    Gin,
}

/// A table-level index over one or more fields (by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexDef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub fields: Vec<Ident>,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub kind: IndexKind,
}

/// A managed table in schema `app`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    /// Stable id (`t_...`), assigned by Sluice at creation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: Ident,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Chosen at creation; cannot change.
    #[serde(default)]
    pub id_type: IdType,
    pub fields: Vec<FieldDef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// Every insert, update and delete is written to the change log (`sluice.changes`), for
    /// flows with a table trigger (docs/EVENTS.md, "Table events").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub events: bool,
    /// Access rules: which rows callers of `public` and `user` endpoints may list, view, update
    /// and delete (docs/RULES.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<TableRules>,
    /// Accepted and ignored, so a definition read from the API can be sent back as it is; the
    /// version a change expects travels in `If-Match`.
    #[serde(default, skip_serializing)]
    pub version: Option<serde_json::Value>,
}

/// A table's access rules, one per action; an action without a rule is not restricted
/// (docs/RULES.md).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableRules {
    /// Which rows a `db.query` returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<RowRule>,
    /// Which rows a `db.get` finds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<RowRule>,
    /// Which rows a `db.update` may change (the row before the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<RowRule>,
    /// Which rows a `db.delete` may delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<RowRule>,
    /// What a `db.insert` writes: columns the rule sets, and a check on the new row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<CreateRuleDoc>,
}

/// A `create` rule as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRuleDoc {
    /// Column → value (a literal, `{"auth": "id"}`, `{"auth": "claims.<name>"}`), written
    /// whatever the node gives.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub set: serde_json::Map<String, serde_json::Value>,
    /// A condition the new row must satisfy, else 403 `rule.denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<serde_json::Value>,
}

/// A rule on existing rows: the rows it lets through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowRule {
    /// A condition in the filter language of `db.query`, values from `{"auth": ...}` or
    /// literals (`tables::rules`).
    #[serde(rename = "where")]
    pub condition: serde_json::Value,
    /// `update` only: the fields callers may change (`None`: every field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// `update` only: a condition the row must meet after the change, else 403 `rule.denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<serde_json::Value>,
}

/// The actions of a table's rules on existing rows, in their document order (`create` is the
/// other one).
pub const RULE_ACTIONS: [&str; 4] = ["list", "view", "update", "delete"];

impl TableRules {
    /// The rule of `action` (one of [`RULE_ACTIONS`]).
    pub fn get(&self, action: &str) -> Option<&RowRule> {
        match action {
            "list" => self.list.as_ref(),
            "view" => self.view.as_ref(),
            "update" => self.update.as_ref(),
            "delete" => self.delete.as_ref(),
            _ => None,
        }
    }
}

/// One problem with a table definition, pointing into the request body.
pub use crate::base::Problem as DefProblem;

/// The other managed tables, for checking references.
pub type Tables = BTreeMap<String, TableDef>;

impl TableDef {
    /// Checks what serde cannot: names, options per type, defaults, references, indexes.
    /// `others` are the existing tables (this one may be among them under its old name).
    pub fn check(&self, others: &Tables) -> Vec<DefProblem> {
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        if self.fields.len() > 200 {
            problems.push(DefProblem::new("/fields", "a table has at most 200 fields"));
        }
        for (i, f) in self.fields.iter().enumerate() {
            let at = format!("/fields/{i}");
            if SYSTEM_COLUMNS.contains(&f.name.as_str()) {
                problems.push(DefProblem::new(
                    format!("{at}/name"),
                    format!("`{}` is a column every table already has", f.name),
                ));
            }
            if !seen.insert(f.name.as_str()) {
                problems.push(DefProblem::new(
                    format!("{at}/name"),
                    format!("field `{}` is defined twice", f.name),
                ));
            }
            f.check_options(&at, self, others, &mut problems);
        }
        let mut index_ids = HashSet::new();
        for (i, ix) in self.indexes.iter().enumerate() {
            let at = format!("/indexes/{i}");
            if ix.fields.is_empty() || ix.fields.len() > 8 {
                problems.push(DefProblem::new(
                    format!("{at}/fields"),
                    "an index covers 1 to 8 fields",
                ));
            }
            for (j, name) in ix.fields.iter().enumerate() {
                match self.column_type(name.as_str()) {
                    None => problems.push(DefProblem::new(
                        format!("{at}/fields/{j}"),
                        format!("there is no field `{name}`"),
                    )),
                    Some(FieldType::Password) => problems.push(DefProblem::new(
                        format!("{at}/fields/{j}"),
                        "password fields cannot be indexed",
                    )),
                    Some(FieldType::Json) if ix.kind == IndexKind::Btree => {
                        problems.push(DefProblem::new(
                            format!("{at}/kind"),
                            "index json fields with kind \"gin\"",
                        ))
                    }
                    Some(_) => {}
                }
            }
            if ix.kind == IndexKind::Gin && (ix.unique || ix.fields.len() != 1) {
                problems.push(DefProblem::new(
                    format!("{at}/kind"),
                    "a gin index covers one json field and cannot be unique",
                ));
            }
            if !ix.id.is_empty() && !index_ids.insert(ix.id.as_str()) {
                problems.push(DefProblem::new(
                    format!("{at}/id"),
                    "index ids must be unique",
                ));
            }
        }
        // The access rules are checked by `tables::rules::check`, which reads this definition.
        problems
    }

    /// The type of a column, system columns included.
    pub fn column_type(&self, name: &str) -> Option<FieldType> {
        match name {
            "id" => Some(self.id_type.field_type()),
            "created_at" | "updated_at" => Some(FieldType::Timestamp),
            _ => self.field(name).map(|f| f.ty),
        }
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name.as_str() == name)
    }

    /// What values of a column must satisfy, with reference targets resolved in `tables`.
    pub fn column_spec(&self, name: &str, tables: &Tables) -> Option<ColumnSpec> {
        let Some(f) = self.field(name) else {
            return self.column_type(name).map(ColumnSpec::of);
        };
        let target_id = match &f.table {
            Some(t) if t == &self.name => self.id_type,
            Some(t) => tables
                .get(t.as_str())
                .map(|d| d.id_type)
                .unwrap_or_default(),
            None => IdType::Bigint,
        };
        Some(ColumnSpec {
            ty: f.ty,
            required: f.required,
            values: f.values.clone(),
            precision: f.precision,
            scale: f.scale,
            target_id,
        })
    }

    /// The Postgres type values of a column are cast to.
    pub fn cast_type(&self, name: &str, tables: &Tables) -> Option<&'static str> {
        self.column_spec(name, tables)
            .map(|s| s.ty.cast_type(s.target_id))
    }

    /// The JSON Schema of column `name`'s value as reads return it (system columns included),
    /// `reference_id` being the id type of the table a reference field points to (`None`:
    /// not known, an open schema).
    pub fn column_schema(
        &self,
        name: &str,
        reference_id: Option<IdType>,
    ) -> Option<serde_json::Value> {
        match name {
            "id" => Some(self.id_type.value_schema()),
            "created_at" | "updated_at" => {
                Some(serde_json::json!({"type": "string", "format": "date-time"}))
            }
            _ => self.field(name).map(|f| f.value_schema(reference_id)),
        }
    }

    /// Fields a row must be given on insert (required and without a default).
    pub fn must_be_given(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields
            .iter()
            .filter(|f| f.required && f.default.is_none())
    }

    /// Names of write-only fields, which reads never return.
    pub fn password_fields(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| f.ty == FieldType::Password)
            .map(|f| f.name.as_str())
            .collect()
    }
}

/// Whether an id has the shape Sluice gives ids (`f_` and 12 hex digits, say): ids end up in
/// constraint names, so nothing else is accepted.
pub fn is_id(id: &str, prefix: char) -> bool {
    let mut parts = id.splitn(2, '_');
    parts.next() == Some(prefix.encode_utf8(&mut [0; 4]))
        && parts.next().is_some_and(|h| {
            h.len() == 12
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

impl TableDef {
    /// Gives new fields and indexes ids and keeps the table id of `old`. Ids sent by the client
    /// must be ids of `old`; anything else is a problem. `new_id(prefix)` makes fresh ids.
    pub fn assign_ids(
        &mut self,
        old: Option<&TableDef>,
        mut new_id: impl FnMut(&str) -> String,
    ) -> Vec<DefProblem> {
        let mut problems = Vec::new();
        self.id = old.map(|o| o.id.clone()).unwrap_or_else(|| new_id("t"));
        let known_fields: HashSet<&str> = old
            .map(|o| o.fields.iter().map(|f| f.id.as_str()).collect())
            .unwrap_or_default();
        let known_indexes: HashSet<&str> = old
            .map(|o| o.indexes.iter().map(|i| i.id.as_str()).collect())
            .unwrap_or_default();
        let mut used = HashSet::new();
        for (i, f) in self.fields.iter_mut().enumerate() {
            if f.id.is_empty() {
                f.id = new_id("f");
            } else if !is_id(&f.id, 'f') || !known_fields.contains(f.id.as_str()) {
                problems.push(DefProblem::new(
                    format!("/fields/{i}/id"),
                    format!("`{}` is not the id of a field of this table", f.id),
                ));
            }
            if !used.insert(f.id.clone()) {
                problems.push(DefProblem::new(
                    format!("/fields/{i}/id"),
                    "a field id appears twice",
                ));
            }
        }
        for (i, ix) in self.indexes.iter_mut().enumerate() {
            if ix.id.is_empty() {
                ix.id = new_id("i");
            } else if !is_id(&ix.id, 'i') || !known_indexes.contains(ix.id.as_str()) {
                problems.push(DefProblem::new(
                    format!("/indexes/{i}/id"),
                    format!("`{}` is not the id of an index of this table", ix.id),
                ));
            }
        }
        problems
    }
}

impl TableDef {
    /// Index definitions name fields; when a field is renamed in the same change, an index that
    /// still uses the old name follows it (fields are matched by id).
    pub fn follow_renames(&mut self, old: &TableDef) {
        let renamed: Vec<(Ident, Ident)> = old
            .fields
            .iter()
            .filter_map(|o| {
                let now = self.fields.iter().find(|f| f.id == o.id)?;
                (now.name != o.name).then(|| (o.name.clone(), now.name.clone()))
            })
            .collect();
        for ix in &mut self.indexes {
            for name in &mut ix.fields {
                if self.fields.iter().any(|f| &f.name == name) {
                    continue;
                }
                if let Some((_, to)) = renamed.iter().find(|(from, _)| from == name) {
                    *name = to.clone();
                }
            }
        }
    }
}

impl FieldDef {
    /// The JSON Schema of the field's value as reads return it: `null` allowed unless the
    /// field is required, its description kept. `reference_id` is the id type of the table a
    /// reference points to (`None`: not known, an open schema). Password fields are never
    /// returned; they are described as text.
    pub fn value_schema(&self, reference_id: Option<IdType>) -> serde_json::Value {
        use serde_json::{Value, json};
        let mut s = match self.ty {
            FieldType::Text | FieldType::Password => json!({"type": "string"}),
            FieldType::Integer => json!({"type": "integer", "format": "int64"}),
            FieldType::Decimal => json!({"type": "number"}),
            FieldType::Boolean => json!({"type": "boolean"}),
            FieldType::Timestamp => json!({"type": "string", "format": "date-time"}),
            FieldType::Date => json!({"type": "string", "format": "date"}),
            FieldType::Uuid => json!({"type": "string", "format": "uuid"}),
            FieldType::Email => json!({"type": "string", "format": "email"}),
            FieldType::Json => json!({}),
            FieldType::Enum => json!({"type": "string", "enum": self.values}),
            FieldType::Reference => reference_id.map_or_else(|| json!({}), IdType::value_schema),
        };
        if !self.required && self.ty != FieldType::Json {
            nullable(&mut s);
        }
        if let (Some(d), Some(obj)) = (&self.description, s.as_object_mut()) {
            obj.insert("description".into(), Value::String(d.clone()));
        }
        s
    }

    fn check_options(
        &self,
        at: &str,
        table: &TableDef,
        others: &Tables,
        problems: &mut Vec<DefProblem>,
    ) {
        let mut bad =
            |field: &str, msg: String| problems.push(DefProblem::new(format!("{at}/{field}"), msg));
        let ty = self.ty;
        if let Some(d) = &self.default
            && ty.default_literal(d).is_none()
        {
            bad(
                "default",
                format!(
                    "default {d} is not a valid {} value",
                    serde_json::to_value(ty).unwrap_or_default()
                ),
            );
        }
        if (self.precision.is_some() || self.scale.is_some()) && ty != FieldType::Decimal {
            bad(
                "precision",
                "precision and scale apply to decimal fields".into(),
            );
        }
        if let Some(p) = self.precision
            && !(1..=1000).contains(&p)
        {
            bad("precision", "precision is 1 to 1000".into());
        }
        if let Some(s) = self.scale
            && (self.precision.is_none() || s > self.precision.unwrap_or(0))
        {
            bad("scale", "scale needs a precision at least as large".into());
        }
        if ty == FieldType::Enum {
            if self.values.is_empty() || self.values.len() > 200 {
                bad("values", "an enum has 1 to 200 values".into());
            }
            let mut seen = HashSet::new();
            for (i, v) in self.values.iter().enumerate() {
                if v.is_empty() || v.len() > 200 || v.contains('\0') || !seen.insert(v) {
                    bad(
                        &format!("values/{i}"),
                        "enum values are distinct, non-empty texts of at most 200 characters"
                            .into(),
                    );
                }
            }
        } else if !self.values.is_empty() {
            bad("values", "values apply to enum fields".into());
        }
        if ty == FieldType::Reference {
            match &self.table {
                None => bad("table", "a reference names the table it points to".into()),
                Some(t) if t != &table.name && !others.contains_key(t.as_str()) => {
                    bad("table", format!("there is no table `{t}`"))
                }
                Some(_) => {}
            }
            if self.on_delete == Some(OnDelete::SetNull) && self.required {
                bad(
                    "on_delete",
                    "set_null cannot apply to a required field".into(),
                );
            }
        } else if self.table.is_some() || self.on_delete.is_some() {
            bad(
                "table",
                "table and on_delete apply to reference fields".into(),
            );
        }
        if ty == FieldType::Password && (self.unique || self.indexed) {
            bad(
                "unique",
                "password fields cannot be unique or indexed".into(),
            );
        }
        if ty == FieldType::Json && self.unique {
            bad("unique", "json fields cannot be unique".into());
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 2000) {
            bad(
                "description",
                "a description has at most 2000 characters".into(),
            );
        }
    }
}

/// Lets `null` through as well: `type` becomes a list, an `enum` gains `null`.
pub fn nullable(s: &mut serde_json::Value) {
    if let Some(values) = s.get_mut("enum").and_then(serde_json::Value::as_array_mut) {
        values.push(serde_json::Value::Null);
    }
    if let Some(serde_json::Value::String(t)) = s.get("type").cloned() {
        s["type"] = serde_json::json!([t, "null"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: serde_json::Value) -> TableDef {
        serde_json::from_value(v).expect("parses")
    }

    #[test]
    fn system_names_duplicates_and_bad_defaults_are_all_reported() {
        let t = def(json!({"name": "t", "fields": [
            {"name": "id", "type": "text"},
            {"name": "a", "type": "integer", "default": "x"},
            {"name": "a", "type": "text"}
        ]}));
        let pointers: Vec<_> = t
            .check(&Tables::new())
            .into_iter()
            .map(|p| p.pointer)
            .collect();
        assert_eq!(
            pointers,
            ["/fields/0/name", "/fields/1/default", "/fields/2/name"]
        );
    }

    #[test]
    fn type_options_are_checked() {
        let t = def(json!({"name": "t", "fields": [
            {"name": "level", "type": "enum"},
            {"name": "owner", "type": "reference", "table": "people"},
            {"name": "secret", "type": "password", "unique": true},
            {"name": "price", "type": "decimal", "precision": 4, "scale": 6},
            {"name": "note", "type": "text", "values": ["a"]}
        ], "indexes": [{"fields": ["nope"]}]}));
        let pointers: Vec<_> = t
            .check(&Tables::new())
            .into_iter()
            .map(|p| p.pointer)
            .collect();
        assert_eq!(
            pointers,
            [
                "/fields/0/values",
                "/fields/1/table",
                "/fields/2/unique",
                "/fields/3/scale",
                "/fields/4/values",
                "/indexes/0/fields/0"
            ]
        );
    }

    #[test]
    fn ids_are_assigned_and_foreign_ids_refused() {
        let old = def(
            json!({"id": "t_000000000001", "name": "t", "fields": [{"id": "f_00000000000a", "name": "a", "type": "text"}]}),
        );
        let mut new = def(json!({"name": "t2", "fields": [
            {"id": "f_00000000000a", "name": "a2", "type": "text"},
            {"name": "b", "type": "text"},
            {"id": "f_\"; drop", "name": "c", "type": "text"}
        ]}));
        let mut n = 0;
        let problems = new.assign_ids(Some(&old), |p| {
            n += 1;
            format!("{p}_{n:012x}")
        });
        assert_eq!(new.id, "t_000000000001");
        assert_eq!(new.fields[1].id, "f_000000000001");
        assert_eq!(
            problems
                .iter()
                .map(|p| p.pointer.as_str())
                .collect::<Vec<_>>(),
            ["/fields/2/id"]
        );
    }

    #[test]
    fn a_table_may_reference_itself() {
        let t = def(
            json!({"name": "nodes", "fields": [{"name": "parent", "type": "reference", "table": "nodes", "on_delete": "cascade"}]}),
        );
        assert!(t.check(&Tables::new()).is_empty());
    }
}
