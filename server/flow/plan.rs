//! The compiled, immutable form of a flow. Built once at save/publish; every request reuses it.
//! Node references are indices, expressions are compiled ASTs, names are validated [`Ident`]s.

use super::expr::Template;
use crate::tables::Ident;
use rhai::AST;
use serde_json::Value;
use std::sync::Arc;

/// HTTP methods an endpoint can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// Where an endpoint is served.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    /// Path below `/api` and the group's base path, with `{param}` segments (matchit syntax).
    pub path: String,
    /// The API group (`endpoint.group`); `None` is the group `default`.
    pub group: Option<String>,
    /// Who may call it.
    pub auth: AuthLevel,
    /// `endpoint.sandbox` (default true): responses carry `Content-Security-Policy: sandbox`
    /// without `allow-same-origin`, so pages they render get an opaque origin.
    pub sandbox: bool,
}

/// `endpoint.auth`: what a request must carry to be served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

impl Endpoint {
    /// The name of the endpoint's API group.
    pub fn group_name(&self) -> &str {
        self.group.as_deref().unwrap_or(DEFAULT_GROUP)
    }

    /// The route with parameter names erased, so `/a/{x}` and `/a/{y}` are known to collide.
    pub fn route_key(&self) -> String {
        self.route_key_under("")
    }

    /// [`Endpoint::route_key`] of the endpoint served below a group's base path.
    pub fn route_key_under(&self, base_path: &str) -> String {
        let shape: Vec<&str> = self
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect();
        format!("{} {base_path}{}", self.method.as_str(), shape.join("/"))
    }
}

/// JSON Schemas of the request parts, as written in the document.
#[derive(Debug, Clone, Default)]
pub struct InputSchemas {
    pub params: Option<Value>,
    pub query: Option<Value>,
    pub body: Option<Value>,
}

/// A compiled flow.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub rev: String,
    pub endpoint: Option<Endpoint>,
    pub input: InputSchemas,
    pub timeout_ms: u64,
    pub entry: usize,
    /// Where a node's failure goes when its `error` port is unwired.
    pub on_error: Option<usize>,
    pub nodes: Vec<PlanNode>,
    /// `settings.rate_limit`: the endpoint's own request budgets.
    pub rate_limit: Option<RateLimit>,
}

/// Request budgets of one scope (an endpoint, a group, the server): per client address and
/// per bearer token. Each is enforced on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ip: Option<RateRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_token: Option<RateRule>,
}

/// `requests` per `window_secs`: a burst of up to `requests`, refilled evenly over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateRule {
    pub requests: u32,
    pub window_secs: u32,
}

impl Plan {
    /// Whether any node writes, so read-only flows can skip the transaction.
    pub fn writes(&self) -> bool {
        self.nodes.iter().any(|n| n.op.writes())
    }

    /// Whether the writes of a run need an explicit transaction. Not when the flow's only
    /// database node is one `db.insert`, `db.update`, `db.delete` or `db.upsert` (no `call`,
    /// which may write, no `for_each`, which could repeat it) whose success port leads straight
    /// to a `respond` with a status below 400 and a body that cannot fail (literals and bare
    /// names only): such a run commits exactly when its one statement succeeds, and Postgres
    /// runs a single statement atomically, so `BEGIN` and `COMMIT` would only add two round
    /// trips.
    pub fn needs_transaction(&self) -> bool {
        if !self.writes() {
            return false;
        }
        let mut db_nodes = self.nodes.iter().filter(|n| n.op.touches_db());
        let (Some(write), None) = (db_nodes.next(), db_nodes.next()) else {
            return true;
        };
        let single = matches!(
            write.op,
            Op::DbInsert { .. } | Op::DbUpdate { .. } | Op::DbDelete { .. } | Op::DbUpsert { .. }
        );
        let nested = self
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::Call { .. } | Op::ForEach { .. }));
        let ends_well = write
            .op
            .targets()
            .into_iter()
            .filter(|(port, _)| *port == "ok")
            .all(|(_, to)| match self.nodes.get(to).map(|n| &n.op) {
                Some(Op::Respond { status, body, .. }) => *status < 400 && body.cannot_fail(),
                _ => false,
            });
        !(single && !nested && ends_well)
    }
}

