//! `validate` at run time.

use crate::engine::error::{InputProblem, RunError};
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;

pub async fn run(
    cx: &mut Cx<'_>,
    value: &Template,
    schema: &jsonschema::Validator,
    ok: usize,
    invalid: Option<usize>,
) -> Result<Step, RunError> {
    let v = cx.eval(value).await?;
    let problems: Vec<InputProblem> = schema
        .iter_errors(&v)
        .map(|e| InputProblem {
            pointer: e.instance_path().as_str().to_string(),
            message: e.to_string(),
        })
        .collect();
    match (problems.is_empty(), invalid) {
        (true, _) => Ok(Step::Next {
            port: "ok",
            to: ok,
            bind: Some(v),
        }),
        (false, Some(to)) => Ok(Step::Next {
            port: "invalid",
            to,
            bind: None,
        }),
        (false, None) => Err(RunError::Input(problems)),
    }
}
