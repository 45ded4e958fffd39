//! `db.upsert` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::engine::sql::ParamKind;
use crate::flow::plan::ColumnValue;
use serde_json::{Map, Value};

pub async fn run(
    cx: &mut Cx<'_>,
    values: &[ColumnValue],
    ok: usize,
    conflict: Option<usize>,
) -> Result<Step, RunError> {
    let kinds = &cx.prepared().kinds;
    let mut binds = Vec::with_capacity(values.len());
    let mut seen = Map::new();
    for (v, kind) in values.iter().zip(kinds) {
        let value = cx.eval(&v.value).await?;
        cx.check_storable(&value, &v.value, None, || format!("values/{}", v.column))?;
        binds.push(cx.param(*kind, &value).await?);
        // Clear-text passwords never reach a trace.
        let shown = match kind {
            ParamKind::Password => Value::String("[hidden]".into()),
            _ => value,
        };
        seen.insert(v.column.to_string(), shown);
    }
    cx.note_input(|| Value::Object(seen));
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
