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
    let id = cx.eval(id)?;
    if id.is_null() {
        return missing(cx, not_found);
    }
    let sql = cx.sql();
    let row = cx
        .db
        .one(sql, vec![bind_text(&id)])
        .await
        .map_err(|e| RunError::from_db(cx.node_id(), e))?;
    match row {
        Some(row) => Ok(Step::Next {
            to: found,
            bind: Some(row),
        }),
        None => missing(cx, not_found),
    }
}

fn missing(cx: &Cx<'_>, not_found: Option<usize>) -> Result<Step, RunError> {
    match not_found {
        Some(to) => Ok(Step::Next { to, bind: None }),
        None => Err(RunError::NotFound {
            node: cx.node_id().to_string(),
        }),
    }
}
