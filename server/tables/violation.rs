//! The one classification of database errors on managed tables: a unique key, a foreign key
//! (a missing referenced row on a write, a still referenced row on a delete), a check (enum,
//! email), a missing required value, or a value Postgres refuses (SQLSTATE class 22) becomes
//! one [`Kind`] with `{pointer, message}` problems that name the table's fields. The data API
//! (`tables::rows`) and the flow engine (`engine::error`) both answer with it, so the same
//! violation gets the same status, code, pointers and message from either.
//!
//! Errors are sorted by SQLSTATE and by the constraint names Sluice generates
//! (`<table id>_<field id>_<suffix>`, see `tables::ddl`), which need the table definitions.
//! Without them (a caller that has none at hand) the fields come from what Postgres reports
//! beside the message: the column of a not-null violation and the key columns of a key
//! violation's detail. Messages never name constraints, relations or SQL, and never repeat
//! the values. Depends on the table definitions and sqlx's error type only; no IO.

use super::def::{FieldDef, TableDef, Tables};
use super::ident::Ident;

pub use crate::base::Problem;

/// The first few problems in one line (`/title: a value is required; ...`); the details of an
/// answer have them all.
pub fn summary(problems: &[Problem]) -> String {
    let mut parts: Vec<String> = problems
        .iter()
        .take(3)
        .map(|p| match p.pointer.as_str() {
            "" => p.message.clone(),
            at => format!("{at}: {}", p.message),
        })
        .collect();
    if problems.len() > 3 {
        parts.push(format!("and {} more", problems.len() - 3));
    }
    parts.join("; ")
}

/// What kind of rule the database enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A unique field or unique index already has the value.
    Unique,
    /// A reference names a row that does not exist.
    MissingReference,
    /// A deleted row (or a changed id) is still referenced by other rows.
    StillReferenced,
    /// A check (enum, email), a required field left NULL, or a value Postgres cannot take.
    Invalid,
}

impl Kind {
    /// 409 for the key violations (the request clashes with other rows), 400 for the rest.
    pub fn status(self) -> u16 {
        match self {
            Kind::Unique | Kind::MissingReference | Kind::StillReferenced => 409,
            Kind::Invalid => 400,
        }
    }

    /// The error code, the same from the data API and from flows.
    pub fn code(self) -> &'static str {
        match self {
            Kind::Unique | Kind::MissingReference | Kind::StillReferenced => "db.conflict",
            Kind::Invalid => "db.invalid_value",
        }
    }

    /// The rule a conflict broke, as error details name it.
    pub fn rule(self) -> &'static str {
        match self {
            Kind::Unique => "unique",
            Kind::MissingReference => "missing_reference",
            Kind::StillReferenced => "still_referenced",
            Kind::Invalid => "invalid",
        }
    }

    /// Whether a flow's `conflict` port takes it.
    pub fn is_conflict(self) -> bool {
        self.status() == 409
    }
}

/// A classified database error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: Kind,
    /// Pointers are `/<field>` (or empty when no one field is to blame).
    pub problems: Vec<Problem>,
}

impl Violation {
    pub fn message(&self) -> String {
        summary(&self.problems)
    }

    /// The fields the problems point at.
    pub fn fields(&self) -> Vec<String> {
        self.problems
            .iter()
            .filter_map(|p| p.pointer.strip_prefix('/'))
            .map(str::to_string)
            .collect()
    }
}

/// What the failed statement was doing, when the caller knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
    Delete,
    /// Any statement (a flow): a foreign key violation is then sorted by Postgres' detail.
    Unknown,
}

/// What Postgres reported, as far as the classification needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts<'e> {
    pub code: &'e str,
    pub message: &'e str,
    pub constraint: Option<&'e str>,
    /// The table the violated constraint belongs to (for a foreign key: the referencing one).
    pub table: Option<&'e str>,
    pub column: Option<&'e str>,
    pub detail: Option<&'e str>,
}

/// The facts of a Postgres error; `None` for every other error.
pub fn facts(e: &sqlx::Error) -> Option<Facts<'_>> {
    let pg = e
        .as_database_error()?
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    Some(Facts {
        code: pg.code(),
        message: pg.message(),
        constraint: pg.constraint(),
        table: pg.table(),
        column: pg.column(),
        detail: pg.detail(),
    })
}

