//! What the compiler knows of node types, without knowing any one of them: a node type's
//! descriptor ([`NodeType`]: name, ports, schema, compile step, rename handling), the trait a
//! compiled node implements for the graph compiler and plan analysis ([`CompiledOp`]), and the
//! helpers a compile step uses ([`NodeCx`]). The node types themselves live in `crate::nodes`;
//! this module must not depend on them, nor on the engine.

use super::diag::{Diagnostic, seg};
use super::expr::{ExprCompiler, Template};
use super::plan::{ContentType, PlanNode};
use super::schema::NodeSchema;
use crate::tables::{Ident, TableDef};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

/// An output port of a node type.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    pub name: &'static str,
    /// A required port must be wired; an optional one falls back to the standard error response.
    pub required: bool,
    /// Whether the node's `as` variable is set when this port fires.
    pub binds: bool,
    /// Whether the variable `error` is set when this port fires (the failure that took it).
    pub sets_error: bool,
}

impl Port {
    /// A required port that sets the node's `as` variable (`ok`, `found`, `valid`, ...).
    pub const fn success(name: &'static str) -> Port {
        Port {
            name,
            required: true,
            binds: true,
            sets_error: false,
        }
    }

    /// An optional port that sets nothing (`conflict`, `not_found`, `invalid`, ...).
    pub const fn optional(name: &'static str) -> Port {
        Port {
            name,
            required: false,
            binds: false,
            sets_error: false,
        }
    }

    /// A required port that sets nothing (`then`, `else`, `default`).
    pub const fn branch(name: &'static str) -> Port {
        Port {
            name,
            required: true,
            binds: false,
            sets_error: false,
        }
    }

    /// An optional port taken by a failure the node expects, which the branch sees in `error`
    /// as an error port's branch does (`conflict`).
    pub const fn failure(name: &'static str) -> Port {
        Port {
            name,
            required: false,
            binds: false,
            sets_error: true,
        }
    }
}

/// Where in a flow a node type may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Anywhere,
    /// Only at the top level of a flow; the message says why.
    TopOnly(&'static str),
    /// Only inside a `for_each` body; the message says why.
    BodyOnly(&'static str),
}

/// Field renames of a table, `(old name, new name)`, as a node type's rename step sees them.
pub type Renames<'r> = [(&'r str, &'r str)];

/// A node type: its name, ports, schema, and compile step; `O` is what compiling one node
/// gives (the engine's runnable op).
pub struct NodeType<O: 'static> {
    pub name: &'static str,
    pub ports: &'static [Port],
    /// The node's JSON Schema (from `flows/schema/nodes/`).
    pub schema: NodeSchema,
    pub compile: fn(&Value, &mut NodeCx<'_, O>) -> Option<O>,
    pub options: NodeOptions,
}

/// What sets a node type apart beyond its ports and compile step; most types take
/// [`NodeOptions::DEFAULT`] and change a field or two.
#[derive(Clone, Copy)]
pub struct NodeOptions {
    /// Whether the node may have an `as` name.
    pub binds: bool,
    /// Extra required ports named by the node's config (for `switch`).
    pub dynamic_ports: Option<fn(&Value) -> Vec<String>>,
    /// The config key holding a nested graph whose nodes are checked node by node
    /// (`for_each`'s `body`), so the node's own schema check skips them.
    pub nested: Option<&'static str>,
    pub placement: Placement,
    /// Follows a table's field renames in a node that reads or writes that table (called only
    /// for nodes whose `table` is the renamed one, after their `table` was renamed); `None`
    /// for node types that name no table.
    pub rename: Option<fn(&mut Value, &Renames<'_>)>,
    /// For a node that names a table: whether its `as` holds rows of that table, so that
    /// `<as>.<field>` in an expression reads a field (table changes follow and check such
    /// reads). `db.aggregate`'s holds values under names of its own.
    pub binds_rows: bool,
}

impl NodeOptions {
    /// A node that may bind `as`, stands anywhere, has fixed ports and names no table.
    pub const DEFAULT: NodeOptions = NodeOptions {
        binds: true,
        dynamic_ports: None,
        nested: None,
        placement: Placement::Anywhere,
        rename: None,
        binds_rows: true,
    };

    /// [`NodeOptions::DEFAULT`] without an `as` name.
    pub const UNBOUND: NodeOptions = NodeOptions {
        binds: false,
        ..NodeOptions::DEFAULT
    };
}

/// Every node type that continues the flow also has this optional port: it fires when the node
/// fails, with the failure in the variable `error` (`code`, `message`, `status`, `node`).
/// Unwired, a failure goes to the flow's `on_error` node, else to the standard error response.
pub const ERROR_PORT: Port = Port::failure("error");

impl<O: 'static> NodeType<O> {
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports
            .iter()
            .find(|p| p.name == name)
            .or_else(|| (name == ERROR_PORT.name && !self.is_terminal()).then_some(&ERROR_PORT))
    }

    /// `respond` and `fail` end the flow.
    pub fn is_terminal(&self) -> bool {
        self.ports.is_empty()
    }
}

