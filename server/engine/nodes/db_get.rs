//! `db.get` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::flow::expr::Template;

pub async fn run(
    cx: &mut Cx<'_>,
    id: &Template,
    found: usize,
    not_found: Option<usize>,
) -> Result<Step, RunError> {
    let id = cx.eval(id).await?;
    if id.is_null() {
        return missing(cx, not_found);
    }
    match cx.fetch(vec![bind_text(&id)], false).await? {
        Some(row) => Ok(Step::Next {
            port: "found",
            to: found,
            bind: Some(row),
        }),
        None => missing(cx, not_found),
    }
}

/// The `not_found` port, or the standard 404.
pub fn missing(cx: &Cx<'_>, not_found: Option<usize>) -> Result<Step, RunError> {
    match not_found {
        Some(to) => Ok(Step::Next {
            port: "not_found",
            to,
            bind: None,
        }),
        None => Err(RunError::NotFound {
            node: cx.node_id().to_string(),
        }),
    }
}
