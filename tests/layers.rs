//! The dependency rule of docs/ARCHITECTURE.md, checked on the source: every top-level module
//! may use only the modules listed for it in [`LAYERS`], which are all below it, so the modules
//! form no cycle. A `use crate::x` (or `crate::x::…` path, or `super::` leaving a module) that
//! breaks the rule fails this test with the file and line. Also checks that the sub-modules of
//! each top-level module do not import each other in a loop.
//!
//! Reading the source as text is enough here: the crate forbids glob re-exports across modules
//! that would hide an edge, and a path to another module always names it after `crate::`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use, bottom to top. A module may use only
/// modules listed above it.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("telemetry", &[]),
    ("pg", &[]),
    ("passwords", &[]),
    ("config", &["base"]),
    ("tables", &["base", "passwords"]),
    ("flow", &["base", "tables"]),
    ("queue", &[]),
    ("catalog", &["base", "config", "tables", "flow"]),
    ("auth", &["base", "passwords", "catalog"]),
    (
        "engine",
        &["base", "passwords", "tables", "flow", "queue", "auth"],
    ),
    (
        "nodes",
        &[
            "base",
            "passwords",
            "tables",
            "flow",
            "auth",
            "engine",
            "queue",
        ],
    ),
    (
        "serving",
        &[
            "base", "config", "tables", "flow", "catalog", "auth", "engine", "nodes",
        ],
    ),
    (
        "events",
        &[
            "base",
            "telemetry",
            "config",
            "tables",
            "flow",
            "catalog",
            "auth",
            "engine",
            "nodes",
            "serving",
            "queue",
        ],
    ),
    (
        "project",
        &[
            "base", "tables", "flow", "catalog", "engine", "nodes", "serving",
        ],
    ),
    (
        "http",
        &[
            "base",
            "queue",
            "events",
            "telemetry",
            "config",
            "passwords",
            "tables",
            "flow",
            "catalog",
            "auth",
            "engine",
            "nodes",
            "serving",
            "project",
        ],
    ),
    (
        "client",
        &[
            "base", "config", "tables", "flow", "catalog", "nodes", "project", "http",
        ],
    ),
    (
        "startup",
        &[
            "base",
            "queue",
            "events",
            "telemetry",
            "pg",
            "config",
            "passwords",
            "tables",
            "flow",
            "catalog",
            "auth",
            "engine",
            "nodes",
            "serving",
            "project",
            "http",
        ],
    ),
    (
        "cli",
        &[
            "base",
            "queue",
            "events",
            "telemetry",
            "pg",
            "config",
            "tables",
            "flow",
            "catalog",
            "nodes",
            "project",
            "client",
            "startup",
        ],
    ),
];

/// Sub-modules that refer to each other's types by design, each group with the reason. Every
/// other loop between sub-modules fails the test.
const ALLOWED_LOOPS: &[(&[&str], &str)] = &[
    (
        &["engine::op", "engine::run", "engine::program"],
        "the interpreter: a node's run step takes the run context, which holds the program of nodes",
    ),
    (
        &["flow::compile", "flow::node", "flow::plan", "flow::scope"],
        "the compiler: nested bodies (for_each) compile through it, plans hold compiled nodes, \
         and the names in scope are collected while the nodes compile",
    ),
];

fn server_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("server")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("server/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below server/: `http/admin.rs` → [`http`, `admin`],
/// `http/mod.rs` → [`http`], `lib.rs` → [].
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(server_dir()).expect("below server/");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The module paths a line refers to: `crate::a::b` and `super::…` resolved against `module`.
/// Comments are skipped.
fn references(line: &str, module: &[String]) -> Vec<Vec<String>> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut base: Vec<String> = Vec::new();
            let mut tail = rest;
            if let Some(t) = tail.strip_prefix("crate::") {
                tail = t;
            } else {
                base = module.to_vec();
                while let Some(t) = tail.strip_prefix("super::") {
                    base.pop();
                    tail = t;
                }
            }
            let ident = |s: &str| -> String {
                s.trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            };
            if let Some(group) = tail.strip_prefix('{') {
                // `use crate::{a::x, b};`: one reference per member, first segment enough.
                let inner = group.split('}').next().unwrap_or("");
                for member in inner.split(',').map(ident).filter(|m| !m.is_empty()) {
                    let mut path = base.clone();
                    path.push(member);
                    out.push(path);
                }
            } else {
                // Segments up to the first that is not only a name (`Op;`, `Op as X`, `{`).
                for seg in tail.split("::") {
                    let name = ident(seg);
                    if name.is_empty() {
                        break;
                    }
                    let whole = name.len() == seg.len();
                    base.push(name);
                    if !whole {
                        break;
                    }
                }
                out.push(base);
            }
            i += 7;
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// Lines of a file outside `#[cfg(test)]` modules at the end of the file; tests may reach
/// across layers to set things up.
/// A `#[cfg(test)] mod x;` declaration skips just that line.
fn production_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            match lines.next() {
                Some((_, next)) if next.trim_end().ends_with(';') => continue,
                _ => break,
            }
        }
        out.push((n + 1, line));
    }
    out
}