/// One node: its id (for traces and errors), the variable it sets, what it does.
#[derive(Debug, Clone)]
pub struct PlanNode {
    pub id: String,
    pub bind: Option<String>,
    pub op: Op,
    /// Target of the node's `error` port.
    pub error: Option<usize>,
}

/// A column and the value to bind for it.
#[derive(Debug, Clone)]
pub struct ColumnValue {
    pub column: Ident,
    pub value: Template,
}

/// One `ORDER BY` term.
#[derive(Debug, Clone)]
pub struct OrderTerm {
    pub column: Ident,
    pub desc: bool,
}

pub use crate::tables::query::FilterOp;

/// One condition of a `db.query` filter. At run time a `null` value skips the condition.
#[derive(Debug, Clone)]
pub struct Condition {
    pub column: Ident,
    pub op: FilterOp,
    pub value: Template,
}

/// A `db.query` filter: conditions nested in `and`/`or` groups.
#[derive(Debug, Clone)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Cond(Condition),
}

impl Filter {
    /// The conditions in document order (depth first). The SQL builder numbers parameters in
    /// this order and the run step evaluates values in it.
    pub fn conditions(&self) -> Vec<&Condition> {
        fn walk<'f>(f: &'f Filter, out: &mut Vec<&'f Condition>) {
            match f {
                Filter::And(items) | Filter::Or(items) => items.iter().for_each(|i| walk(i, out)),
                Filter::Cond(c) => out.push(c),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

/// Everything a `db.query` node reads.
#[derive(Debug, Clone)]
pub struct Query {
    pub table: Ident,
    /// `where`: equality with each value (ANDed; `null` matches nothing).
    pub filters: Vec<ColumnValue>,
    /// `filter`: ANDed with `where`.
    pub filter: Option<Filter>,
    pub order: Vec<OrderTerm>,
    /// Columns to return; empty means every readable column.
    pub select: Vec<Ident>,
    /// Reference columns whose referenced row replaces the id in the output.
    pub include: Vec<Ident>,
    pub limit: Template,
    pub offset: Template,
    /// Output `{"rows", "next_cursor"[, "total"]}` instead of the plain array.
    pub page: bool,
    pub count: bool,
    pub cursor: Option<Template>,
}

/// A `db.sql` statement after its `:name` parameters became `$n`.
#[derive(Debug, Clone)]
pub struct Statement {
    pub text: String,
    pub shape: super::sqlscan::Shape,
    /// Parameter names in `$n` order, for traces.
    pub names: Vec<String>,
}

impl Op {
    /// The ports this node can fire and their targets (fixed ports only; switch cases are
    /// listed as `case`).
    pub fn targets(&self) -> Vec<(&'static str, usize)> {
        let opt = |name, t: &Option<usize>| t.map(|t| (name, t));
        match self {
            Op::Validate { ok, invalid, .. } => [Some(("ok", *ok)), opt("invalid", invalid)]
                .into_iter()
                .flatten()
                .collect(),
            Op::DbGet {
                found, not_found, ..
            } => [Some(("found", *found)), opt("not_found", not_found)]
                .into_iter()
                .flatten()
                .collect(),
            Op::DbQuery { ok, .. }
            | Op::Script { ok, .. }
            | Op::Set { ok, .. }
            | Op::ForEach { ok, .. }
            | Op::Call { ok, .. } => vec![("ok", *ok)],
            Op::DbInsert { ok, conflict, .. } => [Some(("ok", *ok)), opt("conflict", conflict)]
                .into_iter()
                .flatten()
                .collect(),
            Op::DbUpdate {
                ok,
                not_found,
                conflict,
                ..
            }
            | Op::DbDelete {
                ok,
                not_found,
                conflict,
                ..
            } => [
                Some(("ok", *ok)),
                opt("not_found", not_found),
                opt("conflict", conflict),
            ]
            .into_iter()
            .flatten()
            .collect(),
            Op::Switch { cases, default, .. } => cases
                .iter()
                .map(|(_, t)| ("case", *t))
                .chain([("default", *default)])
                .collect(),
            Op::If {
                then, otherwise, ..
            } => vec![("then", *then), ("else", *otherwise)],
            Op::HttpRequest(h) => vec![("ok", h.ok)],
            Op::Template { ok, .. }
            | Op::AuthHashPassword { ok, .. }
            | Op::AuthIssueToken { ok, .. } => vec![("ok", *ok)],
            Op::AuthVerifyPassword { valid, invalid, .. } => {
                [Some(("valid", *valid)), opt("invalid", invalid)]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            Op::DbUpsert { ok, conflict, .. } => [Some(("ok", *ok)), opt("conflict", conflict)]
                .into_iter()
                .flatten()
                .collect(),
            Op::DbSql { ok, .. } => vec![("ok", *ok)],
            Op::Respond { .. } | Op::Fail { .. } | Op::Collect { .. } => Vec::new(),
        }
    }

    /// The node type, as written in documents.
    pub fn type_name(&self) -> &'static str {
        match self {
            Op::Validate { .. } => "validate",
            Op::DbGet { .. } => "db.get",
            Op::DbQuery { .. } => "db.query",
            Op::DbInsert { .. } => "db.insert",
            Op::DbUpdate { .. } => "db.update",
            Op::DbDelete { .. } => "db.delete",
            Op::DbUpsert { .. } => "db.upsert",
            Op::DbSql { .. } => "db.sql",
            Op::Script { .. } => "script",
            Op::Set { .. } => "set",
            Op::Switch { .. } => "switch",
            Op::ForEach { .. } => "for_each",
            Op::Collect { .. } => "collect",
            Op::Call { .. } => "call",
            Op::If { .. } => "if",
            Op::HttpRequest(_) => "http.request",
            Op::Template { .. } => "template",
            Op::AuthHashPassword { .. } => "auth.hash_password",
            Op::AuthVerifyPassword { .. } => "auth.verify_password",
            Op::AuthIssueToken { .. } => "auth.issue_token",
            Op::Respond { .. } => "respond",
            Op::Fail { .. } => "fail",
        }
    }

    /// Whether the node may write, so its flow runs in a transaction. `db.sql` always counts:
    /// its statement is the builder's, and its role switch needs a transaction.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Op::DbInsert { .. }
                | Op::DbUpdate { .. }
                | Op::DbDelete { .. }
                | Op::DbUpsert { .. }
                | Op::DbSql { .. }
        )
    }

    /// Whether the node runs a database statement.
    pub fn touches_db(&self) -> bool {
        self.writes() || matches!(self, Op::DbGet { .. } | Op::DbQuery { .. })
    }
}

/// What `auth.verify_password` checks the password against.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An argon2 hash the flow computed or loaded.
    Hash(Template),
    /// The password field of the account whose email field equals `email`. Fields left out
    /// are the table's only email and password fields (resolved against the catalog).
    Account {
        table: Ident,
        email: Template,
        email_field: Option<Ident>,
        password_field: Option<Ident>,
    },
}

