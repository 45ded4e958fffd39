//! The interpreter: walks a [`Program`] for one request under a whole-request deadline. All
//! writes of a request share one transaction that commits only when the flow ends in a
//! `respond` with a status below 500; `fail`, errors and timeouts roll it back.

use super::error::RunError;
use super::nodes;
use super::program::Program;
use super::sandbox::{DEADLINE_TOKEN, Sandbox};
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
    Next { to: usize, bind: Option<Value> },
    Done(Response),
}

/// Runs a program for one request.
pub async fn run(program: &Program, rt: &Runtime, mut req: Request) -> Result<Response, RunError> {
    program
        .check_input(&mut req.params, &mut req.query, &req.body)
        .map_err(RunError::Input)?;
    let deadline = Instant::now() + Duration::from_millis(program.plan.timeout_ms);
    match tokio::time::timeout_at(deadline.into(), walk(program, rt, req, deadline)).await {
        Ok(result) => result,
        // Dropping the walk drops its transaction, which rolls it back.
        Err(_) => Err(RunError::Timeout),
    }
}

async fn walk(
    program: &Program,
    rt: &Runtime,
    req: Request,
    deadline: Instant,
) -> Result<Response, RunError> {
    let request = serde_json::json!({
        "params": req.params, "query": req.query, "body": req.body, "headers": req.headers,
    });
    let mut scope = Scope::new();
    scope.push_constant_dynamic("request", to_dynamic("request", &request)?);
    scope.push_constant_dynamic("auth", Dynamic::UNIT);
    scope.push_constant_dynamic("env", Dynamic::from_map(rhai::Map::new()));
    let mut cx = Cx {
        rt,
        program,
        scope,
        db: Db {
            pool: &rt.db,
            tx: None,
            writes: program.plan.writes(),
        },
        deadline,
        node: 0,
    };
    let mut at = program.plan.entry;
    // The graph is acyclic, so a run visits each node at most once.
    for _ in 0..=program.plan.nodes.len() {
        cx.node = at;
        let node = &program.plan.nodes[at];
        match nodes::run(&node.op, &mut cx).await? {
            Step::Next { to, bind } => {
                if let (Some(name), Some(value)) = (&node.bind, bind) {
                    let d = to_dynamic(&node.id, &value)?;
                    cx.scope.push_constant_dynamic(name.clone(), d);
                }
                at = to;
            }
            Step::Done(response) => {
                let keep = response.status < 400
                    || (response.status < 500
                        && matches!(node.op, crate::flow::Op::Respond { .. }));
                cx.db
                    .finish(keep)
                    .await
                    .map_err(|e| RunError::from_db(&node.id, e))?;
                return Ok(response);
            }
        }
    }
    Err(RunError::Type {
        node: program.plan.nodes[at].id.clone(),
        message: "the flow did not end".into(),
    })
}

fn to_dynamic(node: &str, v: &Value) -> Result<Dynamic, RunError> {
    rhai::serde::to_dynamic(v).map_err(|e| RunError::Type {
        node: node.to_string(),
        message: e.to_string(),
    })
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
        let len = self.scope.len();
        let Cx {
            rt,
            scope,
            deadline,
            ..
        } = self;
        let result = rt.sandbox.with_deadline(*deadline, |engine| {
            engine.eval_ast_with_scope::<Dynamic>(scope, ast)
        });
        if script {
            self.scope.rewind(len);
        }
        result.map_err(|e| self.script_error(*e))
    }

    pub fn to_json(&self, d: &Dynamic) -> Result<Value, RunError> {
        rhai::serde::from_dynamic::<Value>(d).map_err(|e| RunError::Type {
            node: self.node_id().to_string(),
            message: e.to_string(),
        })
    }

    fn script_error(&self, e: EvalAltResult) -> RunError {
        let node = self.node_id().to_string();
        match e {
            EvalAltResult::ErrorTerminated(token, _)
                if token.clone().into_string().ok().as_deref() == Some(DEADLINE_TOKEN) =>
            {
                if Instant::now() >= self.deadline {
                    RunError::Timeout
                } else {
                    RunError::ScriptLimit {
                        node,
                        what: "time limit reached".into(),
                    }
                }
            }
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
