//! The JSON Schemas of the flow format, embedded from `flows/schema/` (the single source the
//! server, the CLI and the editor validate with) and compiled once.

use super::diag::Diagnostic;
use serde_json::Value;
use std::sync::LazyLock;

/// The envelope schema text.
pub const FLOW_SCHEMA: &str = include_str!("../../flows/schema/flow.v1.schema.json");

/// Node schemas by type name (version 1).
pub const NODE_SCHEMAS: &[(&str, &str)] = &[
    (
        "validate",
        include_str!("../../flows/schema/nodes/validate.v1.schema.json"),
    ),
    (
        "db.get",
        include_str!("../../flows/schema/nodes/db.get.v1.schema.json"),
    ),
    (
        "db.query",
        include_str!("../../flows/schema/nodes/db.query.v1.schema.json"),
    ),
    (
        "db.insert",
        include_str!("../../flows/schema/nodes/db.insert.v1.schema.json"),
    ),
    (
        "db.update",
        include_str!("../../flows/schema/nodes/db.update.v1.schema.json"),
    ),
    (
        "db.upsert",
        include_str!("../../flows/schema/nodes/db.upsert.v1.schema.json"),
    ),
    (
        "db.delete",
        include_str!("../../flows/schema/nodes/db.delete.v1.schema.json"),
    ),
    (
        "db.sql",
        include_str!("../../flows/schema/nodes/db.sql.v1.schema.json"),
    ),
    (
        "script",
        include_str!("../../flows/schema/nodes/script.v1.schema.json"),
    ),
    (
        "set",
        include_str!("../../flows/schema/nodes/set.v1.schema.json"),
    ),
    (
        "switch",
        include_str!("../../flows/schema/nodes/switch.v1.schema.json"),
    ),
    (
        "for_each",
        include_str!("../../flows/schema/nodes/for_each.v1.schema.json"),
    ),
    (
        "collect",
        include_str!("../../flows/schema/nodes/collect.v1.schema.json"),
    ),
    (
        "call",
        include_str!("../../flows/schema/nodes/call.v1.schema.json"),
    ),
    (
        "if",
        include_str!("../../flows/schema/nodes/if.v1.schema.json"),
    ),
    (
        "http.request",
        include_str!("../../flows/schema/nodes/http.request.v1.schema.json"),
    ),
    (
        "template",
        include_str!("../../flows/schema/nodes/template.v1.schema.json"),
    ),
    (
        "auth.hash_password",
        include_str!("../../flows/schema/nodes/auth.hash_password.v1.schema.json"),
    ),
    (
        "auth.verify_password",
        include_str!("../../flows/schema/nodes/auth.verify_password.v1.schema.json"),
    ),
    (
        "auth.issue_token",
        include_str!("../../flows/schema/nodes/auth.issue_token.v1.schema.json"),
    ),
    (
        "respond",
        include_str!("../../flows/schema/nodes/respond.v1.schema.json"),
    ),
    (
        "fail",
        include_str!("../../flows/schema/nodes/fail.v1.schema.json"),
    ),
];

/// The validator of a schema a builder wrote (endpoint inputs, `validate` nodes): `format` is
/// asserted (`date-time`, `date`, `time`, `email`, `uuid`, `uri`, `ipv4` ... as jsonschema
/// knows them; unknown formats are ignored), not only an annotation.
pub fn user_validator(
    schema: &Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
}

/// Whether a schema's `type` allows integers but not other numbers.
pub fn wants_integer(schema: &Value) -> bool {
    let has = |t: &str| match schema.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|x| x == t),
        _ => false,
    };
    has("integer") && !has("number")
}

/// Visits `schema` and every subschema an instance's value at a known place is checked
/// against: `properties`, `additionalProperties`, `items`, `prefixItems`, and the branches of
/// `allOf`/`anyOf`/`oneOf`.
pub fn for_each_subschema(schema: &mut Value, f: &mut impl FnMut(&mut Value)) {
    f(schema);
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    for (key, sub) in obj.iter_mut() {
        match (key.as_str(), sub) {
            ("properties", Value::Object(props)) => {
                props.values_mut().for_each(|s| for_each_subschema(s, f))
            }
            ("additionalProperties" | "items", s @ Value::Object(_)) => for_each_subschema(s, f),
            ("prefixItems" | "allOf" | "anyOf" | "oneOf", Value::Array(list)) => {
                list.iter_mut().for_each(|s| for_each_subschema(s, f))
            }
            _ => {}
        }
    }
}

fn compile(text: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(text).expect("embedded schema is JSON");
    jsonschema::validator_for(&schema).expect("embedded schema compiles")
}

static FLOW: LazyLock<jsonschema::Validator> = LazyLock::new(|| compile(FLOW_SCHEMA));
static NODES: LazyLock<Vec<(&'static str, jsonschema::Validator)>> =
    LazyLock::new(|| NODE_SCHEMAS.iter().map(|(n, t)| (*n, compile(t))).collect());

/// The schema document of a node type, as served to the editor.
pub fn node_schema(ty: &str) -> Option<Value> {
    NODE_SCHEMAS
        .iter()
        .find(|(n, _)| *n == ty)
        .and_then(|(_, t)| serde_json::from_str(t).ok())
}

/// Every envelope violation, as `flow.schema` diagnostics.
pub fn check_envelope(doc: &Value) -> Vec<Diagnostic> {
    violations(&FLOW, doc, "")
}

/// Every violation of a node's own schema; `prefix` is the node's pointer.
/// Returns `None` when the type has no schema (an unknown type).
pub fn check_node(ty: &str, node: &Value, prefix: &str) -> Option<Vec<Diagnostic>> {
    let validator = NODES.iter().find(|(n, _)| *n == ty).map(|(_, v)| v)?;
    Some(violations(validator, node, prefix))
}

fn violations(v: &jsonschema::Validator, doc: &Value, prefix: &str) -> Vec<Diagnostic> {
    v.iter_errors(doc)
        .map(|e| {
            Diagnostic::new(
                "flow.schema",
                format!("{prefix}{}", e.instance_path().as_str()),
                e.to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_embedded_schema_compiles() {
        let _ = &*super::FLOW;
        assert_eq!(super::NODES.len(), super::NODE_SCHEMAS.len());
    }
}