/// How a `respond` body is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentType {
    /// JSON text, `application/json`.
    #[default]
    Json,
    /// A string as is, `text/plain; charset=utf-8`.
    Text,
    /// A string as is, `text/html; charset=utf-8`.
    Html,
}

impl ContentType {
    /// The `Content-Type` header value.
    pub fn header_value(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Text => "text/plain; charset=utf-8",
            ContentType::Html => "text/html; charset=utf-8",
        }
    }
}

/// How an `http.request` sends its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// JSON text, `application/json`.
    #[default]
    Json,
    /// A string as is, `text/plain; charset=utf-8`.
    Text,
    /// An object as `application/x-www-form-urlencoded`.
    Form,
}

/// The URL of an `http.request`: parsed at compile time when it is a literal.
#[derive(Debug, Clone)]
pub enum UrlSpec {
    Fixed(url::Url),
    Computed(Template),
}

/// A compiled `http.request` (boxed in [`Op`]: it is the largest op).
#[derive(Debug, Clone)]
pub struct HttpRequestOp {
    pub method: http::Method,
    pub url: UrlSpec,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub query: Vec<(String, Template)>,
    pub body: Option<Template>,
    pub body_format: BodyFormat,
    pub timeout: std::time::Duration,
    pub ok: usize,
}

