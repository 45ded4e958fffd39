//! The DDL planner: pure functions from definitions to a [`Plan`], a list of semantic changes
//! plus the DDL steps that make them, each with its SQL. Nothing here touches a database;
//! `tables::store` applies a plan in one transaction.
//!
//! Constraint and index names are built from the stable table and field ids, so renames never
//! orphan them. Steps that can fail because of existing rows carry an `offenders` query that
//! names up to ten such rows; it runs only when the step fails.

use super::def::{DefProblem, FieldDef, IndexDef, IndexKind, TableDef, Tables};
use super::ident::Ident;
use super::types::{EMAIL_PATTERN, FieldType, IdType};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The schema holding every managed table.
pub const APP_SCHEMA: &str = "app";

/// One DDL statement with a readable summary, previewable before it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DdlStep {
    pub summary: String,
    pub sql: String,
    /// Returns the ids of up to ten rows that make this step fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offenders: Option<String>,
    /// What to tell the person when the step fails because of existing rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl DdlStep {
    fn new(summary: impl Into<String>, sql: impl Into<String>) -> DdlStep {
        DdlStep {
            summary: summary.into(),
            sql: sql.into(),
            offenders: None,
            hint: None,
        }
    }

    fn offenders(mut self, sql: String, hint: impl Into<String>) -> DdlStep {
        self.offenders = Some(sql);
        self.hint = Some(hint.into());
        self
    }
}

/// What a change does, in terms a flow cares about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    CreateTable {
        table: String,
    },
    DropTable {
        table: String,
    },
    RenameTable {
        from: String,
        to: String,
    },
    AddField {
        field: String,
    },
    DropField {
        field: String,
    },
    RenameField {
        from: String,
        to: String,
    },
    RetypeField {
        field: String,
        from: FieldType,
        to: FieldType,
    },
    AlterField {
        field: String,
        what: String,
    },
    AddIndex {
        fields: Vec<String>,
    },
    DropIndex {
        fields: Vec<String>,
    },
    /// Change events turned on or off (`events`).
    Events {
        on: bool,
    },
    /// The access rules of these actions were added, changed or removed (no SQL: flows apply
    /// them from the next generation on).
    Rules {
        actions: Vec<String>,
    },
}

/// A previewable schema change.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub steps: Vec<DdlStep>,
}

/// `"app"."name"`.
pub fn qualified(table: &Ident) -> String {
    format!("\"{APP_SCHEMA}\".{}", table.quoted())
}

/// A generated constraint or index name. Ids are checked to be `[a-z]_[0-9a-f]+`, so the
/// name needs no escaping.
fn name(table: &TableDef, id: &str, suffix: &str) -> String {
    format!("\"{}_{}_{}\"", table.id, id, suffix)
}

/// SQL type of a field's column.
fn column_type(table: &TableDef, f: &FieldDef, tables: &Tables) -> String {
    match (f.ty, f.precision, f.scale) {
        (FieldType::Decimal, Some(p), s) => format!("numeric({p},{})", s.unwrap_or(0)),
        _ => table
            .cast_type(f.name.as_str(), tables)
            .unwrap_or("text")
            .to_string(),
    }
}

/// Quotes a text literal (defaults and enum values; DDL cannot take parameters).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn enum_check(f: &FieldDef) -> String {
    let values: Vec<String> = f.values.iter().map(|v| literal(v)).collect();
    format!("{} IN ({})", f.name.quoted(), values.join(", "))
}

fn email_check(f: &FieldDef) -> String {
    format!("{} ~ {}", f.name.quoted(), literal(EMAIL_PATTERN))
}

fn references(f: &FieldDef) -> String {
    let target = f.table.as_ref().map(qualified).unwrap_or_default();
    format!(
        "REFERENCES {target} (\"id\") ON DELETE {}",
        f.on_delete.unwrap_or_default().sql()
    )
}

