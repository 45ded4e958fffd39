//! `template`: renders a tera template to text; `ok` binds `as` to the string. The source is
//! parsed once here (a syntax error is a diagnostic with line and column); `context` is a value
//! that must give an object. `format: "html"` (the default) escapes every value for HTML unless
//! `autoescape` is turned off; `format: "text"` does not escape.
//!
//! Tera here has no access to files or the environment: one template per node, no includes of
//! other templates, only tera's built-in filters, tests and `range`/`throw` functions. Renders
//! run under budgets of iterations, value sizes and time (see [`tera_guard`]); constructs
//! those budgets cannot reach are refused at save with `flow.template_unsupported`.

use crate::engine::run::{Cx, Step};
use crate::engine::{Op, RunError, Runnable, StepFuture};
use crate::flow::diag::Diagnostic;
use crate::flow::expr::Template;
use crate::flow::node::{CompiledOp, NodeCx, NodeOptions, NodeType, OutputShape, Port};
use crate::flow::tera_guard::{self, Stop};
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

const OK: Port = Port::success("ok");

pub(crate) static TYPE: NodeType<Op> = node_type!("template", &[OK], compile, NodeOptions::DEFAULT);

/// A compiled tera template: one template in its own tera instance, parsed once.
#[derive(Clone)]
pub(crate) struct CompiledTemplate {
    pub tera: tera::Tera,
    /// The template's name inside `tera`; its suffix decides autoescaping.
    pub name: &'static str,
}

impl std::fmt::Debug for CompiledTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompiledTemplate({})", self.name)
    }
}

/// A compiled `template`.
#[derive(Debug)]
pub(crate) struct TemplateOp {
    template: Arc<CompiledTemplate>,
    context: Template,
    ok: usize,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Html,
    Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    template: String,
    #[serde(default = "empty_object")]
    context: Value,
    #[serde(default)]
    format: Format,
    autoescape: Option<bool>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn compile(node: &Value, cx: &mut NodeCx<'_, Op>) -> Option<Op> {
    let cfg: Config = cx.config(node)?;
    let context = cx.template(&cfg.context, "context");
    if let Some(crate::flow::expr::Template::Literal(v)) = &context
        && !v.is_object()
    {
        let at = format!("{}/context", cx.pointer);
        cx.expr.push(Diagnostic::new(
            "flow.bad_config",
            at,
            "the context must be an object (its keys are the template's variables)",
        ));
        return None;
    }
    let escape = cfg.autoescape.unwrap_or(cfg.format == Format::Html);
    let template = match compile_template(&cfg.template, escape) {
        Ok(t) => Some(t),
        Err(d) => {
            let mut d = d;
            d.pointer = format!("{}/template", cx.pointer);
            cx.expr.push(d);
            None
        }
    };
    Some(Box::new(TemplateOp {
        template: Arc::new(template?),
        context: context?,
        ok: cx.required(OK.name),
    }))
}

/// Parses a template into its own tera instance, rewritten to report to the render budget
/// ([`tera_guard`]). Errors carry line and column when tera knows them (of the source as
/// written: it is parsed as written first); the pointer is filled in by the caller.
pub(crate) fn compile_template(source: &str, escape: bool) -> Result<CompiledTemplate, Diagnostic> {
    let mut tera = tera::Tera::new();
    tera.autoescape_on([".html"]);
    tera_guard::install(&mut tera);
    let name = if escape { "node.html" } else { "node.txt" };
    let unsupported = |message: String| Diagnostic::new("flow.template_unsupported", "", message);
    let parsed = tera.add_raw_template(name, source).map(|()| {
        let instrumented = tera_guard::instrument(source).map_err(unsupported)?;
        // The rewrite keeps the template's meaning; should tera still refuse it, say so
        // rather than serve a template without its budget.
        tera.add_raw_template(name, &instrumented)
            .map_err(|e| unsupported(format!("the template cannot be budgeted: {e}")))
    });
    match parsed {
        Ok(Ok(())) => Ok(CompiledTemplate { tera, name }),
        Ok(Err(d)) => Err(d),
        Err(e) => {
            let mut d = match e.kind() {
                tera::ErrorKind::SyntaxError(report) => {
                    let mut d = Diagnostic::new("flow.template_syntax", "", report.message());
                    d.line = Some(crate::flow::diag::pos(report.span().start_line));
                    d.column = Some(crate::flow::diag::pos(report.span().start_col + 1));
                    d
                }
                _ => Diagnostic::new("flow.template_syntax", "", e.to_string()),
            };
            d.message = d.message.trim().to_string();
            Err(d)
        }
    }
}

impl CompiledOp for TemplateOp {
    fn targets(&self) -> Vec<(&'static str, usize)> {
        vec![(OK.name, self.ok)]
    }
    fn output(&self) -> OutputShape {
        OutputShape::Fixed(Some(json!({"type": "string"})))
    }
}

impl Runnable for TemplateOp {
    fn run<'a>(&'a self, cx: &'a mut Cx<'_>) -> StepFuture<'a> {
        Box::pin(run(cx, &self.template, &self.context, self.ok))
    }
}

