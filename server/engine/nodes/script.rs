//! `script` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};

pub fn run(cx: &mut Cx<'_>, ast: &rhai::AST, ok: usize) -> Result<Step, RunError> {
    let d = cx.eval_ast(ast, true)?;
    let v = cx.to_json(&d)?;
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(v),
    })
}
