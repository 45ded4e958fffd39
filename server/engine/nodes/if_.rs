//! `if` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;

pub async fn run(
    cx: &mut Cx<'_>,
    condition: &Template,
    then: usize,
    otherwise: usize,
) -> Result<Step, RunError> {
    match cx.eval(condition).await? {
        serde_json::Value::Bool(b) => Ok(Step::Next {
            port: if b { "then" } else { "else" },
            to: if b { then } else { otherwise },
            bind: None,
        }),
        other => Err(cx.type_error(format!("condition must be true or false, got {other}"))),
    }
}
