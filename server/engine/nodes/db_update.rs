//! `db.update` at run time: fixed `values`, plus the columns a `patch` object names.

use super::db_get::missing;
use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::flow::expr::Template;
use crate::flow::plan::ColumnValue;
use serde_json::Value;

pub async fn run(
    cx: &mut Cx<'_>,
    id: &Template,
    values: &[ColumnValue],
    patch: Option<&Template>,
    ports: (usize, Option<usize>, Option<usize>),
) -> Result<Step, RunError> {
    let (ok, not_found, conflict) = ports;
    let prepared = cx.prepared();
    let id = cx.eval(id).await?;
    if id.is_null() {
        return missing(cx, not_found);
    }
    let mut binds = vec![bind_text(&id)];
    for (v, kind) in values.iter().zip(&prepared.kinds) {
        let value = cx.eval(&v.value).await?;
        cx.check_storable(&value, &v.value, None, || format!("values/{}", v.column))?;
        binds.push(cx.param(*kind, &value).await?);
    }
    if let Some(patch) = patch {
        let given = match cx.eval(patch).await? {
            Value::Object(m) => m,
            other => return Err(cx.type_error(format!("patch must be an object, got {other}"))),
        };
        if let Some(unknown) = given
            .keys()
            .find(|k| !prepared.patch.iter().any(|c| &c.name == *k))
        {
            return Err(RunError::InvalidValue {
                node: cx.node_id().to_string(),
                message: format!("`{unknown}` is not a column that can be changed here"),
            });
        }
        for col in &prepared.patch {
            match given.get(&col.name) {
                Some(v) => {
                    cx.check_storable(v, patch, Some(&col.name), || format!("patch/{}", col.name))?;
                    binds.push(Some("true".into()));
                    binds.push(cx.param(col.kind, v).await?);
                }
                None => {
                    binds.push(Some("false".into()));
                    binds.push(None);
                }
            }
        }
    }
    match cx.fetch(binds, conflict.is_some()).await {
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