/// Classifies a database error of a statement on `table` (when known), with every table
/// definition at hand in `tables` (empty when the caller has none). `None`: not a violation
/// of the table's rules (an internal error).
pub fn classify(
    f: &Facts<'_>,
    table: Option<&TableDef>,
    tables: &Tables,
    action: Action,
) -> Option<Violation> {
    let def = table.or_else(|| f.table.and_then(|t| tables.get(t)));
    let constraint = f.constraint.unwrap_or("");
    let own =
        |suffix: &str| def.and_then(|d| constraint_field(std::iter::once(d), constraint, suffix));
    let v = |kind, problems| Some(Violation { kind, problems });
    match f.code {
        // unique_violation
        "23505" => {
            let problems = if let Some((_, fd)) = own("key") {
                vec![unique_one(fd.name.as_str())]
            } else if let Some(fields) = def.and_then(|d| constraint_index(d, constraint)) {
                let names: Vec<&str> = fields.iter().map(Ident::as_str).collect();
                unique_many(&names)
            } else {
                let key = key_fields(f.detail.unwrap_or(""));
                match key.as_slice() {
                    [] => vec![Problem::new("", "another row already has these values")],
                    [one] => vec![unique_one(one)],
                    many => unique_many(&many.iter().map(String::as_str).collect::<Vec<_>>()),
                }
            };
            v(Kind::Unique, problems)
        }
        // foreign_key_violation
        "23503" if is_delete(f, action) => {
            let by = constraint_field(tables.values().chain(def), constraint, "fkey")
                .map(|(t, fd)| format!("{}.{}", t.name, fd.name))
                .or_else(|| f.table.map(str::to_string))
                .map(|by| format!(" by `{by}`"))
                .unwrap_or_default();
            v(
                Kind::StillReferenced,
                vec![Problem::new(
                    "",
                    format!(
                        "the row is still referenced{by}; delete or change the referencing rows first"
                    ),
                )],
            )
        }
        "23503" => {
            let (field, target) = match own("fkey") {
                Some((_, fd)) => (
                    Some(fd.name.to_string()),
                    fd.table.as_ref().map(Ident::to_string),
                ),
                None => (
                    key_fields(f.detail.unwrap_or("")).into_iter().next(),
                    referenced_table(f.detail.unwrap_or("")),
                ),
            };
            let target = target.unwrap_or_else(|| "the referenced table".into());
            let problem = match field {
                Some(field) => Problem::new(
                    format!("/{field}"),
                    format!(
                        "there is no row with this id in `{target}`, the table `{field}` refers to"
                    ),
                ),
                None => Problem::new("", "a referenced row does not exist"),
            };
            v(Kind::MissingReference, vec![problem])
        }
        // check_violation: the enum and email checks (values are checked against them first
        // where the caller can)
        "23514" => {
            let problem = [
                ("enum", "is not one of the allowed values"),
                ("email", "is not an email address"),
            ]
            .iter()
            .find_map(|(suffix, what)| {
                let message = format!("the value {what}");
                match own(suffix) {
                    Some((_, fd)) => Some(Problem::new(format!("/{}", fd.name), message)),
                    None if constraint.ends_with(&format!("_{suffix}")) => {
                        Some(Problem::new("", message))
                    }
                    None => None,
                }
            })
            .unwrap_or_else(|| Problem::new("", "the row violates a check constraint"));
            v(Kind::Invalid, vec![problem])
        }
        // not_null_violation
        "23502" => {
            let pointer = match f.column.unwrap_or("") {
                "" => String::new(),
                col => format!("/{col}"),
            };
            v(
                Kind::Invalid,
                vec![Problem::new(pointer, "a value is required")],
            )
        }
        // sequence_generator_limit_exceeded: the table's ids are used up (see the CSV import's
        // repair); not the client's doing, and its message names the sequence.
        "2200H" => None,
        // data exceptions: a value Postgres refuses (a date out of its range, a number too
        // large for its column). The message names the type and the value, never a relation.
        // A delete binds nothing but the checked ids.
        c if c.starts_with("22") && action != Action::Delete => v(
            Kind::Invalid,
            vec![Problem::new(
                "",
                format!("the database refused a value: {}", f.message),
            )],
        ),
        _ => None,
    }
}

