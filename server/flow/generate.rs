//! Generated CRUD endpoints for a managed table: five ordinary flow documents (list, get,
//! create, update, delete) that a builder can edit like any other. Pure.
//!
//! Every generated endpoint carries an `endpoint.auth` level chosen by the caller; the default
//! ([`default_auth`]) is signed-in users, and admins for a table with a password field. A
//! password field is writable through the generated create and update flows only at the
//! `admin` level: below it, the field is left out of their input schemas and values, so no
//! client can set or reset a password through them.

use super::plan::AuthLevel;
use crate::tables::def::FieldDef;
use crate::tables::{FieldType, IdType, TableDef};
use serde_json::{Value, json};

/// The JSON Schema of a field's value in requests.
fn value_schema(f: &FieldDef, id_type_of_target: IdType) -> Value {
    let mut s = match f.ty {
        FieldType::Text => json!({"type": "string"}),
        FieldType::Integer => json!({"type": "integer"}),
        FieldType::Decimal => json!({"type": "number"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Timestamp => json!({"type": "string", "format": "date-time"}),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Uuid => json!({"type": "string", "format": "uuid"}),
        FieldType::Json => json!({}),
        FieldType::Enum => json!({"enum": f.values}),
        FieldType::Email => json!({"type": "string", "format": "email"}),
        FieldType::Password => json!({"type": "string", "minLength": 8, "maxLength": 1000}),
        FieldType::Reference => match id_type_of_target {
            IdType::Bigint => json!({"type": "integer"}),
            IdType::Uuid => json!({"type": "string", "format": "uuid"}),
        },
    };
    if let Some(d) = &f.description {
        s["description"] = json!(d);
    }
    if !f.required && f.ty != FieldType::Json {
        s = json!({"anyOf": [s, {"type": "null"}]});
    }
    s
}

fn id_schema(def: &TableDef) -> Value {
    match def.id_type {
        IdType::Bigint => {
            json!({"type": "object", "properties": {"id": {"type": "integer", "minimum": 1}}})
        }
        IdType::Uuid => {
            json!({"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}})
        }
    }
}

fn envelope(
    name: String,
    method: &str,
    path: &str,
    auth: AuthLevel,
    input: Value,
    entry: &str,
    nodes: Value,
) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": method, "path": path, "auth": auth},
        "input": input, "entry": entry, "nodes": nodes,
    })
}

/// The auth level of generated endpoints when the builder names none: admins for a table with
/// a password field (its rows are accounts), signed-in users otherwise.
pub fn default_auth(def: &TableDef) -> AuthLevel {
    if def.password_fields().is_empty() {
        AuthLevel::User
    } else {
        AuthLevel::Admin
    }
}

/// Why the CRUD flows of a table cannot be generated at an auth level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrudError {
    /// A required password field without default can only be written at the admin level, and
    /// a create endpoint that cannot write it could never insert a row.
    #[error(
        "the required password field `{0}` can only be written by admin endpoints: generate with auth level admin, or write a signup flow"
    )]
    PasswordNeedsAdmin(String),
}

/// What an insert writes for a field the client left out: its default, or null.
fn fallback(f: &FieldDef) -> String {
    match &f.default {
        Some(Value::String(s)) if s == "now()" => "now()".into(),
        Some(Value::String(s)) if s == "uuid()" => "uuid()".into(),
        Some(v) => rhai_literal(v),
        None => "()".into(),
    }
}

