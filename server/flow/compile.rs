//! The flow compiler: document -> every problem at once, or an immutable [`Plan`].
//!
//! Order: envelope schema -> node types and node schemas -> graph (entry, ports, targets,
//! reachability, cycles, every path ends in `respond`/`fail`) -> scope analysis -> Rhai
//! compile against the names in scope -> tables and columns against the catalog.
//!
//! A `for_each` body is a graph of its own, compiled by the same code ([`compile_body`]) with
//! the loop's scope; its nodes go into the same flat list as the top level's, so every node of
//! a plan has one index.
//!
//! [`compile_with_scope`] also returns the names visible at each node, described for the
//! editor's completion ([`super::scope`]); the scope analysis keeps where each name was set
//! for that, and the answer is the same whether or not the flow compiles.

use super::canonical;
use super::diag::{Diagnostic, seg};
use super::expr::{ExprCompiler, RESERVED, base_engine};
use super::node::{CompiledOp, ERROR_PORT, NodeCx, NodeType, Placement, Registry, TableCatalog};
use super::plan::{AuthLevel, Endpoint, InputSchema, InputSchemas, Method, Plan, PlanNode};
use super::schema;
use super::scope::{Collector, Origin, Origins, Scope, join};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::LazyLock;

/// The default whole-request timeout of a flow.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Paths below `/api` that Sluice serves itself (the OpenAPI document and its page); an
/// endpoint there would be shadowed whatever its method, so the compiler refuses it.
pub const RESERVED_PATHS: [&str; 2] = ["/openapi.json", "/docs"];

/// Whether an endpoint path (below `/api`, a group's base path included) is one of
/// [`RESERVED_PATHS`].
pub fn is_reserved_path(path: &str) -> bool {
    RESERVED_PATHS.contains(&path.trim_end_matches('/'))
}

/// How deep `for_each` bodies may nest.
pub const MAX_BODY_DEPTH: usize = 4;

static ENGINE: LazyLock<rhai::Engine> = LazyLock::new(base_engine);

struct Edge {
    port: String,
    to: usize,
    binds: bool,
    /// The port sets `error` ([`super::node::Port::sets_error`]).
    sets_error: bool,
}

struct Node<'d, O: 'static> {
    id: &'d str,
    raw: &'d Value,
    ty: Option<&'static NodeType<O>>,
    bind: Option<&'d str>,
    /// The node's own schema passed, so its config can be compiled.
    well_formed: bool,
    edges: Vec<Edge>,
}

/// Where a graph sits: the flow itself, or the body of a `for_each`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GraphKind {
    Top,
    Body,
}

/// A graph to compile: its nodes (a JSON object keyed by id), where they are in the document,
/// its entry and error handler, and the names visible at its entry (with where they were set).
pub struct GraphSpec<'d> {
    pub nodes: &'d serde_json::Map<String, Value>,
    /// JSON pointer of the `nodes` object (`/nodes`, `/nodes/loop/body/nodes`, ...).
    pub prefix: String,
    pub entry: Option<&'d str>,
    pub entry_pointer: String,
    pub on_error: Option<&'d str>,
    pub names: Origins,
    pub kind: GraphKind,
    pub depth: usize,
    /// Whether tables' access rules apply to the flow ([`rules_apply`]).
    pub rules: bool,
}

/// Whether access rules apply to the flow `doc`, as [`super::plan::Plan::rules_apply`] says
/// of its plan: endpoints that are not `admin`, and functions.
fn rules_apply(doc: &Value) -> bool {
    match (doc.get("endpoint"), doc.get("trigger")) {
        (Some(e), _) if e.is_object() => e.get("auth").and_then(Value::as_str) != Some("admin"),
        (_, Some(t)) if t.is_object() => false,
        _ => true,
    }
}

/// Compiles a flow document with the node types of `registry`. Without a catalog, table and
/// column checks are skipped (offline validation) and the plan must not be run.
pub fn compile<O: CompiledOp>(
    doc: &Value,
    catalog: Option<&dyn TableCatalog>,
    registry: &Registry<O>,
) -> Result<Plan<O>, Vec<Diagnostic>> {
    compile_collecting(doc, catalog, registry, None)
}

