//! `script`: runs Rhai statements; `ok` binds `as` to the value of the last statement.
//! The script sees the same names as expressions, read-only.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, Runnable, StepFuture};
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, Port};
use serde::Deserialize;
use serde_json::Value;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!("script", &[OK], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    code: String,
}

/// A compiled `script`.
#[derive(Debug)]
pub(crate) struct ScriptOp {
    ast: std::sync::Arc<rhai::AST>,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let at = format!("{}/code", cx.pointer);
    let ast = cx.expr.script(&cfg.code, &at)?;
    Some(Box::new(ScriptOp {
        ast: std::sync::Arc::new(ast),
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for ScriptOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
}

impl Runnable for ScriptOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let d = cx.eval_ast(&self.ast, true).await?;
            let v = cx.to_json(&d)?;
            Ok(Step::Next {
                port: OK.name,
                to: self.ok,
                bind: Some(v),
            })
        })
    }
}
