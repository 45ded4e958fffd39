//! `template` at run time: renders on a blocking thread (never an async worker) under the
//! render budget of `flow::tera_guard` and the request's deadline, into a capped buffer, so a
//! template cannot produce more text than a Rhai string may hold.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;
use crate::flow::plan::CompiledTemplate;
use crate::flow::tera_guard::{self, Stop};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// Largest rendered text, in bytes (the sandbox's string limit).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

pub async fn run(
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
        port: "ok",
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