/// Largest rendered text, in bytes (the sandbox's string limit).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// `template` at run time: renders on a blocking thread (never an async worker) under the
/// render budget of `flow::tera_guard` and the request's deadline, into a capped buffer, so a
/// template cannot produce more text than a Rhai string may hold.
async fn run(
    cx: &mut Cx<'_>,
    template: &Arc<CompiledTemplate>,
    context: &Template,
    ok: usize,
) -> Result<Step, RunError> {
    let context = cx.eval(context).await?;
    if !context.is_object() {
        return Err(cx.type_error("the template context must be an object"));
    }
    cx.note_input(|| context.clone());
    let error = |cx: &Cx<'_>, message: String| RunError::Template {
        node: cx.node_id().to_string(),
        message,
    };
    // `Plain`: Tera would see serde_json's exact numbers as objects.
    let ctx = tera::Context::from_serialize(&crate::tables::decimal::Plain(&context))
        .map_err(|e| error(cx, e.to_string()))?;
    // Tera cannot be interrupted: the render runs on a blocking thread under its budget, which
    // ends it soon after the deadline; the request itself answers at the deadline regardless.
    let deadline = cx.deadline;
    let job = {
        let template = template.clone();
        move || render(&template, &ctx, deadline)
    };
    let rendered =
        tokio::time::timeout_at(deadline.into(), cx.rt.sandbox.off_worker(deadline, job)).await;
    let text = match rendered {
        Ok(Some(Ok(text))) => text,
        Ok(Some(Err(Failure::Stopped(Stop::Deadline)))) | Ok(None) | Err(_) => {
            return Err(RunError::Timeout);
        }
        Ok(Some(Err(Failure::Stopped(stop)))) => {
            return Err(RunError::TemplateLimit {
                node: cx.node_id().to_string(),
                what: stop.describe(),
            });
        }
        Ok(Some(Err(Failure::Message(message)))) => return Err(error(cx, message)),
    };
    Ok(Step::Next {
        port: OK.name,
        to: ok,
        bind: Some(Value::String(text)),
    })
}

/// Why a render gave no text.
enum Failure {
    /// A budget (or the deadline) stopped it.
    Stopped(Stop),
    Message(String),
}

/// Renders into a capped buffer under a fresh budget ending at `deadline`.
fn render(
    template: &CompiledTemplate,
    ctx: &tera::Context,
    deadline: Instant,
) -> Result<String, Failure> {
    let mut out = Capped::default();
    let (result, stop) = tera_guard::with_budget(Some(deadline), || {
        template.tera.render_to(template.name, ctx, &mut out)
    });
    if let Some(stop) = stop {
        return Err(Failure::Stopped(stop));
    }
    if let Err(e) = result {
        return Err(Failure::Message(if out.over {
            format!("the rendered text is larger than {MAX_OUTPUT_BYTES} bytes")
        } else {
            e.to_string()
        }));
    }
    String::from_utf8(out.buf).map_err(|e| Failure::Message(e.to_string()))
}

/// A buffer that refuses to grow past [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::super::testing::{flow_with, problems};
    use super::*;
    use serde_json::json;

    #[test]
    fn a_syntax_error_in_a_flow_points_at_the_template_with_its_line() {
        let doc = flow_with(
            json!({"type": "template", "template": "a\nb {{ x", "as": "t",
                                   "next": {"ok": "r"}}),
        );
        let found = super::super::compile(&doc, None).expect_err("fails");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].code, found[0].pointer.as_str(), found[0].line),
            ("flow.template_syntax", "/nodes/n/template", Some(2))
        );
    }

    #[test]
    fn a_literal_context_must_be_an_object() {
        let doc = flow_with(
            json!({"type": "template", "template": "x", "context": [1], "as": "t",
                                   "next": {"ok": "r"}}),
        );
        assert_eq!(
            problems(&doc),
            [("flow.bad_config", "/nodes/n/context".to_string())]
        );
        let doc = flow_with(
            json!({"type": "template", "template": "x", "format": "markdown",
                                   "as": "t", "next": {"ok": "r"}}),
        );
        assert_eq!(
            problems(&doc),
            [("flow.schema", "/nodes/n/format".to_string())]
        );
    }

    #[test]
    fn a_syntax_error_has_a_line_and_column() {
        let d = compile_template("Hello\n{{ user.name }\n", true).expect_err("fails");
        assert_eq!(d.code, "flow.template_syntax");
        assert_eq!(d.line, Some(2), "{d:?}");
        assert!(d.column.is_some(), "{d:?}");
    }

    #[test]
    fn unknown_filters_and_other_templates_are_refused_when_saved() {
        let d = compile_template("{{ x | no_such_filter }}", true).expect_err("fails");
        assert!(d.message.contains("no_such_filter"), "{}", d.message);
        assert!(compile_template("{% include \"other.html\" %}", true).is_err());
        assert!(compile_template("{% extends \"base.html\" %}", true).is_err());
    }

    #[test]
    fn html_templates_escape_values_and_text_templates_do_not() {
        let ctx = tera::Context::from_serialize(&serde_json::json!({"x": "<b a='1'>&\"</b>"}))
            .expect("context");
        let html = compile_template("<p>{{ x }}</p>", true).expect("compiles");
        assert_eq!(
            html.tera.render(html.name, &ctx).expect("renders"),
            "<p>&lt;b a=&#39;1&#39;&gt;&amp;&quot;&lt;/b&gt;</p>"
        );
        let text = compile_template("{{ x }}", false).expect("compiles");
        assert_eq!(
            text.tera.render(text.name, &ctx).expect("renders"),
            "<b a='1'>&\"</b>"
        );
    }
}
