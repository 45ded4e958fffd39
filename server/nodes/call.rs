//! `call`: runs a published function flow (a flow without an endpoint) with `input` as its
//! `request.body`, in the same transaction and under the same deadline. `ok` binds `as` to
//! the body of the function's `respond`; a function that ends in `fail` (or a status of 400
//! or more) fails the call with that status, code and message.

use crate::engine::run::{Cx, Db, End, MAX_CALL_DEPTH, Step, walk_graph};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::Diagnostic;
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port};
use rhai::{Dynamic, Scope};
use serde::Deserialize;
use serde_json::{Map, Value};

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!("call", &[OK], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    flow: String,
    #[serde(default)]
    input: Value,
}

/// A compiled `call`.
#[derive(Debug)]
pub(crate) struct CallOp {
    flow: String,
    input: Template,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let input = cx.template(&cfg.input, "input");
    if let Some(known) = cx.catalog.and_then(|c| c.function_exists(&cfg.flow))
        && !known
    {
        let at = format!("{}/flow", cx.pointer);
        cx.expr.push(Diagnostic::new(
            "flow.unknown_function",
            at,
            format!("there is no published function flow `{}`", cfg.flow),
        ));
        return None;
    }
    Some(Box::new(CallOp {
        flow: cfg.flow,
        input: input?,
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for CallOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn runs_nested(&self) -> bool {
        true
    }
}

impl Runnable for CallOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, &self.flow, &self.input, self.ok))
    }
}

/// The function runs on the caller's connection and transaction, under the caller's deadline
/// and step budget, with its own scope.
async fn run(cx: &mut Cx<'_>, flow: &str, input: &Template, ok: usize) -> Result<Step, RunError> {
    let node = cx.node_id().to_string();
    if cx.depth >= MAX_CALL_DEPTH {
        return Err(RunError::CallDepth { node });
    }
    let Some(function) = cx.live.functions.get(flow).cloned() else {
        return Err(RunError::UnknownFunction {
            node,
            name: flow.to_string(),
        });
    };
    let mut body = cx.eval(input).await?;
    cx.note_input(|| body.clone());
    let (mut params, mut query) = (Map::new(), Map::new());
    function
        .check_input(&mut params, &mut query, &mut body)
        .map_err(RunError::Input)?;
    let request = serde_json::json!({"params": {}, "query": {}, "body": body, "headers": {}});
    let mut scope = Scope::new();
    scope.push_constant_dynamic("request", crate::engine::sandbox::to_dynamic(request));
    // The function runs for the same caller: it sees the calling request's `auth`.
    let auth = cx
        .scope
        .get_value::<Dynamic>("auth")
        .unwrap_or(Dynamic::UNIT);
    scope.push_constant_dynamic("auth", auth);
    scope.push_constant_dynamic("env", cx.live.env.public.clone());

    // The callee borrows the caller's database state and gives it back afterwards.
    let writes = cx.db.writes || function.plan.writes();
    let mut db = std::mem::replace(&mut cx.db, Db::detached(cx.rt.lane.clone()));
    db.writes = writes;
    let mut inner = Cx {
        rt: cx.rt,
        live: cx.live,
        program: &function,
        scope,
        db,
        deadline: cx.deadline,
        node: function.plan.entry,
        input: None,
        trace: cx.trace,
        steps: cx.steps,
        depth: cx.depth + 1,
        bound: Default::default(),
        read_secret: cx.read_secret,
        job_id: cx.job_id,
        auth: cx.auth.clone(),
    };
    let end = walk_graph(&mut inner, function.plan.entry, function.plan.on_error).await;
    cx.read_secret |= inner.read_secret;
    cx.steps = inner.steps;
    cx.db = inner.db;
    match end? {
        End::Respond { response, .. } if response.status < 400 => Ok(Step::Next {
            port: OK.name,
            to: ok,
            bind: Some(response.body),
        }),
        End::Respond { response, .. } => {
            let error = response.body.get("error");
            let text = |k: &str| {
                error
                    .and_then(|e| e.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            Err(RunError::CallFailed {
                node,
                status: response.status,
                code: text("code").unwrap_or_else(|| "flow.call_failed".into()),
                message: text("message")
                    .unwrap_or_else(|| format!("function `{flow}` answered {}", response.status)),
            })
        }
        End::Collected(_) => Err(RunError::Type {
            node,
            message: "a function cannot end in collect".into(),
        }),
    }
}
