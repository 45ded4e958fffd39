//! What can go wrong while running a flow. Each error knows its HTTP status and stable code;
//! the HTTP layer only wraps them in the envelope. Messages of 5xx errors are for the log.

/// The most node executions of one request, loops and calls included.
pub const STEP_BUDGET: usize = 100_000;

/// How deep calls may nest (a function calling a function ...).
pub const MAX_CALL_DEPTH: usize = 8;

/// One violation of an endpoint's input schema; its pointer starts with `/params`, `/query` or
/// `/body`.
pub use crate::base::Problem as InputProblem;

/// How an outbound request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFailure {
    /// The target is not a public address and not allowed (`SLUICE_HTTP_ALLOW`).
    Refused,
    /// DNS, connection, TLS or protocol failure.
    Failed,
    /// No complete response within the node's `timeout_ms`.
    Timeout,
    /// The response body is larger than the limit.
    TooLarge,
    /// The response says JSON but is not.
    BadResponse,
    /// The flow computed a request that cannot be sent (URL, header, body).
    InvalidRequest,
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
    /// A table's `create` rule refused the row (`rule` is `<table>.create`).
    #[error("the access rule `{rule}` does not allow this row")]
    RuleDenied { node: String, rule: String },
    /// A unique or foreign key refused the write: which rule (`unique`, `missing_reference`,
    /// `still_referenced`) and, per field of the table, what was wrong (`/<field>` pointers),
    /// as the data API answers the same violation.
    #[error("{message}")]
    Conflict {
        node: String,
        rule: &'static str,
        problems: Vec<crate::tables::violation::Problem>,
        message: String,
    },
    /// A value the database cannot take (text with NUL, a time-zone offset or a date out of
    /// Postgres' range, a number too large for its column). `pointer` names where it came
    /// from: the request (`/body/title`) when the node bound a request value as it is, else
    /// the flow document (`/nodes/insert/values/title`).
    #[error("{message}")]
    BadValue {
        node: String,
        pointer: String,
        message: String,
    },
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
    /// Postgres could not serialize the run's transaction with a concurrent one (SQLSTATE
    /// 40001) or broke a deadlock with it (40P01): running it again may succeed. A
    /// `serializable` flow is run again by the engine; a flow cannot handle it.
    #[error("node `{node}`: the transaction conflicted with a concurrent one; retry")]
    Serialization { node: String },
    /// The node's result is larger than `SLUICE_MAX_RESULT_BYTES` (`bytes` when known: a
    /// result Postgres refused to send has no size here).
    #[error("node `{node}`: the result is larger than {limit} bytes{}", .bytes.map(|b| format!(" ({b} bytes)")).unwrap_or_default())]
    ResultTooLarge {
        node: String,
        bytes: Option<usize>,
        limit: usize,
    },
    #[error("the flow did not finish within its timeout")]
    Timeout,
    #[error("node `{node}`: the request ran more than {} nodes", STEP_BUDGET)]
    StepBudget { node: String },
    #[error("node `{node}`: there is no published function flow `{name}`")]
    UnknownFunction { node: String, name: String },
    #[error("node `{node}`: calls nest more than {} deep", MAX_CALL_DEPTH)]
    CallDepth { node: String },
    /// The called function ended with an error status; the caller answers the same.
    #[error("{message}")]
    CallFailed {
        node: String,
        status: u16,
        code: String,
        message: String,
    },
    /// An `http.request` failed. The message names the host, never the query or headers.
    #[error("node `{node}`: {message}")]
    Http {
        node: String,
        kind: HttpFailure,
        message: String,
    },
    #[error("node `{node}`: template: {message}")]
    Template { node: String, message: String },
    /// A render used up one of its budgets (`flow::tera_guard`).
    #[error("node `{node}`: template stopped: {what}")]
    TemplateLimit { node: String, what: String },
    /// A value an auth node cannot use (a password that is not non-empty text).
    #[error("{message}")]
    AuthValue { node: String, message: String },
    /// `auth.verify_password` found no match and its `invalid` port is unwired.
    #[error("the credentials are not valid")]
    InvalidCredentials { node: String },
    /// `auth.issue_token` has no key to sign with, or hashing failed inside.
    #[error("node `{node}`: {message}")]
    Auth { node: String, message: String },
    /// Every password hashing thread stayed busy.
    #[error("the server is busy; retry shortly")]
    Busy { node: String },
    /// `auth.verify_password`: too many failed checks from this address or for this account.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { node: String, retry_after_secs: u64 },
    /// `auth.refresh` refused a refresh token, or `auth.logout` found no session to end.
    #[error("{}", .failure.message())]
    Session {
        node: String,
        failure: SessionFailure,
    },
}