fn unique_one(field: &str) -> Problem {
    Problem::new(
        format!("/{field}"),
        format!("another row already has this `{field}`"),
    )
}

fn unique_many(fields: &[&str]) -> Vec<Problem> {
    let message = format!(
        "another row already has these values of ({})",
        fields.join(", ")
    );
    fields
        .iter()
        .map(|f| Problem::new(format!("/{f}"), message.clone()))
        .collect()
}

/// A foreign key violation of a delete (or of an id change): the row is still referenced.
/// Known from the action where the caller knows it; otherwise Postgres says so in the detail
/// (`... is still referenced from table ...`).
fn is_delete(f: &Facts<'_>, action: Action) -> bool {
    match action {
        Action::Delete => true,
        Action::Unknown => f.detail.is_some_and(|d| d.contains("is still referenced")),
        Action::Read | Action::Write => false,
    }
}

/// The table and field a generated constraint name (`<table id>_<field id>_<suffix>`) belongs to.
pub fn constraint_field<'t>(
    tables: impl IntoIterator<Item = &'t TableDef>,
    name: &str,
    suffix: &str,
) -> Option<(&'t TableDef, &'t FieldDef)> {
    tables.into_iter().find_map(|t| {
        t.fields
            .iter()
            .find(|f| name == format!("{}_{}_{suffix}", t.id, f.id))
            .map(|f| (t, f))
    })
}

/// The fields of a unique table index by its generated name.
fn constraint_index<'t>(def: &'t TableDef, name: &str) -> Option<&'t [Ident]> {
    def.indexes
        .iter()
        .find(|ix| name == format!("{}_{}_idx", def.id, ix.id))
        .map(|ix| ix.fields.as_slice())
}

/// The columns of a key violation's detail, `Key (a, b)=(1, 2) already exists.`: field
/// names are identifiers (`^[a-z][a-z0-9_]*$`), so Postgres never quotes them.
pub fn key_fields(detail: &str) -> Vec<String> {
    let Some(rest) = detail.strip_prefix("Key (") else {
        return Vec::new();
    };
    let Some((cols, _)) = rest.split_once(")=(") else {
        return Vec::new();
    };
    cols.split(", ")
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(str::to_string)
        .collect()
}

