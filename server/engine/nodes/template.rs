//! `template` at run time: renders into a capped buffer, so a template cannot produce more
//! text than a Rhai string may hold.

use crate::engine::error::RunError;
use crate::engine::run::{Cx, Step};
use crate::flow::expr::Template;
use crate::flow::plan::CompiledTemplate;
use serde_json::Value;
use std::io::Write;

/// Largest rendered text, in bytes (the sandbox's string limit).
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

pub async fn run(
    cx: &mut Cx<'_>,
    template: &CompiledTemplate,
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
    let ctx = tera::Context::from_serialize(&context).map_err(|e| error(cx, e.to_string()))?;
    let mut out = Capped::default();
    if let Err(e) = template.tera.render_to(template.name, &ctx, &mut out) {
        let message = if out.over {
            format!("the rendered text is larger than {MAX_OUTPUT_BYTES} bytes")
        } else {
            e.to_string()
        };
        return Err(error(cx, message));
    }
    let text = String::from_utf8(out.buf).map_err(|e| error(cx, e.to_string()))?;
    Ok(Step::Next {
        port: "ok",
        to: ok,
        bind: Some(Value::String(text)),
    })
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
