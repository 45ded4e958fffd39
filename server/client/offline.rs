//! A project read from its files, without a server: the table, API group and flow files found
//! under some paths (`*.table.json`, `*.group.json`, `*.flow.json`), checked together by
//! `sluice validate` and turned into the OpenAPI document its endpoints would publish by
//! `sluice openapi` (docs/OPERATIONS.md).

use crate::base::DEFAULT_GROUP;
use crate::catalog::groups::GroupDef;
use crate::tables::def::{TableDef, Tables};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::project::files::{FLOW_FILE, GROUP_FILE, TABLE_FILE};

/// Every file under `p` whose name ends with one of `endings`, in sorted order, searched
/// recursively; `p` itself when it is a file (whatever its name).
pub fn collect(p: &Path, endings: &[&str], out: &mut Vec<PathBuf>) {
    if !p.is_dir() {
        out.push(p.to_path_buf());
        return;
    }
    let mut entries: Vec<_> = std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for e in entries {
        let wanted = e
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| endings.iter().any(|end| n.ends_with(end)));
        if e.is_dir() || wanted {
            collect(&e, endings, out);
        }
    }
}

/// The table and group files of a project, parsed. Files that do not parse are kept with the
/// reason, so a check can report them.
#[derive(Default)]
pub struct Context {
    pub tables: Vec<(PathBuf, TableDef)>,
    pub groups: Vec<(PathBuf, GroupDef)>,
    pub broken: Vec<(PathBuf, String)>,
}

impl Context {
    /// The table and group files in the directories among `paths`.
    pub fn read(paths: &[PathBuf]) -> Context {
        let mut files = Vec::new();
        for p in paths.iter().filter(|p| p.is_dir()) {
            collect(p, &[TABLE_FILE, GROUP_FILE], &mut files);
        }
        let mut cx = Context::default();
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    cx.broken.push((file, format!("cannot read: {e}")));
                    continue;
                }
            };
            let name = file.to_string_lossy();
            if name.ends_with(TABLE_FILE) {
                match serde_json::from_str::<TableDef>(&text) {
                    Ok(def) => cx.tables.push((file, def)),
                    Err(e) => cx
                        .broken
                        .push((file, format!("not a table definition: {e}"))),
                }
            } else {
                match serde_json::from_str::<GroupDef>(&text) {
                    Ok(def) => cx.groups.push((file, def)),
                    Err(e) => cx.broken.push((file, format!("not an API group: {e}"))),
                }
            }
        }
        cx
    }

    /// The tables by name, as flows are checked against them.
    pub fn catalog(&self) -> Tables {
        self.tables
            .iter()
            .map(|(_, d)| (d.name.to_string(), d.clone()))
            .collect()
    }

    /// The base path of group `name` and whether it is enabled: its file's, `("", true)` for
    /// the default group without a file, `None` for another group without a file.
    pub fn group(&self, name: &str) -> Option<(&str, bool)> {
        match self.groups.iter().find(|(_, g)| g.name == name) {
            Some((_, g)) => Some((g.base_path.as_str(), g.enabled)),
            None if name == DEFAULT_GROUP => Some(("", true)),
            None => None,
        }
    }
}

/// Routes served by more than one flow: each route key (method and path with parameter names
/// erased, below its group's base path) with the files of the flows that serve it.
pub fn collisions(routes: &[(String, PathBuf)]) -> Vec<(String, Vec<&PathBuf>)> {
    let mut by_route: BTreeMap<&str, Vec<&PathBuf>> = BTreeMap::new();
    for (key, file) in routes {
        by_route.entry(key.as_str()).or_default().push(file);
    }
    by_route
        .into_iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(k, files)| (k.to_string(), files))
        .collect()
}

/// `sluice openapi`: the OpenAPI document the flow files' endpoints would publish, checked
/// against the table and group files, as `GET /api/openapi.json` serves it once they are all
/// published. Every problem instead when a file does not parse or compile.
pub fn openapi(paths: &[PathBuf]) -> Result<Value, Vec<String>> {
    let cx = Context::read(paths);
    let mut problems: Vec<String> = cx
        .broken
        .iter()
        .map(|(f, why)| format!("{}: {why}", f.display()))
        .collect();
    let tables = cx.catalog();
    let mut files = Vec::new();
    for p in paths {
        collect(p, &[FLOW_FILE], &mut files);
    }
    let mut compiled = Vec::new();
    for file in files {
        let doc: Value = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        let catalog =
            (!tables.is_empty()).then_some(&tables as &dyn crate::flow::node::TableCatalog);
        match crate::nodes::compile(&doc, catalog) {
            Ok(plan) => compiled.push((file, plan, doc)),
            Err(diags) => problems.extend(diags.iter().map(|d| format!("{}: {d}", file.display()))),
        }
    }
    let mut routes = Vec::new();
    let mut operations = Vec::new();
    for (file, plan, doc) in &compiled {
        let Some(ep) = &plan.endpoint else { continue };
        let Some((base, enabled)) = cx.group(ep.group_name()) else {
            problems.push(format!(
                "{}: API group `{}` has no file ({}{GROUP_FILE})",
                file.display(),
                ep.group_name(),
                ep.group_name()
            ));
            continue;
        };
        routes.push((ep.route_key_under(base), file.clone()));
        // A disabled group's endpoints are not served, so not documented.
        if !enabled {
            continue;
        }
        operations.push(crate::http::openapi::Operation {
            method: ep.method,
            path: format!("{base}{}", ep.path),
            requires_auth: ep.auth != crate::flow::plan::AuthLevel::Public,
            tag: ep.group.clone(),
            plan,
            document: doc,
        });
    }
    for (route, files) in collisions(&routes) {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        problems.push(format!("route {route} is served by {}", names.join(", ")));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(crate::http::openapi::document(&operations, &tables))
}
