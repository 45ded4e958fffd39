//! Budgets for `template` nodes. Tera renders synchronously with no progress hook, so the
//! template itself is made to report: at compile time its source is rewritten (never its
//! meaning) so that
//!
//! - every loop (`{% for x in xs %}` and `[e for x in xs]`) charges its length to an
//!   iteration budget when it starts, through `(xs) | __sluice_iter`; a loop inside a loop
//!   charges again on every outer iteration, so nested `range`s add up;
//! - every filter result and every `set` value passes `__sluice_value`, which refuses a value
//!   larger than [`MAX_VALUE_BYTES`] and charges its size to a budget of bytes made
//!   ([`MAX_MADE_BYTES`]); `replace`, `join` and `indent` are checked before they run, from
//!   their arguments, because one call can make a string thousands of times its input;
//! - `range` is replaced by one that charges its length before making the list.
//!
//! Each of these also checks the wall-clock deadline. A stop is sticky like the Rhai
//! sandbox's: once one fired, every later check fails, and the render ends in that stop even
//! if a template swallowed the error. Between two checks a template can do only a bounded
//! amount of work (at most the iterations of one loop start, each running a body of bounded
//! length), so a render ends shortly after its deadline. The output has its own cap (the
//! node's). Tera features that keep text out of reach of these checks, or that read other
//! templates, are refused at save: `{% filter %}` sections, `{% set %}` blocks, components,
//! `include` and `extends`; so are templates with more than [`MAX_CONCATS`] `~` operators
//! (concatenation has no hook; its operands are bounded values, so a bounded number of them
//! bounds its result).

use std::cell::Cell;
use std::time::Instant;
use tera::{Kwargs, State, Tera, Value};

/// Most loop iterations (elements of the lists looped over) of one render.
pub const MAX_ITERATIONS: u64 = 1_000_000;

/// Largest value a filter or `set` may make, in bytes (roughly, for lists and maps). Larger
/// than the output cap, so that a template can still sort or filter a large list it was given.
pub const MAX_VALUE_BYTES: usize = 8 << 20;

/// Most bytes of values that filters and `set`s may make in one render.
pub const MAX_MADE_BYTES: u64 = 64 << 20;

/// Most `~` operators in one template.
pub const MAX_CONCATS: usize = 64;

/// Why a render was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Deadline,
    Iterations,
    ValueSize,
    MadeBytes,
}

impl Stop {
    pub fn describe(self) -> String {
        match self {
            Stop::Deadline => "time limit reached".into(),
            Stop::Iterations => format!("more than {MAX_ITERATIONS} loop iterations"),
            Stop::ValueSize => format!("a value larger than {MAX_VALUE_BYTES} bytes"),
            Stop::MadeBytes => format!("values of more than {MAX_MADE_BYTES} bytes in all"),
        }
    }
}

#[derive(Clone, Copy)]
struct Budget {
    deadline: Option<Instant>,
    iterations: u64,
    made: u64,
    stopped: Option<Stop>,
}

const FRESH: Budget = Budget {
    deadline: None,
    iterations: 0,
    made: 0,
    stopped: None,
};

thread_local! {
    /// The budget of the render running on this thread (renders are synchronous).
    static BUDGET: Cell<Budget> = const { Cell::new(FRESH) };
}

/// Runs `render` under a fresh budget ending at `deadline`; returns its result and the stop
/// that fired, if one did (which then decides the outcome, whatever `render` returned).
pub fn with_budget<T>(deadline: Option<Instant>, render: impl FnOnce() -> T) -> (T, Option<Stop>) {
    let before = BUDGET.with(|b| b.replace(Budget { deadline, ..FRESH }));
    let out = render();
    let after = BUDGET.with(|b| b.replace(before));
    (out, after.stopped)
}