/// [`compile`], and also the names visible at each reachable node, described for the editor's
/// completion (see [`super::scope`]). The scope is there whether or not the flow compiles.
pub fn compile_with_scope<O: CompiledOp>(
    doc: &Value,
    catalog: Option<&dyn TableCatalog>,
    registry: &Registry<O>,
) -> (Result<Plan<O>, Vec<Diagnostic>>, Scope) {
    let mut seen = Collector::default();
    let mut scope = Scope::new();
    let plan = compile_collecting(doc, catalog, registry, Some((&mut seen, &mut scope)));
    (plan, scope)
}

fn compile_collecting<O: CompiledOp>(
    doc: &Value,
    catalog: Option<&dyn TableCatalog>,
    registry: &Registry<O>,
    collect: Option<(&mut Collector, &mut Scope)>,
) -> Result<Plan<O>, Vec<Diagnostic>> {
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
    let spec = GraphSpec {
        nodes: raw_nodes,
        prefix: "/nodes".into(),
        entry: doc.get("entry").and_then(Value::as_str),
        entry_pointer: "/entry".into(),
        on_error: doc.get("on_error").and_then(Value::as_str),
        names: trigger_names(doc),
        kind: GraphKind::Top,
        depth: 0,
        rules: rules_apply(doc),
    };
    let mut out: Vec<Option<PlanNode<O>>> = Vec::new();
    let (mut seen, scope) = collect.unzip();
    let roots = compile_graph(
        &spec,
        catalog,
        registry,
        &mut out,
        &mut diags,
        seen.as_deref_mut(),
    );
    if let (Some(seen), Some(scope)) = (seen, scope) {
        *scope = std::mem::take(seen).finish(doc, &out, catalog);
    }
    let endpoint = endpoint(doc, &mut diags);
    let trigger = super::trigger::trigger(doc, &mut diags);
    if let (Some(super::trigger::Trigger::Table(t)), Some(c)) = (&trigger, catalog) {
        super::trigger::check_table(t, &|name| c.table(name), &mut diags);
    }
    let mut job = job_settings(doc, &mut diags);
    let transaction = match doc.pointer("/settings/transaction").and_then(Value::as_str) {
        Some("none") => super::plan::TransactionMode::None,
        Some("serializable") => super::plan::TransactionMode::Serializable,
        _ => super::plan::TransactionMode::Auto,
    };
    if transaction == super::plan::TransactionMode::None && doc.get("trigger").is_some() {
        diags.push(Diagnostic::new(
            "flow.bad_setting",
            "/settings/transaction",
            "a flow with a trigger commits its writes with its job; `none` is for endpoints and functions",
        ));
    }
    // `overlap: queue` runs a schedule's occurrences one after another: the scheduler gives its
    // jobs one concurrency key, and the flow at most one run at a time unless it says otherwise.
    if let Some(super::trigger::Trigger::Schedule(s)) = &trigger
        && s.overlap == super::trigger::Overlap::Queue
        && job.concurrency_limit.is_none()
    {
        job.concurrency_limit = Some(1);
    }
    let input = input(doc, &mut diags);
    // Warnings travel with the errors when there are any, and on the plan when there are none.
    if diags.iter().any(|d| !d.is_warning()) {
        return Err(sorted(diags));
    }
    let warnings = sorted(diags);
    let Some((entry, on_error)) = roots else {
        return Err(vec![Diagnostic::new(
            "flow.internal",
            "",
            "the flow has no entry",
        )]);
    };
    let nodes: Option<Vec<PlanNode<O>>> = out.into_iter().collect();
    let Some(nodes) = nodes else {
        // Every node is reachable and well formed here, so each compiled or reported a problem.
        return Err(vec![Diagnostic::new(
            "flow.internal",
            "",
            "a node did not compile",
        )]);
    };
    Ok(Plan {
        name: doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        rev: canonical::rev(doc),
        endpoint,
        trigger,
        job,
        input,
        timeout_ms: doc
            .pointer("/settings/timeout_ms")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        entry,
        on_error,
        nodes,
        // The envelope schema has checked the shape, so decoding cannot fail here.
        rate_limit: doc
            .pointer("/settings/rate_limit")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        read_from_primary: doc.pointer("/settings/read_from").and_then(Value::as_str)
            == Some("primary"),
        capture: doc.pointer("/settings/capture").and_then(Value::as_bool) == Some(true),
        transaction,
        warnings,
    })
}

