//! A project as files (docs/PROJECT.md): the names and contents of the files that
//! `sluice export` writes and `sluice plan` / `sluice apply` read, as one map from a file's
//! path to its text. `render` writes the files of a project's state (deterministic: the same
//! state gives the same bytes); `parse` reads files back into typed parts, reporting every
//! problem with its file and JSON pointer. Pure: no IO.

use crate::base::Problem;
use crate::catalog::groups::GroupDef;
use crate::tables::def::TableDef;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The suffixes of the files a project directory holds.
pub const TABLE_FILE: &str = ".table.json";
pub const GROUP_FILE: &str = ".group.json";
pub const FLOW_FILE: &str = ".flow.json";
/// Flow tests (`sluice.test`), stored with their flow and run by `sluice test`.
pub const TESTS_FILE: &str = ".tests.json";
/// The environment file's name: values, and the names of secrets without their values.
pub const ENV_FILE: &str = "env.json";

/// The wire form of a whole project (`GET /_/api/v1/project`, the editor's download, and the
/// body of a plan or apply): every file by its path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub version: u32,
    pub files: BTreeMap<String, String>,
}

pub const FORMAT: &str = "sluice.project";

impl Bundle {
    pub fn new(files: BTreeMap<String, String>) -> Bundle {
        Bundle {
            format: FORMAT.to_string(),
            version: 1,
            files,
        }
    }
}

/// `env.json`: environment values, and the names of the secrets flows read. Secret values
/// never leave an instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeSet<String>,
}

/// What kind of project file a path names, by its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    Group,
    Flow,
    Tests,
    Env,
    /// Anything else (a README, a client's sources): ignored.
    Other,
}

pub fn kind(path: &str) -> Kind {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(TABLE_FILE) {
        Kind::Table
    } else if name.ends_with(GROUP_FILE) {
        Kind::Group
    } else if name.ends_with(TESTS_FILE) {
        Kind::Tests
    } else if name.ends_with(FLOW_FILE) {
        Kind::Flow
    } else if name == ENV_FILE {
        Kind::Env
    } else {
        Kind::Other
    }
}

/// A problem with one file of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProblem {
    pub file: String,
    pub pointer: String,
    pub message: String,
}

impl FileProblem {
    pub fn new(file: &str, pointer: impl Into<String>, message: impl Into<String>) -> FileProblem {
        FileProblem {
            file: file.to_string(),
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    pub fn of(file: &str, p: Problem) -> FileProblem {
        FileProblem::new(file, p.pointer, p.message)
    }
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.pointer, self.message)
        }
    }
}

/// A flow file: its path, the flow's name and its document.
#[derive(Debug, Clone)]
pub struct FlowFile {
    pub file: String,
    pub name: String,
    pub doc: Value,
}

/// The files of a project, read.
#[derive(Debug, Default)]
pub struct Project {
    pub tables: Vec<(String, TableDef)>,
    pub groups: Vec<(String, GroupDef)>,
    pub flows: Vec<FlowFile>,
    /// `None` when there is no env.json: environment values are then left alone.
    pub env: Option<EnvFile>,
    /// Flow tests files.
    pub tests: Vec<(String, super::flow_tests::TestsFile)>,
    /// Files that are not part of a project (a README, a frontend's sources).
    pub skipped: Vec<String>,
}