/// The constraints a field's type and options imply, as `(name, definition)`.
fn field_constraints(table: &TableDef, f: &FieldDef) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if f.unique {
        out.push((
            name(table, &f.id, "key"),
            format!("UNIQUE ({})", f.name.quoted()),
        ));
    }
    match f.ty {
        FieldType::Enum => out.push((
            name(table, &f.id, "enum"),
            format!("CHECK ({})", enum_check(f)),
        )),
        FieldType::Email => out.push((
            name(table, &f.id, "email"),
            format!("CHECK ({})", email_check(f)),
        )),
        FieldType::Reference => out.push((
            name(table, &f.id, "fkey"),
            format!("FOREIGN KEY ({}) {}", f.name.quoted(), references(f)),
        )),
        _ => {}
    }
    out
}

fn column_definition(table: &TableDef, f: &FieldDef, tables: &Tables) -> String {
    let mut col = format!("{} {}", f.name.quoted(), column_type(table, f, tables));
    if f.required {
        col.push_str(" NOT NULL");
    }
    if let Some(lit) = f.default.as_ref().and_then(|d| f.ty.default_literal(d)) {
        col.push_str(" DEFAULT ");
        col.push_str(&lit);
    }
    col
}

fn field_index(table: &TableDef, f: &FieldDef) -> DdlStep {
    let using = if f.ty == FieldType::Json {
        "gin"
    } else {
        "btree"
    };
    DdlStep::new(
        format!("index {}.{}", table.name, f.name),
        format!(
            "CREATE INDEX {} ON {} USING {using} ({})",
            name(table, &f.id, "idx"),
            qualified(&table.name),
            f.name.quoted()
        ),
    )
}

fn table_index(table: &TableDef, ix: &IndexDef) -> DdlStep {
    let cols: Vec<String> = ix.fields.iter().map(Ident::quoted).collect();
    let names: Vec<&str> = ix.fields.iter().map(Ident::as_str).collect();
    let (unique, using) = (
        if ix.unique { "UNIQUE " } else { "" },
        if ix.kind == IndexKind::Gin {
            "gin"
        } else {
            "btree"
        },
    );
    let mut step = DdlStep::new(
        format!(
            "{}index {}({})",
            unique.to_lowercase(),
            table.name,
            names.join(", ")
        ),
        format!(
            "CREATE {unique}INDEX {} ON {} USING {using} ({})",
            name(table, &ix.id, "idx"),
            qualified(&table.name),
            cols.join(", ")
        ),
    );
    if ix.unique {
        step = step.offenders(
            format!(
                "SELECT t.\"id\" FROM {q} t JOIN (SELECT {c} FROM {q} GROUP BY {c} HAVING count(*) > 1) d USING ({c}) ORDER BY t.\"id\" LIMIT 10",
                q = qualified(&table.name),
                c = cols.join(", ")
            ),
            "rows share the same values, so the index cannot be unique",
        );
    }
    step
}

/// The name of the change-log trigger on every table with events on.
const CAPTURE_TRIGGER: &str = "\"capture_change\"";

/// The step that attaches the change-log trigger. Its arguments are the table's password
/// columns, which `sluice.capture_change()` leaves out of the log.
fn capture_on(def: &TableDef) -> DdlStep {
    let hidden: Vec<String> = def.password_fields().into_iter().map(literal).collect();
    DdlStep::new(
        format!("send change events of {}", def.name),
        format!(
            "CREATE TRIGGER {CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION \"sluice\".\"capture_change\"({})",
            qualified(&def.name),
            hidden.join(", ")
        ),
    )
}

fn capture_off(def: &TableDef, summary: String) -> DdlStep {
    DdlStep::new(
        summary,
        format!(
            "DROP TRIGGER IF EXISTS {CAPTURE_TRIGGER} ON {}",
            qualified(&def.name)
        ),
    )
}

