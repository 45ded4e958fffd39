//! Plain types shared by several layers: an endpoint's method and auth level, rate budgets,
//! the default API group's name, and the `{pointer, message}` problem that every checker
//! reports. The bottom of the dependency rule: it uses no other Sluice module and no IO.

use serde::{Deserialize, Serialize};

/// HTTP methods an endpoint can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
        }
    }
}

/// The API group of endpoints that name none; it always exists.
pub const DEFAULT_GROUP: &str = "default";

/// The audience (`aud` claim) of end-user tokens for the application's own endpoints: what
/// `auth.issue_token` issues and `endpoint.auth` accepts unless they name another; a token
/// without `aud` has it.
pub const DEFAULT_AUDIENCE: &str = "api";

/// `endpoint.auth`: what a request must carry to be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthLevel {
    /// Anyone; the flow sees `auth` as `null`.
    #[default]
    Public,
    /// A valid end-user bearer token.
    User,
    /// A valid end-user bearer token whose `role` claim is `"admin"`.
    Admin,
}

/// Request budgets of one scope (an endpoint, a group, the server): per client address and
/// per bearer token. Each is enforced on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<RateRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_token: Option<RateRule>,
}

/// `requests` per `window_secs`: a burst of up to `requests`, refilled evenly over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    pub requests: u32,
    pub window_secs: u32,
}

/// One problem with something a client sent: where (a JSON pointer into it) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

impl Problem {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}
