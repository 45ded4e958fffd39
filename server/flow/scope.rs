//! The names visible at each node, described for the editor's completion: what each name is
//! (`request`, a row of a table, a list of rows, an object with known properties, ...) and its
//! known properties (the columns of a row's table, the declared properties of `request.body`).
//!
//! The graph compiler decides which names are visible (a name is visible when it is set on
//! every path to the node) and records, per node, where each visible name came from
//! ([`Origin`]). After every node has compiled, [`Collector::finish`] describes each name from
//! its origin: the `as` of a node from what the compiled node says it binds
//! ([`CompiledOp::output`]), a `for_each` item from the list it walks. Pure: no IO; the tables
//! come from the catalog the compile ran with. Only the editor reads the result; it never
//! changes what compiles.

use super::expr::BUILTINS;
use super::node::{CompiledOp, OutputShape, TableCatalog};
use super::plan::PlanNode;
use crate::tables::types::FieldType;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Where a visible name came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// An `error` port, or the flow's `on_error` handler.
    Error,
    /// The `as` of the node at this index of the plan's flat node list.
    Bound(usize),
    /// Given to a nested body by the node at this index (`for_each`'s item and `index`).
    Given(usize),
    /// Set by the flow's trigger: `input`, `event`, `job` (FLOW-FORMAT.md, "What a trigger
    /// flow sees").
    Trigger,
}

/// The names visible at a node (the built-ins aside), each with every place it may have been
/// set (several when paths that join set it in different nodes).
pub type Origins = BTreeMap<String, BTreeSet<Origin>>;

/// Keeps only the names set on both sides, with the origins of both.
pub fn join(a: Origins, mut b: Origins) -> Origins {
    a.into_iter()
        .filter_map(|(name, mut from)| {
            let other = b.remove(&name)?;
            from.extend(other);
            Some((name, from))
        })
        .collect()
}

/// A visible name (or one of its known properties) as the editor completes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeName {
    pub name: String,
    /// What the value is: `request`, `auth`, `env`, `error`, `item`, `index`, `row` (with
    /// `table`), `rows` (a list of rows of `table`), `list`, `object`, `column` (with `type`),
    /// a JSON type (`string`, `integer`, `number`, `boolean`), or `value` when not known.
    pub kind: &'static str,
    /// A column's field type (`text`, `integer`, ...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// The node whose `as` (or loop) sets the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Known properties, in a useful order (a row's columns in table order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<ScopeName>,
}

impl ScopeName {
    fn new(name: &str, kind: &'static str) -> Self {
        ScopeName {
            name: name.to_string(),
            kind,
            ty: None,
            node: None,
            table: None,
            fields: Vec::new(),
        }
    }

    fn with(mut self, fields: Vec<ScopeName>) -> Self {
        self.fields = fields;
        self
    }
}

/// The names visible at each node, keyed by the node's place: its id for a node of the flow,
/// `<for_each id>/body/nodes/<id>` for a node inside a `for_each` body (one more
/// `/body/nodes/<id>` per level). Built-ins first, then the other names by name.
pub type Scope = BTreeMap<String, Vec<ScopeName>>;

/// Gives `env` its names (the plain environment values, which the compiler does not know) at
/// every node.
pub fn with_env(scope: &mut Scope, names: &[String]) {
    let fields: Vec<ScopeName> = names.iter().map(|n| ScopeName::new(n, "string")).collect();
    for env in scope.values_mut().flatten().filter(|n| n.kind == "env") {
        env.fields = fields.clone();
    }
}

/// How deep nested properties of declared schemas are described.
const MAX_DEPTH: usize = 4;

/// One node as the scope analysis saw it.
struct Seen {
    key: String,
    id: String,
    raw: Value,
    origins: Origins,
}

/// Collects, while a flow compiles, every reachable node with the names visible there.
#[derive(Default)]
pub struct Collector {
    seen: BTreeMap<usize, Seen>,
}

impl Collector {
    /// Notes node `index` of the flat node list: its pointer (`/nodes/a/body/nodes/b`), id,
    /// config and the names visible at it.
    pub fn record(
        &mut self,
        index: usize,
        pointer: &str,
        id: &str,
        raw: &Value,
        origins: &Origins,
    ) {
        let key = pointer.strip_prefix("/nodes/").unwrap_or(pointer);
        self.seen.insert(
            index,
            Seen {
                key: key.to_string(),
                id: id.to_string(),
                raw: raw.clone(),
                origins: origins.clone(),
            },
        );
    }

