//! Compile diagnostics: every problem in a flow document, with where it is.

use serde::Serialize;

/// One problem found while compiling a flow. `pointer` is a JSON pointer into the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable `flow.reason` code.
    pub code: &'static str,
    pub message: String,
    pub pointer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Line and column inside a Rhai expression or script, 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Diagnostic {
    pub fn new(code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            pointer: pointer.into(),
            node: None,
            line: None,
            column: None,
        }
    }

    pub fn at_node(mut self, node: &str) -> Self {
        self.node = Some(node.to_string());
        self
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "the document"
        } else {
            self.pointer.as_str()
        };
        write!(f, "{} at {at}", self.code)?;
        if let Some(n) = &self.node {
            write!(f, " (node `{n}`")?;
            if let (Some(l), Some(c)) = (self.line, self.column) {
                write!(f, ", line {l}, column {c}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn seg(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