/// Charges `iterations` and `made` bytes; fails (for good) when a budget is spent or the
/// deadline passed.
fn charge(iterations: u64, made: u64) -> Result<(), tera::Error> {
    BUDGET.with(|cell| {
        let mut b = cell.get();
        if b.stopped.is_none() {
            b.iterations = b.iterations.saturating_add(iterations);
            b.made = b.made.saturating_add(made);
            b.stopped = if b.iterations > MAX_ITERATIONS {
                Some(Stop::Iterations)
            } else if b.made > MAX_MADE_BYTES {
                Some(Stop::MadeBytes)
            } else if b.deadline.is_some_and(|t| Instant::now() >= t) {
                Some(Stop::Deadline)
            } else {
                None
            };
            cell.set(b);
        }
        match b.stopped {
            Some(stop) => Err(stopped(stop)),
            None => Ok(()),
        }
    })
}

fn stopped(stop: Stop) -> tera::Error {
    tera::Error::message(format!("template stopped: {}", stop.describe()))
}

/// Refuses a value of `bytes` (for good, like any stop).
fn too_large(bytes: u64) -> Result<(), tera::Error> {
    if bytes <= MAX_VALUE_BYTES as u64 {
        return Ok(());
    }
    BUDGET.with(|cell| {
        let mut b = cell.get();
        b.stopped.get_or_insert(Stop::ValueSize);
        cell.set(b);
    });
    Err(stopped(Stop::ValueSize))
}

/// Roughly the bytes a value holds (text length, plus a few bytes per element), counted up to
/// just past [`MAX_VALUE_BYTES`]: lists share their elements, so `[a, a]` nested n times holds
/// little memory but 2^n elements, and counting must not walk them all.
fn weight(v: &Value) -> u64 {
    let mut left = MAX_VALUE_BYTES as u64 + 1;
    weigh(v, &mut left);
    MAX_VALUE_BYTES as u64 + 1 - left
}

fn weigh(v: &Value, left: &mut u64) {
    if *left == 0 {
        return;
    }
    if let Some(s) = v.as_str() {
        *left = left.saturating_sub(s.len() as u64);
    } else if let Some(items) = v.as_array() {
        for i in items {
            *left = left.saturating_sub(8);
            weigh(i, left);
            if *left == 0 {
                return;
            }
        }
    } else if let Some(map) = v.as_map() {
        for i in map.values() {
            *left = left.saturating_sub(16);
            weigh(i, left);
            if *left == 0 {
                return;
            }
        }
    } else {
        *left = left.saturating_sub(8);
    }
}

fn text_of<'a>(kwargs: &'a Kwargs, name: &'a str) -> Result<&'a str, tera::Error> {
    Ok(kwargs.get::<&str>(name)?.unwrap_or_default())
}

/// Registers the functions and filters the instrumented source calls, and the budgeted
/// `range`.
pub fn install(tera: &mut Tera) {
    tera.register_filter("__sluice_iter", |v: &Value, _: Kwargs, _: &State| {
        charge(v.len().unwrap_or(0) as u64, 0).map(|()| v.clone())
    });
    tera.register_filter("__sluice_value", |v: &Value, _: Kwargs, _: &State| {
        let w = weight(v);
        too_large(w)?;
        charge(0, w).map(|()| v.clone())
    });
    tera.register_filter(
        "__sluice_pre_replace",
        |v: &Value, kwargs: Kwargs, _: &State| {
            let text = v.as_str().unwrap_or_default();
            let (from, to) = (text_of(&kwargs, "from")?, text_of(&kwargs, "to")?);
            let hits = if from.is_empty() {
                text.chars().count() as u64 + 1
            } else {
                text.matches(from).count() as u64
            };
            let out = (text.len() as u64)
                .saturating_sub(hits.saturating_mul(from.len() as u64))
                .saturating_add(hits.saturating_mul(to.len() as u64));
            too_large(out)?;
            charge(0, 0).map(|()| v.clone())
        },
    );
    tera.register_filter(
        "__sluice_pre_join",
        |v: &Value, kwargs: Kwargs, _: &State| {
            let items = v.as_array().unwrap_or_default();
            let sep = text_of(&kwargs, "sep")?.len() as u64;
            let out = weight(v).saturating_add(sep.saturating_mul(items.len() as u64));
            too_large(out)?;
            charge(0, 0).map(|()| v.clone())
        },
    );
    tera.register_filter(
        "__sluice_pre_indent",
        |v: &Value, kwargs: Kwargs, _: &State| {
            let text = v.as_str().unwrap_or_default();
            let width = kwargs.get::<usize>("width")?.unwrap_or(4).min(1000) as u64;
            let unit = text_of(&kwargs, "indentation")?.len().max(1) as u64;
            let lines = text.lines().count() as u64 + 1;
            let out = (text.len() as u64)
                .saturating_add(lines.saturating_mul(width).saturating_mul(unit));
            too_large(out)?;
            charge(0, 0).map(|()| v.clone())
        },
    );
    tera.register_function("range", range);
}

