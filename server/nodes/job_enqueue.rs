//! `job.enqueue`: hands work to a flow with a `job` trigger, to run in the background. The job
//! is inserted on the run's own transaction (through `queue::enqueue`, the same connection as
//! `db.insert`), so it exists exactly when the run's writes commit: an endpoint that fails
//! after it leaves no job. `ok` binds `as` to `{id, deduplicated}`.
//!
//! The target flow's `settings.retry.max_attempts` and its concurrency key (computed here from
//! the job's `input`) are read from the published generation this run serves.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::Diagnostic;
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port};
use crate::queue::{self, NewJob};
use serde::Deserialize;
use serde_json::{Value, json};

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> =
    node_type!("job.enqueue", &[OK], compile, NodeOptions::DEFAULT);

/// The longest `delay_ms`: a year. A larger value (from a request, say) is a 400, not an
/// interval Postgres cannot hold.
const MAX_DELAY_MS: u64 = 365 * 24 * 3600 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    flow: String,
    #[serde(default)]
    input: Value,
    key: Option<Value>,
    delay_ms: Option<Value>,
    run_at: Option<Value>,
    #[serde(default = "first")]
    priority: i16,
}

fn first() -> i16 {
    1
}

/// A compiled `job.enqueue`.
#[derive(Debug)]
pub(crate) struct JobEnqueueOp {
    flow: String,
    input: Template,
    key: Option<Template>,
    delay_ms: Option<Template>,
    run_at: Option<Template>,
    priority: i16,
    ok: usize,
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let input = cx.template(&cfg.input, "input");
    let mut optional = |v: &Option<Value>, field: &str| match v {
        None => Some(None),
        Some(v) => cx.template(v, field).map(Some),
    };
    let key = optional(&cfg.key, "key");
    let delay_ms = optional(&cfg.delay_ms, "delay_ms");
    let run_at = optional(&cfg.run_at, "run_at");
    if let Some(known) = cx.catalog.and_then(|c| c.job_flow_exists(&cfg.flow))
        && !known
    {
        let at = format!("{}/flow", cx.pointer);
        cx.expr.push(Diagnostic::new(
            "flow.unknown_job_flow",
            at,
            format!(
                "there is no published flow `{}` with a job trigger (`\"trigger\": {{\"kind\": \"job\"}}`)",
                cfg.flow
            ),
        ));
        return None;
    }
    Some(Box::new(JobEnqueueOp {
        flow: cfg.flow,
        input: input?,
        key: key?,
        delay_ms: delay_ms?,
        run_at: run_at?,
        priority: cfg.priority,
        ok: cx.required(OK.name),
    }))
}

impl CompiledOp for JobEnqueueOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    /// It inserts a job: the run needs its transaction.
    fn writes(&self) -> bool {
        true
    }
    fn touches_db(&self) -> bool {
        true
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(json!({"type": "object", "properties": {
            "id": {"type": ["integer", "null"]}, "deduplicated": {"type": "boolean"}}})))
    }
}

impl Runnable for JobEnqueueOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, self))
    }
}