/// The node types a compiler run knows, in palette order.
pub type Registry<O> = [&'static NodeType<O>];

/// An answer an endpoint may give because of one node, for its OpenAPI document.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFact {
    /// A `respond` node: its status, how its body is sent and the headers it sets; the body's
    /// schema is derived from the document's `body`.
    Respond {
        status: u16,
        content_type: ContentType,
        headers: Vec<String>,
    },
    /// A node that ends the flow with an error of its own (`fail`).
    Fail { status: u16, code: String },
    /// The standard error of an unwired optional port.
    Error { status: u16, code: &'static str },
}

/// What is known of the value a node binds to its `as` name, for the OpenAPI document.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputShape {
    /// Fixed by the node type (`None`: not derivable).
    Fixed(Option<Value>),
    /// The JSON Schema written under this config key (`validate`'s `schema`).
    ConfigSchema(&'static str),
    /// The value written under this config key, derived like a `respond` body (`set`).
    ConfigValue(&'static str),
}

/// The key of an output schema that stands for a row of the named table read with a column
/// selection or included rows: `{"x-sluice-row": "books", "x-sluice-select": [...],
/// "x-sluice-include": {"author": {...}, "reviews": {"x-sluice-row": "reviews", ...}}}`. An
/// include without its own `x-sluice-row` is the row its reference field points at. The
/// OpenAPI document writes it out in full from the table definitions.
pub const ROW_MARK: &str = "x-sluice-row";

/// The OpenAPI reference to a managed table's row schema.
pub fn row_ref(table: &str) -> Value {
    serde_json::json!({"$ref": format!("#/components/schemas/{table}")})
}

/// A write of rows of one table by one statement (`db.insert`, `db.update`, `db.delete`,
/// `db.upsert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableWrite<'a> {
    pub table: &'a str,
    /// The target of the success port.
    pub success: usize,
}

/// A compiled node, as the graph compiler and plan analysis see it (its type's name is in
/// [`PlanNode::type_name`], from the type's descriptor). Default methods describe a node that
/// touches nothing and answers nothing itself.
pub trait CompiledOp: std::fmt::Debug + Send + Sync + 'static {
    /// The ports this node can fire and their targets (fixed ports only; switch cases are
    /// listed as `case`).
    fn targets(&self) -> Vec<(&'static str, usize)>;

    /// Whether the node may write, so its flow runs in a transaction.
    fn writes(&self) -> bool {
        self.table_write().is_some()
    }

    /// For a node that writes rows of one table with exactly one statement: the table, and
    /// the target of its success port (see [`super::Plan::needs_transaction`]).
    fn table_write(&self) -> Option<TableWrite<'_>> {
        None
    }

    /// Whether the node runs a database statement.
    fn touches_db(&self) -> bool {
        self.writes()
    }

    /// Whether the node runs other nodes or flows (`call`, `for_each`), which may write or
    /// repeat a write.
    fn runs_nested(&self) -> bool {
        false
    }

    /// Whether the node ends the run with a status below 400 and cannot fail: a `respond`
    /// whose body is literals and bare names.
    fn ends_cleanly(&self) -> bool {
        false
    }

    /// Whether the node is a `respond` (its answer commits a 4xx run's writes).
    fn is_respond(&self) -> bool {
        false
    }

    /// The answers the endpoint may give because of this node.
    fn responses(&self) -> Vec<ResponseFact> {
        Vec::new()
    }

    /// What the node binds to its `as` name.
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(None)
    }

    /// The entry of a nested graph the node runs (`for_each`'s body).
    fn body(&self) -> Option<usize> {
        None
    }

    /// Why the node cannot apply the access rules of a table it touches (docs/RULES.md), in a
    /// flow they apply to: such a node must say `rules.bypass`. `None`: it applies them, or
    /// touches no ruled table.
    fn unruled(&self, _catalog: &dyn TableCatalog) -> Option<String> {
        None
    }
}

