//! `collect` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;

pub async fn run(cx: &mut Cx<'_>, value: &Template) -> Result<Step, RunError> {
    Ok(Step::Collected(cx.eval(value).await?))
}
