//! Generated CRUD endpoints for a managed table: five ordinary flow documents (list, get,
//! create, update, delete) that a builder can edit like any other. Pure.

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
    input: Value,
    entry: &str,
    nodes: Value,
) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": method, "path": path},
        "input": input, "entry": entry, "nodes": nodes,
    })
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

/// The five CRUD flows of `def`, served under `path` (like `/todos`). `targets` gives the id
/// type of referenced tables.
pub fn crud(def: &TableDef, path: &str, target_id: impl Fn(&str) -> IdType) -> Vec<Value> {
    let t = def.name.as_str();
    let item = format!("{path}/{{id}}");
    let props: serde_json::Map<String, Value> = def
        .fields
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

    let list = envelope(
        format!("{t}_list"),
        "GET",
        path,
        json!({"query": {"type": "object", "additionalProperties": false, "properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "offset": {"type": "integer", "minimum": 0}}}}),
        "load",
        json!({
            "load": {"type": "db.query", "table": t, "as": "rows",
                     "limit": {"$rhai": "if \"limit\" in request.query { request.query.limit } else { 20 }"},
                     "offset": {"$rhai": "if \"offset\" in request.query { request.query.offset } else { 0 }"},
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"items": {"$rhai": "rows"}}}
        }),
    );
    let get = envelope(
        format!("{t}_get"),
        "GET",
        &item,
        json!({"params": id_schema(def)}),
        "load",
        json!({
            "load": {"type": "db.get", "table": t, "id": id, "as": "row", "next": {"found": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "row"}}
        }),
    );
    let values: serde_json::Map<String, Value> = def
        .fields
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
        json!({"params": id_schema(def)}),
        "delete",
        json!({
            "delete": {"type": "db.delete", "table": t, "id": id, "as": "row", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 204}
        }),
    );
    vec![list, get, create, update, delete]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn generated_flows_compile_against_their_table() {
        let def: TableDef = serde_json::from_value(json!({"id": "t_000000000001", "name": "books", "fields": [
            {"id": "f_000000000001", "name": "title", "type": "text", "required": true},
            {"id": "f_000000000002", "name": "pages", "type": "integer", "default": 100},
            {"id": "f_000000000003", "name": "tags", "type": "json", "default": {"a": [1, "x\"y"]}},
            {"id": "f_000000000004", "name": "kind", "type": "enum", "values": ["novel", "essay"]},
            {"id": "f_000000000005", "name": "added", "type": "timestamp", "default": "now()"}
        ]}))
        .expect("definition");
        let tables = BTreeMap::from([("books".to_string(), def.clone())]);
        let docs = crud(&def, "/books", |_| IdType::Bigint);
        assert_eq!(docs.len(), 5);
        for doc in &docs {
            if let Err(d) = crate::flow::compile(doc, Some(&tables)) {
                panic!("{} does not compile: {d:?}", doc["name"]);
            }
        }
    }
}
