//! `script` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};

pub async fn run(
    cx: &mut Cx<'_>,
    ast: &std::sync::Arc<rhai::AST>,
    ok: usize,
) -> Result<Step, RunError> {
    let d = cx.eval_ast(ast, true).await?;
    let v = cx.to_json(&d)?;
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(v),
    })
}
