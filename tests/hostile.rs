//! Hostile scripts against the real server: runaway loops, deep recursion, memory bombs, `eval`
//! and its indirections, reaching for files, the network or the clock, writing to constants,
//! and nesting meant to overflow the parser's stack. Each must end in a typed JSON error (at
//! save, or `script.limit_exceeded` / `script.error` / `flow.timeout` at run time) while a
//! cheap endpoint keeps answering 200 alongside. Assertions are about answers, never timings.

mod common;

use common::{TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// The wall-clock limit of one evaluation in these tests.
const SCRIPT_TIMEOUT: Duration = Duration::from_millis(300);

async fn spawn() -> TestApp {
    let app = spawn_app_with(|config| config.script_timeout = SCRIPT_TIMEOUT).await;
    app.publish(&endpoint(
        "ping",
        "/ping",
        json!({"type": "respond", "body": {"pong": true}}),
    ))
    .await;
    app
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("<no error envelope>")
}

/// A flow of one node at `POST <path>`.
fn endpoint(name: &str, path: &str, node: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": "POST", "path": path}, "entry": "main", "nodes": {"main": node}})
}

/// A flow whose `script` node runs `code` and answers with its value.
fn script_flow(name: &str, code: &str) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
    "endpoint": {"method": "POST", "path": format!("/{name}")}, "entry": "main",
    "nodes": {
        "main": {"type": "script", "code": code, "as": "out", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"$rhai": "out"}}
    }})
}

/// Sends `hostile` while a loop of cheap requests runs beside it; returns the hostile answer
/// after checking that every cheap request was answered with 200.
async fn alongside_cheap(app: &TestApp, hostile: reqwest::RequestBuilder) -> (u16, Value) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let cheap = async {
        let mut answered = 0;
        // Bounded: keeps going while the hostile request runs, and a few times after.
        for i in 0..2000 {
            if i >= 3 && done.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let (status, body) = app.send(app.api(Method::POST, "/ping")).await;
            assert_eq!((status, &body), (200, &json!({"pong": true})));
            answered += 1;
        }
        answered
    };
    let hostile = async {
        let answer = app.send(hostile).await;
        done.store(true, std::sync::atomic::Ordering::Release);
        answer
    };
    let (answer, answered) = tokio::join!(hostile, cheap);
    assert!(answered >= 3);
    answer
}

/// Publishes `code` as a script endpoint and runs it beside the cheap loop, with a small body.
async fn run_script(app: &TestApp, name: &str, code: &str) -> (u16, Value) {
    app.publish(&script_flow(name, code)).await;
    let body = json!({"title": "t", "tags": ["a"]});
    alongside_cheap(app, app.api(Method::POST, &format!("/{name}")).json(&body)).await
}