/// Reads the files of a project. Each flow is checked on its own (format, graph, scopes,
/// Rhai); tables, groups and the environment file against their shapes. Names that appear in
/// two files are problems. Problems are sorted by file.
pub fn parse(files: &BTreeMap<String, String>) -> (Project, Vec<FileProblem>) {
    let mut project = Project::default();
    let mut problems = Vec::new();
    for (file, text) in files {
        let k = kind(file);
        if k == Kind::Other {
            project.skipped.push(file.clone());
            continue;
        }
        if k == Kind::Tests {
            match super::flow_tests::parse(text) {
                Ok(t) => project.tests.push((file.clone(), t)),
                Err(ps) => problems.extend(ps.into_iter().map(|p| FileProblem::of(file, p))),
            }
            continue;
        }
        let doc: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(FileProblem::new(file, "", format!("not JSON: {e}")));
                continue;
            }
        };
        match k {
            Kind::Table => match serde_path_to_error::deserialize::<_, TableDef>(doc) {
                Ok(def) => project.tables.push((file.clone(), def)),
                Err(e) => problems.push(FileProblem::new(
                    file,
                    pointer(e.path()),
                    format!("not a table definition: {}", e.inner()),
                )),
            },
            Kind::Group => match serde_path_to_error::deserialize::<_, GroupDef>(doc) {
                Ok(def) => {
                    let found = def.problems();
                    if found.is_empty() {
                        project.groups.push((file.clone(), def));
                    }
                    problems.extend(found.into_iter().map(|p| FileProblem::of(file, p)));
                }
                Err(e) => problems.push(FileProblem::new(
                    file,
                    pointer(e.path()),
                    format!("not an API group: {}", e.inner()),
                )),
            },
            Kind::Env => match serde_path_to_error::deserialize::<_, EnvFile>(doc) {
                Ok(env) => {
                    for name in env.values.keys().chain(&env.secrets) {
                        if !env_name_ok(name) {
                            problems.push(FileProblem::new(
                                file,
                                "",
                                format!("`{name}` is not an environment name (A-Z, 0-9 and _, starting with a letter, at most 63 characters)"),
                            ));
                        }
                    }
                    for (name, value) in &env.values {
                        if value.len() > 64 * 1024 || value.contains('\0') {
                            problems.push(FileProblem::new(
                                file,
                                format!("/values/{name}"),
                                "values are text of at most 64 KiB without NUL",
                            ));
                        }
                    }
                    for name in env.values.keys().filter(|n| env.secrets.contains(*n)) {
                        problems.push(FileProblem::new(
                            file,
                            format!("/values/{name}"),
                            "a name is either a value or a secret",
                        ));
                    }
                    project.env = Some(env);
                }
                Err(e) => problems.push(FileProblem::new(
                    file,
                    pointer(e.path()),
                    format!("not an environment file: {}", e.inner()),
                )),
            },
            Kind::Flow => match crate::nodes::compile(&doc, None) {
                Ok(plan) => project.flows.push(FlowFile {
                    file: file.clone(),
                    name: plan.name.clone(),
                    doc,
                }),
                Err(diags) => problems.extend(diags.iter().map(|d| {
                    let mut message = format!("{}: {}", d.code, d.message);
                    if let (Some(l), Some(c)) = (d.line, d.column) {
                        message = format!("{message} (line {l}, column {c} of the code)");
                    }
                    FileProblem::new(file, d.pointer.clone(), message)
                })),
            },
            Kind::Tests | Kind::Other => {}
        }
    }
    twice(
        project.tables.iter().map(|(f, d)| (f, d.name.to_string())),
        "table",
        &mut problems,
    );
    twice(
        project
            .tables
            .iter()
            .filter(|(_, d)| !d.id.is_empty())
            .map(|(f, d)| (f, d.id.clone())),
        "table id",
        &mut problems,
    );
    twice(
        project.groups.iter().map(|(f, d)| (f, d.name.clone())),
        "API group",
        &mut problems,
    );
    twice(
        project.flows.iter().map(|f| (&f.file, f.name.clone())),
        "flow",
        &mut problems,
    );
    twice(
        project.tests.iter().map(|(f, t)| (f, t.flow.clone())),
        "tests of flow",
        &mut problems,
    );
    problems.sort_by(|a, b| a.file.cmp(&b.file));
    (project, problems)
}

fn twice<'a>(
    named: impl Iterator<Item = (&'a String, String)>,
    what: &str,
    problems: &mut Vec<FileProblem>,
) {
    let mut seen: BTreeMap<String, &String> = BTreeMap::new();
    for (file, name) in named {
        if let Some(first) = seen.get(&name) {
            problems.push(FileProblem::new(
                file,
                "",
                format!("{what} `{name}` is also defined in {first}"),
            ));
        } else {
            seen.insert(name, file);
        }
    }
}

fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{key}")),
            Segment::Enum { variant } => Some(format!("/{variant}")),
            Segment::Unknown => None,
        })
        .collect()
}

/// Environment names: A-Z, 0-9 and _, starting with a letter, at most 63 characters.
pub fn env_name_ok(name: &str) -> bool {
    name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The state of a project to write as files.
pub struct State<'a> {
    pub tables: &'a [TableDef],
    pub groups: &'a [GroupDef],
    /// Every flow's name and draft document.
    pub flows: &'a [(String, Value)],
    pub env: &'a EnvFile,
    /// The tests of the flows that have any, each naming its flow.
    pub tests: &'a [super::flow_tests::TestsFile],
}

