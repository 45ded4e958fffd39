//! The JSON Schemas of the flow format, embedded from `flows/schema/` (the single source the
//! server, the CLI and the editor validate with) and compiled once.

use super::diag::Diagnostic;
use serde_json::Value;
use std::sync::LazyLock;

/// The envelope schema text.
pub const FLOW_SCHEMA: &str = include_str!("../../flows/schema/flow.v1.schema.json");

/// A node type's JSON Schema (version 1): its text, embedded by the node's module from
/// `flows/schema/nodes/`, and its validator, compiled on first use.
pub struct NodeSchema {
    text: &'static str,
    compiled: std::sync::OnceLock<jsonschema::Validator>,
}

impl NodeSchema {
    pub const fn new(text: &'static str) -> NodeSchema {
        NodeSchema {
            text,
            compiled: std::sync::OnceLock::new(),
        }
    }

    /// The schema document, as served to the editor.
    pub fn document(&self) -> Value {
        serde_json::from_str(self.text).unwrap_or(Value::Null)
    }

    fn validator(&self) -> &jsonschema::Validator {
        self.compiled.get_or_init(|| compile(self.text))
    }

    /// Every violation of the schema by `node`; `prefix` is the node's pointer.
    pub fn check(&self, node: &Value, prefix: &str) -> Vec<Diagnostic> {
        violations(self.validator(), node, prefix)
    }
}

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
/// Every envelope violation, as `flow.schema` diagnostics.
pub fn check_envelope(doc: &Value) -> Vec<Diagnostic> {
    violations(&FLOW, doc, "")
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
    fn the_envelope_schema_compiles() {
        let _ = &*super::FLOW;
    }
}
