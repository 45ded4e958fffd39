//! The compiled, immutable form of a flow. Built once at save/publish; every request reuses it.
//! Node references are indices, expressions are compiled ASTs, names are validated [`Ident`]s.

pub use crate::base::{AuthLevel, DEFAULT_AUDIENCE, DEFAULT_GROUP, Method, RateLimit, RateRule};

use super::expr::Template;
use super::node::CompiledOp;
use crate::tables::Ident;
use serde_json::Value;

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
    /// `endpoint.audience`: the `aud` its tokens must carry; `None` is the default audience
    /// (`api`), which tokens without `aud` have too.
    pub audience: Option<String>,
}

impl Endpoint {
    /// The audience the endpoint's tokens must have.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(DEFAULT_AUDIENCE)
    }

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

/// JSON Schemas of the request parts, each compiled once by the flow compiler.
#[derive(Debug, Clone, Default)]
pub struct InputSchemas {
    pub params: Option<InputSchema>,
    pub query: Option<InputSchema>,
    pub body: Option<InputSchema>,
}

/// One request part's schema, as written in the document and compiled into its validator.
#[derive(Clone)]
pub struct InputSchema {
    pub schema: Value,
    pub validator: std::sync::Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A compiled flow; `O` is the compiled node (the engine's runnable op).
#[derive(Debug)]
pub struct Plan<O> {
    pub name: String,
    pub rev: String,
    pub endpoint: Option<Endpoint>,
    /// What runs the flow when it has no endpoint (never both).
    pub trigger: Option<super::trigger::Trigger>,
    /// `settings.retry` and `settings.concurrency` (flows with a trigger; defaults otherwise).
    pub job: JobSettings,
    pub input: InputSchemas,
    pub timeout_ms: u64,
    pub entry: usize,
    /// Where a node's failure goes when its `error` port is unwired.
    pub on_error: Option<usize>,
    pub nodes: Vec<PlanNode<O>>,
    /// `settings.rate_limit`: the endpoint's own request budgets.
    pub rate_limit: Option<RateLimit>,
    /// `settings.read_from` is `primary`: never read on a replica, even when nothing writes.
    pub read_from_primary: bool,
    /// `settings.capture`: the request log keeps this endpoint's requests (redacted).
    pub capture: bool,
    /// `settings.transaction`.
    pub transaction: TransactionMode,
    /// Diagnostics of severity warning: the flow compiles and may be published.
    pub warnings: Vec<super::diag::Diagnostic>,
}

/// `settings.transaction`: how the statements of a run share a transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TransactionMode {
    /// The writes of a run share one transaction (opened at the first statement, committed
    /// with the answer); a run whose one write is its whole answer skips it.
    #[default]
    Auto,
    /// Every statement commits on its own.
    None,
    /// One `SERIALIZABLE` transaction for every statement, reads included; a run that hits a
    /// serialization failure runs again from the start.
    Serializable,
}

impl<O: CompiledOp> Plan<O> {
    /// Whether any node writes, so read-only flows can skip the transaction.
    /// Whether tables' access rules apply to this flow's database nodes: endpoints that are not
    /// `admin`, and functions (they run with their caller's `auth`); not trigger flows, which
    /// have no caller (docs/RULES.md).
    pub fn rules_apply(&self) -> bool {
        match (&self.endpoint, &self.trigger) {
            (Some(e), _) => e.auth != AuthLevel::Admin,
            (None, Some(_)) => false,
            (None, None) => true,
        }
    }

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
        let Some(success) = write.op.table_write().map(|w| w.success) else {
            return true;
        };
        let nested = self.nodes.iter().any(|n| n.op.runs_nested());
        let ends_well = self.nodes.get(success).is_some_and(|n| n.op.ends_cleanly());
        nested || !ends_well
    }
}

/// How the jobs of a flow with a trigger are retried and limited (`settings.retry`,
/// `settings.concurrency`).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Runs in all, the first included.
    pub max_attempts: u32,
    /// The wait before the second attempt; each later one doubles, up to `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// At most this many runs at once (per value of `concurrency_key`) across all instances.
    pub concurrency_limit: Option<u32>,
    /// Computed from the job's `input` and `event` when the job is enqueued.
    pub concurrency_key: Option<Template>,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            max_attempts: 5,
            backoff_ms: 1_000,
            max_backoff_ms: 3_600_000,
            concurrency_limit: None,
            concurrency_key: None,
        }
    }
}

/// One node: its id (for traces and errors), the variable it sets, what it does.
#[derive(Debug)]
pub struct PlanNode<O> {
    pub id: String,
    /// The node type, as written in documents.
    pub type_name: &'static str,
    pub bind: Option<String>,
    pub op: O,
    /// Target of the node's `error` port.
    pub error: Option<usize>,
    /// `rules.bypass`: why this node ignores its table's access rules (docs/RULES.md).
    pub bypass: Option<String>,
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
    /// `sort`: the order a client chooses among allowed columns, in place of `order`.
    pub sort: Option<ClientSort>,
    /// Columns to return; empty means every readable column.
    pub select: Vec<Ident>,
    /// Related rows put into each row (`nodes::include`).
    pub include: Vec<crate::tables::query::Include>,
    pub limit: Template,
    pub offset: Template,
    /// Output `{"rows", "next_cursor"[, "total"]}` instead of the plain array.
    pub page: bool,
    pub count: bool,
    pub cursor: Option<Template>,
}

/// A `db.query`'s client-chosen order: the written sort (`-created_at,title`, `null` or empty
/// for the node's `order_by`) and the columns it may name. Every order it allows has its own
/// statement, built when the flow is published.
#[derive(Debug, Clone)]
pub struct ClientSort {
    pub value: Template,
    pub allow: Vec<Ident>,
}

/// A `db.sql` statement after its `:name` parameters became `$n`.
#[derive(Debug, Clone)]
pub struct Statement {
    pub text: String,
    pub shape: super::sqlscan::Shape,
    /// Parameter names in `$n` order, for traces.
    pub names: Vec<String>,
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
