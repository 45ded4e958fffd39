//! What can go wrong while running a flow. Each error knows its HTTP status and stable code;
//! the HTTP layer only wraps them in the envelope. Messages of 5xx errors are for the log.

use serde::Serialize;

/// One violation of an endpoint's input schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputProblem {
    /// JSON pointer into the request, starting with `/params`, `/query` or `/body`.
    pub pointer: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the request does not match the endpoint's input schema")]
    Input(Vec<InputProblem>),
    #[error("node `{node}`: {message}")]
    Script { node: String, message: String },
    #[error("node `{node}`: script stopped: {what}")]
    ScriptLimit { node: String, what: String },
    #[error("node `{node}`: {message}")]
    Type { node: String, message: String },
    #[error("{message}")]
    InvalidValue { node: String, message: String },
    #[error("{message}")]
    Conflict { node: String, message: String },
    #[error("no row matched")]
    NotFound { node: String },
    #[error("{message}")]
    InvalidCursor { node: String, message: String },
    /// A `db.sql` statement reached something role `sluice_app` may not touch.
    #[error("node `{node}`: the statement was refused: {message}")]
    Forbidden { node: String, message: String },
    /// `db.sql` cannot run safely here: the role is missing or could change itself.
    #[error("node `{node}`: db.sql is unavailable: {message}")]
    SqlUnavailable { node: String, message: String },
    #[error("node `{node}`: database error: {source}")]
    Db { node: String, source: sqlx::Error },
    #[error("the flow did not finish within its timeout")]
    Timeout,
}

impl RunError {
    pub fn status(&self) -> u16 {
        match self {
            RunError::Input(_) | RunError::InvalidValue { .. } | RunError::InvalidCursor { .. } => {
                400
            }
            RunError::NotFound { .. } => 404,
            RunError::Conflict { .. } => 409,
            RunError::Timeout => 504,
            RunError::Script { .. }
            | RunError::ScriptLimit { .. }
            | RunError::Type { .. }
            | RunError::Forbidden { .. }
            | RunError::SqlUnavailable { .. }
            | RunError::Db { .. } => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            RunError::Input(_) => "input.invalid",
            RunError::Script { .. } => "script.error",
            RunError::ScriptLimit { .. } => "script.limit_exceeded",
            RunError::Type { .. } => "flow.type_error",
            RunError::InvalidValue { .. } => "db.invalid_value",
            RunError::Conflict { .. } => "db.conflict",
            RunError::NotFound { .. } => "db.not_found",
            RunError::InvalidCursor { .. } => "db.invalid_cursor",
            RunError::Forbidden { .. } => "db.forbidden",
            RunError::SqlUnavailable { .. } => "db.sql_unavailable",
            RunError::Db { .. } => "db.error",
            RunError::Timeout => "flow.timeout",
        }
    }

    /// The node the error happened in, for logs and traces.
    pub fn node(&self) -> Option<&str> {
        match self {
            RunError::Input(_) | RunError::Timeout => None,
            RunError::Script { node, .. }
            | RunError::ScriptLimit { node, .. }
            | RunError::Type { node, .. }
            | RunError::InvalidValue { node, .. }
            | RunError::Conflict { node, .. }
            | RunError::NotFound { node }
            | RunError::InvalidCursor { node, .. }
            | RunError::Forbidden { node, .. }
            | RunError::SqlUnavailable { node, .. }
            | RunError::Db { node, .. } => Some(node),
        }
    }

    /// Sorts a database error into what the client did wrong and what went wrong inside.
    /// Constraint and conversion failures carry only the client's own values, never SQL.
    pub fn from_db(node: &str, e: sqlx::Error) -> RunError {
        let node = node.to_string();
        let (code, message) = match &e {
            sqlx::Error::Database(db) => {
                (db.code().map(|c| c.to_string()), db.message().to_string())
            }
            _ => (None, String::new()),
        };
        match code.as_deref() {
            // unique_violation, foreign_key_violation
            Some("23505") | Some("23503") => RunError::Conflict { node, message },
            // invalid text representation, datetime format/overflow, numeric out of range,
            // not null / check violations, invalid JSON, string too long
            Some(
                "22P02" | "22007" | "22008" | "22003" | "23502" | "23514" | "22P05" | "22001"
                | "22023",
            ) => RunError::InvalidValue { node, message },
            // insufficient_privilege: only `db.sql` runs with a restricted role.
            Some("42501") => RunError::Forbidden { node, message },
            _ => RunError::Db { node, source: e },
        }
    }
}
