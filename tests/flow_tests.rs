//! Flow tests (docs/TESTING.md) against real Postgres: the debug run's frozen clock and canned
//! HTTP answers, test cases stored with their flow (`/flows/{id}/tests`), travelling with the
//! project's files, and `sluice test` running them on a throwaway database.

mod common;

use reqwest::Method;
use serde_json::{Value, json};

fn clock_and_call() -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": "clock_and_call",
        "endpoint": {"method": "GET", "path": "/clock"}, "entry": "t",
        "nodes": {
            "t": {"type": "script", "as": "at", "code": "now()", "next": {"ok": "call"}},
            "call": {"type": "http.request", "method": "GET", "url": "https://partner.example.com/rate?c=eur",
                     "as": "rate", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"at": {"$rhai": "at"}, "rate": {"$rhai": "rate.body"},
                                                  "status": {"$rhai": "rate.status"}}}
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_debug_run_can_freeze_the_clock_and_answer_outbound_calls_from_canned_answers() {
    let app = common::spawn_app().await;
    let id = app.publish(&clock_and_call()).await;
    let run = |body: Value| {
        app.send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&body),
        )
    };
    let (status, answer) = run(json!({
        "now": "2026-01-02T03:04:05Z",
        "http": [{"method": "GET", "url": "https://partner.example.com/rate*", "status": 201, "body": {"eur": 1.1}}]
    }))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["response"]["body"],
        json!({"at": "2026-01-02T03:04:05Z", "rate": {"eur": 1.1}, "status": 201})
    );
    assert_eq!(
        answer["http_calls"],
        json!([{"method": "GET", "url": "https://partner.example.com/rate?c=eur", "answered": true}])
    );

    // No matching answer: the node fails as a refused call, nothing reaches the network.
    let (status, answer) = run(json!({"http": []})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["error"]["code"], "http.refused", "{answer}");
    assert_eq!(answer["http_calls"][0]["answered"], false);

    let (status, answer) = run(json!({"now": "yesterday"})).await;
    assert_eq!(status, 400, "{answer}");
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"url": format!("https://x.example/{i}")}))
        .collect();
    let (status, _) = run(json!({"http": many})).await;
    assert_eq!(status, 400);
    // A request to the endpoint itself is not frozen and has no canned answers.
    let (_, body) = app.send(app.api(Method::GET, "/clock")).await;
    assert_ne!(body["at"], "2026-01-02T03:04:05Z", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_cases_are_stored_with_their_flow_and_travel_with_the_project() {
    let app = common::spawn_app().await;
    app.load_todo_example().await;
    let (_, flows) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = flows["flows"]
        .as_array()
        .and_then(|l| l.iter().find(|f| f["name"] == "get_todo"))
        .and_then(|f| f["id"].as_i64())
        .expect("get_todo");
    let path = format!("/flows/{id}/tests");
    let (status, empty) = app.send(app.admin(Method::GET, &path)).await;
    assert_eq!(status, 200);
    assert_eq!(
        empty,
        json!({"format": "sluice.test", "format_version": 1, "flow": "get_todo", "cases": []})
    );

    let case = json!({"name": "404 for a missing todo", "when": {"method": "GET", "path": "/todos/9"},
                      "then": {"status": 404, "body": {"error": {"code": "todo.not_found"}}}});
    let (status, file) = app
        .send(
            app.admin(Method::POST, &format!("{path}/cases"))
                .json(&case),
        )
        .await;
    assert_eq!(status, 201, "{file}");
    let (status, file) = app
        .send(
            app.admin(Method::POST, &format!("{path}/cases"))
                .json(&case),
        )
        .await;
    assert_eq!(status, 200, "the same name replaces: {file}");
    assert_eq!(file["cases"].as_array().map(Vec::len), Some(1));
    let bad = json!({"name": "bad", "when": {}, "then": {"body": {"$type": "float"}}});
    let (status, answer) = app
        .send(app.admin(Method::POST, &format!("{path}/cases")).json(&bad))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "tests.invalid");
    assert_eq!(
        answer["error"]["details"][0]["pointer"],
        "/cases/1/then/body/$type"
    );

    // Exported beside the flow, canonical; applied elsewhere, stored with the flow there.
    let (_, project) = app.send(app.admin(Method::GET, "/project")).await;
    let text = project["files"]["get_todo.tests.json"]
        .as_str()
        .expect("exported tests");
    assert!(text.contains("404 for a missing todo"), "{text}");
    let other = common::spawn_app().await;
    let (status, report) = other
        .send(
            other
                .admin(Method::POST, "/project/apply")
                .json(&json!({"files": project["files"], "publish": true})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["tests"],
        json!([{"name": "get_todo", "action": "create", "file": "get_todo.tests.json"}])
    );
    let (_, again) = other.send(other.admin(Method::GET, "/project")).await;
    assert_eq!(again["files"], project["files"]);

    // Tests of a flow that neither the files nor the instance have are refused.
    let mut files = project["files"].clone();
    files["ghost.tests.json"] = Value::String(
        json!({"format": "sluice.test", "format_version": 1, "flow": "ghost", "cases": []})
            .to_string(),
    );
    let (status, answer) = other
        .send(
            other
                .admin(Method::POST, "/project/apply")
                .json(&json!({"files": files})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]["details"]
            .to_string()
            .contains("no flow `ghost`"),
        "{answer}"
    );

    let (status, _) = app.send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(status, 204);
    let (_, project) = app.send(app.admin(Method::GET, "/project")).await;
    assert!(project["files"].get("get_todo.tests.json").is_none());
}

fn sluice() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("readable").flatten() {
        let p = e.path();
        let target = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sluice_test_passes_the_shipped_cases_fails_a_wrong_one_and_updates_it() {
    // A database of the test cluster: its user may create the throwaway database.
    let (url, _) = common::fresh_database().await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("flow-tests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(
        std::path::Path::new(&format!("{}/flows/examples", env!("CARGO_MANIFEST_DIR"))),
        &dir,
    );
    let run = |extra: &[&str]| {
        let (url, dir) = (url.clone(), dir.clone());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            sluice()
                .arg("test")
                .arg(&dir)
                .args(&extra)
                .env("SLUICE_DATABASE_URL", &url)
                .output()
                .expect("runs")
        })
    };
    let out = run(&[]).await.expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS todo/get_todo.tests.json › answers 404 for an id that is not there"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "PASS shop/create_order.tests.json › stores the order and enqueues its receipt"
        ),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(" passed, 0 failed"), "{stdout}");

    // A wrong expectation fails with the difference, and --update rewrites it.
    let file = dir.join("todo/get_todo.tests.json");
    let text = std::fs::read_to_string(&file).expect("read");
    // The expected body's title (the given row has the same text earlier in the file).
    let at = text.rfind("\"title\": \"second\"").expect("expected title");
    let wrong = format!(
        "{}\"title\": \"third\"{}",
        &text[..at],
        &text[at + "\"title\": \"second\"".len()..]
    );
    std::fs::write(&file, wrong).expect("write");
    let out = run(&[]).await.expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL todo/get_todo.tests.json › answers the todo of the id in the path"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/title: expected \"third\", got \"second\""),
        "{stdout}"
    );
    let out = run(&["--update"]).await.expect("joined");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        text,
        "the update wrote the canonical file back"
    );
    let out = run(&[]).await.expect("joined");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // An outbound call without a canned answer fails the case; it never reaches the network.
    let file = dir.join("shop/send_receipt.tests.json");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace(
            "https://mail.example.com/send\",\n            \"status\"",
            "https://elsewhere.example.com/\",\n            \"status\"",
        ),
    )
    .expect("write");
    let out = run(&[]).await.expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("unexpected outbound call POST https://mail.example.com/send"),
        "{stdout}"
    );

    // A tests file that does not follow the format stops the run before anything starts.
    std::fs::write(
        dir.join("todo/broken.tests.json"),
        r#"{"format": "sluice.test"}"#,
    )
    .expect("write");
    let out = run(&[]).await.expect("joined");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("todo/broken.tests.json"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_respond_body_schema_types_the_openapi_document_and_debug_runs_check_it() {
    let app = common::spawn_app().await;
    let schema =
        json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
    let id = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "typed",
            "endpoint": {"method": "GET", "path": "/typed"}, "entry": "r",
            "nodes": {"r": {"type": "respond", "schema": schema,
                            "body": {"n": {"$rhai": "if \"n\" in request.query { request.query.n } else { 1 }"}}}}
        }))
        .await;
    let (doc, _) = app.openapi().await;
    let (_, ops) = doc["paths"]
        .as_object()
        .and_then(|p| p.iter().find(|(k, _)| k.ends_with("/typed")))
        .expect("the endpoint is documented");
    assert_eq!(
        ops["get"]["responses"]["200"]["content"]["application/json"]["schema"],
        schema
    );

    let run = |query: Value| {
        app.send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&json!({"query": query})),
        )
    };
    let (_, fits) = run(json!({})).await;
    assert_eq!(fits["schema_problems"], json!([]), "{fits}");
    // A query value is text: the body breaks the declared schema, and the run says where.
    let (_, breaks) = run(json!({"n": "five"})).await;
    assert_eq!(
        breaks["response"]["status"], 200,
        "the response is what a request gets"
    );
    assert_eq!(breaks["schema_problems"][0]["pointer"], "/n", "{breaks}");
    assert_eq!(breaks["schema_problems"][0]["node"], "r");
    // The request itself is not checked.
    let (status, body) = app.send(app.api(Method::GET, "/typed?n=five")).await;
    assert_eq!((status, body), (200, json!({"n": "five"})));
}
