//! The interpreter: walks a [`Program`] for one request under a whole-request deadline. All
//! writes of a request share one transaction that commits only when the flow ends in a
//! `respond` with a status below 500; `fail`, errors and timeouts roll it back.

use super::error::RunError;
use super::nodes;
use super::program::Program;
use super::sandbox::{self, DEADLINE_TOKEN, OPERATIONS_TOKEN, Sandbox};
use super::sql::{ParamKind, Prepared};
use crate::flow::expr::Template;
use rhai::{Dynamic, EvalAltResult, Scope};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use std::time::{Duration, Instant};

/// What a flow runs against.
pub struct Runtime {
    pub db: PgPool,
    pub sandbox: Sandbox,
}

/// The parts of an HTTP request a flow sees, already parsed.
#[derive(Debug, Default)]
pub struct Request {
    pub params: Map<String, Value>,
    pub query: Map<String, Value>,
    pub body: Value,
    /// Lowercase names; credentials (authorization, cookie) are never included.
    pub headers: Map<String, Value>,
}

/// The response a flow produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// Where a node sends the run next.
pub enum Step {
    Next {
        /// The port that fired.
        port: &'static str,
        to: usize,
        bind: Option<Value>,
    },
    Done(Response),
}

/// One node of a debug run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TraceEntry {
    pub node: String,
    #[serde(rename = "type")]
    pub node_type: &'static str,
    /// The port that fired (`error` when the node failed and a handler took over).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<&'static str>,
    pub duration_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// How a debug run treats its writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Commit the writes as a real request would; otherwise roll everything back.
    pub commit: bool,
}

/// Runs a program for one request.
pub async fn run(program: &Program, rt: &Runtime, req: Request) -> Result<Response, RunError> {
    run_inner(program, rt, req, None, true).await
}

/// Runs a program with a trace of every node, for the editor's debug runs.
pub async fn run_traced(
    program: &Program,
    rt: &Runtime,
    req: Request,
    opts: RunOptions,
) -> (Result<Response, RunError>, Vec<TraceEntry>) {
    let mut trace = Vec::new();
    let result = run_inner(program, rt, req, Some(&mut trace), opts.commit).await;
    (result, trace)
}

async fn run_inner(
    program: &Program,
    rt: &Runtime,
    mut req: Request,
    trace: Option<&mut Vec<TraceEntry>>,
    commit: bool,
) -> Result<Response, RunError> {
    program
        .check_input(&mut req.params, &mut req.query, &req.body)
        .map_err(RunError::Input)?;
    let deadline = Instant::now() + Duration::from_millis(program.plan.timeout_ms);
    match tokio::time::timeout_at(
        deadline.into(),
        walk(program, rt, req, deadline, trace, commit),
    )
    .await
    {
        Ok(result) => result,
        // Dropping the walk drops its transaction, which rolls it back.
        Err(_) => Err(RunError::Timeout),
    }
}

/// The value of `error` in an error handler.
fn error_value(e: &RunError, node: &str) -> Value {
    serde_json::json!({"code": e.code(), "message": e.to_string(), "status": e.status(), "node": node})
}

/// Failures a flow may handle. Timeouts end the request; a missing row and invalid input
/// have their own ports and default answers.
fn handleable(e: &RunError) -> bool {
    !matches!(
        e,
        RunError::Timeout | RunError::NotFound { .. } | RunError::Input(_)
    )
}