/// The built-in names of a flow with a trigger: no `request`.
const TRIGGER_BUILTINS: [&str; 2] = ["auth", "env"];

/// The names a flow with a trigger starts with (FLOW-FORMAT.md, "What a trigger flow sees"):
/// `input` (the job's args), `event` (a table trigger's change) and `job`.
fn trigger_names(doc: &Value) -> Origins {
    if doc.get("trigger").is_none() {
        return Origins::new();
    }
    ["input", "event", "job"]
        .into_iter()
        .map(|n| (n.to_string(), BTreeSet::from([Origin::Trigger])))
        .collect()
}

/// `settings.retry` and `settings.concurrency`, shapes checked by the envelope schema; the
/// concurrency key is compiled here against `input` and `event`, the names it may read.
fn job_settings(doc: &Value, diags: &mut Vec<Diagnostic>) -> super::plan::JobSettings {
    let mut s = super::plan::JobSettings::default();
    let num = |p: &str| doc.pointer(p).and_then(Value::as_u64);
    if let Some(n) = num("/settings/retry/max_attempts") {
        s.max_attempts = n as u32;
    }
    if let Some(n) = num("/settings/retry/backoff_ms") {
        s.backoff_ms = n;
    }
    if let Some(n) = num("/settings/retry/max_backoff_ms") {
        s.max_backoff_ms = n;
    }
    s.concurrency_limit = num("/settings/concurrency/limit").map(|n| n as u32);
    if let Some(key) = doc.pointer("/settings/concurrency/key") {
        let mut c = ExprCompiler::with_builtins(&ENGINE, "", &[], ["input", "event"]);
        s.concurrency_key = c.template(key, "/settings/concurrency/key");
        diags.append(&mut c.diags);
    }
    s
}

/// Compiles the body of a `for_each` at `pointer` (the body object) with the names visible in
/// the loop; returns the index of its entry node in the flat node list.
#[allow(clippy::too_many_arguments)]
pub fn compile_body<O: CompiledOp>(
    body: &Value,
    pointer: &str,
    names: Origins,
    depth: usize,
    rules: bool,
    catalog: Option<&dyn TableCatalog>,
    registry: &Registry<O>,
    out: &mut Vec<Option<PlanNode<O>>>,
    diags: &mut Vec<Diagnostic>,
    seen: Option<&mut Collector>,
) -> Option<usize> {
    if depth > MAX_BODY_DEPTH {
        diags.push(Diagnostic::new(
            "flow.too_deep",
            pointer,
            format!("for_each bodies nest at most {MAX_BODY_DEPTH} deep"),
        ));
        return None;
    }
    let nodes = body.get("nodes").and_then(Value::as_object)?;
    let spec = GraphSpec {
        nodes,
        prefix: format!("{pointer}/nodes"),
        entry: body.get("entry").and_then(Value::as_str),
        entry_pointer: format!("{pointer}/entry"),
        on_error: None,
        names,
        kind: GraphKind::Body,
        depth,
        rules,
    };
    compile_graph(&spec, catalog, registry, out, diags, seen).map(|(entry, _)| entry)
}

