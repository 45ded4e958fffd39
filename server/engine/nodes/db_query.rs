//! `db.query` at run time: evaluates the values, binds them to the prepared statement's
//! parameters (see [`Slot`]), and shapes the result (the array, or a page with its cursor).

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step, bind_text};
use crate::engine::sql::{CondParam, CursorSpec, Slot};
use crate::flow::expr::Template;
use crate::flow::plan::{Filter, Query};
use crate::tables::rows::escape_like;
use serde_json::{Value, json};

/// The most rows one query returns.
pub const MAX_LIMIT: i64 = 1000;
/// Values of one `in` condition.
pub const MAX_IN_VALUES: usize = 1000;

pub async fn run(cx: &mut Cx<'_>, q: &Query, ok: usize) -> Result<Step, RunError> {
    let prepared = cx.prepared();
    let mut where_values = Vec::with_capacity(q.filters.len());
    for f in &q.filters {
        let v = cx.eval(&f.value).await?;
        cx.check_storable(&v, &f.value, None, || format!("where/{}", f.column))?;
        where_values.push(v);
    }
    let conditions = q
        .filter
        .as_ref()
        .map(Filter::conditions)
        .unwrap_or_default();
    let mut cond_values = Vec::with_capacity(conditions.len());
    for c in &conditions {
        let v = cx.eval(&c.value).await?;
        cx.check_storable(&v, &c.value, None, || "filter".into())?;
        cond_values.push(v);
    }
    let limit = whole(cx, &q.limit, "limit", 1, MAX_LIMIT).await?;
    let offset = whole(cx, &q.offset, "offset", 0, i64::MAX).await?;
    let cursor_value = match &q.cursor {
        Some(t) => cx.eval(t).await?,
        None => Value::Null,
    };
    let cursor = match &prepared.cursor {
        Some(spec) => decode_cursor(cx, &cursor_value, spec)?,
        None => None,
    };
    let mut binds = Vec::with_capacity(prepared.slots.len());
    for slot in &prepared.slots {
        binds.push(match *slot {
            Slot::Where(i, kind) => {
                let v = where_values.get(i).unwrap_or(&Value::Null);
                cx.param(kind, v).await?
            }
            Slot::Cond(i, conv) => {
                let v = cond_values.get(i).unwrap_or(&Value::Null);
                let op = conditions.get(i).map(|c| c.op.name()).unwrap_or("?");
                match conv {
                    CondParam::Value(kind) => cx.param(kind, v).await?,
                    other => condition_param(cx, op, other, v)?,
                }
            }
            Slot::Limit => Some(limit.to_string()),
            Slot::Offset => Some(offset.to_string()),
            Slot::CursorKey(i) => cursor.as_ref().and_then(|k| k.get(i).cloned().flatten()),
        });
    }
    cx.note_input(|| {
        json!({"where": where_values, "filter": cond_values, "limit": limit, "offset": offset,
               "cursor": cursor_value})
    });
    // The statement's aggregate always yields a row, unless Postgres held it back for being
    // over the result cap (`engine::sql::capped`).
    let Some(out) = cx.fetch(binds, false).await? else {
        return Err(RunError::ResultTooLarge {
            node: cx.node_id().to_string(),
            bytes: None,
            limit: cx.rt.max_result_bytes,
        });
    };
    let bind = match (q.page, &prepared.cursor) {
        (true, Some(spec)) => page(out, spec, q.count),
        _ => match out {
            Value::Array(_) => out,
            _ => Value::Array(Vec::new()),
        },
    };
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(bind),
    })
}

