//! `respond` at run time.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Response, Step};
use crate::flow::expr::Template;
use crate::flow::plan::ContentType;
use serde_json::Value;

pub async fn run(
    cx: &mut Cx<'_>,
    status: u16,
    headers: &[(String, String)],
    body: &Template,
    content_type: ContentType,
) -> Result<Step, RunError> {
    let mut body = cx.eval(body).await?;
    // Text and HTML bodies are strings; anything else is sent as its JSON text.
    if content_type != ContentType::Json && !body.is_string() {
        body = Value::String(body.to_string());
    }
    Ok(Step::Done(Response {
        status,
        headers: headers.to_vec(),
        body,
        content_type,
    }))
}
