//! The node types, one module each. A module holds everything of its type: its config (decoded
//! strictly after its JSON Schema, included from `flows/schema/nodes/`, passed), its ports
//! (declared once, as constants its run step fires), its pure compile step, its compiled op,
//! its SQL (built once, through `engine::sql`), its run step, its rename handling and its
//! OpenAPI facts, with its tests. [`builtin`] lists them, one line each.
//!
//! Sits above `flow` (whose [`NodeType`] and [`CompiledOp`](crate::flow::CompiledOp) it
//! implements) and `engine` (whose [`Runnable`](crate::engine::Runnable) it implements);
//! neither of them may depend on this module.

use crate::engine::Op;
use crate::flow::{Diagnostic, NodeType, Plan, TableCatalog};
use serde_json::Value;

/// A node type's descriptor: its name, ports, compile step and options, with its JSON Schema
/// included from `flows/schema/nodes/<name>.v1.schema.json` (the file the CLI and the editor
/// validate with too).
macro_rules! node_type {
    ($name:literal, $ports:expr, $compile:expr, $options:expr) => {
        crate::flow::NodeType {
            name: $name,
            ports: $ports,
            schema: crate::flow::schema::NodeSchema::new(include_str!(concat!(
                "../../flows/schema/nodes/",
                $name,
                ".v1.schema.json"
            ))),
            compile: $compile,
            options: $options,
        }
    };
}

pub mod auth_hash_password;
pub mod auth_issue_token;
pub mod auth_logout;
pub mod auth_refresh;
pub mod auth_verify_password;
pub mod call;
pub mod collect;
pub mod db_aggregate;
pub mod db_delete;
pub mod db_get;
pub mod db_insert;
pub mod db_query;
pub mod db_sql;
pub mod db_update;
pub mod db_upsert;
pub mod fail;
pub mod for_each;
pub mod http_request;
pub mod if_;
mod include;
pub mod job_enqueue;
mod reads;
pub mod respond;
pub mod script;
pub mod set;
pub mod switch;
pub mod template;
pub mod validate;

#[cfg(test)]
mod scope_tests;
#[cfg(test)]
mod sql_tests;
#[cfg(test)]
mod tests;

/// Every built-in node type, one line each, in palette order.
static BUILTIN: [&NodeType<Op>; 26] = [
    &validate::TYPE,
    &db_get::TYPE,
    &db_query::TYPE,
    &db_aggregate::TYPE,
    &db_insert::TYPE,
    &db_update::TYPE,
    &db_upsert::TYPE,
    &db_delete::TYPE,
    &db_sql::TYPE,
    &script::TYPE,
    &set::TYPE,
    &switch::TYPE,
    &for_each::TYPE,
    &collect::TYPE,
    &call::TYPE,
    &job_enqueue::TYPE,
    &if_::TYPE,
    &http_request::TYPE,
    &template::TYPE,
    &auth_hash_password::TYPE,
    &auth_verify_password::TYPE,
    &auth_issue_token::TYPE,
    &auth_refresh::TYPE,
    &auth_logout::TYPE,
    &respond::TYPE,
    &fail::TYPE,
];

/// Every built-in node type.
pub fn builtin() -> &'static [&'static NodeType<Op>] {
    &BUILTIN
}

/// The node type called `name`.
pub fn lookup(name: &str) -> Option<&'static NodeType<Op>> {
    builtin().iter().find(|t| t.name == name).copied()
}

/// Compiles a flow document with the built-in node types (see [`crate::flow::compile`]).
pub fn compile(
    doc: &Value,
    catalog: Option<&dyn TableCatalog>,
) -> Result<Plan<Op>, Vec<Diagnostic>> {
    crate::flow::compile(doc, catalog, builtin())
}

/// [`compile`], and the names visible at each node for the editor's completion (see
/// [`crate::flow::scope`]).
pub fn compile_with_scope(
    doc: &Value,
    catalog: Option<&dyn TableCatalog>,
) -> (Result<Plan<Op>, Vec<Diagnostic>>, crate::flow::scope::Scope) {
    crate::flow::compile::compile_with_scope(doc, catalog, builtin())
}

/// Helpers for the node types' own tests: a flow around one node `n`, whose ports lead to a
/// `respond` node `r` that may read `n`'s variable.
#[cfg(test)]
pub(crate) mod testing {
    use serde_json::{Value, json};

    /// A flow whose entry is `node` (id `n`) followed by `r: respond`.
    pub fn flow_with(node: Value) -> Value {
        json!({"format": "sluice.flow", "format_version": 1, "name": "t",
               "endpoint": {"method": "POST", "path": "/t"}, "entry": "n",
               "nodes": {"n": node, "r": {"type": "respond", "body": null}}})
    }

    /// `(code, pointer)` of every problem.
    pub fn problems(doc: &Value) -> Vec<(&'static str, String)> {
        match super::compile(doc, None) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().map(|d| (d.code, d.pointer)).collect(),
        }
    }

    /// The compiled op of node `n`, as its type's op struct.
    pub fn op<T: 'static>(doc: &Value) -> T {
        let plan = super::compile(doc, None).expect("compiles");
        let op: Box<dyn std::any::Any> = plan
            .nodes
            .into_iter()
            .find(|p| p.id == "n")
            .map(|p| p.op)
            .expect("node n");
        *op.downcast::<T>().expect("an op of the expected type")
    }
}

#[cfg(test)]
mod registry_tests {
    #[test]
    fn every_node_schema_compiles_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for t in super::builtin() {
            assert!(names.insert(t.name), "{} twice", t.name);
            assert!(t.schema.document().is_object(), "{}", t.name);
            let _ = t.schema.check(&serde_json::Value::Null, "");
        }
    }
}