/// A compiled tera template: one template in its own tera instance, parsed once.
#[derive(Clone)]
pub struct CompiledTemplate {
    pub tera: tera::Tera,
    /// The template's name inside `tera`; its suffix decides autoescaping.
    pub name: &'static str,
}

impl std::fmt::Debug for CompiledTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompiledTemplate({})", self.name)
    }
}

/// What a node does; ports are indices into [`Plan::nodes`], optional ports fall back to the
/// standard error response.
#[derive(Debug, Clone)]
pub enum Op {
    Validate {
        value: Template,
        schema: Arc<jsonschema::Validator>,
        ok: usize,
        invalid: Option<usize>,
    },
    DbGet {
        table: Ident,
        id: Template,
        found: usize,
        not_found: Option<usize>,
    },
    DbQuery {
        query: Box<Query>,
        ok: usize,
    },
    DbInsert {
        table: Ident,
        values: Vec<ColumnValue>,
        ok: usize,
        conflict: Option<usize>,
    },
    DbUpdate {
        table: Ident,
        id: Template,
        values: Vec<ColumnValue>,
        patch: Option<Template>,
        ok: usize,
        not_found: Option<usize>,
        conflict: Option<usize>,
    },
    DbDelete {
        table: Ident,
        id: Template,
        ok: usize,
        not_found: Option<usize>,
        conflict: Option<usize>,
    },
    DbUpsert {
        table: Ident,
        values: Vec<ColumnValue>,
        /// The conflict target: columns covered by a unique constraint or index.
        on: Vec<Ident>,
        ok: usize,
        conflict: Option<usize>,
    },
    DbSql {
        statement: Statement,
        /// One value per `$n`, in order.
        params: Vec<Template>,
        ok: usize,
    },
    Script {
        ast: Arc<AST>,
        ok: usize,
    },
    Set {
        value: Template,
        ok: usize,
    },
    Switch {
        value: Template,
        /// The literal of each case and its port's target, in order.
        cases: Vec<(Value, usize)>,
        default: usize,
    },
    ForEach {
        items: Template,
        item: String,
        /// Entry of the body in the plan's node list.
        body: usize,
        ok: usize,
    },
    Collect {
        value: Template,
    },
    Call {
        flow: String,
        input: Template,
        ok: usize,
    },
    If {
        condition: Template,
        then: usize,
        otherwise: usize,
    },
    HttpRequest(Box<HttpRequestOp>),
    Template {
        template: Arc<CompiledTemplate>,
        context: Template,
        ok: usize,
    },
    AuthHashPassword {
        password: Template,
        ok: usize,
    },
    AuthVerifyPassword {
        password: Template,
        against: Credential,
        valid: usize,
        invalid: Option<usize>,
    },
    AuthIssueToken {
        sub: Template,
        claims: Option<Template>,
        expires_in: u32,
        ok: usize,
    },
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Template,
        content_type: ContentType,
    },
    Fail {
        status: u16,
        code: String,
        message: Template,
    },
}