/// Saves a flow and returns the codes of its diagnostics (empty when it was accepted).
async fn refused_at_save(app: &TestApp, doc: &Value) -> Vec<String> {
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(doc)).await;
    if status == 201 {
        return Vec::new();
    }
    assert_eq!((status, code(&body)), (422, "flow.invalid"), "{body}");
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_scripts_stop_at_their_limits_while_other_requests_are_served() {
    let app = spawn().await;
    let cases = [
        ("spin", "loop {}"),
        ("spin_while", "let i = 0; while true { i += 1; }"),
        ("recurse", "fn f(n) { f(n + 1) } f(0)"),
        ("recurse_two", "fn a(n) { b(n) } fn b(n) { a(n + 1) } a(0)"),
        ("in_function", "fn f() { loop {} } f()"),
        // Limits cannot be caught.
        ("catch_deadline", "loop { try { loop {} } catch {} }"),
        (
            "catch_overflow",
            "fn f(n) { f(n + 1) } loop { try { f(0) } catch {} }",
        ),
        (
            "catch_size",
            "let s = \"x\"; loop { try { s += s; } catch {} }",
        ),
        ("in_closure", "[1, 2].map(|x| { loop {} })"),
        (
            "self_applied",
            "let f = |g, n| g.call(g, n + 1); f.call(f, 0)",
        ),
        // Each failed borrow of a shared value makes Rhai sleep 50 ms; the deadline still holds.
        (
            "data_race",
            "let f = |x| x; f = |x| f.call(x); loop { try { f.call(1) } catch {} }",
        ),
    ];
    for (name, source) in cases {
        let (status, body) = run_script(&app, name, source).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.limit_exceeded"),
            "{name}: {body}"
        );
        assert!(body["error"]["request_id"].is_string(), "{name}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_deadline_shorter_than_the_script_limit_ends_in_flow_timeout() {
    let app = spawn().await;
    let mut doc = script_flow("short", "loop {}");
    doc["settings"] = json!({"timeout_ms": 50});
    app.publish(&doc).await;
    let (status, body) = alongside_cheap(&app, app.api(Method::POST, "/short")).await;
    assert_eq!((status, code(&body)), (504, "flow.timeout"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_are_stopped_by_size_limits_and_the_server_stays_small() {
    let app = spawn().await;
    let before = peak_rss_kib();
    let cases = [
        // A 1 GB string by doubling: stopped at 1 MiB.
        ("doubling", "let s = \"x\"; loop { s += s; }"),
        (
            "doubling_expr",
            "let s = \"0123456789\"; for i in 0..40 { s = s + s; } s.len()",
        ),
        ("pad_string", "let s = \"x\"; s.pad(1000000000, \"y\"); s"),
        ("push_forever", "let a = []; loop { a.push(1) }"),
        ("pad_array", "let a = [0]; a.pad(1000000000, 0); a.len()"),
        ("blob", "blob(1000000000).len()"),
        (
            "nested_arrays",
            "let a = [0]; a.pad(90000, 0); let b = [a, a]; b.len()",
        ),
        ("append_self", "let a = [1]; loop { a.append(a); }"),
        (
            "map_entries",
            "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        ),
        (
            "map_values",
            "let s = \"x\"; s.pad(600000, \"y\"); #{a: s, b: s + \"z\"}",
        ),
        (
            "to_string",
            "let a = [0]; a.pad(90000, 0); let s = \"\"; loop { s += a.to_string(); }",
        ),
        (
            "parse_json",
            "let s = \"[\"; s.pad(1000001, \"0,\"); s += \"0]\"; parse_json(s)",
        ),
        (
            "to_json",
            "let s = \"x\"; s.pad(1000000, \"\\u0001\"); to_json(s)",
        ),
    ];
    for (name, source) in cases {
        let (status, body) = run_script(&app, name, source).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.limit_exceeded"),
            "{name}: {body}"
        );
    }
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(
        grown < 256 * 1024,
        "the peak resident size grew by {grown} KiB"
    );
}

/// The process's peak resident size (the server runs inside the test process).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blowups_inside_expressions_are_limited_too() {
    let app = spawn().await;
    let cases = [
        (
            "expr_string",
            "blob(100000).to_string() + blob(100000).to_string() + blob(100000).to_string() + blob(100000).to_string() + blob(100000).to_string()",
        ),
        ("expr_blob", "blob(2000000)"),
        (
            "expr_array",
            "blob(100000).to_array() + blob(100000).to_array()",
        ),
        ("expr_map", "#{a: blob(60000), b: blob(60000)}"),
        (
            "expr_recursion",
            "(|g, n| g.call(g, n + 1)).call(|g, n| g.call(g, n + 1), 0)",
        ),
        (
            "expr_slow",
            "blob(100000).to_array().map(|x| blob(100000).to_string().len()).len()",
        ),
    ];
    for (name, expr) in cases {
        let doc = endpoint(
            name,
            &format!("/{name}"),
            json!({"type": "respond", "body": {"x": {"$rhai": expr}}}),
        );
        app.publish(&doc).await;
        let (status, body) =
            alongside_cheap(&app, app.api(Method::POST, &format!("/{name}"))).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.limit_exceeded"),
            "{name}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eval_is_refused_at_save_and_its_indirections_fail_at_run_time() {
    let app = spawn().await;
    for source in ["eval(\"1\")", "let x = eval(\"40 + 2\"); x", "\"1\".eval()"] {
        let codes = refused_at_save(&app, &script_flow("direct", source)).await;
        assert_eq!(codes, ["flow.rhai_syntax"], "{source}");
    }
    let doc = endpoint(
        "in_expr",
        "/in-expr",
        json!({"type": "respond", "body": {"$rhai": "eval(\"1\")"}}),
    );
    assert_eq!(refused_at_save(&app, &doc).await, ["flow.rhai_syntax"]);

    let cases = [
        ("fn_eval", "Fn(\"eval\").call(\"1\")"),
        ("call_eval", "call(Fn(\"eval\"), \"1\")"),
        (
            "built_name",
            "let f = Fn(\"ev\" + \"al\"); f.call(\"40 + 2\")",
        ),
        ("curried", "let f = Fn(\"eval\").curry(\"1\"); f.call()"),
        ("call_fn", "call_fn(\"eval\", \"1\")"),
        ("call_fn_raw", "call_fn_raw(\"eval\", [\"1\"])"),
        // `parse_json` is data only: Rhai's own version evaluated expressions such as `1 + 2`.
        ("json_expr", "parse_json(\"{\\\"a\\\": 1 + 2}\")"),
        ("json_call", "parse_json(\"{\\\"a\\\": uuid()}\")"),
    ];
    for (name, source) in cases {
        let (status, body) = run_script(&app, name, source).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.error"),
            "{name}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_network_processes_and_sleep_are_out_of_reach() {
    let app = spawn().await;
    // Refused at save: modules do not exist, so `import` and `fs::` are syntax errors.
    for source in [
        "import \"x\" as y; 1",
        "import \"/etc/passwd\" as p; p",
        "fs::read(\"/etc/passwd\")",
        "std::process::exit(1)",
    ] {
        let codes = refused_at_save(&app, &script_flow("reach", source)).await;
        assert_eq!(codes, ["flow.rhai_syntax"], "{source}");
    }
    // Unknown functions at run time.
    let cases = [
        ("open", "open(\"/etc/passwd\")"),
        ("file", "File(\"/etc/passwd\")"),
        ("read_file", "read_file(\"/etc/passwd\")"),
        ("system", "system(\"ls\")"),
        ("exec", "exec(\"ls\")"),
        ("command", "Command(\"ls\")"),
        ("http_get", "http_get(\"http://127.0.0.1/\")"),
        ("fetch", "fetch(\"http://127.0.0.1/\")"),
        ("env_var", "env_var(\"HOME\")"),
        ("fn_ptr", "Fn(\"open\").call(\"/etc/passwd\")"),
        // Rhai's `sleep` would block the worker past every deadline; it is switched off.
        ("sleep", "sleep(1000000)"),
        ("sleep_float", "sleep(1e300)"),
        ("sleep_indirect", "Fn(\"sleep\").call(5)"),
    ];
    for (name, source) in cases {
        let (status, body) = run_script(&app, name, source).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.error"),
            "{name}: {body}"
        );
    }
    // `print` and `debug` exist but write nowhere.
    let (status, body) = run_script(&app, "quiet", "print(\"x\"); debug(\"y\"); 7").await;
    assert_eq!((status, body), (200, json!(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_names_a_script_sees_are_constants() {
    let app = spawn().await;
    let cases = [
        ("assign_request", "request = #{}; 1"),
        ("assign_body", "request.body = 1; 1"),
        ("assign_header", "request.headers.host = \"evil\"; 1"),
        ("clear_headers", "request.headers.clear(); 1"),
        ("push_tag", "request.body.tags.push(\"x\"); 1"),
        ("add_to_title", "request.body.title += \"!\"; 1"),
    ];
    for (name, source) in cases {
        let (status, body) = run_script(&app, name, source).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.error"),
            "{name}: {body}"
        );
    }
    // Shadowing with `let` is allowed and ends with the script.
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "shadow",
    "endpoint": {"method": "POST", "path": "/shadow"}, "entry": "main",
    "nodes": {
        "main": {"type": "script", "code": "let request = 5; request", "as": "out", "next": {"ok": "reply"}},
        "reply": {"type": "respond", "body": {"out": {"$rhai": "out"}, "body": {"$rhai": "request.body"}}}
    }});
    app.publish(&doc).await;
    let (status, body) = app
        .send(app.api(Method::POST, "/shadow").json(&json!({"a": 1})))
        .await;
    assert_eq!((status, body), (200, json!({"out": 5, "body": {"a": 1}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_ten_thousand_levels_deep_is_refused_cleanly_at_save() {
    let app = spawn().await;
    let n = 10_000;
    let sources = [
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1{}", "#{a:".repeat(n), "}".repeat(n)),
        format!("{}1{}", "{".repeat(n), "}".repeat(n)),
        // 5,000 levels: 10,000 would pass the 100,000-character limit of `code`.
        format!("{}1{}", "if true { ".repeat(n / 2), " }".repeat(n / 2)),
        format!("{}true", "!".repeat(n)),
        format!("1{}", " + 1".repeat(n)),
        format!("let x = #{{}}; x{}", ".a".repeat(n)),
        format!("{}1{}", "`${".repeat(n), "}`".repeat(n)),
        format!("{}1", "|x| ".repeat(n)),
    ];
    for source in &sources {
        let codes = refused_at_save(&app, &script_flow("deep", source)).await;
        assert_eq!(codes, ["flow.rhai_syntax"], "{}...", &source[..20]);
        let doc = endpoint(
            "deep_expr",
            "/deep-expr",
            json!({"type": "respond", "body": {"$rhai": source}}),
        );
        let codes = refused_at_save(&app, &doc).await;
        assert_eq!(codes, ["flow.rhai_syntax"], "{}...", &source[..20]);
    }
    // A document nested as deep is refused by the JSON reader before anything recurses.
    let deep_json = format!(
        "{{\"format\": \"sluice.flow\", \"format_version\": 1, \"name\": \"x\", \"entry\": \"a\", \"nodes\": {{}}, \"ui\": {}1{}}}",
        "[".repeat(n),
        "]".repeat(n)
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows")
                .header("content-type", "application/json")
                .body(deep_json),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "request.invalid_json"),
        "{body}"
    );
    // And the server is still fine.
    let (status, _) = alongside_cheap(&app, app.api(Method::POST, "/ping")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_helpers_round_trip_values_within_the_limits() {
    let app = spawn().await;
    let source = r#"
        let v = parse_json(request.body.text);
        let back = parse_json(to_json(v));
        #{ parsed: v, same: to_json(back) == to_json(v), text: to_json(#{b: [1, 2.5, (), true, "x"]}),
           scalar: parse_json("42"), map_method: #{a: 1}.to_json(), list: [1, "two"].to_json() }
    "#;
    app.publish(&script_flow("json", source)).await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/json")
                .json(&json!({"text": "{\"a\": [1, {\"b\": null}], \"c\": \"é\", \"d\": 18446744073709551615}"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "parsed": {"a": [1, {"b": null}], "c": "é", "d": 18446744073709551615.0_f64},
            "same": true,
            "text": "{\"b\":[1,2.5,null,true,\"x\"]}",
            "scalar": 42,
            "map_method": "{\"a\":1}",
            "list": "[1,\"two\"]"
        })
    );
    // Malformed JSON and values without a JSON form are script errors.
    for (name, source) in [
        ("bad_json", "parse_json(\"{\\\"a\\\": \")"),
        ("not_json", "to_json(Fn(\"x\"))"),
        ("timestamp", "to_json(timestamp())"),
    ] {
        let (status, body) = run_script(&app, name, source).await;
        assert_eq!(
            (status, code(&body)),
            (500, "script.error"),
            "{name}: {body}"
        );
    }
}

/// Two endless loops on a server with two async workers: the loops run off the workers, so a
/// cheap request is answered while both are still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_scripts_do_not_starve_other_requests_on_the_multi_threaded_runtime() {
    let app = spawn_app_with(|config| config.script_timeout = Duration::from_secs(3)).await;
    app.publish(&endpoint(
        "ping",
        "/ping",
        json!({"type": "respond", "body": {"pong": true}}),
    ))
    .await;
    app.publish(&script_flow("spin", "loop {}")).await;
    let spin = || {
        let req = app.api(Method::POST, "/spin");
        tokio::spawn(async move {
            let resp = req.send().await.expect("answered");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body)
        })
    };
    let (a, b) = (spin(), spin());
    // Let both loops start; the assertions below depend on order, not on this pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = app.send(app.api(Method::POST, "/ping")).await;
    assert_eq!((status, body), (200, json!({"pong": true})));
    assert!(
        !a.is_finished() && !b.is_finished(),
        "the cheap request was answered only after a loop had ended"
    );
    for handle in [a, b] {
        let (status, body) = handle.await.expect("the task ends");
        assert_eq!(
            (status, code(&body)),
            (500, "script.limit_exceeded"),
            "{body}"
        );
    }
}
