//! `respond` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Response, Step};
use crate::flow::expr::Template;

pub fn run(
    cx: &mut Cx<'_>,
    status: u16,
    headers: &[(String, String)],
    body: &Template,
) -> Result<Step, RunError> {
    let body = cx.eval(body)?;
    Ok(Step::Done(Response {
        status,
        headers: headers.to_vec(),
        body,
    }))
}