/// The ports of a node: its type's, the dynamic ones its config declares (`switch`), and the
/// generic `error` port for nodes that continue the flow.
fn ports_of<O>(ty: &NodeType<O>, raw: &Value) -> Vec<(String, bool, bool, bool)> {
    let mut ports: Vec<(String, bool, bool, bool)> = ty
        .ports
        .iter()
        .map(|p| (p.name.to_string(), p.required, p.binds, p.sets_error))
        .collect();
    if let Some(dynamic) = ty.options.dynamic_ports {
        ports.extend(
            dynamic(raw)
                .into_iter()
                .map(|p| (p, true, ty.options.binds, false)),
        );
    }
    if !ty.is_terminal() {
        ports.push((
            ERROR_PORT.name.to_string(),
            ERROR_PORT.required,
            ERROR_PORT.binds,
            ERROR_PORT.sets_error,
        ));
    }
    ports
}

/// Compiles one graph into `out`; returns the global indices of its entry and error handler.
/// With a collector, notes the names visible at each reachable node.
fn compile_graph<O: CompiledOp>(
    spec: &GraphSpec<'_>,
    catalog: Option<&dyn TableCatalog>,
    registry: &Registry<O>,
    out: &mut Vec<Option<PlanNode<O>>>,
    diags: &mut Vec<Diagnostic>,
    mut seen: Option<&mut Collector>,
) -> Option<(usize, Option<usize>)> {
    let raw_nodes = spec.nodes;
    let base = out.len();
    out.extend(std::iter::repeat_with(|| None).take(raw_nodes.len()));
    let index: BTreeMap<&str, usize> = raw_nodes
        .keys()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let pointer = |id: &str| format!("{}/{}", spec.prefix, seg(id));

    // Node types and node schemas.
    let mut graph: Vec<Node<'_, O>> = Vec::with_capacity(raw_nodes.len());
    for (id, raw) in raw_nodes {
        let at = pointer(id);
        let ty_name = raw.get("type").and_then(Value::as_str).unwrap_or("");
        let ty = registry.iter().find(|t| t.name == ty_name).copied();
        let mut well_formed = raw.is_object();
        match ty {
            None if raw.is_object() && !ty_name.is_empty() => {
                let known: Vec<&str> = registry.iter().map(|t| t.name).collect();
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
                    if let Some(key) = t.options.nested {
                        // The body's nodes are checked node by node, with their own pointers.
                        if let Some(b) = o.get_mut(key).and_then(Value::as_object_mut) {
                            b.insert("nodes".into(), Value::Object(Default::default()));
                        }
                    }
                }
                let found = t.schema.check(&body, &at);
                well_formed &= found.is_empty();
                diags.extend(found.into_iter().map(|d| d.at_node(id)));
                let misplaced = match (t.options.placement, spec.kind) {
                    (Placement::TopOnly(why), GraphKind::Body)
                    | (Placement::BodyOnly(why), GraphKind::Top) => Some(why),
                    _ => None,
                };
                if let Some(msg) = misplaced {
                    diags.push(
                        Diagnostic::new("flow.misplaced_node", format!("{at}/type"), msg)
                            .at_node(id),
                    );
                    well_formed = false;
                }
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
    let ends = match spec.kind {
        GraphKind::Top => "`respond` or `fail`",
        GraphKind::Body => "`collect` or `fail`",
    };
    for node in graph.iter_mut() {
        let at = format!("{}/next", pointer(node.id));
        let next = node.raw.get("next").and_then(Value::as_object);
        let ports = node.ty.map(|t| ports_of(t, node.raw));
        for (port, target) in next.into_iter().flatten() {
            let here = format!("{at}/{}", seg(port));
            let spec_port = ports.as_ref().map(|ps| ps.iter().find(|p| &p.0 == port));
            if let Some(None) = spec_port {
                let ty = node.ty.map(|t| t.name).unwrap_or_default();
                let names: Vec<&str> = ports.iter().flatten().map(|p| p.0.as_str()).collect();
                let msg = if names.is_empty() {
                    format!("`{ty}` ends the flow and has no ports")
                } else {
                    format!(
                        "`{ty}` has no port `{port}`; its ports: {}",
                        names.join(", ")
                    )
                };
                diags.push(Diagnostic::new("flow.unknown_port", here, msg).at_node(node.id));
                continue;
            }
            let Some(&to) = target.as_str().and_then(|t| index.get(t)) else {
                if let Some(t) = target.as_str() {
                    let msg =
                        format!("port `{port}` points to `{t}`, which is not a node of this graph");
                    diags.push(Diagnostic::new("flow.dangling_target", here, msg).at_node(node.id));
                }
                continue;
            };
            let binds = spec_port.flatten().is_some_and(|p| p.2);
            let sets_error = spec_port.flatten().is_some_and(|p| p.3);
            node.edges.push(Edge {
                port: port.clone(),
                to,
                binds,
                sets_error,
            });
        }
        for (name, ..) in ports.iter().flatten().filter(|p| p.1) {
            if !next.is_some_and(|n| n.contains_key(name)) {
                let msg = format!(
                    "port `{name}` of `{}` is not wired: this path ends without {ends}",
                    node.id
                );
                diags.push(
                    Diagnostic::new("flow.missing_response", at.clone(), msg).at_node(node.id),
                );
            }
        }
    }

    // Entry, reachability, cycles.
    let entry_id = spec.entry.unwrap_or("");
    let entry = index.get(entry_id).copied();
    if entry.is_none() && spec.entry.is_some() {
        diags.push(Diagnostic::new(
            "flow.unknown_entry",
            spec.entry_pointer.clone(),
            format!("entry `{entry_id}` is not a node here"),
        ));
    }
    let on_error = spec.on_error.and_then(|id| index.get(id).copied());
    if let (Some(id), None) = (spec.on_error, on_error) {
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
                Diagnostic::new("flow.unreachable_node", pointer(node.id), msg).at_node(node.id),
            );
        }
    }
    let order = entry.and_then(|_| topo_order(&graph, &roots, &spec.prefix, diags));

    // Scope analysis: a name is visible if it is set on every path to the node. Ports that
    // take a failure (`error`, `conflict`) set `error`; an `on_error` handler starts with only
    // `error`. Each name keeps where it was set, for the editor's completion.
    let mut scopes: Vec<Option<Origins>> = vec![None; graph.len()];
    if let (Some(order), Some(e)) = (&order, entry) {
        let error = || BTreeSet::from([Origin::Error]);
        scopes[e] = Some(spec.names.clone());
        if let Some(h) = on_error {
            // The handler sees `error`, and what the trigger gave the flow.
            let mut names: Origins = spec
                .names
                .iter()
                .filter(|(_, from)| from.contains(&Origin::Trigger))
                .map(|(n, from)| (n.clone(), from.clone()))
                .collect();
            names.insert("error".to_string(), error());
            scopes[h] = Some(names);
        }
        for &n in order {
            let here = scopes[n].clone().unwrap_or_default();
            for edge in &graph[n].edges {
                let mut out = here.clone();
                if edge.sets_error {
                    out.insert("error".into(), error());
                } else if edge.binds
                    && let Some(name) = graph[n].bind
                {
                    out.insert(name.to_string(), BTreeSet::from([Origin::Bound(base + n)]));
                }
                scopes[edge.to] = Some(match scopes[edge.to].take() {
                    None => out,
                    Some(prev) => join(prev, out),
                });
            }
        }
    }
    if let Some(seen) = seen.as_deref_mut() {
        for (i, node) in graph.iter().enumerate() {
            if let Some(names) = &scopes[i] {
                seen.record(base + i, &pointer(node.id), node.id, node.raw, names);
            }
        }
    }

    // Node configs, expressions, tables. A flow with a trigger has no `request`.
    let triggered = spec
        .names
        .values()
        .any(|from| from.contains(&Origin::Trigger));
    let builtins: &[&str] = if triggered {
        &TRIGGER_BUILTINS
    } else {
        &super::expr::BUILTINS
    };
    let binders: BTreeMap<usize, &'static str> = graph
        .iter()
        .enumerate()
        .filter_map(|(j, n)| Some((base + j, n.ty?.name)))
        .collect();
    for (i, node) in graph.iter().enumerate() {
        let (Some(ty), true, Some(names)) = (
            node.ty,
            node.well_formed && reachable[i],
            scopes[i].as_ref(),
        ) else {
            continue;
        };
        let mut cx = NodeCx {
            id: node.id,
            index: base + i,
            pointer: pointer(node.id),
            expr: ExprCompiler::with_builtins(
                &ENGINE,
                node.id,
                builtins,
                names.keys().map(String::as_str),
            ),
            catalog,
            ports: node
                .edges
                .iter()
                .map(|e| (e.port.clone(), base + e.to))
                .collect(),
            names: names.keys().cloned().collect(),
            origins: names.clone(),
            binders: binders.clone(),
            depth: spec.depth,
            out: &mut *out,
            seen: seen.as_deref_mut(),
            registry,
            body_diags: Vec::new(),
            rules: spec.rules,
        };
        let op = (ty.compile)(node.raw, &mut cx);
        let bypass = node.raw.pointer("/rules/bypass").and_then(Value::as_str);
        if let (Some(op), true, None, Some(catalog)) = (&op, spec.rules, bypass, catalog)
            && let Some(why) = op.unruled(catalog)
        {
            diags.push(Diagnostic::new(
                "flow.rules_not_applied",
                format!("{}/rules", pointer(node.id)),
                format!(
                    "{why}; add \"rules\": {{\"bypass\": \"<why this endpoint may>\"}} to this node"
                ),
            ));
        }
        let body_diags = std::mem::take(&mut cx.body_diags);
        diags.append(&mut cx.expr.diags);
        diags.extend(body_diags);
        if let Some(op) = op {
            out[base + i] = Some(PlanNode {
                id: node.id.to_string(),
                type_name: ty.name,
                bind: node.bind.map(str::to_string),
                op,
                error: node
                    .edges
                    .iter()
                    .find(|e| e.port == ERROR_PORT.name)
                    .map(|e| base + e.to),
                bypass: node
                    .raw
                    .pointer("/rules/bypass")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            });
        }
    }
    entry.map(|e| (base + e, on_error.map(|h| base + h)))
}

