//! `for_each` at run time: the body runs once per item, with the item and its index in
//! scope; names set inside the body end with the iteration.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, End, Step, walk_graph};
use crate::flow::expr::Template;
use crate::flow::nodes::MAX_LOOP_ITEMS;
use serde_json::Value;

pub async fn run(
    cx: &mut Cx<'_>,
    items: &Template,
    item: &str,
    body: usize,
    ok: usize,
) -> Result<Step, RunError> {
    let list = match cx.eval(items).await? {
        Value::Array(a) => a,
        other => return Err(cx.type_error(format!("items must be an array, got {other}"))),
    };
    if list.len() > MAX_LOOP_ITEMS {
        return Err(cx.type_error(format!(
            "for_each runs at most {MAX_LOOP_ITEMS} items, got {}",
            list.len()
        )));
    }
    let me = cx.node;
    let mut results = Vec::with_capacity(list.len());
    for (i, value) in list.into_iter().enumerate() {
        let mark = cx.bound_mark();
        cx.bind(item, value);
        cx.bind("index", Value::from(i));
        let end = walk_graph(cx, body, None).await;
        cx.rewind(mark);
        cx.node = me;
        match end? {
            End::Collected(v) => results.push(v),
            // A `fail` inside the body ends the whole request.
            End::Respond { response, .. } => return Ok(Step::Done(response)),
        }
    }
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(Value::Array(results)),
    })
}