/// Tera's `range(end, start=0, step_by=1)`, charging its length to the iteration budget
/// before the list is made.
fn range(kwargs: Kwargs, _: &State) -> Result<Vec<i64>, tera::Error> {
    let start = kwargs.get::<i64>("start")?.unwrap_or_default();
    let end = kwargs.must_get::<i64>("end")?;
    let step = kwargs.get::<i64>("step_by")?.unwrap_or(1);
    if step == 0 {
        return Err(tera::Error::message(
            "Function `range` was called with a `step_by` argument of 0",
        ));
    }
    if start > end && step > 0 {
        return Err(tera::Error::message(
            "Function `range` was called with a `start` argument greater than the `end` one",
        ));
    }
    let (span, stride) = if step > 0 {
        (i128::from(end) - i128::from(start), i128::from(step))
    } else {
        (i128::from(start) - i128::from(end), -i128::from(step))
    };
    let len = if span <= 0 {
        0
    } else {
        (span + stride - 1) / stride
    };
    charge(u64::try_from(len).unwrap_or(u64::MAX), 0)?;
    Ok((0..len as i64).map(|i| start + i * step).collect())
}

/// Rewrites a template so that it reports to the budget (see the module doc). Comments and
/// `raw` blocks are copied as they are. The error names a refused construct.
pub fn instrument(source: &str) -> Result<String, String> {
    let mut out = String::with_capacity(source.len() + source.len() / 2);
    let mut rest = source;
    let mut concats = 0;
    while let Some(at) = find_open(rest) {
        out.push_str(&rest[..at]);
        let kind = rest.as_bytes()[at + 1];
        let body = &rest[at + 2..];
        if kind == b'#' {
            let end = body.find("#}").ok_or("a comment is not closed")?;
            out.push_str(&rest[at..at + 2 + end + 2]);
            rest = &body[end + 2..];
            continue;
        }
        let close = if kind == b'{' { "}}" } else { "%}" };
        let end = scan_to(body, close).ok_or("a tag is not closed")?;
        let inner = &body[..end];
        let lead = if inner.starts_with('-') { "-" } else { "" };
        let trail = if inner.len() > lead.len() && inner.ends_with('-') {
            "-"
        } else {
            ""
        };
        let core = &inner[lead.len()..inner.len() - trail.len()];
        concats += count_concats(core);
        if concats > MAX_CONCATS {
            return Err(format!(
                "more than {MAX_CONCATS} `~` operators; write the parts one after the other instead"
            ));
        }
        let open = &rest[at..at + 2];
        rest = &body[end + 2..];
        if kind == b'{' {
            out.push_str(&format!("{open}{lead}{}{trail}{close}", expr(core)?));
            continue;
        }
        let word = first_word(core);
        let rewritten = match word {
            "raw" => {
                // Copied up to and including the `endraw` tag.
                let end = find_endraw(rest).ok_or("a `raw` block is not closed")?;
                out.push_str(&format!("{open}{inner}{close}"));
                out.push_str(&rest[..end]);
                rest = &rest[end..];
                continue;
            }
            "for" => {
                let (head, iter) = split_in(core).ok_or("a `for` tag has no `in`")?;
                format!("{head}({}) | __sluice_iter ", expr(iter)?)
            }
            "set" | "set_global" => match split_assign(core) {
                Some((head, value)) => format!("{head}({}) | __sluice_value ", expr(value)?),
                None => return Err("`set` blocks are not available in templates".into()),
            },
            "filter" => return Err("`filter` sections are not available in templates".into()),
            "component" => return Err("components are not available in templates".into()),
            "include" | "extends" => {
                return Err(format!(
                    "`{word}` is not available: a node has one template"
                ));
            }
            _ => expr(core)?,
        };
        out.push_str(&format!("{open}{lead}{rewritten}{trail}{close}"));
    }
    out.push_str(rest);
    Ok(out)
}

