//! `db.insert` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::flow::plan::ColumnValue;

pub async fn run(
    cx: &mut Cx<'_>,
    values: &[ColumnValue],
    ok: usize,
    conflict: Option<usize>,
) -> Result<Step, RunError> {
    let mut binds = Vec::with_capacity(values.len());
    for v in values {
        binds.push(bind_text(&cx.eval(&v.value)?));
    }
    let sql = cx.sql();
    match cx
        .db
        .one(sql, binds)
        .await
        .map_err(|e| RunError::from_db(cx.node_id(), e))
    {
        Ok(row) => Ok(Step::Next { to: ok, bind: row }),
        Err(RunError::Conflict { .. }) if conflict.is_some() => Ok(Step::Next {
            to: conflict.unwrap_or(ok),
            bind: None,
        }),
        Err(e) => Err(e),
    }
}
