//! Values in flow documents: JSON literals with `{"$rhai": "expression"}` at any depth, compiled
//! once into [`Template`]s. Expressions are compiled in strict-variables mode against exactly the
//! names in scope, so a typo or a stale reference fails at save time with line and column.

use super::diag::{Diagnostic, seg};
use rhai::{AST, Engine, Scope};
use serde_json::Value;
use std::sync::Arc;

/// The names every expression may read.
pub const BUILTINS: [&str; 3] = ["request", "auth", "env"];

/// Names an `as` may not take: the built-ins and `error`, which error handlers read.
pub const RESERVED: [&str; 4] = ["request", "auth", "env", "error"];

/// Limits that hold at compile time; the runtime engine adds its own on top.
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_FN_EXPR_DEPTH: usize = 32;

/// The parser configuration shared by the compiler and the runtime sandbox: strict variables,
/// bounded nesting, and no `eval`.
pub fn base_engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FN_EXPR_DEPTH)
        .disable_symbol("eval");
    engine
}

/// A value to compute at run time.
#[derive(Debug, Clone)]
pub enum Template {
    /// A subtree without expressions, used as is.
    Literal(Value),
    Expr(Arc<AST>),
    /// An expression that is only a name or a path of properties (`{"$rhai": "item"}`, the
    /// usual `respond` body; `request.params.id`). The engine hands over the JSON value found
    /// there as it is, without running Rhai or converting values to Rhai and back. The AST is
    /// the fallback whenever the path does not lead to a value (a missing property, a property
    /// of a non-object such as `text.len`, a name not held as JSON), so results and errors are
    /// Rhai's.
    Var(String, Arc<AST>),
    /// `if "key" in path { path.key } else { fallback }` (what generated CRUD writes for an
    /// optional field), with `path` a name or path and a fallback without braces: when `path`
    /// is an object that has `key`, its JSON value as it is (so a decimal keeps its digits);
    /// when it is an object without `key` and the fallback is a plain literal (`()`, `true`,
    /// `false`, an integer, a string without escapes), that literal's JSON value; otherwise the
    /// AST, so results and errors are Rhai's. The common request runs no Rhai at all.
    Pick {
        path: String,
        key: String,
        fallback: Option<Value>,
        ast: Arc<AST>,
    },
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
}

impl Template {
    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }

    /// Whether evaluating it cannot fail: literals and bare names, however nested.
    pub fn cannot_fail(&self) -> bool {
        match self {
            Template::Literal(_) | Template::Var(..) => true,
            Template::Expr(_) | Template::Pick { .. } => false,
            Template::Object(parts) => parts.iter().all(|(_, t)| t.cannot_fail()),
            Template::Array(items) => items.iter().all(Template::cannot_fail),
        }
    }
}

/// Compiles values against a fixed set of visible names and collects diagnostics.
pub struct ExprCompiler<'a> {
    engine: &'a Engine,
    scope: Scope<'static>,
    node: &'a str,
    pub diags: Vec<Diagnostic>,
}