    /// Describes every recorded node's names, with what the compiled nodes in `out` bind.
    pub fn finish<O: CompiledOp>(
        self,
        doc: &Value,
        out: &[Option<PlanNode<O>>],
        catalog: Option<&dyn TableCatalog>,
    ) -> Scope {
        let cx = Describe {
            seen: &self.seen,
            out,
            catalog,
        };
        let mut builtins = vec![request(doc, catalog), auth(), ScopeName::new("env", "env")];
        debug_assert!(builtins.iter().map(|b| b.name.as_str()).eq(BUILTINS));
        // A flow with a trigger has no request.
        if doc.get("trigger").is_some() {
            builtins.remove(0);
        }
        self.seen
            .values()
            .map(|s| {
                let mut names = builtins.to_vec();
                names.extend(
                    s.origins
                        .iter()
                        .map(|(name, from)| cx.name(name, from, MAX_DEPTH)),
                );
                (s.key.clone(), names)
            })
            .collect()
    }
}

struct Describe<'a, O: 'static> {
    seen: &'a BTreeMap<usize, Seen>,
    out: &'a [Option<PlanNode<O>>],
    catalog: Option<&'a dyn TableCatalog>,
}

impl<O: CompiledOp> Describe<'_, O> {
    /// A name set in one or more places: what they agree on, else only that it is a value.
    /// `budget` bounds the walk through loops over loop items.
    fn name(&self, name: &str, from: &BTreeSet<Origin>, budget: usize) -> ScopeName {
        let mut all = from.iter().map(|o| self.origin(name, o, budget));
        let Some(first) = all.next() else {
            return ScopeName::new(name, "value");
        };
        let mut agreed = first;
        for other in all {
            if other.kind != agreed.kind || other.table != agreed.table {
                return ScopeName::new(name, "value");
            }
            if other.node != agreed.node {
                agreed.node = None;
            }
            if other.fields != agreed.fields {
                agreed.fields.clear();
            }
        }
        agreed
    }

    fn origin(&self, name: &str, origin: &Origin, budget: usize) -> ScopeName {
        match origin {
            Origin::Error => error(name),
            Origin::Trigger => ScopeName::new(name, "value"),
            Origin::Bound(i) => {
                let raw = self.seen.get(i).map(|s| &s.raw);
                let shape = self
                    .out
                    .get(*i)
                    .and_then(Option::as_ref)
                    .map(|p| p.op.output());
                let mut n = match (shape, raw) {
                    (Some(OutputShape::Fixed(Some(schema))), _) => {
                        from_schema(name, &schema, self.catalog, MAX_DEPTH)
                    }
                    (Some(OutputShape::ConfigSchema(key)), Some(raw)) => {
                        from_schema(name, &raw[key], self.catalog, MAX_DEPTH)
                    }
                    (Some(OutputShape::ConfigValue(key)), Some(raw)) => {
                        from_literal(name, &raw[key], MAX_DEPTH)
                    }
                    // Not compiled (it has problems of its own) or nothing is known.
                    _ => ScopeName::new(name, "value"),
                };
                n.node = self.seen.get(i).map(|s| s.id.clone());
                n
            }
            Origin::Given(i) if name == "index" => {
                let mut n = ScopeName::new(name, "index");
                n.ty = Some("integer".into());
                n.node = self.seen.get(i).map(|s| s.id.clone());
                n
            }
            Origin::Given(i) => {
                let mut n = self.item(name, *i, budget);
                n.node = self.seen.get(i).map(|s| s.id.clone());
                n
            }
        }
    }

    /// A loop's item: a row when the loop walks a list of rows named by a bare name
    /// (`"items": {"$rhai": "todos"}`), else only an item.
    fn item(&self, name: &str, looping: usize, budget: usize) -> ScopeName {
        let plain = ScopeName::new(name, "item");
        let Some(seen) = self.seen.get(&looping) else {
            return plain;
        };
        let Some(list) = seen.raw["items"]["$rhai"].as_str().map(str::trim) else {
            return plain;
        };
        let Some(from) = seen.origins.get(list).filter(|_| budget > 0) else {
            return plain;
        };
        let walked = self.name(list, from, budget - 1);
        match (walked.kind, walked.table) {
            ("rows", Some(table)) => row(name, &table, self.catalog),
            _ => plain,
        }
    }
}

