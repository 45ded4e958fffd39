//! `db.insert` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::plan::ColumnValue;

pub async fn run(
    cx: &mut Cx<'_>,
    values: &[ColumnValue],
    ok: usize,
    conflict: Option<usize>,
) -> Result<Step, RunError> {
    let kinds = &cx.prepared().kinds;
    let mut binds = Vec::with_capacity(values.len());
    for (v, kind) in values.iter().zip(kinds) {
        let value = cx.eval(&v.value).await?;
        cx.check_storable(&value, &v.value, None, || format!("values/{}", v.column))?;
        binds.push(cx.param(*kind, &value).await?);
    }
    match cx.fetch(binds, conflict.is_some()).await {
        Ok(row) => Ok(Step::Next {
            port: "ok",
            to: ok,
            bind: row,
        }),
        Err(RunError::Conflict { .. }) if let Some(to) = conflict => Ok(Step::Next {
            port: "conflict",
            to,
            bind: None,
        }),
        Err(e) => Err(e),
    }
}