/// The referenced table of a foreign key detail, `... is not present in table "authors".`.
fn referenced_table(detail: &str) -> Option<String> {
    let (_, rest) = detail.split_once("in table \"")?;
    let (name, _) = rest.split_once('"')?;
    Ident::parse(name).ok().map(|i| i.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tables() -> Tables {
        let defs = [
            json!({"id": "t_000000000001", "name": "owners", "fields": [
                {"id": "f_000000000001", "name": "email", "type": "email", "unique": true},
                {"id": "f_000000000002", "name": "level", "type": "enum", "values": ["a", "b"]},
                {"id": "f_000000000003", "name": "shop", "type": "text"},
                {"id": "f_000000000004", "name": "sku", "type": "text"}],
                "indexes": [{"id": "i_000000000001", "fields": ["shop", "sku"], "unique": true}]}),
            json!({"id": "t_000000000002", "name": "pets", "fields": [
                {"id": "f_000000000005", "name": "owner", "type": "reference", "table": "owners"}]}),
        ];
        defs.into_iter()
            .map(|d| {
                let def: TableDef = serde_json::from_value(d).expect("definition");
                (def.name.to_string(), def)
            })
            .collect()
    }

    fn facts<'a>(code: &'a str, constraint: &'a str, table: &'a str, detail: &'a str) -> Facts<'a> {
        Facts {
            code,
            message: "m",
            constraint: Some(constraint),
            table: Some(table),
            column: None,
            detail: Some(detail),
        }
    }

    /// Classified with the definitions, and without them (a caller with none at hand).
    fn both(f: Facts<'_>, action: Action) -> (Violation, Violation) {
        let ts = tables();
        let with = classify(&f, None, &ts, action).expect("a violation");
        let without = classify(&f, None, &Tables::new(), action).expect("a violation");
        (with, without)
    }

    #[test]
    fn key_violations_point_at_their_fields_with_or_without_definitions() {
        let (with, without) = both(
            facts(
                "23505",
                "t_000000000001_f_000000000001_key",
                "owners",
                "Key (email)=(a@b.c) already exists.",
            ),
            Action::Write,
        );
        assert_eq!(with, without);
        assert_eq!(with.kind, Kind::Unique);
        assert_eq!(
            with.message(),
            "/email: another row already has this `email`"
        );
        assert_eq!(with.fields(), ["email"]);

        let (with, without) = both(
            facts(
                "23505",
                "t_000000000001_i_000000000001_idx",
                "owners",
                "Key (shop, sku)=(x, y) already exists.",
            ),
            Action::Write,
        );
        assert_eq!(with, without);
        assert_eq!(with.fields(), ["shop", "sku"]);

        let (with, without) = both(
            facts(
                "23503",
                "t_000000000002_f_000000000005_fkey",
                "pets",
                "Key (owner)=(9) is not present in table \"owners\".",
            ),
            Action::Write,
        );
        assert_eq!(with, without);
        assert_eq!(with.kind, Kind::MissingReference);
        assert_eq!(
            with.message(),
            "/owner: there is no row with this id in `owners`, the table `owner` refers to"
        );
    }

    #[test]
    fn a_delete_of_a_referenced_row_names_the_referencing_field() {
        let f = facts(
            "23503",
            "t_000000000002_f_000000000005_fkey",
            "pets",
            "Key (id)=(9) is still referenced from table \"pets\".",
        );
        let (with, without) = both(f, Action::Delete);
        assert_eq!(with.kind, Kind::StillReferenced);
        assert!(
            with.message().contains("`pets.owner`"),
            "{}",
            with.message()
        );
        assert!(
            without.message().contains("`pets`"),
            "{}",
            without.message()
        );
        let unknown = classify(&f, None, &tables(), Action::Unknown).expect("a violation");
        assert_eq!(unknown, with, "the detail tells a flow it was a delete");
        assert_eq!(with.kind.code(), "db.conflict");
        assert_eq!(with.kind.status(), 409);
    }

    #[test]
    fn checks_not_null_and_data_exceptions_are_invalid_values() {
        let ts = tables();
        let f = facts("23514", "t_000000000001_f_000000000002_enum", "owners", "");
        let v = classify(&f, None, &ts, Action::Write).expect("a violation");
        assert_eq!((v.kind.status(), v.kind.code()), (400, "db.invalid_value"));
        assert_eq!(
            v.message(),
            "/level: the value is not one of the allowed values"
        );
        let v = classify(&f, None, &Tables::new(), Action::Write).expect("a violation");
        assert_eq!(v.message(), "the value is not one of the allowed values");

        let f = Facts {
            column: Some("email"),
            ..facts("23502", "", "owners", "")
        };
        let v = classify(&f, None, &ts, Action::Write).expect("a violation");
        assert_eq!(v.message(), "/email: a value is required");

        let f = facts("22008", "", "", "");
        assert_eq!(
            classify(&f, None, &ts, Action::Write).map(|v| v.message()),
            Some("the database refused a value: m".into())
        );
        assert!(classify(&f, None, &ts, Action::Delete).is_none());
        assert!(classify(&facts("2200H", "", "", ""), None, &ts, Action::Write).is_none());
        assert!(classify(&facts("42P01", "", "", ""), None, &ts, Action::Write).is_none());
    }

    #[test]
    fn key_details_yield_the_field_names() {
        assert_eq!(key_fields("Key (email)=(a@b.c) already exists."), ["email"]);
        assert_eq!(
            key_fields("Key (title, owner)=(x, 5) already exists."),
            ["title", "owner"]
        );
        assert_eq!(
            key_fields("Key (author)=(9) is not present in table \"authors\"."),
            ["author"]
        );
        assert!(key_fields("something else").is_empty());
        assert_eq!(
            referenced_table("Key (author)=(9) is not present in table \"authors\"."),
            Some("authors".into())
        );
    }
}