/// `{"rows", "next_cursor"[, "total"]}` from the statement's `{"rows", "more", "last"[, "total"]}`.
fn page(mut out: Value, spec: &CursorSpec, count: bool) -> Value {
    let more = out.get("more").and_then(Value::as_bool).unwrap_or(false);
    let next_cursor = match out.get_mut("last").map(Value::take) {
        Some(Value::Array(keys)) if more => Value::String(encode_cursor(spec, keys)),
        _ => Value::Null,
    };
    let mut page = json!({
        "rows": out.get_mut("rows").map(Value::take).unwrap_or_else(|| json!([])),
        "next_cursor": next_cursor,
    });
    if count {
        page["total"] = out.get_mut("total").map(Value::take).unwrap_or(json!(0));
    }
    page
}

/// A cursor is opaque to clients: hex of `[fingerprint, key…]`, so it survives a URL unchanged.
fn encode_cursor(spec: &CursorSpec, keys: Vec<Value>) -> String {
    let mut all = vec![Value::String(spec.fingerprint.clone())];
    all.extend(keys);
    Value::Array(all)
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys of a cursor (`None` without one: the first page).
fn decode_cursor(
    cx: &Cx<'_>,
    v: &Value,
    spec: &CursorSpec,
) -> Result<Option<Vec<Option<String>>>, RunError> {
    let bad = |why: &str| RunError::InvalidCursor {
        node: cx.node_id().to_string(),
        message: format!("the cursor {why}"),
    };
    let text = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::String(s) => s,
        _ => return Err(bad("must be the text of a next_cursor")),
    };
    if !text.len().is_multiple_of(2) || text.len() > 200_000 {
        return Err(bad("is not one this endpoint returned"));
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| bad("is not one this endpoint returned"))?;
    let Ok(Value::Array(mut items)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(bad("is not one this endpoint returned"));
    };
    if items.first().and_then(Value::as_str) != Some(spec.fingerprint.as_str()) {
        return Err(bad("belongs to another query or ordering"));
    }
    items.remove(0);
    if items.len() != spec.keys || !items.last().is_some_and(Value::is_string) {
        return Err(bad("is not one this endpoint returned"));
    }
    items
        .into_iter()
        .map(|k| match k {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(bad("is not one this endpoint returned")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The parameter of an `in`, `contains`, `starts_with` or `is_null` condition.
fn condition_param(
    cx: &Cx<'_>,
    op: &str,
    conv: CondParam,
    v: &Value,
) -> Result<Option<String>, RunError> {
    let invalid = |message: String| RunError::InvalidValue {
        node: cx.node_id().to_string(),
        message,
    };
    match (conv, v) {
        (_, Value::Null) => Ok(None),
        (CondParam::Like { contains }, Value::String(s)) => {
            let e = escape_like(s);
            Ok(Some(if contains {
                format!("%{e}%")
            } else {
                format!("{e}%")
            }))
        }
        (CondParam::Like { .. }, other) => Err(invalid(format!("{op} takes text, got {other}"))),
        (CondParam::List, Value::Array(items)) if items.len() > MAX_IN_VALUES => {
            Err(invalid(format!(
                "in takes at most {MAX_IN_VALUES} values, got {}",
                items.len()
            )))
        }
        (CondParam::List, list @ Value::Array(_)) => Ok(Some(list.to_string())),
        (CondParam::List, other) => Err(invalid(format!("in takes an array, got {other}"))),
        (CondParam::Flag, Value::Bool(_)) => Ok(bind_text(v)),
        (CondParam::Flag, other) => {
            Err(invalid(format!("is_null takes true or false, got {other}")))
        }
        (CondParam::Value(_), v) => Ok(bind_text(v)),
    }
}

/// A limit or offset: an integer within bounds (a client-supplied value out of bounds is the
/// client's mistake, so it is a 400).
async fn whole(
    cx: &mut Cx<'_>,
    t: &Template,
    what: &str,
    min: i64,
    max: i64,
) -> Result<i64, RunError> {
    let v = cx.eval(t).await?;
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(RunError::InvalidValue {
            node: cx.node_id().to_string(),
            message: format!("{what} must be an integer from {min} to {max}, got {v}"),
        }),
    }
}
