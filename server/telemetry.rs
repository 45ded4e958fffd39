//! Logging setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). Log lines carry
//! fields (request id, flow, node, duration), never secrets, tokens or row contents.
//!
//! Every field value is written with its control characters escaped ([`escape_controls`]):
//! `%` fields print `Display`, which would put a client's CR, LF or ESC (in a path, a header,
//! a value inside a database error) into the log as it is, and so forge lines or terminal
//! sequences. One line per event holds whatever a field contains.

use std::fmt::Write as _;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, Writer};

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .fmt_fields(escaping_fields())
        .try_init();
}

/// The field formatter of every log line: `name=value` separated by spaces, the message bare,
/// control characters escaped.
pub fn escaping_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    format::debug_fn(write_field).delimited(" ")
}

fn write_field(
    w: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    let raw = format!("{value:?}");
    let text = escape_controls(&raw);
    if field.name() == "message" {
        w.write_str(&text)
    } else {
        write!(w, "{}={text}", field.name())
    }
}

/// Control characters (C0, DEL, C1, and the Unicode line and paragraph separators) as
/// `\u{..}` escapes; everything else as it is.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_field_with_cr_lf_or_esc_cannot_forge_a_log_line() {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(escaping_fields())
            .finish();
        let forged = "/api/x\r\n2026-01-01T00:00:00Z ERROR admin logged in \u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            let detail = format!("database error: invalid input: \"{forged}\"");
            tracing::error!(path = forged, %detail, "request failed\nFAKE");
        });
        let text = String::from_utf8(buf.0.lock().expect("buffer").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text}");
        assert!(text.contains("detail=database error"), "{text}");
        assert!(text.contains("request failed\\u{a}FAKE"), "{text}");
    }

    #[test]
    fn plain_text_is_left_alone() {
        assert_eq!(escape_controls("GET /api/todos"), "GET /api/todos");
        assert_eq!(escape_controls("a\tb\u{85}"), "a\\u{9}b\\u{85}");
    }
}