/// The files of a project's state: `<table>.table.json`, `<group>.group.json`,
/// `<flow>.flow.json` (canonical form), `<flow>.tests.json` (canonical form) and `env.json`,
/// each pretty JSON ending in a newline.
/// The same state always gives the same bytes.
pub fn render(state: &State) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for t in state.tables {
        files.insert(format!("{}{TABLE_FILE}", t.name), pretty(t));
    }
    for g in state.groups {
        files.insert(format!("{}{GROUP_FILE}", g.name), pretty(g));
    }
    for (name, doc) in state.flows {
        files.insert(
            format!("{name}{FLOW_FILE}"),
            crate::flow::canonical::to_canonical_string(doc),
        );
    }
    for t in state.tests {
        files.insert(
            format!("{}{TESTS_FILE}", t.flow),
            super::flow_tests::canonical(t),
        );
    }
    files.insert(ENV_FILE.to_string(), pretty(state.env));
    files
}

fn pretty<T: Serialize>(v: &T) -> String {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kinds_follow_the_suffix() {
        assert_eq!(kind("books.table.json"), Kind::Table);
        assert_eq!(kind("api/public.group.json"), Kind::Group);
        assert_eq!(kind("list_books.flow.json"), Kind::Flow);
        assert_eq!(kind("list_books.tests.json"), Kind::Tests);
        assert_eq!(kind("env.json"), Kind::Env);
        assert_eq!(kind("sub/env.json"), Kind::Env);
        assert_eq!(kind("README.md"), Kind::Other);
    }

    #[test]
    fn every_problem_is_reported_with_its_file() {
        let (_, problems) = parse(&files(&[
            ("a.table.json", "{"),
            ("b.group.json", r#"{"name": "b", "base_path": "no-slash"}"#),
            (
                "env.json",
                r#"{"values": {"lower": "x", "A": "1"}, "secrets": ["A"]}"#,
            ),
            ("c.flow.json", r#"{"format": "sluice.flow"}"#),
        ]));
        let by_file: BTreeSet<&str> = problems.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(
            by_file,
            BTreeSet::from(["a.table.json", "b.group.json", "c.flow.json", "env.json"])
        );
        assert!(problems.iter().any(|p| p.message.contains("`lower`")));
        assert!(
            problems
                .iter()
                .any(|p| p.pointer == "/values/A" && p.message.contains("either"))
        );
    }

    #[test]
    fn a_name_defined_twice_is_a_problem() {
        let group = r#"{"name": "g", "base_path": "/g"}"#;
        let (project, problems) = parse(&files(&[
            ("g.group.json", group),
            ("copy.group.json", group),
        ]));
        assert_eq!(project.groups.len(), 2);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("also defined in"));
    }

    #[test]
    fn other_files_are_skipped_and_tests_files_are_checked() {
        let (project, problems) = parse(&files(&[
            ("a.tests.json", "not even json"),
            ("notes.txt", "hello"),
        ]));
        assert_eq!(project.skipped, vec!["notes.txt"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].file, "a.tests.json");
    }

    #[test]
    fn rendering_is_deterministic_and_reads_back() {
        let group: GroupDef =
            serde_json::from_str(r#"{"name": "g", "base_path": "/g"}"#).expect("group");
        let env = EnvFile {
            values: BTreeMap::from([("B".into(), "2".into()), ("A".into(), "1".into())]),
            secrets: BTreeSet::from(["Z_KEY".into(), "S_KEY".into()]),
        };
        let state = State {
            tables: &[],
            groups: std::slice::from_ref(&group),
            flows: &[],
            env: &env,
            tests: &[],
        };
        let once = render(&state);
        assert_eq!(once, render(&state));
        assert_eq!(
            once["env.json"],
            "{\n  \"values\": {\n    \"A\": \"1\",\n    \"B\": \"2\"\n  },\n  \"secrets\": [\n    \"S_KEY\",\n    \"Z_KEY\"\n  ]\n}\n"
        );
        let (project, problems) = parse(&once);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(project.groups[0].1, group);
        assert_eq!(project.env, Some(env));
    }
}
