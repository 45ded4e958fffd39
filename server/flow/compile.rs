//! The flow compiler: document -> every problem at once, or an immutable [`Plan`].
//!
//! Order: envelope schema -> node types and node schemas -> graph (entry, ports, targets,
//! reachability, cycles, every path ends in `respond`/`fail`) -> scope analysis -> Rhai
//! compile against the names in scope -> tables and columns against the catalog.

use super::canonical;
use super::diag::{Diagnostic, seg};
use super::expr::{ExprCompiler, RESERVED, base_engine};
use super::nodes::{self, ERROR_PORT, NodeCx, NodeType, TableCatalog};
use super::plan::{Endpoint, InputSchemas, Method, Plan, PlanNode};
use super::schema;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::LazyLock;

/// The default whole-request timeout of a flow.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

static ENGINE: LazyLock<rhai::Engine> = LazyLock::new(base_engine);

struct Edge {
    port: String,
    to: usize,
    binds: bool,
}

struct Node<'d> {
    id: &'d str,
    raw: &'d Value,
    ty: Option<&'static NodeType>,
    bind: Option<&'d str>,
    /// The node's own schema passed, so its config can be compiled.
    well_formed: bool,
    edges: Vec<Edge>,
}

/// Compiles a flow document. Without a catalog, table and column checks are skipped (offline
/// validation) and the plan must not be run.
pub fn compile(doc: &Value, catalog: Option<&dyn TableCatalog>) -> Result<Plan, Vec<Diagnostic>> {
    let mut diags = schema::check_envelope(doc);
    // Only a document that is not a flow of this format version stops the check early; other
    // envelope problems are reported together with everything else.
    let foreign = !doc.is_object() || diags.iter().any(|d| d.pointer.starts_with("/format"));
    let Some(raw_nodes) = doc
        .get("nodes")
        .and_then(Value::as_object)
        .filter(|_| !foreign)
    else {
        return Err(sorted(diags));
    };

    // Node types and node schemas.
    let ids: Vec<&str> = raw_nodes.keys().map(String::as_str).collect();
    let index: BTreeMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut graph: Vec<Node<'_>> = Vec::with_capacity(ids.len());
    for (id, raw) in raw_nodes {
        let at = format!("/nodes/{}", seg(id));
        let ty_name = raw.get("type").and_then(Value::as_str).unwrap_or("");
        let ty = nodes::lookup(ty_name);
        let mut well_formed = raw.is_object();
        match ty {
            None if raw.is_object() && !ty_name.is_empty() => {
                let known: Vec<&str> = nodes::builtin().iter().map(|t| t.name).collect();
                diags.push(
                    Diagnostic::new(
                        "flow.unknown_node_type",
                        format!("{at}/type"),
                        format!(
                            "unknown node type `{ty_name}`; known types: {}",
                            known.join(", ")
                        ),
                    )
                    .at_node(id),
                );
                well_formed = false;
            }
            None => well_formed = false,
            Some(t) => {
                let mut body = raw.clone();
                if let Some(o) = body.as_object_mut() {
                    o.remove("next");
                }
                let found = schema::check_node(t.name, &body, &at).unwrap_or_default();
                well_formed &= found.is_empty();
                diags.extend(found.into_iter().map(|d| d.at_node(id)));
            }
        }
        let bind = raw.get("as").and_then(Value::as_str);
        if let Some(name) = bind.filter(|b| RESERVED.contains(b)) {
            diags.push(
                Diagnostic::new(
                    "flow.reserved_name",
                    format!("{at}/as"),
                    format!("`{name}` is a reserved name"),
                )
                .at_node(id),
            );
        }
        graph.push(Node {
            id,
            raw,
            ty,
            bind,
            well_formed,
            edges: Vec::new(),
        });
    }

    // Wiring.
    for node in graph.iter_mut() {
        let at = format!("/nodes/{}/next", seg(node.id));
        let next = node.raw.get("next").and_then(Value::as_object);
        for (port, target) in next.into_iter().flatten() {
            let here = format!("{at}/{}", seg(port));
            let spec = node.ty.map(|t| t.port(port));
            if let Some(None) = spec {
                let ty = node.ty.map(|t| t.name).unwrap_or_default();
                let ports: Vec<&str> = node
                    .ty
                    .map(|t| t.ports.iter().map(|p| p.name).collect())
                    .unwrap_or_default();
                let msg = if ports.is_empty() {
                    format!("`{ty}` ends the flow and has no ports")
                } else {
                    format!(
                        "`{ty}` has no port `{port}`; its ports: {}",
                        ports.join(", ")
                    )
                };
                diags.push(Diagnostic::new("flow.unknown_port", here, msg).at_node(node.id));
                continue;
            }
            let Some(&to) = target.as_str().and_then(|t| index.get(t)) else {
                if let Some(t) = target.as_str() {
                    let msg =
                        format!("port `{port}` points to `{t}`, which is not a node of this flow");
                    diags.push(Diagnostic::new("flow.dangling_target", here, msg).at_node(node.id));
                }
                continue;
            };
            let binds = spec.flatten().is_some_and(|p| p.binds);
            node.edges.push(Edge {
                port: port.clone(),
                to,
                binds,
            });
        }
        if let Some(ty) = node.ty {
            for p in ty.ports.iter().filter(|p| p.required) {
                if !next.is_some_and(|n| n.contains_key(p.name)) {
                    let msg = format!(
                        "port `{}` of `{}` is not wired: this path ends without `respond` or `fail`",
                        p.name, node.id
                    );
                    diags.push(
                        Diagnostic::new("flow.missing_response", at.clone(), msg).at_node(node.id),
                    );
                }
            }
        }
    }

    // Entry, reachability, cycles.
    let entry_id = doc.get("entry").and_then(Value::as_str).unwrap_or("");
    let entry = index.get(entry_id).copied();
    if entry.is_none() && doc.get("entry").is_some_and(Value::is_string) {
        diags.push(Diagnostic::new(
            "flow.unknown_entry",
            "/entry",
            format!("entry `{entry_id}` is not a node of this flow"),
        ));
    }
    let on_error_id = doc.get("on_error").and_then(Value::as_str);
    let on_error = on_error_id.and_then(|id| index.get(id).copied());
    if let (Some(id), None) = (on_error_id, on_error) {
        diags.push(Diagnostic::new(
            "flow.unknown_on_error",
            "/on_error",
            format!("on_error `{id}` is not a node of this flow"),
        ));
    }
    let roots: Vec<usize> = entry.into_iter().chain(on_error).collect();
    let mut reachable = vec![false; graph.len()];
    if entry.is_some() {
        let mut queue: VecDeque<usize> = roots.iter().copied().collect();
        for &r in &roots {
            reachable[r] = true;
        }
        while let Some(n) = queue.pop_front() {
            for edge in &graph[n].edges {
                if !reachable[edge.to] {
                    reachable[edge.to] = true;
                    queue.push_back(edge.to);
                }
            }
        }
        for node in graph
            .iter()
            .enumerate()
            .filter(|(i, _)| !reachable[*i])
            .map(|(_, n)| n)
        {
            let msg = format!(
                "node `{}` cannot be reached from the entry `{entry_id}`",
                node.id
            );
            diags.push(
                Diagnostic::new(
                    "flow.unreachable_node",
                    format!("/nodes/{}", seg(node.id)),
                    msg,
                )
                .at_node(node.id),
            );
        }
    }
    let order = entry.and_then(|_| topo_order(&graph, &roots, &mut diags));

    // Scope analysis: a name is visible if it is set on every path to the node. The `error`
    // port sets `error`; an `on_error` handler starts with only `error`.
    let mut scopes: Vec<Option<BTreeSet<&str>>> = vec![None; graph.len()];
    if let (Some(order), Some(e)) = (&order, entry) {
        scopes[e] = Some(BTreeSet::new());
        if let Some(h) = on_error {
            scopes[h] = Some(BTreeSet::from(["error"]));
        }
        for &n in order {
            let here = scopes[n].clone().unwrap_or_default();
            for edge in &graph[n].edges {
                let mut out = here.clone();
                if edge.port == ERROR_PORT.name {
                    out.insert("error");
                } else if edge.binds {
                    out.extend(graph[n].bind);
                }
                scopes[edge.to] = Some(match scopes[edge.to].take() {
                    None => out,
                    Some(prev) => prev.intersection(&out).copied().collect(),
                });
            }
        }
    }

    // Node configs, expressions, tables.
    let mut ops = Vec::with_capacity(graph.len());
    for (i, node) in graph.iter().enumerate() {
        let (Some(ty), true, Some(names)) = (
            node.ty,
            node.well_formed && reachable[i],
            scopes[i].as_ref(),
        ) else {
            ops.push(None);
            continue;
        };
        let mut cx = NodeCx {
            id: node.id,
            pointer: format!("/nodes/{}", seg(node.id)),
            expr: ExprCompiler::new(&ENGINE, node.id, names.iter().copied()),
            catalog,
            ports: node.edges.iter().map(|e| (e.port.clone(), e.to)).collect(),
        };
        let op = (ty.compile)(node.raw, &mut cx);
        diags.append(&mut cx.expr.diags);
        ops.push(op);
    }

    let endpoint = endpoint(doc, &mut diags);
    let input = input(doc, &mut diags);
    if !diags.is_empty() {
        return Err(sorted(diags));
    }
    let nodes = graph
        .iter()
        .zip(ops)
        .filter_map(|(n, op)| {
            Some(PlanNode {
                id: n.id.to_string(),
                bind: n.bind.map(str::to_string),
                op: op?,
                error: n
                    .edges
                    .iter()
                    .find(|e| e.port == ERROR_PORT.name)
                    .map(|e| e.to),
            })
        })
        .collect::<Vec<_>>();
    if nodes.len() != graph.len() {
        // Every node is reachable and well formed here, so each compiled or reported a problem.
        return Err(vec![Diagnostic::new(
            "flow.internal",
            "",
            "a node did not compile",
        )]);
    }
    Ok(Plan {
        name: doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        rev: canonical::rev(doc),
        endpoint,
        input,
        timeout_ms: doc
            .pointer("/settings/timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        entry: entry.unwrap_or(0),
        on_error,
        nodes,
    })
}

/// Nodes reachable from `entry` in an order where every node comes after its predecessors;
/// `None` (with a diagnostic per back edge) when the graph has a cycle.
fn topo_order(
    graph: &[Node<'_>],
    roots: &[usize],
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; graph.len()];
    let mut post = Vec::new();
    let mut cyclic = false;
    // Iterative DFS from each root: (node, next edge index). Reverse post-order of the forest
    // is a topological order.
    let mut stack = Vec::new();
    for &root in roots {
        if mark[root] != Mark::New {
            continue;
        }
        mark[root] = Mark::Open;
        stack.push((root, 0usize));
        while let Some((n, i)) = stack.pop() {
            if let Some(edge) = graph[n].edges.get(i) {
                stack.push((n, i + 1));
                match mark[edge.to] {
                    Mark::New => {
                        mark[edge.to] = Mark::Open;
                        stack.push((edge.to, 0));
                    }
                    Mark::Open => {
                        cyclic = true;
                        let at = format!("/nodes/{}/next/{}", seg(graph[n].id), seg(&edge.port));
                        let msg = format!(
                            "port `{}` of `{}` leads back to `{}`: flows cannot loop",
                            edge.port, graph[n].id, graph[edge.to].id
                        );
                        diags.push(Diagnostic::new("flow.cycle", at, msg).at_node(graph[n].id));
                    }
                    Mark::Done => {}
                }
            } else {
                mark[n] = Mark::Done;
                post.push(n);
            }
        }
    }
    post.reverse();
    (!cyclic).then_some(post)
}

fn endpoint(doc: &Value, diags: &mut Vec<Diagnostic>) -> Option<Endpoint> {
    let ep = doc.get("endpoint")?;
    let method: Method = serde_json::from_value(ep.get("method")?.clone()).ok()?;
    let path = ep.get("path")?.as_str()?.to_string();
    let mut seen = BTreeSet::new();
    for p in path.split('/').filter(|s| s.starts_with('{')) {
        if !seen.insert(p) {
            diags.push(Diagnostic::new(
                "flow.bad_path",
                "/endpoint/path",
                format!("parameter {p} appears twice"),
            ));
        }
    }
    let declared = doc
        .pointer("/input/params/properties")
        .and_then(Value::as_object);
    for name in declared.into_iter().flat_map(|m| m.keys()) {
        if !seen.contains(format!("{{{name}}}").as_str()) {
            let at = format!("/input/params/properties/{}", seg(name));
            diags.push(Diagnostic::new(
                "flow.bad_path",
                at,
                format!("`{name}` is not a parameter of the path {path}"),
            ));
        }
    }
    Some(Endpoint { method, path })
}

fn input(doc: &Value, diags: &mut Vec<Diagnostic>) -> InputSchemas {
    let mut part = |name: &str| {
        let s = doc.get("input")?.get(name)?;
        if let Err(e) = jsonschema::validator_for(s) {
            diags.push(Diagnostic::new(
                "flow.bad_schema",
                format!("/input/{name}"),
                e.to_string(),
            ));
        }
        Some(s.clone())
    };
    InputSchemas {
        params: part("params"),
        query: part("query"),
        body: part("body"),
    }
}

fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by(|a, b| a.pointer.cmp(&b.pointer).then(a.code.cmp(b.code)));
    diags.dedup();
    diags
}
