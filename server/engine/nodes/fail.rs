//! `fail` at run time: the flow's own error, in Sluice's envelope.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Response, Step};
use crate::flow::expr::Template;
use crate::flow::plan::ContentType;
use serde_json::{Value, json};

pub async fn run(
    cx: &mut Cx<'_>,
    status: u16,
    code: &str,
    message: &Template,
) -> Result<Step, RunError> {
    let message = match cx.eval(message).await? {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let body = json!({"error": {"code": code, "message": message, "details": []}});
    Ok(Step::Done(Response {
        status,
        headers: Vec::new(),
        body,
        content_type: ContentType::Json,
    }))
}
