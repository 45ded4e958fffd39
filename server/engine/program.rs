//! A [`Plan`] made ready to run: SQL text built once per database node with every name quoted
//! and every value a bound parameter, and the input schemas compiled into validators.

use super::error::InputProblem;
use super::op::Plan;
use super::sql::{BuildError, Prepared};
use crate::flow::CompiledOp;
use crate::flow::plan::InputSchema;
use crate::flow::schema::wants_integer;
use crate::tables::def::Tables;
use serde_json::{Map, Value};

/// A compiled flow plus everything prepared for its requests.
pub struct Program {
    pub plan: Plan,
    /// SQL of each node, by node index; `None` for nodes that do not touch the database.
    pub sql: Vec<Option<Prepared>>,
    /// [`Plan::needs_transaction`], computed once.
    pub needs_transaction: bool,
    /// No node writes, none runs another flow (a `call`'s function may write) and the flow
    /// does not ask for the primary (`settings.read_from`), so a run may read from a replica
    /// ([`crate::engine::Runtime::lane_for`]).
    pub reads_only: bool,
    params: Option<PartCheck>,
    query: Option<PartCheck>,
    body: Option<std::sync::Arc<jsonschema::Validator>>,
    /// The body schema, to find the integers it declares.
    body_schema: Option<Value>,
    /// Names of the password fields of the tables this flow writes, redacted from captured
    /// requests (`settings.capture`, `http::capture`).
    pub password_fields: Vec<String>,
}

/// Validator of an object of strings (path or query) plus the types to coerce them to.
struct PartCheck {
    validator: std::sync::Arc<jsonschema::Validator>,
    types: Map<String, Value>,
    /// `items.type` of properties declared as arrays (repeated query keys).
    item_types: Map<String, Value>,
}

fn wants(ty: &Value, t: &str) -> bool {
    ty.as_str() == Some(t) || ty.as_array().is_some_and(|a| a.iter().any(|x| x == t))
}

impl Program {
    pub fn build(plan: Plan, tables: &Tables) -> Result<Program, BuildError> {
        let ruled = plan.rules_apply();
        let sql = plan
            .nodes
            .iter()
            .map(|n| n.op.prepare_ruled(tables, ruled && n.bypass.is_none()))
            .collect::<Result<Vec<_>, _>>()?;
        let part = |s: &Option<InputSchema>| {
            let InputSchema {
                schema: s,
                validator,
            } = s.as_ref()?;
            let validator = validator.clone();
            let declared = |key: &str| -> Map<String, Value> {
                s.get("properties")
                    .and_then(Value::as_object)
                    .map(|p| {
                        p.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.pointer(key)?.clone())))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            Some(PartCheck {
                validator,
                types: declared("/type"),
                item_types: declared("/items/type"),
            })
        };
        let password_fields = plan
            .nodes
            .iter()
            .filter_map(|n| n.op.table_write())
            .filter_map(|w| tables.get(w.table))
            .flat_map(|t| t.password_fields())
            .map(str::to_string)
            .collect();
        Ok(Program {
            password_fields,
            needs_transaction: plan.needs_transaction() || writes_json(&plan, tables),
            reads_only: !plan.read_from_primary
                && !plan.writes()
                && !plan.nodes.iter().any(|n| n.op.runs_nested()),
            params: part(&plan.input.params),
            query: part(&plan.input.query),
            body: plan.input.body.as_ref().map(|b| b.validator.clone()),
            body_schema: plan.input.body.as_ref().map(|b| b.schema.clone()),
            sql,
            plan,
        })
    }

    /// Whether the query parameter `key` is declared as an array, so that its repeated
    /// occurrences (`?tag=a&tag=b`) are collected into a list instead of the last one winning.
    pub fn query_is_list(&self, key: &str) -> bool {
        self.query
            .as_ref()
            .and_then(|q| q.types.get(key))
            .is_some_and(|ty| wants(ty, "array"))
    }