/// Nodes reachable from the roots in an order where every node comes after its predecessors;
/// `None` (with a diagnostic per back edge) when the graph has a cycle.
fn topo_order<O>(
    graph: &[Node<'_, O>],
    roots: &[usize],
    prefix: &str,
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
                        let at = format!("{prefix}/{}/next/{}", seg(graph[n].id), seg(&edge.port));
                        let msg = format!(
                            "port `{}` of `{}` leads back to `{}`: flows cannot loop (use for_each)",
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
    if is_reserved_path(&path) {
        diags.push(Diagnostic::new(
            "flow.reserved_path",
            "/endpoint/path",
            format!(
                "/api{path} is served by Sluice itself (the API documentation); choose another path"
            ),
        ));
    }
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
    let auth = ep
        .get("auth")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    let group = ep.get("group").and_then(Value::as_str).map(str::to_string);
    let sandbox = ep.get("sandbox").and_then(Value::as_bool).unwrap_or(true);
    let audience = ep
        .get("audience")
        .and_then(Value::as_str)
        .map(str::to_string);
    if audience.is_some() && auth == AuthLevel::Public {
        diags.push(Diagnostic::new(
            "flow.audience_without_auth",
            "/endpoint/audience",
            "a public endpoint reads no token, so it has no audience; set `auth` to \"user\" or \"admin\"",
        ));
    }
    Some(Endpoint {
        method,
        path,
        auth,
        group,
        sandbox,
        audience,
    })
}

fn input(doc: &Value, diags: &mut Vec<Diagnostic>) -> InputSchemas {
    let mut part = |name: &str| {
        let s = doc.get("input")?.get(name)?;
        match super::schema::user_validator(s) {
            Ok(validator) => Some(InputSchema {
                schema: s.clone(),
                validator: std::sync::Arc::new(validator),
            }),
            Err(e) => {
                diags.push(Diagnostic::new(
                    "flow.bad_schema",
                    format!("/input/{name}"),
                    e.to_string(),
                ));
                None
            }
        }
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
