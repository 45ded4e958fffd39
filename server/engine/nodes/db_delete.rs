//! `db.delete` at run time.

use super::db_get::missing;
use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::flow::expr::Template;

pub async fn run(
    cx: &mut Cx<'_>,
    id: &Template,
    ok: usize,
    not_found: Option<usize>,
    conflict: Option<usize>,
) -> Result<Step, RunError> {
    let id = cx.eval(id).await?;
    if id.is_null() {
        return missing(cx, not_found);
    }
    match cx.fetch(vec![bind_text(&id)], conflict.is_some()).await {
        Ok(Some(row)) => Ok(Step::Next {
            port: "ok",
            to: ok,
            bind: Some(row),
        }),
        Ok(None) => missing(cx, not_found),
        Err(RunError::Conflict { .. }) if let Some(to) = conflict => Ok(Step::Next {
            port: "conflict",
            to,
            bind: None,
        }),
        Err(e) => Err(e),
    }
}