/// Steps that create a new table with its system columns, constraints, indexes and the
/// `updated_at` trigger. The definition must have passed [`TableDef::check`] and have ids.
pub fn plan_create(def: &TableDef, tables: &Tables) -> Plan {
    let table = qualified(&def.name);
    let id = match def.id_type {
        IdType::Bigint => "\"id\" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        IdType::Uuid => "\"id\" uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY",
    };
    let mut lines = vec![
        id.to_string(),
        "\"created_at\" timestamptz NOT NULL DEFAULT now()".to_string(),
        "\"updated_at\" timestamptz NOT NULL DEFAULT now()".to_string(),
    ];
    lines.extend(def.fields.iter().map(|f| column_definition(def, f, tables)));
    for f in &def.fields {
        lines.extend(
            field_constraints(def, f)
                .into_iter()
                .map(|(n, c)| format!("CONSTRAINT {n} {c}")),
        );
    }
    let mut steps = vec![
        DdlStep::new(
            format!("create table {}", def.name),
            format!("CREATE TABLE {table} (\n  {}\n)", lines.join(",\n  ")),
        ),
        DdlStep::new(
            format!("keep {}.updated_at current", def.name),
            format!(
                "CREATE TRIGGER \"set_updated_at\" BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION \"sluice\".\"set_updated_at\"()"
            ),
        ),
    ];
    steps.extend(
        def.fields
            .iter()
            .filter(|f| f.indexed && !f.unique)
            .map(|f| field_index(def, f)),
    );
    steps.extend(def.indexes.iter().map(|ix| table_index(def, ix)));
    let mut changes = vec![Change::CreateTable {
        table: def.name.to_string(),
    }];
    if def.events {
        changes.push(Change::Events { on: true });
        steps.push(capture_on(def));
    }
    Plan { changes, steps }
}

/// Steps that drop a table.
pub fn plan_drop(def: &TableDef) -> Plan {
    Plan {
        changes: vec![Change::DropTable {
            table: def.name.to_string(),
        }],
        steps: vec![DdlStep::new(
            format!("drop table {}", def.name),
            format!("DROP TABLE {}", qualified(&def.name)),
        )],
    }
}

