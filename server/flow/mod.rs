//! Flow documents and their compiler. PURE: no sqlx, no axum, no IO. A document is checked
//! (schemas, graph, scopes, Rhai, tables) and compiled into an immutable [`Plan`] that the
//! engine runs. Generic over the compiled node ([`CompiledOp`]): the node types themselves
//! live in `crate::nodes`, which this module must not depend on. Depends only on the pure
//! parts of `tables` (identifiers and definitions).

pub mod canonical;
pub mod compile;
pub mod diag;
pub mod expr;
pub mod generate;
pub mod node;
pub mod plan;
pub mod schema;
pub mod scope;
pub mod sqlscan;
pub mod tera_guard;
pub mod trigger;

pub use compile::compile;
pub use diag::Diagnostic;
pub use node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port, Registry, TableCatalog};
pub use plan::{Method, Plan};
