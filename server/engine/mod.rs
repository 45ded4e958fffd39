//! Runs compiled flows: the program builder (SQL and validators prepared once), the
//! interpreter, one run step per node type, the Rhai sandbox, and the guarded outbound HTTP
//! client. Knows sqlx and reqwest, not axum.

pub mod env;
pub mod error;
pub mod nodes;
pub mod outbound;
pub mod program;
pub mod run;
pub mod sandbox;
pub mod sql;

#[cfg(test)]
mod sql_tests;

pub use error::{InputProblem, RunError};
pub use program::Program;
pub use run::{Live, Request, Response, Runtime, run};
pub use sandbox::{Sandbox, ScriptLimits};
