//! The one error envelope at the edge: `{"error": {"code", "message", "details"}}`. Inner errors
//! are typed in their own modules and converted here. A 5xx says only "internal error" plus the
//! request id; its detail goes to the log (once, by the request-id middleware).

use crate::catalog::CatalogError;
use crate::engine::RunError;
use crate::tables::store::TableError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

tokio::task_local! {
    /// Id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

/// Detail of a 5xx for the log, carried to the middleware in response extensions.
#[derive(Clone, Debug)]
pub struct InternalDetail(pub String);

/// The `code` of an error response, in its extensions, for metrics and the request log.
#[derive(Clone, Debug)]
pub struct ErrorCode(pub String);

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Vec<Value>,
    /// For the log only.
    pub internal: Option<String>,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            internal: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.retry_after = Some(secs);
        self
    }

    /// 503 `server.busy`: every password hashing thread stayed busy.
    pub fn busy() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server.busy",
            "the server is busy; retry shortly",
        )
        .with_retry_after(1)
    }

    /// 429 `auth.throttled`: too many failed logins from this address or for this account.
    pub fn throttled(secs: u64) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "auth.throttled",
            format!("too many failed logins; retry in {secs} s"),
        )
        .with_retry_after(secs)
    }

    pub fn with_details(mut self, details: Vec<Value>) -> ApiError {
        self.details = details;
        self
    }

    pub fn internal(code: &str, detail: impl std::fmt::Display) -> ApiError {
        let mut e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, "internal error");
        e.internal = Some(detail.to_string());
        e
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth.unauthorized",
            "a valid bearer token is required",
        )
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "api.not_found",
            format!("{what} not found"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error =
            json!({"code": self.code, "message": self.message, "details": self.details});
        if self.status.is_server_error() {
            error["message"] = json!("internal error");
            if let Ok(id) = REQUEST_ID.try_with(Clone::clone) {
                error["request_id"] = json!(id);
            }
        }
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        if let Some(detail) = self.internal.filter(|_| self.status.is_server_error()) {
            resp.extensions_mut()
                .insert(InternalDetail(format!("{}: {detail}", self.code)));
        }
        resp.extensions_mut().insert(ErrorCode(self.code));
        resp
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> ApiError {
        match e {
            CatalogError::NotFound => ApiError::not_found("flow"),
            CatalogError::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "flow.name_taken", e.to_string())
            }
            CatalogError::RouteTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "flow.route_taken", e.to_string())
            }
            CatalogError::Stale { .. } => {
                ApiError::new(StatusCode::CONFLICT, "flow.stale_rev", e.to_string())
            }
            CatalogError::FunctionInUse { ref by, .. } => {
                let details = by
                    .iter()
                    .map(|f| json!({ "flow": f, "message": format!("{f} calls it and is live") }))
                    .collect();
                ApiError::new(StatusCode::CONFLICT, "flow.function_in_use", e.to_string())
                    .with_details(details)
            }
            CatalogError::UnknownGroup(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "flow.unknown_group",
                e.to_string(),
            ),
            CatalogError::Db(db) => ApiError::internal("db.error", db),
        }
    }
}

impl From<TableError> for ApiError {
    fn from(e: TableError) -> ApiError {
        let msg = e.to_string();
        match e {
            TableError::Invalid(problems) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "table.invalid",
                "the table definition is invalid",
            )
            .with_details(
                problems
                    .iter()
                    .map(|p| json!({"pointer": p.pointer, "message": p.message}))
                    .collect(),
            ),
            TableError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "table.exists", msg),
            TableError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "table.not_found", msg),
            TableError::Stale { .. } => {
                ApiError::new(StatusCode::CONFLICT, "table.stale_version", msg)
            }
            TableError::VersionRequired => ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "table.version_required",
                msg,
            ),
            TableError::NeedsConfirmation(_) => {
                ApiError::new(StatusCode::CONFLICT, "table.confirmation_required", msg)
            }
            TableError::StepFailed {
                step, rows, cause, ..
            } => ApiError::new(StatusCode::CONFLICT, "table.rows_block_change", msg)
                .with_details(vec![json!({"step": step, "rows": rows, "cause": cause})]),
            TableError::Referenced { .. } => {
                ApiError::new(StatusCode::CONFLICT, "table.referenced", msg)
            }
            TableError::Db(db) => ApiError::internal("db.error", db),
        }
    }
}

impl From<crate::project::table_changes::ChangeError> for ApiError {
    fn from(e: crate::project::table_changes::ChangeError) -> ApiError {
        use crate::project::table_changes::ChangeError;
        match e {
            ChangeError::Table(t) => t.into(),
            ChangeError::Catalog(c) => c.into(),
            ChangeError::Breaks(breaks) => {
                let names: std::collections::BTreeSet<&str> =
                    breaks.iter().map(|b| b.flow.as_str()).collect();
                let msg = format!(
                    "the change would break published flows: {}; fix them, pass update_flows for renames, or force",
                    names.into_iter().collect::<Vec<_>>().join(", ")
                );
                ApiError::new(StatusCode::CONFLICT, "table.breaks_flows", msg).with_details(
                    breaks
                        .iter()
                        .map(|b| serde_json::to_value(b).unwrap_or(Value::Null))
                        .collect(),
                )
            }
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> ApiError {
        use crate::auth::AuthError;
        match e {
            AuthError::Busy => ApiError::busy(),
            AuthError::Throttled(secs) => ApiError::throttled(secs),
            AuthError::PasswordTooLong => ApiError::new(
                StatusCode::BAD_REQUEST,
                "auth.password_too_long",
                e.to_string(),
            )
            .with_details(vec![
                json!({"pointer": "/password", "message": e.to_string()}),
            ]),
            e => ApiError::internal("auth.error", e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        ApiError::internal("db.error", e)
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut out = ApiError::new(status, e.public_code(), e.to_string());
        if let RunError::Input(problems) = &e {
            out.details = problems
                .iter()
                .map(|p| json!({"pointer": p.pointer, "message": p.message}))
                .collect();
            let fields: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
            out.message = format!("invalid input at {}", fields.join(", "));
        }
        if let RunError::BadValue {
            pointer, message, ..
        } = &e
        {
            out.details
                .push(json!({"pointer": pointer, "message": message}));
        }
        if let RunError::Conflict { rule, problems, .. } = &e {
            out.details.extend(
                problems
                    .iter()
                    .map(|p| json!({"pointer": p.pointer, "message": p.message, "rule": rule})),
            );
        }
        if let Some(node) = e.node() {
            out.details.push(json!({"node": node}));
        }
        out.retry_after = e.retry_after_secs();
        if status.is_server_error() {
            out.internal = Some(e.to_string());
        }
        out
    }
}

/// Diagnostics of a flow that does not compile: 422 with every problem.
pub fn invalid_flow(problems: Vec<crate::flow::Diagnostic>) -> ApiError {
    let n = problems.len();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "flow.invalid",
        format!("the flow has {n} problem{}", if n == 1 { "" } else { "s" }),
    )
    .with_details(
        problems
            .iter()
            .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
            .collect(),
    )
}
