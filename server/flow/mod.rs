//! Flow documents and their compiler. PURE: no sqlx, no axum, no IO. A document is checked
//! (schemas, graph, scopes, Rhai, tables) and compiled into an immutable [`Plan`] that the
//! engine runs. Depends only on the pure parts of `tables` (identifiers and definitions).

pub mod canonical;
pub mod compile;
pub mod diag;
pub mod expr;
pub mod generate;
pub mod nodes;
pub mod plan;
pub mod schema;
pub mod sqlscan;
pub mod tera_guard;

pub use compile::compile;
pub use diag::Diagnostic;
pub use nodes::TableCatalog;
pub use plan::{Method, Op, Plan};

#[cfg(test)]
mod tests;
