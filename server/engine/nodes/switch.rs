//! `switch` at run time: the first case whose literal equals the value (numbers by value).

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;
use serde_json::Value;

pub async fn run(
    cx: &mut Cx<'_>,
    value: &Template,
    cases: &[(Value, usize)],
    default: usize,
) -> Result<Step, RunError> {
    let v = cx.eval(value).await?;
    cx.note_input(|| v.clone());
    let to = cases
        .iter()
        // Numbers by value: `1.50` from a body matches a case `1.5`.
        .find(|(literal, _)| crate::tables::decimal::json_eq(literal, &v))
        .map(|(_, to)| *to)
        .unwrap_or(default);
    // The port's name is the case's name, which only the document knows; traces show `case`.
    let port = if to == default && !cases.iter().any(|(_, t)| *t == default) {
        "default"
    } else {
        "case"
    };
    Ok(Step::Next {
        port,
        to,
        bind: None,
    })
}