/// `targets` for a node with one required and some optional ports.
pub fn ports_to(
    required: (&'static str, usize),
    optional: &[(&'static str, Option<usize>)],
) -> Vec<(&'static str, usize)> {
    std::iter::once(required)
        .chain(optional.iter().filter_map(|(p, t)| t.map(|t| (*p, t))))
        .collect()
}

/// The identifiers of a Rhai expression, outside string and character literals.
pub fn rhai_names(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'`' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            // A property after a dot is not a variable.
            if start == 0 || bytes[start - 1] != b'.' {
                out.push(&expr[start..i]);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Renames the keys of the object under `key` (`values`, `where`).
pub fn rename_keys(node: &mut Value, key: &str, fields: &[(&str, &str)]) {
    if let Some(map) = node.get_mut(key).and_then(Value::as_object_mut) {
        for (from, to) in fields {
            if let Some(v) = map.remove(*from) {
                map.insert(to.to_string(), v);
            }
        }
    }
}

/// Renames the names in the list under `key` (`select`, `include`, `on`).
pub fn rename_list(node: &mut Value, key: &str, fields: &[(&str, &str)]) {
    for name in node
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some((_, to)) = fields.iter().find(|(f, _)| name == *f) {
            *name = Value::String(to.to_string());
        }
    }
}

/// Renames the field name under `key` (`email_field`, `column`).
pub fn rename_name(node: &mut Value, key: &str, fields: &[(&str, &str)]) {
    for (from, to) in fields {
        if node.get(key).and_then(Value::as_str) == Some(*from) {
            node[key] = Value::String(to.to_string());
            return;
        }
    }
}

/// The managed tables (and published functions) a flow can refer to.
pub trait TableCatalog {
    fn table(&self, name: &str) -> Option<&TableDef>;

    /// Whether a published function flow has this name; `None` when not known (offline).
    fn function_exists(&self, _name: &str) -> Option<bool> {
        None
    }

    /// Whether a published flow with a `job` trigger has this name; `None` when not known.
    fn job_flow_exists(&self, _name: &str) -> Option<bool> {
        None
    }
}

/// Tables plus the names of published function flows: what a save or publish checks against.
pub struct Catalog {
    pub tables: crate::tables::def::Tables,
    pub functions: std::collections::BTreeSet<String>,
    /// Published flows with a `job` trigger (`job.enqueue`'s targets).
    pub jobs: std::collections::BTreeSet<String>,
}

impl TableCatalog for Catalog {
    fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.get(name)
    }

    fn function_exists(&self, name: &str) -> Option<bool> {
        Some(self.functions.contains(name))
    }

    fn job_flow_exists(&self, name: &str) -> Option<bool> {
        Some(self.jobs.contains(name))
    }
}

impl TableCatalog for BTreeMap<String, TableDef> {
    fn table(&self, name: &str) -> Option<&TableDef> {
        self.get(name)
    }
}

/// What a node's compile step may use: its wiring, an expression compiler with the names in
/// scope, and the catalog (absent when validating offline).
pub struct NodeCx<'a, O: 'static> {
    pub id: &'a str,
    /// The node's index in the plan's flat node list.
    pub index: usize,
    pub pointer: String,
    pub expr: ExprCompiler<'a>,
    pub catalog: Option<&'a dyn TableCatalog>,
    /// Port name -> index of the target in the plan's flat node list.
    pub ports: BTreeMap<String, usize>,
    /// The names visible to this node (for nested bodies).
    pub names: std::collections::BTreeSet<String>,
    /// Where each of `names` was set (for the editor's completion in nested bodies).
    pub origins: super::scope::Origins,
    /// The node type of each node of this node's graph, by its index in the plan's flat node
    /// list (what set a name, with `origins`).
    pub binders: BTreeMap<usize, &'static str>,
    /// How deep in `for_each` bodies this node sits.
    pub depth: usize,
    /// The plan's flat node list, for nested bodies to add their nodes to.
    pub out: &'a mut Vec<Option<PlanNode<O>>>,
    /// Notes the names visible at each node, when the caller asked for them.
    pub seen: Option<&'a mut super::scope::Collector>,
    /// The node types known to this compiler run (for nested bodies).
    pub registry: &'a Registry<O>,
    /// Problems found in nested bodies.
    pub body_diags: Vec<Diagnostic>,
    /// Whether tables' access rules apply to the flow (`Plan::rules_apply`).
    pub rules: bool,
}

impl<O: CompiledOp> NodeCx<'_, O> {
    /// Compiles a nested graph (a `for_each` body) found under `field`, one level deeper, with
    /// the names this node sees visible at its entry plus the names it `gives` its body (the
    /// loop's item and `index`, which shadow outer names of the same name); returns its
    /// entry's index.
    pub fn compile_body(&mut self, body: &Value, field: &str, gives: &[&str]) -> Option<usize> {
        let pointer = format!("{}/{field}", self.pointer);
        let mut diags = Vec::new();
        let mut names = self.origins.clone();
        for name in gives {
            let from = std::collections::BTreeSet::from([super::scope::Origin::Given(self.index)]);
            names.insert(name.to_string(), from);
        }
        let entry = super::compile::compile_body(
            body,
            &pointer,
            names,
            self.depth + 1,
            self.rules,
            self.catalog,
            self.registry,
            self.out,
            &mut diags,
            self.seen.as_deref_mut(),
        );
        self.body_diags.extend(diags);
        entry
    }

    /// Whether a Rhai expression reads request data: it names `request`, or a variable that a
    /// `validate` node of this graph set (validated request data, as a rule). A heuristic for
    /// warnings: names are read from the text, outside string literals.
    pub fn reads_request(&self, expr: &str) -> bool {
        rhai_names(expr).iter().any(|name| {
            *name == "request"
                || self.origins.get(*name).is_some_and(|from| {
                    from.iter().any(|o| match o {
                        super::scope::Origin::Bound(i) => self.binders.get(i) == Some(&"validate"),
                        _ => false,
                    })
                })
        })
    }

    /// Strictly decodes the node's config (schema-checked already, so failures are rare).
    pub fn config<T: DeserializeOwned>(&mut self, node: &Value) -> Option<T> {
        let mut cfg = node.clone();
        if let Some(obj) = cfg.as_object_mut() {
            for k in ["type", "v", "as", "description", "next", "rules"] {
                obj.remove(k);
            }
        }
        match serde_json::from_value(cfg) {
            Ok(c) => Some(c),
            Err(e) => {
                let at = self.pointer.clone();
                self.expr
                    .push(Diagnostic::new("flow.bad_config", at, e.to_string()));
                None
            }
        }
    }

    /// Target of a port, if wired.
    pub fn port(&self, name: &str) -> Option<usize> {
        self.ports.get(name).copied()
    }

    /// Target of a required port. The graph check has reported a missing one already, so a
    /// sentinel is safe: a plan is only built when there are no diagnostics.
    pub fn required(&self, name: &str) -> usize {
        self.port(name).unwrap_or(usize::MAX)
    }

    /// Reports a problem at `field` (a pointer suffix below the node).
    pub fn problem(&mut self, code: &'static str, field: &str, message: impl Into<String>) {
        let at = format!("{}/{field}", self.pointer);
        self.expr.push(Diagnostic::new(code, at, message));
    }

    pub fn template(&mut self, v: &Value, field: &str) -> Option<Template> {
        let at = format!("{}/{field}", self.pointer);
        self.expr.template(v, &at)
    }

    /// The definition of table `name`, when a catalog is present and has it; reports nothing.
    pub fn table_def(&self, name: &str) -> Option<TableDef> {
        self.catalog?.table(name).cloned()
    }

    /// Whether the flow is compiled against the tables (not offline without them).
    pub fn has_catalog(&self) -> bool {
        self.catalog.is_some()
    }

    /// Resolves a table name; reports unknown tables when a catalog is present.
    pub fn table(&mut self, name: &str) -> Option<(Ident, Option<TableDef>)> {
        let at = format!("{}/table", self.pointer);
        let ident = match Ident::parse(name) {
            Ok(i) => i,
            Err(e) => {
                self.expr
                    .push(Diagnostic::new("flow.bad_name", at, e.to_string()));
                return None;
            }
        };
        let Some(catalog) = self.catalog else {
            return Some((ident, None));
        };
        match catalog.table(name) {
            Some(def) => Some((ident, Some(def.clone()))),
            None => {
                self.expr.push(Diagnostic::new(
                    "flow.unknown_table",
                    at,
                    format!("there is no table `{name}`"),
                ));
                None
            }
        }
    }

    /// Resolves a column of `def` (when known) found at `field` (a pointer suffix).
    pub fn column(&mut self, def: Option<&TableDef>, name: &str, field: &str) -> Option<Ident> {
        let at = format!("{}/{field}", self.pointer);
        let ident = match Ident::parse(name) {
            Ok(i) => i,
            Err(e) => {
                self.expr
                    .push(Diagnostic::new("flow.bad_name", at, e.to_string()));
                return None;
            }
        };
        if let Some(def) = def
            && def.column_type(name).is_none()
        {
            let msg = format!("table `{}` has no column `{name}`", def.name);
            self.expr
                .push(Diagnostic::new("flow.unknown_column", at, msg));
            return None;
        }
        Some(ident)
    }

    /// Refuses values for the columns Sluice sets itself (`id`, `created_at`, `updated_at`);
    /// returns whether there were none.
    pub fn writable(&mut self, values: &BTreeMap<String, Value>) -> bool {
        let mut ok = true;
        for col in values
            .keys()
            .filter(|c| crate::tables::def::SYSTEM_COLUMNS.contains(&c.as_str()))
        {
            let at = format!("{}/values/{}", self.pointer, seg(col));
            self.expr.push(Diagnostic::new(
                "flow.read_only_column",
                at,
                format!("`{col}` is set by Sluice"),
            ));
            ok = false;
        }
        ok
    }

    /// Compiles `column -> value` pairs found under `field`.
    pub fn column_values(
        &mut self,
        def: Option<&TableDef>,
        values: &BTreeMap<String, Value>,
        field: &str,
    ) -> Option<Vec<super::plan::ColumnValue>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (col, v) in values {
            let at = format!("{field}/{}", seg(col));
            let column = self.column(def, col, &at);
            let value = self.template(v, &at);
            match (column, value) {
                (Some(column), Some(value)) => out.push(super::plan::ColumnValue { column, value }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}
