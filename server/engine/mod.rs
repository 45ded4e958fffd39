//! Runs compiled flows: the program builder (SQL and validators prepared once), the
//! interpreter over [`Runnable`] nodes, the Rhai sandbox, and the guarded outbound HTTP
//! client. Knows sqlx and reqwest, not axum; must not depend on `crate::nodes` (the node
//! types implement [`Runnable`] from above).

pub mod env;
pub mod error;
pub mod lane;
pub mod op;
pub mod outbound;
pub mod program;
pub mod replay;
pub mod run;
pub mod sandbox;
pub mod sql;

pub use error::{InputProblem, RunError};
pub use op::{Op, Plan, Runnable, StepFuture};
pub use program::Program;
pub use run::{Fence, JobEnd, JobStart, Live, Request, Response, Runtime, run, run_job};
pub use sandbox::{Sandbox, ScriptLimits};
