//! The node-type registry. Each node type is one file: its config struct (decoded strictly after
//! its JSON Schema in `flows/schema/nodes/` passed), its ports, and its compile step. The run
//! step of each type lives in `engine::nodes` under the same name.

use super::diag::{Diagnostic, seg};
use super::expr::{ExprCompiler, Template};
use super::plan::Op;
use crate::tables::{Ident, TableDef};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;

mod auth_hash_password;
pub mod auth_issue_token;
pub mod auth_verify_password;
mod call;
mod collect;
mod db_delete;
mod db_get;
mod db_insert;
mod db_query;
mod db_sql;
mod db_update;
mod db_upsert;
mod fail;
mod for_each;
pub mod http_request;
mod if_;
mod respond;
mod script;
mod set;
mod switch;
pub mod template;
pub use for_each::MAX_ITEMS as MAX_LOOP_ITEMS;
mod validate;

/// An output port of a node type.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    pub name: &'static str,
    /// A required port must be wired; an optional one falls back to the standard error response.
    pub required: bool,
    /// Whether the node's `as` variable is set when this port fires.
    pub binds: bool,
}

/// A node type: its name, ports, and compile step.
pub struct NodeType {
    pub name: &'static str,
    pub ports: &'static [Port],
    /// Whether the node may have an `as` name.
    pub binds: bool,
    /// Extra required ports named by the node's config (for `switch`).
    pub dynamic_ports: Option<fn(&Value) -> Vec<String>>,
    pub compile: fn(&Value, &mut NodeCx<'_>) -> Option<Op>,
}

/// Every node type that continues the flow also has this optional port: it fires when the node
/// fails, with the failure in the variable `error` (`code`, `message`, `status`, `node`).
/// Unwired, a failure goes to the flow's `on_error` node, else to the standard error response.
pub const ERROR_PORT: Port = Port {
    name: "error",
    required: false,
    binds: false,
};

impl NodeType {
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

/// Every built-in node type, one line each.
pub fn builtin() -> &'static [NodeType] {
    &[
        validate::TYPE,
        db_get::TYPE,
        db_query::TYPE,
        db_insert::TYPE,
        db_update::TYPE,
        db_upsert::TYPE,
        db_delete::TYPE,
        db_sql::TYPE,
        script::TYPE,
        set::TYPE,
        switch::TYPE,
        for_each::TYPE,
        collect::TYPE,
        call::TYPE,
        if_::TYPE,
        http_request::TYPE,
        template::TYPE,
        auth_hash_password::TYPE,
        auth_verify_password::TYPE,
        auth_issue_token::TYPE,
        respond::TYPE,
        fail::TYPE,
    ]
}

pub fn lookup(name: &str) -> Option<&'static NodeType> {
    builtin().iter().find(|t| t.name == name)
}

/// The managed tables (and published functions) a flow can refer to.
pub trait TableCatalog {
    fn table(&self, name: &str) -> Option<&TableDef>;

    /// Whether a published function flow has this name; `None` when not known (offline).
    fn function_exists(&self, _name: &str) -> Option<bool> {
        None
    }
}

/// Tables plus the names of published function flows: what a save or publish checks against.
pub struct Catalog {
    pub tables: crate::tables::def::Tables,
    pub functions: std::collections::BTreeSet<String>,
}

impl TableCatalog for Catalog {
    fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.get(name)
    }

    fn function_exists(&self, name: &str) -> Option<bool> {
        Some(self.functions.contains(name))
    }
}

impl TableCatalog for BTreeMap<String, TableDef> {
    fn table(&self, name: &str) -> Option<&TableDef> {
        self.get(name)
    }
}

/// What a node's compile step may use: its wiring, an expression compiler with the names in
/// scope, and the catalog (absent when validating offline).
pub struct NodeCx<'a> {
    pub id: &'a str,
    pub pointer: String,
    pub expr: ExprCompiler<'a>,
    pub catalog: Option<&'a dyn TableCatalog>,
    /// Port name -> index of the target in the plan's flat node list.
    pub ports: BTreeMap<String, usize>,
    /// The names visible to this node (for nested bodies).
    pub names: std::collections::BTreeSet<String>,
    /// How deep in `for_each` bodies this node sits.
    pub depth: usize,
    /// The plan's flat node list, for nested bodies to add their nodes to.
    pub out: &'a mut Vec<Option<super::plan::PlanNode>>,
    /// Problems found in nested bodies.
    pub body_diags: Vec<Diagnostic>,
}

impl NodeCx<'_> {
    /// Strictly decodes the node's config (schema-checked already, so failures are rare).
    pub fn config<T: DeserializeOwned>(&mut self, node: &Value) -> Option<T> {
        let mut cfg = node.clone();
        if let Some(obj) = cfg.as_object_mut() {
            for k in ["type", "v", "as", "description", "next"] {
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

/// Helpers for the node types' own tests: a flow around one node `n`, whose ports lead to a
/// `respond` node `r` that may read `n`'s variable.
#[cfg(test)]
pub(crate) mod testing {
    use crate::flow::plan::{Op, Plan};
    use serde_json::{Value, json};

    /// A flow whose entry is `node` (id `n`) followed by `r: respond`.
    pub fn flow_with(node: Value) -> Value {
        json!({"format": "sluice.flow", "format_version": 1, "name": "t",
               "endpoint": {"method": "POST", "path": "/t"}, "entry": "n",
               "nodes": {"n": node, "r": {"type": "respond", "body": null}}})
    }

    /// `(code, pointer)` of every problem.
    pub fn problems(doc: &Value) -> Vec<(&'static str, String)> {
        match crate::flow::compile(doc, None) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().map(|d| (d.code, d.pointer)).collect(),
        }
    }

    /// The compiled op of node `n`.
    pub fn op(doc: &Value) -> Op {
        let plan: Plan = crate::flow::compile(doc, None).expect("compiles");
        plan.nodes
            .into_iter()
            .find(|p| p.id == "n")
            .map(|p| p.op)
            .expect("node n")
    }
}
