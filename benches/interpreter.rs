//! Interpreter overhead: what `engine::run` costs per node, per small script and per templated
//! response, with the database stubbed out (a lazy pool that is never connected: these flows
//! have no database nodes). Run with `cargo bench --bench interpreter`; see bench/README.md.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use sluice::engine::outbound::{AllowList, Outbound};
use sluice::engine::{Live, Program, Request, Runtime, ScriptLimits, run};
use sluice::tables::def::Tables;
use sqlx::PgPool;
use std::hint::black_box;
use std::sync::Arc;

/// Compiles and builds a flow once, as publishing does.
fn program(nodes: Value, entry: &str) -> Program {
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "bench",
        "endpoint": {"method": "POST", "path": "/bench"}, "entry": entry, "nodes": nodes});
    let plan = sluice::nodes::compile(&doc, None).expect("the benchmark flow compiles");
    Program::build(plan, &Tables::new()).expect("the benchmark flow builds")
}

/// `n` nodes made by `node(i, next)`, ending in a `respond` with a literal body.
fn chain(n: usize, node: impl Fn(usize, &str) -> Value) -> Program {
    let mut nodes = Map::new();
    for i in 0..n {
        let next = if i + 1 < n {
            format!("n{:02}", i + 1)
        } else {
            "reply".to_string()
        };
        nodes.insert(format!("n{i:02}"), node(i, &next));
    }
    nodes.insert(
        "reply".into(),
        json!({"type": "respond", "body": {"ok": true}}),
    );
    program(Value::Object(nodes), "n00")
}

/// A small, typical request: two path/query values, three headers, a small JSON body.
fn request() -> Request {
    let strings = |pairs: &[(&str, &str)]| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect()
    };
    Request {
        params: Map::new(),
        query: strings(&[("limit", "20"), ("tag", "home")]),
        body: json!({"title": "Buy milk", "priority": 2, "tags": ["home", "shop"]}),
        headers: strings(&[
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("user-agent", "bench/1.0"),
        ]),
        auth: Value::Null,
    }
}

fn runtime() -> Runtime {
    // Never connected: no benchmark flow has a database node.
    let db = PgPool::connect_lazy("postgres://unused@127.0.0.1:1/x").expect("a lazy pool");
    let outbound = Outbound::new(AllowList::new(Vec::new(), Vec::new())).expect("an http client");
    Runtime::new(db, ScriptLimits::default(), outbound)
}

fn bench_flow(c: &mut Criterion, name: &str, program: &Program) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = rt.block_on(async { runtime() });
    let answer = rt.block_on(run(program, &engine, &Live::default(), request()));
    assert!(
        matches!(&answer, Ok(r) if r.status == 200),
        "{name}: {answer:?}"
    );
    c.bench_function(name, |b| {
        b.iter_batched(
            request,
            |req| black_box(rt.block_on(run(program, &engine, &Live::default(), req))),
            BatchSize::SmallInput,
        )
    });
}

/// The same on the server's kind of runtime: multi-threaded, the run spawned onto a worker (so
/// scripts pay for leaving it through `block_in_place`). Includes the spawn and the join.
fn bench_flow_multi_thread(c: &mut Criterion, name: &str, program: Program) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Arc::new(rt.block_on(async { runtime() }));
    let program = Arc::new(program);
    let once = |req: Request| {
        let (program, engine) = (program.clone(), engine.clone());
        rt.block_on(async move {
            tokio::spawn(async move { run(&program, &engine, &Live::default(), req).await })
                .await
                .expect("the run ends")
        })
    };
    let answer = once(request());
    assert!(
        matches!(&answer, Ok(r) if r.status == 200),
        "{name}: {answer:?}"
    );
    c.bench_function(name, |b| {
        b.iter_batched(request, |req| black_box(once(req)), BatchSize::SmallInput)
    });
}

/// (a) Per-node dispatch: chains of 1 and 64 trivial nodes; the slope is the cost of a node.
fn dispatch(c: &mut Criterion) {
    for n in [1, 64] {
        let p = chain(
            n,
            |_, next| json!({"type": "if", "condition": true, "next": {"then": next, "else": next}}),
        );
        bench_flow(c, &format!("dispatch/if_literal/{n}"), &p);
    }
    for n in [1, 64] {
        let p = chain(
            n,
            |_, next| json!({"type": "if", "condition": {"$rhai": "true"}, "next": {"then": next, "else": next}}),
        );
        bench_flow(c, &format!("dispatch/if_expr/{n}"), &p);
    }
    for n in [1, 64] {
        let p = chain(
            n,
            |i, next| json!({"type": "script", "code": "1", "as": format!("v{i}"), "next": {"ok": next}}),
        );
        bench_flow(c, &format!("dispatch/script_const/{n}"), &p);
    }
    for n in [1, 64] {
        let p = chain(
            n,
            |_, next| json!({"type": "if", "condition": {"$rhai": "true"}, "next": {"then": next, "else": next}}),
        );
        bench_flow_multi_thread(c, &format!("multi_thread/if_expr/{n}"), p);
    }
    for n in [1, 64] {
        let p = chain(
            n,
            |i, next| json!({"type": "script", "code": "1", "as": format!("v{i}"), "next": {"ok": next}}),
        );
        bench_flow_multi_thread(c, &format!("multi_thread/script_const/{n}"), p);
    }
}

/// (b) One small script node (its AST compiled once at publish) and a response that reads it.
fn script(c: &mut Criterion) {
    let p = program(
        json!({
            "calc": {"type": "script", "as": "out",
                     "code": "let limit = parse_int(request.query.limit);\nlet title = request.body.title;\n#{ title: title.to_upper(), limit: limit * 2, tags: request.body.tags.len() }",
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "out"}}
        }),
        "calc",
    );
    bench_flow(c, "script/small", &p);
}

/// (c) A `respond` whose body is a template of ten fields, half literals, half expressions.
fn respond(c: &mut Criterion) {
    let p = program(
        json!({
            "reply": {"type": "respond", "status": 200, "headers": {"Cache-Control": "no-store"}, "body": {
                "title": {"$rhai": "request.body.title"},
                "priority": {"$rhai": "request.body.priority + 1"},
                "tag": {"$rhai": "request.query.tag"},
                "limit": {"$rhai": "request.query.limit"},
                "agent": {"$rhai": "request.headers[\"user-agent\"]"},
                "source": "sluice",
                "version": 1,
                "done": false,
                "links": {"self": "/todos", "docs": "/api/docs"},
                "empty": null
            }}
        }),
        "reply",
    );
    bench_flow(c, "respond/template_10_fields", &p);
}

criterion_group!(benches, dispatch, script, respond);
criterion_main!(benches);