impl<'a> ExprCompiler<'a> {
    pub fn new<'n>(
        engine: &'a Engine,
        node: &'a str,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Self {
        Self::with_builtins(engine, node, &BUILTINS, names)
    }

    /// [`ExprCompiler::new`] with other built-in names (a flow with a trigger has no
    /// `request`).
    pub fn with_builtins<'n>(
        engine: &'a Engine,
        node: &'a str,
        builtins: &[&'n str],
        names: impl IntoIterator<Item = &'n str>,
    ) -> Self {
        // Pushed as variables, not constants: the optimizer would inline a constant's
        // placeholder value into the AST. At run time they are constants.
        let mut scope = Scope::new();
        for n in builtins.iter().copied().chain(names) {
            scope.push_dynamic(n.to_string(), rhai::Dynamic::UNIT);
        }
        ExprCompiler {
            engine,
            scope,
            node,
            diags: Vec::new(),
        }
    }

    /// Compiles a value found at `pointer`.
    pub fn template(&mut self, v: &Value, pointer: &str) -> Option<Template> {
        let before = self.diags.len();
        let t = self.walk(v, pointer);
        (self.diags.len() == before).then_some(t)
    }

    fn walk(&mut self, v: &Value, pointer: &str) -> Template {
        match v {
            Value::Object(map) if map.contains_key("$rhai") => {
                let at = format!("{pointer}/$rhai");
                match (map.len(), map.get("$rhai")) {
                    (1, Some(Value::String(src))) => match self.expression(src, &at) {
                        Some(ast) if self.is_name(src.trim()) => {
                            Template::Var(src.trim().to_string(), Arc::new(ast))
                        }
                        Some(ast) if let Some((path, key, fallback)) = self.pick(src) => {
                            Template::Pick {
                                path,
                                key,
                                fallback,
                                ast: Arc::new(ast),
                            }
                        }
                        Some(ast) => Template::Expr(Arc::new(ast)),
                        None => Template::Literal(Value::Null),
                    },
                    _ => {
                        self.push(Diagnostic::new(
                            "flow.bad_expression",
                            pointer,
                            "an expression is an object with exactly one key, \"$rhai\", holding a string",
                        ));
                        Template::Literal(Value::Null)
                    }
                }
            }
            Value::Object(map) => {
                let parts: Vec<_> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), self.walk(v, &format!("{pointer}/{}", seg(k)))))
                    .collect();
                if parts.iter().all(|(_, t)| t.is_literal()) {
                    Template::Literal(v.clone())
                } else {
                    Template::Object(parts)
                }
            }
            Value::Array(items) => {
                let parts: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.walk(v, &format!("{pointer}/{i}")))
                    .collect();
                if parts.iter().all(Template::is_literal) {
                    Template::Literal(v.clone())
                } else {
                    Template::Array(parts)
                }
            }
            other => Template::Literal(other.clone()),
        }
    }

    /// Whether `src` is a name in scope followed by zero or more `.property` steps (a literal
    /// such as `true` is not, even if some `as` were called so).
    fn is_name(&self, src: &str) -> bool {
        let word = |w: &str| {
            let mut chars = w.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let mut steps = src.split('.');
        let head = steps.next().unwrap_or_default();
        head.chars().all(|c| !c.is_ascii_uppercase())
            && word(head)
            && !matches!(head, "true" | "false" | "this")
            && self.scope.contains(head)
            && steps.all(word)
    }

    /// The path, key and plain fallback of `if "key" in path { path.key } else { fallback }`,
    /// written exactly so (see [`Template::Pick`]). The fallback holds no brace, so the text
    /// cannot continue past the `if` expression.
    fn pick(&self, src: &str) -> Option<(String, String, Option<Value>)> {
        let rest = src.trim().strip_prefix("if \"")?;
        let (key, rest) = rest.split_once('"')?;
        let (path, rest) = rest.strip_prefix(" in ")?.split_once(" { ")?;
        let fallback = rest
            .strip_prefix(&format!("{path}.{key} }} else {{ "))?
            .strip_suffix(" }")?;
        let key_ok = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        (key_ok && self.is_name(path) && !fallback.contains(['{', '}']))
            .then(|| (path.to_string(), key.to_string(), plain_literal(fallback)))
    }

    /// Compiles one expression (no statements).
    pub fn expression(&mut self, src: &str, pointer: &str) -> Option<AST> {
        match self.engine.compile_expression_with_scope(&self.scope, src) {
            Ok(ast) => Some(ast),
            Err(e) => {
                self.rhai_error(&e, pointer);
                None
            }
        }
    }

    /// Compiles a multi-statement script.
    pub fn script(&mut self, src: &str, pointer: &str) -> Option<AST> {
        match self.engine.compile_with_scope(&self.scope, src) {
            Ok(ast) => Some(ast),
            Err(e) => {
                self.rhai_error(&e, pointer);
                None
            }
        }
    }

    fn rhai_error(&mut self, e: &rhai::ParseError, pointer: &str) {
        let mut d = Diagnostic::new("flow.rhai_syntax", pointer, e.0.to_string());
        d.line = e.1.line().map(super::diag::pos);
        d.column = e.1.position().map(super::diag::pos);
        self.push(d);
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d.at_node(self.node));
    }
}