async fn run(cx: &mut Cx<'_>, op: &JobEnqueueOp) -> Result<Step, RunError> {
    let node = cx.node_id().to_string();
    let invalid = |message: String| RunError::InvalidValue {
        node: node.clone(),
        message,
    };
    let Some(target) = cx.live.triggered.get(&op.flow).cloned() else {
        return Err(RunError::UnknownFunction {
            node,
            name: op.flow.clone(),
        });
    };
    let input = cx.eval(&op.input).await?;
    let key = match &op.key {
        None => None,
        Some(t) => match cx.eval(t).await? {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            other => {
                return Err(invalid(format!(
                    "a job's key is text or a number, not {other}"
                )));
            }
        },
    };
    let delay_ms = match &op.delay_ms {
        None => None,
        Some(t) => match cx.eval(t).await? {
            Value::Null => None,
            v => Some(v.as_u64().filter(|ms| *ms <= MAX_DELAY_MS).ok_or_else(|| {
                invalid(format!(
                    "delay_ms is a whole number of milliseconds up to {MAX_DELAY_MS} (a year), not {v}"
                ))
            })?),
        },
    };
    let run_at = match &op.run_at {
        None => None,
        Some(t) => match cx.eval(t).await? {
            Value::Null => None,
            Value::String(s) if chrono::DateTime::parse_from_rfc3339(&s).is_ok() => Some(s),
            v => {
                return Err(invalid(format!(
                    "run_at is an RFC 3339 time such as 2030-01-01T08:00:00Z, not {v}"
                )));
            }
        },
    };
    let settings = &target.plan.job;
    let concurrency_key = match &settings.concurrency_key {
        None => None,
        Some(t) => {
            let event = input.get("event").cloned().unwrap_or(Value::Null);
            crate::engine::run::key_text(
                cx.eval_with(t, &[("input", &input), ("event", &event)])
                    .await?,
            )
        }
    };
    cx.note_input(|| json!({"flow": op.flow, "input": input, "key": key}));
    let job = NewJob {
        unique_key: key.map(|k| format!("enqueue:{}:{k}", op.flow)),
        delay_ms,
        run_at,
        priority: op.priority,
        max_attempts: settings.max_attempts.clamp(1, i16::MAX as u32) as i16,
        concurrency_key,
        ..NewJob::new(
            op.flow.clone(),
            input,
            json!({"kind": "enqueue", "flow": cx.program.plan.name, "node": node}),
        )
    };
    let found = cx
        .db
        .in_tx(|c| {
            Box::pin(async move {
                match queue::enqueue(&mut *c, &job).await? {
                    Some(id) => Ok((Some(id), false)),
                    None => {
                        let id = match &job.unique_key {
                            Some(k) => queue::work::id_by_key(c, k).await?,
                            None => None,
                        };
                        Ok((id, true))
                    }
                }
            })
        })
        .await
        .map_err(|e| RunError::from_db(&node, e))?;
    let (id, deduplicated) = found;
    if !deduplicated {
        cx.db.enqueued = true;
    }
    Ok(Step::Next {
        port: OK.name,
        to: op.ok,
        bind: Some(json!({"id": id, "deduplicated": deduplicated})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::testing::{flow_with, op, problems};

    #[test]
    fn compiles_its_values_and_defaults_to_priority_one() {
        let doc = flow_with(json!({"type": "job.enqueue", "flow": "send_mail",
            "input": {"to": {"$rhai": "request.body.to"}}, "key": "k", "next": {"ok": "r"}}));
        let op: JobEnqueueOp = op(&doc);
        assert_eq!(op.flow, "send_mail");
        assert_eq!(op.priority, 1);
        assert!(op.key.is_some() && op.delay_ms.is_none());
    }

    #[test]
    fn delay_and_run_at_together_are_refused() {
        let doc = flow_with(json!({"type": "job.enqueue", "flow": "f", "delay_ms": 10,
            "run_at": "2030-01-01T00:00:00Z", "next": {"ok": "r"}}));
        assert!(!problems(&doc).is_empty());
    }

    fn trigger_flow(nodes: Value, on_error: Option<&str>) -> Value {
        let mut doc = json!({"format": "sluice.flow", "format_version": 1, "name": "t",
            "trigger": {"kind": "job"}, "entry": "n", "nodes": nodes});
        if let Some(h) = on_error {
            doc["on_error"] = json!(h);
        }
        doc
    }

    #[test]
    fn a_trigger_flow_sees_input_event_and_job_but_no_request() {
        let sees = trigger_flow(
            json!({"n": {"type": "respond", "body": {"a": {"$rhai": "input.x"},
                "b": {"$rhai": "event"}, "c": {"$rhai": "job.id + job.attempt"}}}}),
            None,
        );
        assert_eq!(problems(&sees), []);
        let request = trigger_flow(
            json!({"n": {"type": "respond", "body": {"$rhai": "request.body"}}}),
            None,
        );
        let found = problems(&request);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, "/nodes/n/body/$rhai");
        // The error handler sees what the trigger gave too.
        let handler = trigger_flow(
            json!({"n": {"type": "script", "code": "throw 1", "next": {"ok": "r"}},
                   "r": {"type": "respond", "body": null},
                   "h": {"type": "fail", "status": 500, "code": "job.failed", "message": {"$rhai": "`${job.id} ${error.code}`"}}}),
            Some("h"),
        );
        assert_eq!(problems(&handler), []);
        let (_, scope) = crate::nodes::compile_with_scope(&sees, None);
        let names: Vec<&str> = scope["n"].iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["auth", "env", "event", "input", "job"]);
    }

    #[test]
    fn an_endpoint_does_not_see_the_trigger_names() {
        let doc = flow_with(
            json!({"type": "set", "value": {"$rhai": "input"}, "as": "x",
            "next": {"ok": "r"}}),
        );
        assert_eq!(problems(&doc).len(), 1);
    }

    #[test]
    fn retry_and_concurrency_settings_compile_with_the_key_over_input() {
        let mut doc = trigger_flow(json!({"n": {"type": "respond", "body": null}}), None);
        doc["settings"] = json!({"retry": {"max_attempts": 3, "backoff_ms": 200},
            "concurrency": {"limit": 2, "key": {"$rhai": "input.customer"}}});
        let plan = crate::nodes::compile(&doc, None).expect("compiles");
        assert_eq!(plan.job.max_attempts, 3);
        assert_eq!(plan.job.backoff_ms, 200);
        assert_eq!(plan.job.max_backoff_ms, 3_600_000);
        assert_eq!(plan.job.concurrency_limit, Some(2));
        assert!(plan.job.concurrency_key.is_some());
        doc["settings"]["concurrency"]["key"] = json!({"$rhai": "job.id"});
        let d = crate::nodes::compile(&doc, None).expect_err("job is not known at enqueue");
        assert_eq!(d[0].pointer, "/settings/concurrency/key/$rhai");
    }

    #[test]
    fn an_unknown_job_flow_is_named_when_the_catalog_is_known() {
        let doc = flow_with(json!({"type": "job.enqueue", "flow": "nope", "next": {"ok": "r"}}));
        let catalog = crate::flow::node::Catalog {
            tables: Default::default(),
            functions: ["nope".to_string()].into(),
            jobs: ["other".to_string()].into(),
        };
        let d = crate::nodes::compile(&doc, Some(&catalog)).expect_err("unknown");
        assert_eq!(d[0].code, "flow.unknown_job_flow");
        assert_eq!(d[0].pointer, "/nodes/n/flow");
    }
}