async fn walk(
    program: &Program,
    rt: &Runtime,
    req: Request,
    deadline: Instant,
    mut trace: Option<&mut Vec<TraceEntry>>,
    commit: bool,
) -> Result<Response, RunError> {
    // Built straight from the parsed parts, which the request owns and no longer needs.
    let mut request = rhai::Map::new();
    for (name, part) in [
        ("params", Value::Object(req.params)),
        ("query", Value::Object(req.query)),
        ("body", req.body),
        ("headers", Value::Object(req.headers)),
    ] {
        request.insert(name.into(), sandbox::to_dynamic(part));
    }
    let mut scope = Scope::new();
    scope.push_constant_dynamic("request", Dynamic::from_map(request));
    scope.push_constant_dynamic("auth", Dynamic::UNIT);
    scope.push_constant_dynamic("env", Dynamic::from_map(rhai::Map::new()));
    let plan = &program.plan;
    let mut cx = Cx {
        rt,
        program,
        scope,
        db: Db {
            pool: &rt.db,
            tx: None,
            writes: plan.writes(),
        },
        deadline,
        node: 0,
        input: None,
        tracing: trace.is_some(),
    };
    let mut at = plan.entry;
    let mut in_handler = false;
    // The graph is acyclic, so a run visits each node at most once (plus one handler path).
    for _ in 0..=(2 * plan.nodes.len()) {
        cx.node = at;
        cx.input = None;
        let node = &plan.nodes[at];
        let started = cx.tracing.then(Instant::now);
        let outcome = nodes::run(&node.op, &mut cx).await;
        let mut entry = trace.as_ref().map(|_| TraceEntry {
            node: node.id.clone(),
            node_type: node.op.type_name(),
            port: None,
            duration_us: started.map_or(0, |t| t.elapsed().as_micros() as u64),
            input: cx.input.take(),
            output: None,
            error: None,
        });
        let step = match outcome {
            Ok(step) => step,
            Err(e)
                if handleable(&e)
                    && (node.error.is_some() || (plan.on_error.is_some() && !in_handler)) =>
            {
                let value = error_value(&e, &node.id);
                if let Some(t) = entry.as_mut() {
                    t.port = Some("error");
                    t.error = Some(value.clone());
                }
                cx.scope
                    .push_constant_dynamic("error", sandbox::to_dynamic(value));
                at = match node.error {
                    Some(to) => to,
                    None => {
                        in_handler = true;
                        plan.on_error.unwrap_or(at)
                    }
                };
                push(&mut trace, entry);
                continue;
            }
            Err(e) => {
                if let Some(t) = entry.as_mut() {
                    t.error = Some(error_value(&e, &node.id));
                }
                push(&mut trace, entry);
                return Err(e);
            }
        };
        match step {
            Step::Next { port, to, bind } => {
                if let Some(t) = entry.as_mut() {
                    t.port = Some(port);
                    t.output = bind.as_ref().map(redact);
                }
                push(&mut trace, entry);
                if let (Some(name), Some(value)) = (&node.bind, bind) {
                    cx.scope
                        .push_constant_dynamic(name.as_str(), sandbox::to_dynamic(value));
                }
                at = to;
            }
            Step::Done(response) => {
                if let Some(t) = entry.as_mut() {
                    t.output = Some(
                        serde_json::json!({"status": response.status, "body": redact(&response.body)}),
                    );
                }
                push(&mut trace, entry);
                let keep = commit
                    && (response.status < 400
                        || (response.status < 500
                            && matches!(node.op, crate::flow::Op::Respond { .. })));
                cx.db
                    .finish(keep)
                    .await
                    .map_err(|e| RunError::from_db(&node.id, e))?;
                return Ok(response);
            }
        }
    }
    Err(RunError::Type {
        node: plan.nodes[at].id.clone(),
        message: "the flow did not end".into(),
    })
}

fn push(trace: &mut Option<&mut Vec<TraceEntry>>, entry: Option<TraceEntry>) {
    if let (Some(t), Some(e)) = (trace.as_mut(), entry) {
        t.push(e);
    }
}

/// Largest value a trace keeps per node, as JSON text.
const TRACE_VALUE_LIMIT: usize = 16 * 1024;

/// A value as a trace may show it: cut down when large.
fn redact(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= TRACE_VALUE_LIMIT {
        return v.clone();
    }
    let mut cut = TRACE_VALUE_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    serde_json::json!({"truncated": true, "bytes": text.len(), "preview": &text[..cut]})
}

/// The state of one run that node steps use.
pub struct Cx<'a> {
    pub rt: &'a Runtime,
    pub program: &'a Program,
    pub scope: Scope<'static>,
    pub db: Db<'a>,
    pub deadline: Instant,
    /// Index of the running node.
    pub node: usize,
    /// What the running node worked on, for the trace (set only when tracing).
    pub input: Option<Value>,
    pub tracing: bool,
}

impl<'a> Cx<'a> {
    pub fn node_id(&self) -> &str {
        &self.program.plan.nodes[self.node].id
    }