/// `request`, with the properties its input schemas declare; without a `params` schema, the
/// parameters of the endpoint's path (text).
fn request(doc: &Value, catalog: Option<&dyn TableCatalog>) -> ScopeName {
    let part = |name: &str| match doc.pointer(&format!("/input/{name}")) {
        Some(schema) => from_schema(name, schema, catalog, MAX_DEPTH),
        None => ScopeName::new(name, "object"),
    };
    let mut params = part("params");
    if params.fields.is_empty() {
        let path = doc.pointer("/endpoint/path").and_then(Value::as_str);
        params.fields = path
            .into_iter()
            .flat_map(|p| p.split('/'))
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| ScopeName::new(name, "string"))
            .collect();
    }
    ScopeName::new("request", "request").with(vec![
        params,
        part("query"),
        part("body"),
        ScopeName::new("headers", "object"),
    ])
}

fn auth() -> ScopeName {
    ScopeName::new("auth", "auth").with(vec![
        ScopeName::new("id", "string"),
        ScopeName::new("claims", "object"),
    ])
}

fn error(name: &str) -> ScopeName {
    ScopeName::new(name, "error").with(vec![
        ScopeName::new("code", "string"),
        ScopeName::new("message", "string"),
        ScopeName::new("status", "integer"),
        ScopeName::new("node", "string"),
        // A conflict's: the rule broken and `{pointer, message, rule}` per field.
        ScopeName::new("rule", "string"),
        ScopeName::new("details", "array"),
    ])
}

/// A row of `table`: its columns, system columns included, passwords left out (reads never
/// return them).
fn row(name: &str, table: &str, catalog: Option<&dyn TableCatalog>) -> ScopeName {
    let mut n = ScopeName::new(name, "row");
    n.table = Some(table.to_string());
    let Some(def) = catalog.and_then(|c| c.table(table)) else {
        return n;
    };
    let column = |name: &str, ty: FieldType| {
        let mut c = ScopeName::new(name, "column");
        c.ty = serde_json::to_value(ty)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        c
    };
    n.fields.push(column("id", def.id_type.field_type()));
    n.fields.extend(
        def.fields
            .iter()
            .filter(|f| f.ty != FieldType::Password)
            .map(|f| column(f.name.as_str(), f.ty)),
    );
    n.fields.push(column("created_at", FieldType::Timestamp));
    n.fields.push(column("updated_at", FieldType::Timestamp));
    n
}

/// What a JSON Schema says of a value: a managed table's row (`$ref` to
/// `#/components/schemas/<table>`, as nodes describe their rows), a list, an object with
/// properties, or a JSON type.
fn from_schema(
    name: &str,
    schema: &Value,
    catalog: Option<&dyn TableCatalog>,
    depth: usize,
) -> ScopeName {
    // A row with included rows (`nodes::include`) names its table like a reference does.
    if let Some(table) = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .or_else(|| schema[crate::flow::node::ROW_MARK].as_str())
    {
        return row(name, table, catalog);
    }
    let ty = match &schema["type"] {
        Value::Array(types) => types.iter().find_map(Value::as_str).unwrap_or(""),
        t => t.as_str().unwrap_or(""),
    };
    let props = schema["properties"].as_object();
    match ty {
        "array" => {
            let item = from_schema("", &schema["items"], catalog, 0);
            let mut n = ScopeName::new(name, "list");
            if item.kind == "row" {
                n.kind = "rows";
                n.table = item.table;
            }
            n
        }
        _ if ty == "object" || props.is_some() => {
            let fields = match props {
                Some(p) if depth > 0 => p
                    .iter()
                    .map(|(k, s)| from_schema(k, s, catalog, depth - 1))
                    .collect(),
                _ => Vec::new(),
            };
            ScopeName::new(name, "object").with(fields)
        }
        _ => ScopeName::new(name, json_kind(ty)),
    }
}

/// What a written value is (`set`'s `value`): an object's keys are known, an expression's
/// result is not.
fn from_literal(name: &str, v: &Value, depth: usize) -> ScopeName {
    match v {
        Value::Object(map) if map.contains_key("$rhai") => ScopeName::new(name, "value"),
        Value::Object(map) => {
            let fields = if depth > 0 {
                map.iter()
                    .map(|(k, v)| from_literal(k, v, depth - 1))
                    .collect()
            } else {
                Vec::new()
            };
            ScopeName::new(name, "object").with(fields)
        }
        Value::Array(_) => ScopeName::new(name, "list"),
        Value::String(_) => ScopeName::new(name, "string"),
        Value::Number(n) if n.is_i64() || n.is_u64() => ScopeName::new(name, "integer"),
        Value::Number(_) => ScopeName::new(name, "number"),
        Value::Bool(_) => ScopeName::new(name, "boolean"),
        Value::Null => ScopeName::new(name, "value"),
    }
}

fn json_kind(ty: &str) -> &'static str {
    match ty {
        "string" => "string",
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        _ => "value",
    }
}
