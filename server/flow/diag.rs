//! Compile diagnostics: every problem in a flow document, with where it is. Most are errors
//! (the flow cannot be saved as valid or published); a few are warnings (`severity:
//! "warning"`), which are reported the same way but block nothing.

use serde::Serialize;

/// How much a diagnostic matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow does not compile.
    #[default]
    Error,
    /// The flow compiles and may be published; something in it is likely a mistake.
    Warning,
}

impl Severity {
    fn is_error(&self) -> bool {
        *self == Severity::Error
    }
}

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
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// Errors leave it out; warnings say `"severity": "warning"`.
    #[serde(skip_serializing_if = "Severity::is_error")]
    pub severity: Severity,
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
            severity: Severity::Error,
        }
    }

    /// A problem that does not stop the flow from compiling or being published.
    pub fn warning(
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::new(code, pointer, message)
        }
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
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
        if self.is_warning() {
            write!(f, "warning: ")?;
        }
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

/// A line or column as a diagnostic stores it (u32 keeps [`Diagnostic`] small).
pub fn pos(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn seg(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