    /// The node's prepared statement, borrowed from the program rather than from `self`, so a
    /// step can hold it while using `self.db`.
    pub fn prepared(&self) -> &'a Prepared {
        static NONE: Prepared = Prepared {
            text: String::new(),
            kinds: Vec::new(),
            patch: Vec::new(),
        };
        let program: &'a Program = self.program;
        program.sql[self.node].as_ref().unwrap_or(&NONE)
    }

    /// The text bound for a value: JSON columns get JSON text, passwords are hashed.
    pub async fn param(&self, kind: ParamKind, v: &Value) -> Result<Option<String>, RunError> {
        match (kind, v) {
            (_, Value::Null) => Ok(None),
            (ParamKind::Json, v) => Ok(Some(v.to_string())),
            (ParamKind::Password, Value::String(s)) if !s.is_empty() => {
                let hash = crate::auth::hash_password(s.clone())
                    .await
                    .map_err(|e| self.type_error(e.to_string()))?;
                Ok(Some(hash))
            }
            (ParamKind::Password, _) => Err(RunError::InvalidValue {
                node: self.node_id().to_string(),
                message: "a password must be non-empty text".into(),
            }),
            (ParamKind::Text, v) => Ok(bind_text(v)),
        }
    }

    /// Records what the node works on, when a trace is being kept.
    pub fn note_input(&mut self, make: impl FnOnce() -> Value) {
        if self.tracing {
            self.input = Some(make());
        }
    }

    /// Whether a failure of the running node is handled by the flow (its `error` port or the
    /// flow's `on_error`), so its statement must not abort the request's transaction.
    pub fn failure_handled(&self) -> bool {
        let plan = &self.program.plan;
        plan.nodes[self.node].error.is_some() || plan.on_error.is_some()
    }

    /// Runs the node's statement; `guarded` wraps it in a savepoint so a refused write (wired to
    /// a `conflict` port) does not abort the request's transaction.
    pub async fn fetch(
        &mut self,
        binds: Vec<Option<String>>,
        guarded: bool,
    ) -> Result<Option<Value>, RunError> {
        let sql = self.prepared().text.as_str();
        let node: &'a str = {
            let program: &'a Program = self.program;
            &program.plan.nodes[self.node].id
        };
        let guarded = guarded || self.failure_handled();
        self.db
            .one(sql, binds, guarded)
            .await
            .map_err(|e| RunError::from_db(node, e))
    }

    /// Computes a value.
    pub fn eval(&mut self, t: &Template) -> Result<Value, RunError> {
        match t {
            Template::Literal(v) => Ok(v.clone()),
            Template::Expr(ast) => {
                let d = self.eval_ast(ast, false)?;
                self.to_json(&d)
            }
            Template::Object(parts) => {
                let mut m = Map::new();
                for (k, t) in parts {
                    m.insert(k.clone(), self.eval(t)?);
                }
                Ok(Value::Object(m))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| self.eval(t))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }

    /// Runs an expression or script; scripts may declare variables, which end with the script.
    pub fn eval_ast(&mut self, ast: &rhai::AST, script: bool) -> Result<Dynamic, RunError> {
        let result = self
            .rt
            .sandbox
            .eval_ast(self.deadline, &mut self.scope, ast, script);
        result.map_err(|e| self.script_error(*e))
    }

    pub fn to_json(&self, d: &Dynamic) -> Result<Value, RunError> {
        sandbox::to_json(d).map_err(|message| RunError::Type {
            node: self.node_id().to_string(),
            message,
        })
    }

    fn script_error(&self, e: EvalAltResult) -> RunError {
        let node = self.node_id().to_string();
        match e {
            e if sandbox::is_token(&e, DEADLINE_TOKEN) => {
                if Instant::now() >= self.deadline {
                    RunError::Timeout
                } else {
                    RunError::ScriptLimit {
                        node,
                        what: "time limit reached".into(),
                    }
                }
            }
            e if sandbox::is_token(&e, OPERATIONS_TOKEN) => RunError::ScriptLimit {
                node,
                what: "too many operations".into(),
            },
            EvalAltResult::ErrorTooManyOperations(_)
            | EvalAltResult::ErrorStackOverflow(_)
            | EvalAltResult::ErrorDataTooLarge(..)
            | EvalAltResult::ErrorTooManyVariables(_) => RunError::ScriptLimit {
                node,
                what: e.to_string(),
            },
            other => RunError::Script {
                node,
                message: other.to_string(),
            },
        }
    }

    pub fn type_error(&self, message: impl Into<String>) -> RunError {
        RunError::Type {
            node: self.node_id().to_string(),
            message: message.into(),
        }
    }
}

/// Values bound to SQL placeholders: text that Postgres casts to the column type.
pub fn bind_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The database side of a run: the pool for read-only flows, else one lazily opened transaction.
pub struct Db<'a> {
    pool: &'a PgPool,
    tx: Option<Transaction<'static, Postgres>>,
    writes: bool,
}

impl Db<'_> {
    /// Runs a statement that yields at most one JSON value.
    pub async fn one(
        &mut self,
        sql: &str,
        binds: Vec<Option<String>>,
        guarded: bool,
    ) -> Result<Option<Value>, sqlx::Error> {
        let mut q = sqlx::query_scalar::<_, Json<Value>>(sql);
        for b in binds {
            q = q.bind(b);
        }
        if !self.writes {
            return Ok(q.fetch_optional(self.pool).await?.map(|Json(v)| v));
        }
        let tx = match &mut self.tx {
            Some(tx) => tx,
            None => self.tx.insert(self.pool.begin().await?),
        };
        if !guarded {
            return Ok(q.fetch_optional(&mut **tx).await?.map(|Json(v)| v));
        }
        sqlx::query("SAVEPOINT sluice_node")
            .execute(&mut **tx)
            .await?;
        match q.fetch_optional(&mut **tx).await {
            Ok(row) => {
                sqlx::query("RELEASE SAVEPOINT sluice_node")
                    .execute(&mut **tx)
                    .await?;
                Ok(row.map(|Json(v)| v))
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT sluice_node")
                    .execute(&mut **tx)
                    .await?;
                Err(e)
            }
        }
    }

    async fn finish(&mut self, commit: bool) -> Result<(), sqlx::Error> {
        match self.tx.take() {
            Some(tx) if commit => tx.commit().await,
            Some(tx) => tx.rollback().await,
            None => Ok(()),
        }
    }
}
