//! JSON Schemas of what endpoints answer, derived from their flows where that is certain: rows
//! of managed tables read or written by database nodes, literal parts of `respond` bodies, and
//! the request body echoed back. Anything else is left open (`{}`) rather than guessed.

use crate::engine::Plan;
use crate::flow::CompiledOp;
use crate::flow::node::TableCatalog;
use crate::flow::node::{OutputShape, ROW_MARK};
use crate::tables::{FieldType, TableDef};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The component name of a managed table's row schema.
pub fn row_ref(table: &str) -> Value {
    crate::flow::node::row_ref(table)
}

/// A row of `def` as database nodes return it (`to_jsonb`): every readable column, `null` for
/// empty optional ones; password fields are never returned.
pub fn row_schema(def: &TableDef, tables: &dyn TableCatalog) -> Value {
    let mut props = Map::new();
    props.insert("id".into(), def.id_type.value_schema());
    for f in &def.fields {
        if f.ty == FieldType::Password {
            continue;
        }
        let target = f
            .table
            .as_ref()
            .and_then(|t| tables.table(t.as_str()))
            .map(|t| t.id_type);
        props.insert(f.name.to_string(), f.value_schema(target));
    }
    props.insert(
        "created_at".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    props.insert(
        "updated_at".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    let required: Vec<Value> = props.keys().cloned().map(Value::String).collect();
    let mut schema = json!({"type": "object", "properties": props, "required": required});
    if let Some(d) = &def.description {
        schema["description"] = Value::String(d.clone());
    }
    schema
}

/// An input schema as documented: every integer says `format: int64`, the range the server
/// enforces (larger integers are refused as input, see `engine::program`).
pub fn documented_input(mut schema: Value) -> Value {
    crate::flow::schema::for_each_subschema(&mut schema, &mut |s| {
        if crate::flow::schema::wants_integer(s)
            && s.get("format").is_none()
            && let Some(obj) = s.as_object_mut()
        {
            obj.insert("format".into(), Value::String("int64".into()));
        }
    });
    schema
}

/// Where a variable's value comes from.
enum Source<'p> {
    /// Fixed by the node type (`None`: not derivable).
    Fixed(Option<Value>),
    /// A `set` node's value as written: derived like a `respond` body.
    Set(&'p Value),
}

/// What the variables visible at a `respond` node hold, as far as the plan says for certain.
pub struct Vars<'p> {
    /// `as` name → every node that binds it; the name has a schema only when they all agree.
    bound: BTreeMap<&'p str, Vec<Source<'p>>>,
    /// Names being derived, so a `set` that (indirectly) reads itself stops.
    resolving: std::collections::BTreeSet<&'p str>,
    input: &'p crate::flow::plan::InputSchemas,
    tables: &'p dyn TableCatalog,
    /// Tables whose row schema is referenced, so the caller adds them to the components.
    pub used_tables: std::collections::BTreeSet<String>,
}

impl<'p> Vars<'p> {
    /// The variables of `plan`; `document` is the flow it was compiled from (for the values
    /// of `set` nodes and the schemas of `validate` nodes, which plans hold only compiled).
    pub fn new(plan: &'p Plan, document: &'p Value, tables: &'p dyn TableCatalog) -> Vars<'p> {
        let mut bound: BTreeMap<&str, Vec<Source<'p>>> = BTreeMap::new();
        for node in &plan.nodes {
            let Some(name) = node.bind.as_deref() else {
                continue;
            };
            // Only top-level nodes are found under `/nodes`; a loop body's are left open.
            let raw = document.get("nodes").and_then(|n| n.get(&node.id));
            let source = match (node.op.output(), raw) {
                (OutputShape::ConfigValue(key), Some(raw)) => raw.get(key).map(Source::Set),
                (OutputShape::ConfigSchema(key), Some(raw)) => {
                    Some(Source::Fixed(raw.get(key).cloned()))
                }
                (OutputShape::Fixed(schema), _) => Some(Source::Fixed(schema)),
                _ => None,
            };
            bound
                .entry(name)
                .or_default()
                .push(source.unwrap_or(Source::Fixed(None)));
        }
        Vars {
            bound,
            resolving: Default::default(),
            input: &plan.input,
            tables,
            used_tables: Default::default(),
        }
    }

    /// The schema of a variable: the one every binding node agrees on.
    fn variable(&mut self, name: &str) -> Option<Value> {
        let (&key, _) = self.bound.get_key_value(name)?;
        if !self.resolving.insert(key) {
            return None;
        }
        let count = self.bound.get(key).map_or(0, Vec::len);
        let mut agreed: Option<Value> = None;
        let mut known = true;
        for i in 0..count {
            let schema = match self.bound.get(key).and_then(|s| s.get(i)) {
                Some(Source::Fixed(s)) => s.clone(),
                Some(Source::Set(raw)) => {
                    let raw: &'p Value = raw;
                    self.body(raw)
                }
                None => None,
            };
            match (schema, &agreed) {
                (Some(s), None) => agreed = Some(s),
                (Some(s), Some(a)) if &s == a => {}
                _ => {
                    known = false;
                    break;
                }
            }
        }
        self.resolving.remove(key);
        if !known {
            return None;
        }
        let mut s = agreed?;
        expand_rows(&mut s, self.tables);
        collect_refs(&s, &mut self.used_tables);
        Some(s)
    }

    /// The schema of an expression's value, when the expression is a bare name of a bound
    /// variable, `request.body`, or `request.body|params|query.<name>` of a declared property
    /// (validated against the endpoint's input schema before the flow runs).
    fn expression(&mut self, src: &str) -> Option<Value> {
        let src = src.trim();
        if let Some(rest) = src.strip_prefix("request.") {
            let (part, property) = rest.split_once('.').unwrap_or((rest, ""));
            let schema = match part {
                "body" => self.input.body.as_ref(),
                "params" => self.input.params.as_ref(),
                "query" => self.input.query.as_ref(),
                _ => None,
            }
            .map(|s| &s.schema)?;
            if property.is_empty() {
                // Path and query values are coerced one by one; only the body is whole.
                return (part == "body").then(|| schema.clone());
            }
            // Reading a missing property fails the run, so an answer that reads one has it.
            return schema.get("properties")?.get(property).cloned();
        }
        self.variable(src)
    }

    /// The schema of a `respond` body as written in the document: literal parts by their
    /// value, expressions by [`Vars::expression`]; `None` when nothing is known of the top.
    pub fn body(&mut self, v: &Value) -> Option<Value> {
        match v {
            Value::Object(m) if m.len() == 1 && m.contains_key("$rhai") => {
                self.expression(m.get("$rhai")?.as_str()?)
            }
            Value::Object(m) => {
                let mut props = Map::new();
                for (k, part) in m {
                    props.insert(k.clone(), self.body(part).unwrap_or_else(|| json!({})));
                }
                let required: Vec<Value> = m.keys().cloned().map(Value::String).collect();
                Some(json!({"type": "object", "properties": props, "required": required}))
            }
            Value::Array(items) => {
                let schemas: Vec<Value> = items
                    .iter()
                    .map(|i| self.body(i).unwrap_or_else(|| json!({})))
                    .collect();
                let mut s = json!({"type": "array"});
                if let Some(first) = schemas.first()
                    && schemas.iter().all(|x| x == first)
                {
                    s["items"] = first.clone();
                }
                Some(s)
            }
            Value::String(_) => Some(json!({"type": "string"})),
            Value::Bool(_) => Some(json!({"type": "boolean"})),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(json!({"type": "integer"})),
            Value::Number(_) => Some(json!({"type": "number"})),
            Value::Null => Some(json!({"type": "null"})),
        }
    }
}

/// Writes out every row description of `s` ([`crate::flow::node::ROW_MARK`]: a row read
/// with a column selection or included rows) as the full schema of that row: the selected
/// columns, each included reference as the referenced row or `null`, each one-to-many
/// include as an array of rows.
pub fn expand_rows(s: &mut Value, tables: &dyn TableCatalog) {
    match s {
        Value::Object(m) => {
            if let Some(table) = m.get(ROW_MARK).and_then(Value::as_str).map(str::to_string) {
                let mark = std::mem::take(m);
                *s = marked_row(&table, &mark, tables);
                return;
            }
            m.values_mut().for_each(|v| expand_rows(v, tables));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| expand_rows(v, tables)),
        _ => {}
    }
}

/// The schema of a row of `table` as described by `mark`.
fn marked_row(table: &str, mark: &Map<String, Value>, tables: &dyn TableCatalog) -> Value {
    let Some(def) = tables.table(table) else {
        return json!({"type": "object"});
    };
    let mut schema = row_schema(def, tables);
    if let Some(select) = mark.get("x-sluice-select").and_then(Value::as_array) {
        let keep: Vec<&str> = select.iter().filter_map(Value::as_str).collect();
        if let Some(props) = schema["properties"].as_object_mut() {
            props.retain(|k, _| keep.contains(&k.as_str()));
        }
        schema["required"] = json!(keep);
    }
    let include = mark.get("x-sluice-include").and_then(Value::as_object);
    for (key, inc) in include.into_iter().flatten() {
        let inc = inc.as_object().cloned().unwrap_or_default();
        let included = match inc.get(ROW_MARK).and_then(Value::as_str) {
            // Rows of another table that reference this one.
            Some(child) => json!({"type": "array", "items": marked_row(child, &inc, tables)}),
            // The row a reference field points at, or null.
            None => {
                let target = def
                    .field(key)
                    .and_then(|f| f.table.as_ref())
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                json!({"anyOf": [marked_row(&target, &inc, tables), {"type": "null"}]})
            }
        };
        schema["properties"][key] = included;
        if let Some(required) = schema["required"].as_array_mut()
            && !required.iter().any(|r| r == key)
        {
            required.push(json!(key));
        }
    }
    schema.as_object_mut().map(|o| o.remove("description"));
    schema
}

/// Table names of every `#/components/schemas/<table>` reference inside `s`.
fn collect_refs(s: &Value, out: &mut std::collections::BTreeSet<String>) {
    match s {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref")
                && let Some(t) = r.strip_prefix("#/components/schemas/")
            {
                out.insert(t.to_string());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
