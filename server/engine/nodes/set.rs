//! `set` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;

pub async fn run(cx: &mut Cx<'_>, value: &Template, ok: usize) -> Result<Step, RunError> {
    let v = cx.eval(value).await?;
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(v),
    })
}
