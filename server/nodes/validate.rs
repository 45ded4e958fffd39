//! `validate`: checks a value against a JSON Schema. `ok` (binds `as` to the value) or
//! `invalid`; unwired `invalid` ends the request with 400 `input.invalid`.

use crate::engine::error::InputProblem;
use crate::engine::run::{Cx, Step};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::Diagnostic;
use crate::flow::expr::Template;
use crate::flow::node::{
    CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port, ResponseFact, ports_to,
};
use serde::Deserialize;
use serde_json::Value;

const OK: Port = Port::success("ok");
const INVALID: Port = Port::optional("invalid");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("validate", &[OK, INVALID], compile, NodeOptions::DEFAULT);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    value: Value,
    schema: Value,
}

/// A compiled `validate`.
#[derive(Debug)]
pub(crate) struct ValidateOp {
    value: Template,
    schema: jsonschema::Validator,
    ok: usize,
    invalid: Option<usize>,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let value = cx.template(&cfg.value, "value");
    let schema = match crate::flow::schema::user_validator(&cfg.schema) {
        Ok(v) => Some(v),
        Err(e) => {
            let at = format!("{}/schema", cx.pointer);
            cx.expr
                .push(Diagnostic::new("flow.bad_schema", at, e.to_string()));
            None
        }
    };
    Some(Box::new(ValidateOp {
        value: value?,
        schema: schema?,
        ok: cx.required(OK.name),
        invalid: cx.port(INVALID.name),
    }))
}

impl CompiledOp for ValidateOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        ports_to((OK.name, self.ok), &[(INVALID.name, self.invalid)])
    }
    fn responses(&self) -> Vec<ResponseFact> {
        match self.invalid {
            None => vec![ResponseFact::Error {
                status: 400,
                code: "input.invalid",
            }],
            Some(_) => Vec::new(),
        }
    }
    fn output(&self) -> OutputShape {
        OutputShape::ConfigSchema("schema")
    }
}

impl Runnable for ValidateOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(async move {
            let v = cx.eval(&self.value).await?;
            let problems: Vec<InputProblem> = self
                .schema
                .iter_errors(&v)
                .map(|e| InputProblem {
                    pointer: e.instance_path().as_str().to_string(),
                    message: e.to_string(),
                })
                .collect();
            match (problems.is_empty(), self.invalid) {
                (true, _) => Ok(Step::Next {
                    port: OK.name,
                    to: self.ok,
                    bind: Some(v),
                }),
                (false, Some(to)) => Ok(Step::Next {
                    port: INVALID.name,
                    to,
                    bind: None,
                }),
                (false, None) => Err(RunError::Input(problems)),
            }
        })
    }
}