/// The JSON value of a Rhai literal whose value is the same in both: `()` (null), `true`,
/// `false`, an integer that fits an `i64` (Rhai's `INT`), a double-quoted string without
/// escapes. Anything else (floats, whose digits Rhai would round; calls; names) is `None`.
fn plain_literal(src: &str) -> Option<Value> {
    let src = src.trim();
    match src {
        "()" => return Some(Value::Null),
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(inner) = src.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return (!inner.contains(['"', '\\'])).then(|| Value::String(inner.to_string()));
    }
    let digits = src.strip_prefix('-').unwrap_or(src);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return src.parse::<i64>().ok().map(Value::from);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_optional_property_with_a_plain_fallback_is_picked_as_json() {
        let engine = base_engine();
        let mut c = ExprCompiler::new(&engine, "n", ["request"]);
        let t = c.template(
            &json!({"$rhai": "if \"amount\" in request.body { request.body.amount } else { () }"}),
            "/v",
        );
        assert!(
            matches!(t, Some(Template::Pick { ref path, ref key, fallback: Some(Value::Null), .. }) if path == "request.body" && key == "amount")
        );
        // Plain literals become the fallback's JSON; anything Rhai would compute stays Rhai's.
        for (fallback, json) in [
            ("20", Some(json!(20))),
            ("-3", Some(json!(-3))),
            ("true", Some(json!(true))),
            ("\"draft\"", Some(json!("draft"))),
            ("\"a\\\"b\"", None),
            ("0.5", None),
            ("now()", None),
            ("99999999999999999999", None),
        ] {
            let src =
                format!("if \"n\" in request.query {{ request.query.n }} else {{ {fallback} }}");
            match c.template(&json!({"$rhai": src}), "/v") {
                Some(Template::Pick { fallback: f, .. }) => assert_eq!(f, json, "{src}"),
                other => assert!(json.is_none() && other.is_none(), "{src}: {other:?}"),
            }
        }
        for src in [
            "if \"amount\" in request.body { request.body.amount } else { #{a: 1} }",
            "if \"amount\" in request.body { request.body.other } else { () }",
            "if \"amount\" in request.body { request.body.amount } else { 1 } + { 2 }",
            "if \"amount\" in request.body { request.body.amount + 1 } else { () }",
        ] {
            let t = c.template(&json!({"$rhai": src}), "/v");
            assert!(!matches!(t, Some(Template::Pick { .. })), "{src}");
        }
    }

    #[test]
    fn a_bare_name_is_a_variable_but_a_literal_keyword_is_not() {
        let engine = base_engine();
        let mut c = ExprCompiler::new(&engine, "n", ["todo", "true"]);
        let t = c.template(&json!({"$rhai": " todo "}), "/nodes/n/body");
        assert!(matches!(t, Some(Template::Var(ref n, _)) if n == "todo"));
        let t = c.template(&json!({"$rhai": "request"}), "/nodes/n/body");
        assert!(matches!(t, Some(Template::Var(ref n, _)) if n == "request"));
        let t = c.template(&json!({"$rhai": "true"}), "/nodes/n/body");
        assert!(matches!(t, Some(Template::Expr(_))));
        let t = c.template(&json!({"$rhai": "todo.id"}), "/nodes/n/body");
        assert!(matches!(t, Some(Template::Var(ref n, _)) if n == "todo.id"));
        for src in ["todo.id + 1", "todo[\"id\"]", "todo?.id", "true.x"] {
            let t = c.template(&json!({"$rhai": src}), "/nodes/n/body");
            assert!(!matches!(t, Some(Template::Var(..))), "{src}");
        }
    }

    #[test]
    fn literal_subtrees_stay_literal_and_expressions_compile() {
        let engine = base_engine();
        let mut c = ExprCompiler::new(&engine, "n", ["todo"]);
        let t = c.template(
            &json!({"a": [1, 2], "b": {"$rhai": "todo.id + 1"}}),
            "/nodes/n/body",
        );
        match t {
            Some(Template::Object(parts)) => {
                assert!(matches!(parts[0].1, Template::Literal(_)));
                assert!(matches!(parts[1].1, Template::Expr(_)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(c.diags.is_empty());
    }

    #[test]
    fn an_unknown_variable_is_reported_with_line_and_column() {
        let engine = base_engine();
        let mut c = ExprCompiler::new(&engine, "n", ["todo"]);
        assert!(
            c.template(
                &json!({"$rhai": "request.body.x + tood.id"}),
                "/nodes/n/body"
            )
            .is_none()
        );
        assert_eq!(c.diags.len(), 1);
        let d = &c.diags[0];
        assert_eq!(
            (d.code, d.pointer.as_str(), d.line, d.column),
            ("flow.rhai_syntax", "/nodes/n/body/$rhai", Some(1), Some(18))
        );
        assert!(d.message.contains("tood"), "{}", d.message);
    }

    #[test]
    fn eval_is_refused_at_compile_time() {
        let engine = base_engine();
        let mut c = ExprCompiler::new(&engine, "n", []);
        assert!(c.script("eval(\"1\")", "/nodes/n/code").is_none());
    }
}