    /// Coerces path and query strings to their declared types, then validates every part.
    pub fn check_input(
        &self,
        params: &mut Map<String, Value>,
        query: &mut Map<String, Value>,
        body: &mut Value,
    ) -> Result<(), Vec<InputProblem>> {
        let mut problems = Vec::new();
        if let Some(schema) = &self.body_schema {
            integers(schema, body, &mut String::from("/body"), &mut problems);
        }
        for (name, part, check) in [
            ("params", params, &self.params),
            ("query", query, &self.query),
        ] {
            let Some(check) = check else { continue };
            for (k, v) in part.iter_mut() {
                let Some(ty) = check.types.get(k) else {
                    continue;
                };
                if wants(ty, "array") {
                    // One occurrence of a list parameter is a list of one.
                    if let Value::String(s) = &*v {
                        *v = Value::Array(vec![Value::String(s.clone())]);
                    }
                    if let (Value::Array(items), Some(item_ty)) = (&mut *v, check.item_types.get(k))
                    {
                        for item in items.iter_mut() {
                            if let Value::String(s) = &*item {
                                *item = coerce(s, item_ty);
                            }
                        }
                    }
                } else if let Value::String(s) = &*v {
                    *v = coerce(s, ty);
                }
            }
            let as_value = Value::Object(std::mem::take(part));
            problems.extend(
                check
                    .validator
                    .iter_errors(&as_value)
                    .map(|e| problem(name, &e)),
            );
            if let Value::Object(m) = as_value {
                *part = m;
            }
        }
        if let Some(v) = &self.body {
            problems.extend(v.iter_errors(body).map(|e| problem("body", &e)));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Where the body schema declares an integer, a JSON number written with a fraction of zero or
/// an exponent (`3.0`, `1e3`) becomes that integer, so the flow and Postgres see `3`, as JSON
/// Schema counts it an integer. Integers must fit in 64 bits (OpenAPI says `format: int64`):
/// a larger one is an input problem here rather than a refusal by the database later.
fn integers(schema: &Value, v: &mut Value, at: &mut String, out: &mut Vec<InputProblem>) {
    match v {
        Value::Number(n) if wants_integer(schema) && !n.is_i64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // i64::MAX as f64 rounds up to 2^63, itself out of range.
            if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
                *v = Value::from(f as i64);
            } else if f.fract() == 0.0 || n.is_u64() {
                out.push(InputProblem {
                    pointer: at.clone(),
                    message: format!(
                        "{n} is outside the 64-bit integer range ({} to {})",
                        i64::MIN,
                        i64::MAX
                    ),
                });
            }
        }
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|s| s.is_object());
            for (k, item) in m.iter_mut() {
                let Some(sub) = props.and_then(|p| p.get(k)).or(extra) else {
                    continue;
                };
                let len = at.len();
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                integers(sub, item, at, out);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            let Some(sub) = schema.get("items").filter(|s| s.is_object()) else {
                return;
            };
            for (i, item) in items.iter_mut().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                integers(sub, item, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

fn problem(part: &str, e: &jsonschema::ValidationError<'_>) -> InputProblem {
    InputProblem {
        pointer: format!("/{part}{}", e.instance_path().as_str()),
        message: e.to_string(),
    }
}

/// Whether a write node's table has a json field. Such a row may hold JSON nested deeper than
/// the engine parses, and a write that runs without a transaction commits before its row is
/// parsed: so it runs in one, and a row that cannot be read rolls its write back instead of
/// leaving a stored write behind a 500.
fn writes_json(plan: &Plan, tables: &Tables) -> bool {
    plan.nodes.iter().any(|n| {
        n.op.table_write()
            .and_then(|w| tables.get(w.table))
            .is_some_and(|def| {
                def.fields
                    .iter()
                    .any(|f| f.ty == crate::tables::FieldType::Json)
            })
    })
}

/// Turns wire text into the declared JSON type when it parses; otherwise leaves the text for
/// the validator to report.
fn coerce(s: &str, ty: &Value) -> Value {
    let wants = |t: &str| wants(ty, t);
    if wants("integer")
        && let Ok(i) = s.parse::<i64>()
    {
        return Value::from(i);
    }
    // `3.0` is an integer to JSON Schema, as in a body (see [`integers`]).
    if wants("integer")
        && !wants("number")
        && let Ok(f) = s.parse::<f64>()
        && f.fract() == 0.0
        && f >= i64::MIN as f64
        && f < i64::MAX as f64
    {
        return Value::from(f as i64);
    }
    if wants("number") {
        // A float, as always (`1` is `1.0` for Rhai), unless the float would lose digits: then
        // the digits as sent, so a decimal bound to SQL stays exact.
        let float = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64);
        match (float, s.parse::<serde_json::Number>()) {
            (Some(f), Ok(exact))
                if !crate::tables::decimal::same_number(&f.to_string(), &exact.to_string()) =>
            {
                return Value::Number(exact);
            }
            (Some(f), _) => return Value::Number(f),
            (None, Ok(exact)) => return Value::Number(exact),
            (None, Err(_)) => {}
        }
    }
    if wants("boolean") && (s == "true" || s == "false") {
        return Value::Bool(s == "true");
    }
    Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_and_query_text_is_coerced_to_declared_types() {
        assert_eq!(coerce("42", &json!("integer")), json!(42));
        assert_eq!(coerce("4.5", &json!(["number", "null"])), json!(4.5));
        assert_eq!(coerce("true", &json!("boolean")), json!(true));
        assert_eq!(coerce("abc", &json!("integer")), json!("abc"));
        assert_eq!(coerce("42", &json!("string")), json!("42"));
    }
}