/// A JSON value written as a Rhai literal (JSON string escapes are valid Rhai escapes).
fn rhai_literal(v: &Value) -> String {
    match v {
        Value::Null => "()".into(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(rhai_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), rhai_literal(v)))
                .collect();
            format!("#{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Owner-only access rules for `def` when it has an `owner` field that references `users`
/// (docs/RULES.md, "Owner-only by default"): every action is limited to the caller's rows,
/// a new row's owner is the caller whatever the request says, and a changed row must still be
/// the caller's (so it cannot be given away). `None` for a table without such a field.
pub fn owner_rules(def: &TableDef) -> Option<crate::tables::def::TableRules> {
    let owner = def.field("owner")?;
    if owner.ty != FieldType::Reference || owner.table.as_ref()?.as_str() != "users" {
        return None;
    }
    let is_mine = json!({"field": "owner", "op": "eq", "value": {"auth": "id"}});
    let mine = json!({"where": is_mine});
    let update = json!({"where": is_mine, "check": is_mine});
    serde_json::from_value(json!({
        "list": mine, "view": mine, "delete": mine, "update": update,
        "create": {"set": {"owner": {"auth": "id"}}}
    }))
    .ok()
}

/// The fields the generated create and update flows may write at `auth`: all of them for admins,
/// all but password fields below. Refused when a field every insert must give is left out.
pub fn writable_fields(def: &TableDef, auth: AuthLevel) -> Result<Vec<&FieldDef>, CrudError> {
    let writable: Vec<&FieldDef> = def
        .fields
        .iter()
        .filter(|f| auth == AuthLevel::Admin || f.ty != FieldType::Password)
        .collect();
    match def
        .must_be_given()
        .find(|f| !writable.iter().any(|w| w.name == f.name))
    {
        Some(f) => Err(CrudError::PasswordNeedsAdmin(f.name.to_string())),
        None => Ok(writable),
    }
}

/// The fields a generated list lets a client sort by (`?sort=`): `id`, `created_at`, and the
/// table's first four fields that have an order. Each allowed order is a statement of its own,
/// so the list is kept short; a builder widens it in the flow.
fn list_sortable(def: &TableDef) -> Vec<&str> {
    ["id", "created_at"]
        .into_iter()
        .chain(
            def.fields
                .iter()
                .filter(|f| f.ty.is_ordered())
                .map(|f| f.name.as_str())
                .take(4),
        )
        .collect()
}

/// The five CRUD flows of `def`, served under `path` (like `/todos`) at the auth level `auth`.
/// `target_id` gives the id type of referenced tables. Below `admin`, password fields are not
/// writable (see the module comment).
pub fn crud(
    def: &TableDef,
    path: &str,
    auth: AuthLevel,
    target_id: impl Fn(&str) -> IdType,
) -> Result<Vec<Value>, CrudError> {
    let t = def.name.as_str();
    let item = format!("{path}/{{id}}");
    let writable = writable_fields(def, auth)?;
    let props: serde_json::Map<String, Value> = writable
        .iter()
        .map(|f| {
            (
                f.name.to_string(),
                value_schema(
                    f,
                    f.table
                        .as_ref()
                        .map(|x| target_id(x.as_str()))
                        .unwrap_or_default(),
                ),
            )
        })
        .collect();
    let required: Vec<&str> = def.must_be_given().map(|f| f.name.as_str()).collect();
    let id = json!({"$rhai": "request.params.id"});

    let sortable = list_sortable(def);
    let list = envelope(
        format!("{t}_list"),
        "GET",
        path,
        auth,
        json!({"query": {"type": "object", "additionalProperties": false, "properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "offset": {"type": "integer", "minimum": 0},
            "sort": {"type": "string", "maxLength": 200, "description": format!(
                "Up to two of {}, separated by commas; - for descending (-created_at). Default: id.",
                sortable.join(", "))}}}}),
        "load",
        json!({
            "load": {"type": "db.query", "table": t, "as": "rows",
                     "limit": {"$rhai": "if \"limit\" in request.query { request.query.limit } else { 20 }"},
                     "offset": {"$rhai": "if \"offset\" in request.query { request.query.offset } else { 0 }"},
                     "sort": {"value": {"$rhai": "if \"sort\" in request.query { request.query.sort } else { () }"},
                              "allow": sortable},
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"items": {"$rhai": "rows"}}}
        }),
    );
    let get = envelope(
        format!("{t}_get"),
        "GET",
        &item,
        auth,
        json!({"params": id_schema(def)}),
        "load",
        json!({
            "load": {"type": "db.get", "table": t, "id": id, "as": "row", "next": {"found": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}}
        }),
    );
    let values: serde_json::Map<String, Value> = writable
        .iter()
        .map(|f| {
            let n = f.name.as_str();
            let expr = format!(
                "if \"{n}\" in request.body {{ request.body.{n} }} else {{ {} }}",
                fallback(f)
            );
            (n.to_string(), json!({"$rhai": expr}))
        })
        .collect();
    let create = envelope(
        format!("{t}_create"),
        "POST",
        path,
        auth,
        json!({"body": {"type": "object", "additionalProperties": false, "required": required, "properties": props}}),
        "insert",
        json!({
            "insert": {"type": "db.insert", "table": t, "values": values, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
        }),
    );
    let update = envelope(
        format!("{t}_update"),
        "PATCH",
        &item,
        auth,
        json!({"params": id_schema(def),
               "body": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": props}}),
        "update",
        json!({
            "update": {"type": "db.update", "table": t, "id": id, "patch": {"$rhai": "request.body"}, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}}
        }),
    );
    let delete = envelope(
        format!("{t}_delete"),
        "DELETE",
        &item,
        auth,
        json!({"params": id_schema(def)}),
        "delete",
        json!({
            "delete": {"type": "db.delete", "table": t, "id": id, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 204}
        }),
    );
    Ok(vec![list, get, create, update, delete])
}

/// The generated flow `doc` of table `old`, regenerated for the changed definition `new`, when
/// `doc` is exactly what [`crud`] made for `old` (its logic: layout aside) and the result
/// differs: a generated endpoint nobody edited follows the fields of its table. `None` for any
/// other flow (an edited one keeps its document; regenerate it with `replace`), and when the
/// table was renamed. The layout (`ui`) is kept.
pub fn follow(
    doc: &Value,
    old: &TableDef,
    new: &TableDef,
    target_id: impl Fn(&str) -> IdType,
) -> Option<Value> {
    if old.name != new.name {
        return None;
    }
    let name = doc.get("name")?.as_str()?;
    let kind = ["list", "get", "create", "update", "delete"]
        .iter()
        .position(|k| name == format!("{}_{k}", old.name))?;
    let path = doc.pointer("/endpoint/path")?.as_str()?;
    let base = if matches!(kind, 1 | 3 | 4) {
        path.strip_suffix("/{id}")?
    } else {
        path
    };
    let auth: AuthLevel = serde_json::from_value(doc.pointer("/endpoint/auth")?.clone()).ok()?;
    let before = crud(old, base, auth, &target_id).ok()?.swap_remove(kind);
    if super::canonical::rev(&before) != super::canonical::rev(doc) {
        return None;
    }
    let mut after = crud(new, base, auth, &target_id).ok()?.swap_remove(kind);
    if super::canonical::rev(&after) == super::canonical::rev(doc) {
        return None;
    }
    if let Some(ui) = doc.get("ui") {
        after["ui"] = ui.clone();
    }
    Some(after)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn owner_rules_are_written_for_an_owner_that_references_users_only() {
        let def = |owner: Value| -> TableDef {
            serde_json::from_value(json!({"id": "t_000000000002", "name": "notes", "fields": [
                {"id": "f_000000000004", "name": "title", "type": "text"}, owner]}))
            .expect("definition")
        };
        let linked = def(
            json!({"id": "f_000000000005", "name": "owner", "type": "reference", "table": "users"}),
        );
        let rules = owner_rules(&linked).expect("rules");
        let doc = serde_json::to_value(&rules).expect("json");
        let mine = json!({"field": "owner", "op": "eq", "value": {"auth": "id"}});
        assert_eq!(doc["list"]["where"], mine);
        assert_eq!(doc["view"]["where"], mine);
        assert_eq!(doc["delete"]["where"], mine);
        assert_eq!(doc["update"], json!({"where": mine, "check": mine}));
        assert_eq!(doc["create"], json!({"set": {"owner": {"auth": "id"}}}));
        let users: crate::tables::def::Tables = [(
            "users".to_string(),
            serde_json::from_value(json!({"id": "t_000000000003", "name": "users", "fields": []}))
                .expect("users"),
        )]
        .into_iter()
        .collect();
        let mut ruled = linked.clone();
        ruled.rules = Some(rules);
        assert!(crate::tables::rules::check(&ruled, &users).is_empty());
        let plain = def(json!({"id": "f_000000000005", "name": "owner", "type": "integer"}));
        assert!(owner_rules(&plain).is_none(), "not linked to users");
        let other = def(
            json!({"id": "f_000000000005", "name": "author", "type": "reference", "table": "users"}),
        );
        assert!(owner_rules(&other).is_none(), "not named owner");
    }

    /// An account table: an email, a password and a role.
    pub(crate) fn accounts() -> TableDef {
        serde_json::from_value(
            json!({"id": "t_000000000001", "name": "accounts", "fields": [
                {"id": "f_000000000001", "name": "email", "type": "email", "required": true},
                {"id": "f_000000000002", "name": "secret", "type": "password"},
                {"id": "f_000000000003", "name": "role", "type": "text"}
            ]}),
        )
        .expect("definition")
    }

    #[test]
    fn a_required_password_field_needs_the_admin_level() {
        let mut def = accounts();
        def.fields[1].required = true;
        for auth in [AuthLevel::Public, AuthLevel::User] {
            assert_eq!(
                crud(&def, "/accounts", auth, |_| IdType::Bigint),
                Err(CrudError::PasswordNeedsAdmin("secret".into()))
            );
        }
        assert!(crud(&def, "/accounts", AuthLevel::Admin, |_| IdType::Bigint).is_ok());
    }

    #[test]
    fn an_unedited_generated_flow_follows_new_fields_and_an_edited_one_does_not() {
        let old: TableDef =
            serde_json::from_value(json!({"id": "t_000000000002", "name": "notes", "fields": []}))
                .expect("definition");
        let new: TableDef = serde_json::from_value(json!({"id": "t_000000000002", "name": "notes",
            "fields": [{"id": "f_000000000009", "name": "title", "type": "text", "required": true}]}))
        .expect("definition");
        let docs = crud(&old, "/notes", AuthLevel::User, |_| IdType::Bigint).expect("generated");
        for (doc, want) in docs
            .iter()
            .zip(crud(&new, "/notes", AuthLevel::User, |_| IdType::Bigint).expect("generated"))
        {
            let mut laid_out = doc.clone();
            laid_out["ui"] = json!({"positions": {}});
            let followed = follow(&laid_out, &old, &new, |_| IdType::Bigint);
            match doc["name"].as_str() {
                // The list sorts by the new field too.
                Some("notes_create" | "notes_update" | "notes_list") => {
                    let followed = followed.expect("follows the new field");
                    assert_eq!(followed["input"], want["input"]);
                    assert_eq!(followed["nodes"], want["nodes"]);
                    assert_eq!(followed["ui"], laid_out["ui"]);
                }
                // Get and delete name no field: nothing to follow.
                _ => assert_eq!(followed, None),
            }
        }
        let mut edited = docs[2].clone();
        edited["nodes"]["reply"]["status"] = json!(200);
        assert_eq!(follow(&edited, &old, &new, |_| IdType::Bigint), None);
    }
}
