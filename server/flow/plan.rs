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

/// Where an endpoint is served.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    /// Path below `/api`, with `{param}` segments (matchit syntax).
    pub path: String,
}

impl Endpoint {
    /// The route with parameter names erased, so `/a/{x}` and `/a/{y}` are known to collide.
    pub fn route_key(&self) -> String {
        let shape: Vec<&str> = self
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect();
        format!("{} {}", self.method.as_str(), shape.join("/"))
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
}

impl Plan {
    /// Whether any node writes, so read-only flows can skip the transaction.
    pub fn writes(&self) -> bool {
        self.nodes.iter().any(|n| n.op.writes())
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

/// A comparison of a `db.query` filter condition (the operators of the table data API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    IsNull,
}

impl FilterOp {
    pub const ALL: [(&'static str, FilterOp); 10] = [
        ("eq", FilterOp::Eq),
        ("ne", FilterOp::Ne),
        ("lt", FilterOp::Lt),
        ("le", FilterOp::Le),
        ("gt", FilterOp::Gt),
        ("ge", FilterOp::Ge),
        ("in", FilterOp::In),
        ("contains", FilterOp::Contains),
        ("starts_with", FilterOp::StartsWith),
        ("is_null", FilterOp::IsNull),
    ];

    pub fn parse(s: &str) -> Option<FilterOp> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, op)| *op)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

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
            Op::If { .. } => "if",
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
    If {
        condition: Template,
        then: usize,
        otherwise: usize,
    },
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Template,
    },
    Fail {
        status: u16,
        code: String,
        message: Template,
    },
}
