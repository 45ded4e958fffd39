//! `call` at run time: the function runs on the caller's connection and transaction, under
//! the caller's deadline and step budget, with its own scope.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Db, End, Step, walk_graph};
use crate::flow::expr::Template;
use rhai::{Dynamic, Scope};
use serde_json::{Map, Value};

/// How deep calls may nest (a function calling a function ...).
pub const MAX_DEPTH: usize = 8;

pub async fn run(
    cx: &mut Cx<'_>,
    flow: &str,
    input: &Template,
    ok: usize,
) -> Result<Step, RunError> {
    let node = cx.node_id().to_string();
    if cx.depth >= MAX_DEPTH {
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
    let mut db = std::mem::replace(&mut cx.db, Db::detached(cx.rt.db.clone()));
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
    };
    let end = walk_graph(&mut inner, function.plan.entry, function.plan.on_error).await;
    cx.read_secret |= inner.read_secret;
    cx.steps = inner.steps;
    cx.db = inner.db;
    match end? {
        End::Respond { response, .. } if response.status < 400 => Ok(Step::Next {
            port: "ok",
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