/// The next `{{`, `{%` or `{#`.
fn find_open(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(1)).find(|&i| b[i] == b'{' && matches!(b[i + 1], b'{' | b'%' | b'#'))
}

/// Where `close` starts in `s`, outside string literals.
fn scan_to(s: &str, close: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => i = skip_string(b, i, q)?,
            _ if s[i..].starts_with(close) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The index after the string literal opening at `i` with quote `q`.
fn skip_string(b: &[u8], i: usize, q: u8) -> Option<usize> {
    b[i + 1..]
        .iter()
        .position(|&c| c == q)
        .map(|p| i + 1 + p + 1)
}

fn find_endraw(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = s[from..].find("{%") {
        let start = from + at;
        let body = &s[start + 2..];
        let end = body.find("%}")?;
        let word = first_word(body[..end].trim_start_matches('-'));
        if word == "endraw" {
            return Some(start);
        }
        from = start + 2;
    }
    None
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn first_word(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.bytes().position(|c| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// The words and symbols of an expression: identifiers, string literals and single bytes.
fn tokens(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        i = match b[i] {
            q @ (b'"' | b'\'' | b'`') => skip_string(b, i, q).unwrap_or(b.len()),
            c if is_ident_start(c) => {
                i + b[i..]
                    .iter()
                    .position(|&c| !is_ident(c))
                    .unwrap_or(b.len() - i)
            }
            c if c.is_ascii_digit() => {
                i + b[i..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_'))
                    .unwrap_or(b.len() - i)
            }
            _ => i + s[i..].chars().next().map_or(1, char::len_utf8),
        };
        out.push((start, i));
    }
    out
}

fn count_concats(s: &str) -> usize {
    tokens(s).iter().filter(|&&(a, b)| &s[a..b] == "~").count()
}

/// `for x in xs` → (`for x in `, `xs`), splitting at the first word `in`.
fn split_in(core: &str) -> Option<(&str, &str)> {
    let at = tokens(core)
        .into_iter()
        .find(|&(a, b)| &core[a..b] == "in")?;
    Some((&core[..at.1], &core[at.1..]))
}

/// `set x = value` → (`set x = `, `value`); `None` for a `set` block.
fn split_assign(core: &str) -> Option<(&str, &str)> {
    let toks = tokens(core);
    let at = toks.iter().enumerate().find(|&(k, &(a, b))| {
        &core[a..b] == "="
            && toks.get(k + 1).is_none_or(|&(c, d)| &core[c..d] != "=")
            && k.checked_sub(1)
                .is_none_or(|p| !matches!(&core[toks[p].0..toks[p].1], "=" | "!" | "<" | ">"))
    })?;
    let end = at.1.1;
    Some((&core[..end], &core[end..]))
}

/// Rewrites an expression: every filter result passes `__sluice_value` (with a check before
/// `replace`, `join` and `indent`), every comprehension's list passes `__sluice_iter`.
fn expr(s: &str) -> Result<String, String> {
    let toks = tokens(s);
    let mut out = String::with_capacity(s.len() * 2);
    let mut k = 0;
    let mut copied = 0;
    while k < toks.len() {
        let (a, b) = toks[k];
        let word = &s[a..b];
        let after_dot = k > 0 && &s[toks[k - 1].0..toks[k - 1].1] == ".";
        if word == "|" {
            // `| name` or `| name(args)`.
            let mut n = k + 1;
            while n < toks.len() && s[toks[n].0..toks[n].1].trim().is_empty() {
                n += 1;
            }
            let Some(&(na, nb)) = toks.get(n) else {
                return Err("a filter has no name".into());
            };
            let name = &s[na..nb];
            let mut m = n + 1;
            while m < toks.len() && s[toks[m].0..toks[m].1].trim().is_empty() {
                m += 1;
            }
            let (args, next) = if toks.get(m).is_some_and(|&(c, d)| &s[c..d] == "(") {
                let close = matching(s, &toks, m).ok_or("a filter's arguments are not closed")?;
                (Some(expr(&s[toks[m].1..toks[close].0])?), close + 1)
            } else {
                (None, n + 1)
            };
            out.push_str(&s[copied..a]);
            let call = |f: &str| match &args {
                Some(args) => format!("{f}({args})"),
                None => f.to_string(),
            };
            if matches!(name, "replace" | "join" | "indent") {
                out.push_str(&format!("| {} ", call(&format!("__sluice_pre_{name}"))));
            }
            out.push_str(&format!("| {} | __sluice_value ", call(name)));
            copied = toks.get(next).map_or(s.len(), |t| t.0);
            k = next;
            continue;
        }
        if word == "for" && !after_dot {
            // A comprehension: `for x in LIST` up to `if`, `]` or the end, at this depth.
            let Some(in_at) = (k + 1..toks.len()).find(|&j| &s[toks[j].0..toks[j].1] == "in")
            else {
                return Err("a comprehension has no `in`".into());
            };
            let list_from = in_at + 1;
            let mut depth = 0i32;
            let mut j = list_from;
            while j < toks.len() {
                match &s[toks[j].0..toks[j].1] {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" if depth == 0 => break,
                    ")" | "]" | "}" => depth -= 1,
                    "if" | "for" if depth == 0 => break,
                    _ => {}
                }
                j += 1;
            }
            let list_start = toks.get(list_from).map_or(s.len(), |t| t.0);
            let list_end = toks.get(j).map_or(s.len(), |t| t.0);
            out.push_str(&s[copied..list_start]);
            out.push_str(&format!(
                " ({}) | __sluice_iter ",
                expr(&s[list_start..list_end])?
            ));
            copied = list_end;
            k = j;
            continue;
        }
        k += 1;
    }
    out.push_str(&s[copied..]);
    Ok(out)
}

/// The token closing the bracket opened at token `open`.
fn matching(s: &str, toks: &[(usize, usize)], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, &(a, b)) in toks.iter().enumerate().skip(open) {
        match &s[a..b] {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, context: serde_json::Value) -> (Result<String, String>, Option<Stop>) {
        let mut tera = Tera::new();
        install(&mut tera);
        let instrumented = instrument(source).expect("instruments");
        tera.add_raw_template("t.txt", &instrumented)
            .unwrap_or_else(|e| panic!("{instrumented}: {e:?}"));
        let ctx = tera::Context::from_serialize(&crate::tables::decimal::Plain(&context))
            .expect("context");
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        let (out, stop) = with_budget(Some(deadline), || tera.render("t.txt", &ctx));
        (out.map_err(|e| format!("{e:?}")), stop)
    }

    #[test]
    fn instrumented_templates_render_as_before() {
        let ctx = serde_json::json!({"name": "Ada", "items": [3, 1, 2], "m": {"a": 1}});
        for (source, want) in [
            ("Hi {{ name }}!", "Hi Ada!"),
            ("{{ name | upper | replace(from=\"A\", to=\"a\") }}", "aDa"),
            ("{% for i in items | sort %}{{ i }},{% endfor %}", "1,2,3,"),
            (
                "{%- for i in range(end=3) -%}\n {{ i }}\n{%- endfor %}",
                "012",
            ),
            ("{% for k, v in m %}{{ k }}={{ v }}{% endfor %}", "a=1"),
            ("{% set x = name ~ \"|\" ~ name %}{{ x }}", "Ada|Ada"),
            (
                "{{ [i * 2 for i in items if i > 1] | join(sep=\"-\") }}",
                "6-4",
            ),
            ("{{ \"a|b\" }}{# {{ x | y }} #}", "a|b"),
            (
                "{% raw %}{{ not | touched }}{% endraw %}",
                "{{ not | touched }}",
            ),
            ("{{ \"x\" | indent(width=2, first=true) }}", "  x"),
            (
                "{% if items | length > 2 %}many{% else %}few{% endif %}",
                "many",
            ),
        ] {
            let (out, stop) = render(source, ctx.clone());
            assert_eq!((out, stop), (Ok(want.to_string()), None), "{source}");
        }
    }

    #[test]
    fn nested_loops_and_growing_values_stop_on_their_budget() {
        let ctx = serde_json::json!({"xs": vec![0; 2000]});
        for (source, want) in [
            (
                "{% for i in range(end=100000) %}{% for j in range(end=100000) %}{% endfor %}{% endfor %}",
                Stop::Iterations,
            ),
            (
                "{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}",
                Stop::Iterations,
            ),
            (
                "{{ [[1 for b in xs] for a in xs] | length }}",
                Stop::Iterations,
            ),
            (
                "{% set s = \"xxxxxxxx\" %}{% for i in range(end=30) %}{% set_global s = s | replace(from=\"x\", to=\"xxxxxxxx\") %}{% endfor %}{{ s | length }}",
                Stop::ValueSize,
            ),
            (
                "{{ \"xxxxxxxx\" | replace(from=\"x\", to=\"xxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxx\") | length }}",
                Stop::ValueSize,
            ),
            (
                "{% set s = \"ab\" %}{% for i in range(end=40) %}{% set_global s = s ~ s %}{% endfor %}",
                Stop::ValueSize,
            ),
            // Shared elements: little memory, but 2^n of them to walk or print.
            (
                "{% set a = [1] %}{% for i in range(end=80) %}{% set_global a = [a, a] %}{% endfor %}{{ a | length }}",
                Stop::ValueSize,
            ),
            (
                "{% set s = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" | replace(from=\"x\", to=\"xxxxxxxxxxxxxxxx\") | replace(from=\"x\", to=\"xxxxxxxxxxxxxxxx\") %}{% for i in range(end=100000) %}{% set t = s | upper %}{% endfor %}",
                Stop::MadeBytes,
            ),
        ] {
            let (out, stop) = render(source, ctx.clone());
            assert!(out.is_err(), "{source}");
            assert_eq!(stop, Some(want), "{source}");
        }
    }

    #[test]
    fn a_render_past_its_deadline_stops_at_its_next_check() {
        let mut tera = Tera::new();
        install(&mut tera);
        let source =
            "{% for i in range(end=1000) %}{% for j in range(end=10) %}{% endfor %}{% endfor %}";
        tera.add_raw_template("t.txt", &instrument(source).expect("instruments"))
            .expect("parses");
        let past = Instant::now();
        let (out, stop) = with_budget(Some(past), || tera.render("t.txt", &tera::Context::new()));
        assert!(out.is_err());
        assert_eq!(stop, Some(Stop::Deadline));
    }

    #[test]
    fn constructs_out_of_the_budgets_reach_are_refused() {
        for source in [
            "{% filter upper %}x{% endfilter %}",
            "{% set x %}y{% endset %}",
            "{% include \"node.html\" %}",
            "{% extends \"node.html\" %}",
            "{% component c() %}x{% endcomponent %}",
        ] {
            assert!(instrument(source).is_err(), "{source}");
        }
        let many = format!("{{{{ \"a\"{} }}}}", " ~ \"a\"".repeat(MAX_CONCATS + 1));
        assert!(instrument(&many).is_err());
    }
}
