//! `db.query` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;
use crate::flow::plan::ColumnValue;
use serde_json::Value;

/// The most rows one query returns.
pub const MAX_LIMIT: i64 = 1000;

pub async fn run(
    cx: &mut Cx<'_>,
    filters: &[ColumnValue],
    limit: &Template,
    offset: &Template,
    ok: usize,
) -> Result<Step, RunError> {
    let kinds = &cx.prepared().kinds;
    let mut binds = Vec::with_capacity(filters.len() + 2);
    for (f, kind) in filters.iter().zip(kinds) {
        let v = cx.eval(&f.value)?;
        binds.push(cx.param(*kind, &v).await?);
    }
    let limit = whole(cx, limit, "limit", 1, MAX_LIMIT)?;
    let offset = whole(cx, offset, "offset", 0, i64::MAX)?;
    binds.push(Some(limit.to_string()));
    binds.push(Some(offset.to_string()));
    let rows = cx.fetch(binds, false).await?;
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(rows.unwrap_or_else(|| Value::Array(Vec::new()))),
    })
}

/// A limit or offset: an integer within bounds (a client-supplied value out of bounds is the
/// client's mistake, so it is a 400).
fn whole(cx: &mut Cx<'_>, t: &Template, what: &str, min: i64, max: i64) -> Result<i64, RunError> {
    let v = cx.eval(t)?;
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(RunError::InvalidValue {
            node: cx.node_id().to_string(),
            message: format!("{what} must be an integer from {min} to {max}, got {v}"),
        }),
    }
}