/// Why a session node failed (401 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFailure {
    /// Unknown, malformed or expired refresh token, an ended session, or an account that is
    /// gone: `auth.refresh_invalid`.
    RefreshInvalid,
    /// A used-up refresh token presented again; the session was ended: `auth.refresh_reused`.
    RefreshReused,
    /// `auth.logout` without a refresh token on a request whose token names no session:
    /// `auth.no_session`.
    NoSession,
}

impl SessionFailure {
    pub fn code(self) -> &'static str {
        match self {
            SessionFailure::RefreshInvalid => "auth.refresh_invalid",
            SessionFailure::RefreshReused => "auth.refresh_reused",
            SessionFailure::NoSession => "auth.no_session",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            SessionFailure::RefreshInvalid => {
                "the refresh token is not valid: unknown, expired, or its session has ended"
            }
            SessionFailure::RefreshReused => {
                "the refresh token was already used; its session has been ended, sign in again"
            }
            SessionFailure::NoSession => "the request's token belongs to no session",
        }
    }
}

impl RunError {
    pub fn status(&self) -> u16 {
        match self {
            RunError::Input(_)
            | RunError::InvalidValue { .. }
            | RunError::BadValue { .. }
            | RunError::InvalidCursor { .. } => 400,
            RunError::NotFound { .. } => 404,
            RunError::RuleDenied { .. } => 403,
            RunError::Conflict { .. } | RunError::Serialization { .. } => 409,
            RunError::Timeout => 504,
            RunError::StepBudget { .. }
            | RunError::UnknownFunction { .. }
            | RunError::CallDepth { .. } => 500,
            RunError::CallFailed { status, .. } => *status,
            RunError::AuthValue { .. } => 400,
            RunError::InvalidCredentials { .. } => 401,
            RunError::Throttled { .. } => 429,
            RunError::Session { .. } => 401,
            RunError::Busy { .. } => 503,
            RunError::Http { kind, .. } => match kind {
                HttpFailure::Timeout => 504,
                HttpFailure::InvalidRequest => 500,
                HttpFailure::Refused
                | HttpFailure::Failed
                | HttpFailure::TooLarge
                | HttpFailure::BadResponse => 502,
            },
            RunError::Script { .. }
            | RunError::ScriptLimit { .. }
            | RunError::Type { .. }
            | RunError::Db { .. }
            | RunError::ResultTooLarge { .. }
            | RunError::Forbidden { .. }
            | RunError::SqlUnavailable { .. }
            | RunError::Template { .. }
            | RunError::TemplateLimit { .. }
            | RunError::Auth { .. } => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            RunError::Input(_) => "input.invalid",
            RunError::Script { .. } => "script.error",
            RunError::ScriptLimit { .. } => "script.limit_exceeded",
            RunError::Type { .. } => "flow.type_error",
            RunError::InvalidValue { .. } | RunError::BadValue { .. } => "db.invalid_value",
            RunError::RuleDenied { .. } => "rule.denied",
            RunError::Conflict { .. } => "db.conflict",
            RunError::NotFound { .. } => "db.not_found",
            RunError::InvalidCursor { .. } => "db.invalid_cursor",
            RunError::Forbidden { .. } => "db.forbidden",
            RunError::SqlUnavailable { .. } => "db.sql_unavailable",
            RunError::Db { .. } => "db.error",
            RunError::Serialization { .. } => "db.serialization_failure",
            RunError::ResultTooLarge { .. } => "db.result_too_large",
            RunError::Timeout => "flow.timeout",
            RunError::StepBudget { .. } => "flow.step_budget",
            RunError::UnknownFunction { .. } => "flow.unknown_function",
            RunError::CallDepth { .. } => "flow.call_depth",
            RunError::CallFailed { .. } => "flow.call_failed",
            RunError::Http { kind, .. } => match kind {
                HttpFailure::Refused => "http.refused",
                HttpFailure::Failed => "http.failed",
                HttpFailure::Timeout => "http.timeout",
                HttpFailure::TooLarge => "http.response_too_large",
                HttpFailure::BadResponse => "http.bad_response",
                HttpFailure::InvalidRequest => "http.invalid_request",
            },
            RunError::Template { .. } => "template.error",
            RunError::TemplateLimit { .. } => "template.limit_exceeded",
            RunError::AuthValue { .. } => "auth.invalid_value",
            RunError::InvalidCredentials { .. } => "auth.invalid_credentials",
            RunError::Auth { .. } => "auth.error",
            RunError::Busy { .. } => "server.busy",
            RunError::Throttled { .. } => "auth.throttled",
            RunError::Session { failure, .. } => failure.code(),
        }
    }