/// Whole files of tests (`tests.rs`, `*_tests.rs`), declared under `#[cfg(test)]`.
fn is_test_file(file: &Path) -> bool {
    file.file_stem()
        .is_some_and(|s| s == "tests" || s.to_string_lossy().ends_with("_tests"))
}

struct Edge {
    from: String,
    to: String,
    at: String,
}

fn edges(depth: usize) -> Vec<Edge> {
    let mut files = Vec::new();
    rust_files(&server_dir(), &mut files);
    let mut out = Vec::new();
    for file in files {
        let module = module_of(&file);
        if module.len() < depth || is_test_file(&file) {
            continue;
        }
        let name = |m: &[String]| m[..depth].join("::");
        let text = std::fs::read_to_string(&file).expect("a source file");
        for (n, line) in production_lines(&text) {
            for target in references(line, &module) {
                if target.len() < depth || target[..depth - 1] != module[..depth - 1] {
                    continue;
                }
                let (from, to) = (name(&module), name(&target));
                if from != to {
                    out.push(Edge {
                        from,
                        to,
                        at: format!("{}:{n}: {}", file.display(), line.trim()),
                    });
                }
            }
        }
    }
    out
}

#[test]
fn top_level_modules_use_only_the_layers_below_them() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = LAYERS
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect();
    // The table itself is ordered: each module's allowed set names only earlier modules.
    for (i, (m, deps)) in LAYERS.iter().enumerate() {
        for d in *deps {
            assert!(
                LAYERS[..i].iter().any(|(n, _)| n == d),
                "{m} may use {d}, which is not below it"
            );
        }
    }
    let mut broken = Vec::new();
    for e in edges(1) {
        let Some(ok) = allowed.get(e.from.as_str()) else {
            broken.push(format!(
                "module `{}` is missing from LAYERS ({})",
                e.from, e.at
            ));
            continue;
        };
        if !ok.contains(e.to.as_str()) {
            broken.push(format!("`{}` must not use `{}`: {}", e.from, e.to, e.at));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn sub_modules_do_not_import_each_other_in_a_loop() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen_at: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in edges(2) {
        graph
            .entry(e.from.clone())
            .or_default()
            .insert(e.to.clone());
        seen_at.entry((e.from, e.to)).or_insert(e.at);
    }
    // Two modules are in a loop when each reaches the other.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|n| (n, reach(n))).collect();
    let mut loops = Vec::new();
    for ((from, to), at) in &seen_at {
        let back = reaches.get(to).is_some_and(|r| r.contains(from));
        let allowed = ALLOWED_LOOPS
            .iter()
            .any(|(group, _)| group.contains(&from.as_str()) && group.contains(&to.as_str()));
        if back && !allowed {
            loops.push(format!("{from} -> {to} (and back): {at}"));
        }
    }
    assert!(
        loops.is_empty(),
        "modules import each other in a loop:\n{}",
        loops.join("\n")
    );
}

#[test]
fn references_resolve_crate_and_super_paths() {
    let module = vec!["http".to_string(), "admin".to_string()];
    let refs = references(
        "use crate::flow::plan::Op; use super::error::ApiError; use crate::{base, x::y}; // crate::pg",
        &module,
    );
    assert_eq!(
        refs,
        vec![
            vec!["flow".to_string(), "plan".into(), "Op".into()],
            vec!["http".to_string(), "error".into(), "ApiError".into()],
            vec!["base".to_string()],
            vec!["x".to_string()],
        ]
    );
}