/// Steps that turn `old` into `new` (same table id; every field and index of `new` has an id,
/// those not in `old` are new). Problems are changes that cannot be made at all.
pub fn plan_change(
    old: &TableDef,
    new: &TableDef,
    tables: &Tables,
) -> Result<Plan, Vec<DefProblem>> {
    let mut problems = Vec::new();
    if old.id_type != new.id_type {
        problems.push(DefProblem::new(
            "/id_type",
            "the id type is chosen when a table is created and cannot change",
        ));
    }
    let old_fields: HashMap<&str, &FieldDef> =
        old.fields.iter().map(|f| (f.id.as_str(), f)).collect();
    let new_ids: HashMap<&str, &FieldDef> = new.fields.iter().map(|f| (f.id.as_str(), f)).collect();
    for (i, f) in new.fields.iter().enumerate() {
        if let Some(o) = old_fields.get(f.id.as_str())
            && (o.ty == FieldType::Password) != (f.ty == FieldType::Password)
        {
            problems.push(DefProblem::new(
                format!("/fields/{i}/type"),
                "a field cannot change to or from password; add a new field instead",
            ));
        }
    }
    // Renames run after drops, so renaming onto a dropped name works; a swap of two names
    // would collide midway and is refused.
    let kept_old_names: HashMap<&str, &str> = old
        .fields
        .iter()
        .filter(|f| new_ids.contains_key(f.id.as_str()))
        .map(|f| (f.name.as_str(), f.id.as_str()))
        .collect();
    for (i, f) in new.fields.iter().enumerate() {
        if let Some(other) = kept_old_names.get(f.name.as_str())
            && *other != f.id
        {
            problems.push(DefProblem::new(
                format!("/fields/{i}/name"),
                format!(
                    "`{}` is still the name of another field in this change; rename in two steps",
                    f.name
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut plan = Plan::default();
    let q = qualified(&new.name);
    if old.name != new.name {
        plan.changes.push(Change::RenameTable {
            from: old.name.to_string(),
            to: new.name.to_string(),
        });
        plan.steps.push(DdlStep::new(
            format!("rename table {} to {}", old.name, new.name),
            format!(
                "ALTER TABLE {} RENAME TO {}",
                qualified(&old.name),
                new.name.quoted()
            ),
        ));
    }

    // Indexes whose definition changes are dropped and created again.
    let index_key = |t: &TableDef, ix: &IndexDef| {
        let ids: Vec<String> = ix
            .fields
            .iter()
            .map(|n| {
                t.field(n.as_str())
                    .map(|f| f.id.clone())
                    .unwrap_or_default()
            })
            .collect();
        (ids, ix.unique, ix.kind)
    };
    let old_ix: BTreeMap<&str, &IndexDef> =
        old.indexes.iter().map(|i| (i.id.as_str(), i)).collect();
    let new_ix: BTreeMap<&str, &IndexDef> =
        new.indexes.iter().map(|i| (i.id.as_str(), i)).collect();
    let dropped_fields: Vec<&FieldDef> = old
        .fields
        .iter()
        .filter(|f| !new_ids.contains_key(f.id.as_str()))
        .collect();
    for (id, ix) in &old_ix {
        let gone_with_field = ix
            .fields
            .iter()
            .any(|n| dropped_fields.iter().any(|f| f.name == *n));
        let changed = new_ix
            .get(id)
            .is_none_or(|n| index_key(new, n) != index_key(old, ix));
        if changed && !gone_with_field {
            plan.changes.push(Change::DropIndex {
                fields: ix.fields.iter().map(ToString::to_string).collect(),
            });
            plan.steps.push(DdlStep::new(
                format!("drop index on {}", new.name),
                format!("DROP INDEX \"{APP_SCHEMA}\".{}", name(old, id, "idx")),
            ));
        }
    }

    for f in &dropped_fields {
        plan.changes.push(Change::DropField {
            field: f.name.to_string(),
        });
        plan.steps.push(DdlStep::new(
            format!("drop field {}.{}", new.name, f.name),
            format!("ALTER TABLE {q} DROP COLUMN {}", f.name.quoted()),
        ));
    }

    for f in &new.fields {
        let Some(o) = old_fields.get(f.id.as_str()) else {
            continue;
        };
        if o.name != f.name {
            plan.changes.push(Change::RenameField {
                from: o.name.to_string(),
                to: f.name.to_string(),
            });
            plan.steps.push(DdlStep::new(
                format!("rename field {}.{} to {}", new.name, o.name, f.name),
                format!(
                    "ALTER TABLE {q} RENAME COLUMN {} TO {}",
                    o.name.quoted(),
                    f.name.quoted()
                ),
            ));
        }
    }

    for f in &new.fields {
        let Some(o) = old_fields.get(f.id.as_str()) else {
            continue;
        };
        alter_field(old, new, o, f, tables, &mut plan);
    }

    for f in new
        .fields
        .iter()
        .filter(|f| !old_fields.contains_key(f.id.as_str()))
    {
        plan.changes.push(Change::AddField {
            field: f.name.to_string(),
        });
        let mut sql = format!(
            "ALTER TABLE {q} ADD COLUMN {}",
            column_definition(new, f, tables)
        );
        for (n, c) in field_constraints(new, f) {
            sql.push_str(&format!(", ADD CONSTRAINT {n} {c}"));
        }
        let mut step = DdlStep::new(format!("add field {}.{}", new.name, f.name), sql);
        if f.required && f.default.is_none() {
            step = step.offenders(
                format!("SELECT \"id\" FROM {q} ORDER BY \"id\" LIMIT 10"),
                format!(
                    "the table has rows, so the required field `{}` needs a default",
                    f.name
                ),
            );
        }
        plan.steps.push(step);
        if f.indexed && !f.unique {
            plan.steps.push(field_index(new, f));
        }
    }

    for (id, ix) in &new_ix {
        let changed = old_ix
            .get(id)
            .is_none_or(|o| index_key(old, o) != index_key(new, ix));
        let was_dropped_with_field = old_ix.get(id).is_some_and(|o| {
            o.fields
                .iter()
                .any(|n| dropped_fields.iter().any(|f| f.name == *n))
        });
        if changed || was_dropped_with_field {
            plan.changes.push(Change::AddIndex {
                fields: ix.fields.iter().map(ToString::to_string).collect(),
            });
            plan.steps.push(table_index(new, ix));
        }
    }

    // The trigger names the password columns, so it is made again when they change; a
    // renamed table keeps its trigger (the log names the table as it is at each write).
    let hidden_changed = old.password_fields() != new.password_fields();
    match (old.events, new.events) {
        (false, true) => {
            plan.changes.push(Change::Events { on: true });
            plan.steps.push(capture_on(new));
        }
        (true, false) => {
            plan.changes.push(Change::Events { on: false });
            plan.steps.push(capture_off(
                new,
                format!("stop change events of {}", new.name),
            ));
        }
        (true, true) if hidden_changed => {
            plan.steps.push(capture_off(
                new,
                format!("replace the change-log trigger of {}", new.name),
            ));
            plan.steps.push(capture_on(new));
        }
        _ => {}
    }
    let rules = |d: &TableDef, action: &str| d.rules.as_ref().and_then(|r| r.get(action)).cloned();
    let create = |d: &TableDef| d.rules.as_ref().and_then(|r| r.create.clone());
    let mut actions: Vec<String> = super::def::RULE_ACTIONS
        .iter()
        .filter(|a| rules(old, a) != rules(new, a))
        .map(|a| a.to_string())
        .collect();
    if create(old) != create(new) {
        actions.insert(0, "create".into());
    }
    if !actions.is_empty() {
        plan.changes.push(Change::Rules { actions });
    }
    Ok(plan)
}

/// Steps for one kept field whose type or options changed (after renames: uses new names).
fn alter_field(
    old_t: &TableDef,
    t: &TableDef,
    o: &FieldDef,
    f: &FieldDef,
    tables: &Tables,
    plan: &mut Plan,
) {
    let q = qualified(&t.name);
    let col = f.name.quoted();
    let label = format!("{}.{}", t.name, f.name);
    let old_type = column_type(old_t, o, tables);
    let new_type = column_type(t, f, tables);
    let retype = old_type != new_type;
    let constraints_changed = retype
        || o.values != f.values
        || o.on_delete != f.on_delete
        || o.table != f.table
        || o.ty != f.ty;

    // Constraints that depend on the type go first and come back after it changed.
    if constraints_changed {
        for (n, _) in field_constraints(old_t, o)
            .into_iter()
            .filter(|(n, _)| !n.ends_with("_key\""))
        {
            plan.steps.push(DdlStep::new(
                format!("drop check of {label}"),
                format!("ALTER TABLE {q} DROP CONSTRAINT {n}"),
            ));
        }
    }
    if retype {
        plan.changes.push(Change::RetypeField {
            field: f.name.to_string(),
            from: o.ty,
            to: f.ty,
        });
        let cast = t.cast_type(f.name.as_str(), tables).unwrap_or("text");
        plan.steps.push(
            DdlStep::new(
                format!("change {label} from {old_type} to {new_type}"),
                format!("ALTER TABLE {q} ALTER COLUMN {col} DROP DEFAULT, ALTER COLUMN {col} TYPE {new_type} USING {col}::text::{new_type}"),
            )
            .offenders(
                format!("SELECT \"id\" FROM {q} WHERE {col} IS NOT NULL AND NOT \"sluice\".\"can_cast\"({col}::text, '{cast}') ORDER BY \"id\" LIMIT 10"),
                format!("some values of {label} cannot be converted to {new_type}"),
            ),
        );
    }
    if o.required != f.required {
        plan.changes.push(Change::AlterField {
            field: f.name.to_string(),
            what: if f.required { "required" } else { "optional" }.into(),
        });
        let step = if f.required {
            DdlStep::new(
                format!("make {label} required"),
                format!("ALTER TABLE {q} ALTER COLUMN {col} SET NOT NULL"),
            )
            .offenders(
                format!("SELECT \"id\" FROM {q} WHERE {col} IS NULL ORDER BY \"id\" LIMIT 10"),
                format!("some rows have no value for {label}"),
            )
        } else {
            DdlStep::new(
                format!("make {label} optional"),
                format!("ALTER TABLE {q} ALTER COLUMN {col} DROP NOT NULL"),
            )
        };
        plan.steps.push(step);
    }
    if o.default != f.default || (retype && f.default.is_some()) {
        plan.changes.push(Change::AlterField {
            field: f.name.to_string(),
            what: "default".into(),
        });
        let sql = match f.default.as_ref().and_then(|d| f.ty.default_literal(d)) {
            Some(lit) => format!("ALTER TABLE {q} ALTER COLUMN {col} SET DEFAULT {lit}"),
            None => format!("ALTER TABLE {q} ALTER COLUMN {col} DROP DEFAULT"),
        };
        plan.steps
            .push(DdlStep::new(format!("set the default of {label}"), sql));
    }
    if o.unique != f.unique {
        plan.changes.push(Change::AlterField {
            field: f.name.to_string(),
            what: if f.unique { "unique" } else { "not unique" }.into(),
        });
        let n = name(t, &f.id, "key");
        let step = if f.unique {
            DdlStep::new(format!("make {label} unique"), format!("ALTER TABLE {q} ADD CONSTRAINT {n} UNIQUE ({col})")).offenders(
                format!("SELECT \"id\" FROM {q} WHERE {col} IN (SELECT {col} FROM {q} GROUP BY {col} HAVING count(*) > 1) ORDER BY \"id\" LIMIT 10"),
                format!("some rows share a value of {label}"),
            )
        } else {
            DdlStep::new(
                format!("let {label} repeat"),
                format!("ALTER TABLE {q} DROP CONSTRAINT {n}"),
            )
        };
        plan.steps.push(step);
    }
    if constraints_changed {
        for (n, c) in field_constraints(t, f)
            .into_iter()
            .filter(|(n, _)| !n.ends_with("_key\""))
        {
            let offenders = match f.ty {
                FieldType::Enum => format!("NOT ({})", enum_check(f)),
                FieldType::Email => format!("NOT ({})", email_check(f)),
                _ => format!(
                    "NOT EXISTS (SELECT 1 FROM {} r WHERE r.\"id\" = {q}.{col})",
                    f.table.as_ref().map(qualified).unwrap_or_default()
                ),
            };
            plan.changes.push(Change::AlterField {
                field: f.name.to_string(),
                what: "check".into(),
            });
            plan.steps.push(DdlStep::new(format!("check {label}"), format!("ALTER TABLE {q} ADD CONSTRAINT {n} {c}")).offenders(
                format!("SELECT \"id\" FROM {q} WHERE {col} IS NOT NULL AND {offenders} ORDER BY \"id\" LIMIT 10"),
                format!("some values of {label} are not allowed by its new definition"),
            ));
        }
    }
    let had_index = o.indexed && !o.unique;
    let has_index = f.indexed && !f.unique;
    if had_index && !has_index {
        plan.changes.push(Change::AlterField {
            field: f.name.to_string(),
            what: "not indexed".into(),
        });
    }
    if had_index && (!has_index || retype) {
        plan.steps.push(DdlStep::new(
            format!("drop index of {label}"),
            format!(
                "DROP INDEX IF EXISTS \"{APP_SCHEMA}\".{}",
                name(t, &f.id, "idx")
            ),
        ));
    }
    if has_index && (!had_index || retype) {
        plan.changes.push(Change::AlterField {
            field: f.name.to_string(),
            what: "indexed".into(),
        });
        plan.steps.push(field_index(t, f));
    }
}

#[cfg(test)]
mod tests {
    //! Snapshots of the planner: one per kind of change, showing the changes, every SQL
    //! statement and the offenders query that names blocking rows.

    use super::*;
    use serde_json::{Value, json};

    fn def(v: Value) -> TableDef {
        serde_json::from_value(v).expect("definition")
    }

    fn render(plan: &Plan) -> String {
        let mut out = String::new();
        for c in &plan.changes {
            out.push_str(&format!(
                "change: {}\n",
                serde_json::to_string(c).unwrap_or_default()
            ));
        }
        for s in &plan.steps {
            out.push_str(&format!("\n-- {}\n{};\n", s.summary, s.sql));
            if let Some(o) = &s.offenders {
                out.push_str(&format!(
                    "-- when it fails ({}):\n--   {o}\n",
                    s.hint.as_deref().unwrap_or("")
                ));
            }
        }
        out
    }

    fn people() -> TableDef {
        def(json!({"id": "t_00000000000a", "name": "people", "fields": [
            {"id": "f_000000000001", "name": "name", "type": "text", "required": true}
        ]}))
    }

    fn tables() -> Tables {
        Tables::from([("people".to_string(), people())])
    }

    fn base() -> TableDef {
        def(json!({"id": "t_000000000001", "name": "books", "fields": [
            {"id": "f_00000000000a", "name": "title", "type": "text", "required": true},
            {"id": "f_00000000000b", "name": "pages", "type": "text"},
            {"id": "f_00000000000c", "name": "kind", "type": "enum", "values": ["novel", "essay"]},
            {"id": "f_00000000000d", "name": "author", "type": "reference", "table": "people"},
            {"id": "f_00000000000e", "name": "meta", "type": "json", "indexed": true}
        ], "indexes": [{"id": "i_000000000001", "fields": ["title", "kind"], "unique": true}]}))
    }

    fn changed(edit: impl FnOnce(&mut Value)) -> String {
        let old = base();
        let mut v = serde_json::to_value(&old).expect("value");
        edit(&mut v);
        let mut new = def(v);
        new.follow_renames(&old);
        let problems = new.check(&tables());
        assert!(problems.is_empty(), "{problems:?}");
        render(&plan_change(&old, &new, &tables()).expect("plans"))
    }

    #[test]
    fn create_a_table_with_every_type() {
        let t = def(
            json!({"id": "t_000000000002", "name": "everything", "id_type": "uuid", "fields": [
            {"id": "f_000000000001", "name": "a_text", "type": "text", "required": true, "default": "it's"},
            {"id": "f_000000000002", "name": "a_int", "type": "integer", "unique": true},
            {"id": "f_000000000003", "name": "a_dec", "type": "decimal", "precision": 10, "scale": 2, "indexed": true},
            {"id": "f_000000000004", "name": "a_bool", "type": "boolean", "default": false},
            {"id": "f_000000000005", "name": "a_ts", "type": "timestamp", "default": "now()"},
            {"id": "f_000000000006", "name": "a_date", "type": "date"},
            {"id": "f_000000000007", "name": "a_uuid", "type": "uuid", "default": "uuid()"},
            {"id": "f_000000000008", "name": "a_json", "type": "json", "indexed": true},
            {"id": "f_000000000009", "name": "a_enum", "type": "enum", "values": ["x", "y'z"]},
            {"id": "f_00000000000a", "name": "a_email", "type": "email"},
            {"id": "f_00000000000b", "name": "a_password", "type": "password"},
            {"id": "f_00000000000c", "name": "a_ref", "type": "reference", "table": "people", "on_delete": "set_null"}
        ], "indexes": [{"id": "i_000000000001", "fields": ["a_int", "a_date"]}]}),
        );
        assert!(t.check(&tables()).is_empty());
        insta::assert_snapshot!(render(&plan_create(&t, &tables())));
    }

    #[test]
    fn create_a_table_with_events() {
        let mut t = people();
        t.events = true;
        t.fields.push(def_field(
            json!({"id": "f_000000000002", "name": "secret", "type": "password"}),
        ));
        assert!(t.check(&tables()).is_empty());
        insta::assert_snapshot!(render(&plan_create(&t, &tables())));
    }

    fn def_field(v: Value) -> FieldDef {
        serde_json::from_value(v).expect("field")
    }

    #[test]
    fn turn_events_on_and_off() {
        insta::assert_snapshot!(changed(|v| v["events"] = json!(true)));
        let mut old = base();
        old.events = true;
        let mut new = old.clone();
        new.events = false;
        insta::assert_snapshot!(render(&plan_change(&old, &new, &tables()).expect("plans")));
    }

    #[test]
    fn a_new_password_field_remakes_the_events_trigger() {
        let mut old = base();
        old.events = true;
        let mut new = old.clone();
        new.fields.push(def_field(
            json!({"id": "f_00000000000f", "name": "pin", "type": "password"}),
        ));
        insta::assert_snapshot!(render(&plan_change(&old, &new, &tables()).expect("plans")));
        // A rename of the table keeps the trigger: nothing about events is planned.
        let mut renamed = old.clone();
        renamed.name = serde_json::from_value(json!("volumes")).expect("name");
        let plan = plan_change(&old, &renamed, &tables()).expect("plans");
        assert!(!plan.steps.iter().any(|s| s.sql.contains("capture_change")));
    }

    #[test]
    fn drop_a_table() {
        insta::assert_snapshot!(render(&plan_drop(&base())));
    }

    #[test]
    fn rename_the_table() {
        insta::assert_snapshot!(changed(|v| v["name"] = json!("volumes")));
    }

    #[test]
    fn rename_a_field() {
        insta::assert_snapshot!(changed(|v| v["fields"][0]["name"] = json!("headline")));
    }

    #[test]
    fn add_fields_of_several_kinds() {
        insta::assert_snapshot!(changed(|v| {
            let fields = v["fields"].as_array_mut().expect("fields");
            fields.push(
                json!({"id": "f_0000000000f1", "name": "isbn", "type": "text", "required": true}),
            );
            fields.push(json!({"id": "f_0000000000f2", "name": "year", "type": "integer", "indexed": true, "default": 2000}));
            fields.push(
                json!({"id": "f_0000000000f3", "name": "contact", "type": "email", "unique": true}),
            );
        }));
    }

    #[test]
    fn drop_a_field() {
        insta::assert_snapshot!(changed(|v| {
            v["fields"].as_array_mut().expect("fields").remove(1);
        }));
    }

    #[test]
    fn change_a_fields_type() {
        insta::assert_snapshot!(changed(|v| v["fields"][1]["type"] = json!("integer")));
    }

    #[test]
    fn make_a_field_required_unique_and_defaulted() {
        insta::assert_snapshot!(changed(|v| {
            v["fields"][1]["required"] = json!(true);
            v["fields"][1]["unique"] = json!(true);
            v["fields"][1]["default"] = json!("n/a");
        }));
    }

    #[test]
    fn relax_a_required_field() {
        insta::assert_snapshot!(changed(|v| v["fields"][0]["required"] = json!(false)));
    }

    #[test]
    fn change_enum_values() {
        insta::assert_snapshot!(changed(
            |v| v["fields"][2]["values"] = json!(["novel", "essay", "poem"])
        ));
    }

    #[test]
    fn change_a_references_delete_policy() {
        insta::assert_snapshot!(changed(|v| v["fields"][3]["on_delete"] = json!("cascade")));
    }

    #[test]
    fn drop_and_change_indexes() {
        insta::assert_snapshot!(changed(|v| {
            v["fields"][4]["indexed"] = json!(false);
            v["indexes"][0]["unique"] = json!(false);
            v["indexes"]
                .as_array_mut()
                .expect("indexes")
                .push(json!({"id": "i_000000000002", "fields": ["meta"], "kind": "gin"}));
        }));
    }

    #[test]
    fn impossible_changes_are_problems_not_plans() {
        let old = base();
        let mut v = serde_json::to_value(&old).expect("value");
        v["id_type"] = json!("uuid");
        v["fields"][1]["type"] = json!("password");
        v["fields"][0]["name"] = json!("pages");
        v["fields"][1]["name"] = json!("title");
        let problems = plan_change(&old, &def(v), &tables()).expect_err("refused");
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/id_type",
                "/fields/1/type",
                "/fields/0/name",
                "/fields/1/name"
            ]
        );
    }
}