    /// The code clients see: a called function's own code passes through.
    pub fn public_code(&self) -> &str {
        match self {
            RunError::CallFailed { code, .. } => code,
            other => other.code(),
        }
    }

    /// Seconds a client should wait before retrying, for `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            RunError::Busy { .. } => Some(1),
            RunError::Throttled {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// What a flow's `error` variable holds for this failure: `code`, `message`, `status`,
    /// `node`, and for a conflict the `rule` broken and `details` (`{pointer, message}` per
    /// field, the data API's shape).
    pub fn error_value(&self, node: &str) -> serde_json::Value {
        let mut v = serde_json::json!({"code": self.public_code(), "message": self.to_string(),
                                      "status": self.status(), "node": node});
        if let RunError::Conflict { rule, problems, .. } = self {
            v["rule"] = serde_json::Value::String((*rule).to_string());
            v["details"] = problems
                .iter()
                .map(|p| serde_json::json!({"pointer": p.pointer, "message": p.message, "rule": rule}))
                .collect();
        }
        v
    }

    /// The node the error happened in, for logs and traces.
    pub fn node(&self) -> Option<&str> {
        match self {
            RunError::Input(_) | RunError::Timeout => None,
            RunError::Script { node, .. }
            | RunError::ScriptLimit { node, .. }
            | RunError::Type { node, .. }
            | RunError::InvalidValue { node, .. }
            | RunError::RuleDenied { node, .. }
            | RunError::BadValue { node, .. }
            | RunError::Conflict { node, .. }
            | RunError::Serialization { node }
            | RunError::NotFound { node }
            | RunError::Db { node, .. }
            | RunError::ResultTooLarge { node, .. }
            | RunError::InvalidCursor { node, .. }
            | RunError::Forbidden { node, .. }
            | RunError::SqlUnavailable { node, .. }
            | RunError::StepBudget { node }
            | RunError::UnknownFunction { node, .. }
            | RunError::CallDepth { node }
            | RunError::CallFailed { node, .. }
            | RunError::Http { node, .. }
            | RunError::Template { node, .. }
            | RunError::TemplateLimit { node, .. }
            | RunError::AuthValue { node, .. }
            | RunError::InvalidCredentials { node }
            | RunError::Auth { node, .. }
            | RunError::Busy { node }
            | RunError::Throttled { node, .. }
            | RunError::Session { node, .. } => Some(node),
        }
    }

    /// The same error with `hide` applied to every message it carries (and to a database
    /// error's text, which then loses its source). Input problems are the client's own values
    /// and are kept.
    pub fn redacted(self, hide: &dyn Fn(&str) -> String) -> RunError {
        use RunError as E;
        match self {
            E::Script { node, message } => E::Script {
                node,
                message: hide(&message),
            },
            E::ScriptLimit { node, what } => E::ScriptLimit {
                node,
                what: hide(&what),
            },
            E::Type { node, message } => E::Type {
                node,
                message: hide(&message),
            },
            E::InvalidValue { node, message } => E::InvalidValue {
                node,
                message: hide(&message),
            },
            E::Conflict {
                node,
                rule,
                problems,
                message,
            } => E::Conflict {
                node,
                rule,
                problems: problems
                    .into_iter()
                    .map(|p| crate::tables::violation::Problem::new(p.pointer, hide(&p.message)))
                    .collect(),
                message: hide(&message),
            },
            E::BadValue {
                node,
                pointer,
                message,
            } => E::BadValue {
                node,
                pointer,
                message: hide(&message),
            },
            E::InvalidCursor { node, message } => E::InvalidCursor {
                node,
                message: hide(&message),
            },
            E::Forbidden { node, message } => E::Forbidden {
                node,
                message: hide(&message),
            },
            E::SqlUnavailable { node, message } => E::SqlUnavailable {
                node,
                message: hide(&message),
            },
            E::Db { node, source } => {
                let text = source.to_string();
                let shown = hide(&text);
                if shown == text {
                    E::Db { node, source }
                } else {
                    E::Db {
                        node,
                        source: sqlx::Error::Protocol(shown),
                    }
                }
            }
            E::CallFailed {
                node,
                status,
                code,
                message,
            } => E::CallFailed {
                node,
                status,
                code,
                message: hide(&message),
            },
            E::Http {
                node,
                kind,
                message,
            } => E::Http {
                node,
                kind,
                message: hide(&message),
            },
            E::Template { node, message } => E::Template {
                node,
                message: hide(&message),
            },
            E::TemplateLimit { node, what } => E::TemplateLimit {
                node,
                what: hide(&what),
            },
            E::AuthValue { node, message } => E::AuthValue {
                node,
                message: hide(&message),
            },
            E::Auth { node, message } => E::Auth {
                node,
                message: hide(&message),
            },
            other @ (E::Input(_)
            | E::NotFound { .. }
            | E::Timeout
            | E::StepBudget { .. }
            | E::UnknownFunction { .. }
            | E::CallDepth { .. }
            | E::InvalidCredentials { .. }
            | E::ResultTooLarge { .. }
            | E::Busy { .. }
            | E::RuleDenied { .. }
            | E::Serialization { .. }
            | E::Throttled { .. }
            | E::Session { .. }) => other,
        }
    }

    /// Sorts a database error into what the client did wrong and what went wrong inside. The
    /// violations of a table's rules are classified as the data API classifies them
    /// ([`crate::tables::violation`]): the same status, code, message and field pointers. Key
    /// violations become [`RunError::Conflict`] (a node's `conflict` port takes them), the rest
    /// [`RunError::BadValue`] pointing at the node's value of the field (`/nodes/<id>/values/<field>`),
    /// or at the node when no one field is to blame.
    pub fn from_db(node: &str, e: sqlx::Error) -> RunError {
        // Without the definitions the fields come from what Postgres reports beside its
        // message.
        let none = crate::tables::def::Tables::new();
        RunError::from_db_on(
            node,
            e,
            None,
            &none,
            crate::tables::violation::Action::Unknown,
        )
    }

    /// [`RunError::from_db`] for a statement on table `def` (with every definition at hand in
    /// `tables`) doing `action`: a node that knows its table passes it, so an enum or email
    /// check names its field and a delete names the referencing `table.field`, exactly as the
    /// data API answers them.
    pub fn from_db_on(
        node: &str,
        e: sqlx::Error,
        def: Option<&crate::tables::TableDef>,
        tables: &crate::tables::def::Tables,
        action: crate::tables::violation::Action,
    ) -> RunError {
        use crate::tables::violation;
        let node = node.to_string();
        let Some(facts) = violation::facts(&e) else {
            return RunError::Db { node, source: e };
        };
        if facts.code == "40001" || facts.code == "40P01" {
            return RunError::Serialization { node };
        }
        match violation::classify(&facts, def, tables, action) {
            Some(v) if v.kind.is_conflict() => RunError::Conflict {
                rule: v.kind.rule(),
                message: v.message(),
                problems: v.problems,
                node,
            },
            Some(v) => RunError::BadValue {
                pointer: match v.fields().first() {
                    Some(f) => format!("/nodes/{node}/values/{f}"),
                    None => format!("/nodes/{node}"),
                },
                message: v.message(),
                node,
            },
            // insufficient_privilege: only `db.sql` runs with a restricted role.
            None if facts.code == "42501" => RunError::Forbidden {
                message: facts.message.to_string(),
                node,
            },
            None => RunError::Db { node, source: e },
        }
    }
}
