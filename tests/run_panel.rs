//! The run panel's server side against a real Postgres: a debug run answers the body the live
//! endpoint answers (errors included), request capture is off unless an endpoint asks for it
//! and then keeps the request with its secrets redacted, the sample project of a first run,
//! and the editor's address in the start-up log.

mod common;

use common::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn flow_id(app: &TestApp, name: &str) -> i64 {
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .and_then(|f| f["id"].as_i64())
        .unwrap_or_else(|| panic!("no flow {name}: {list}"))
}

async fn debug_run(app: &TestApp, id: i64, req: Value) -> Value {
    let (status, out) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&req),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    out
}

/// The body without its `error.request_id` (each request has its own).
fn without_request_id(mut body: Value) -> Value {
    if let Some(e) = body.get_mut("error").and_then(Value::as_object_mut) {
        assert!(
            e.remove("request_id").is_some_and(|id| id.is_string()),
            "a 5xx body carries a request id"
        );
    }
    body
}

/// Symptom: a failed debug run showed `{"error": {"code"}}` while the live endpoint answered
/// the whole envelope (message, details). Cause: the debug run built its own body. Fix: both
/// shape the response with the same functions; here the same failing requests go both ways.
#[tokio::test]
async fn a_debug_run_answers_the_error_body_the_live_endpoint_answers() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let whoami = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "whoami",
            "endpoint": {"method": "GET", "path": "/whoami", "auth": "user"},
            "entry": "reply", "nodes": {"reply": {"type": "respond", "body": {"$rhai": "auth"}}}
        }))
        .await;
    let broken = app
        .publish(&json!({
            "format": "sluice.flow", "format_version": 1, "name": "broken",
            "endpoint": {"method": "GET", "path": "/broken"},
            "entry": "boom", "nodes": {
                "boom": {"type": "script", "as": "x", "code": "let a = [1]; a[5]", "next": {"ok": "reply"}},
                "reply": {"type": "respond", "body": {"$rhai": "x"}}
            }
        }))
        .await;
    let get_todo = flow_id(&app, "get_todo").await;
    let create_todo = flow_id(&app, "create_todo").await;

    // A `fail` node (404), an input error with details (400), an auth refusal (401) and a
    // script error (500, whose body carries a request id).
    let cases: Vec<(reqwest::RequestBuilder, i64, Value, u16)> = vec![
        (
            app.api(Method::GET, "/todos/424242"),
            get_todo,
            json!({"params": {"id": "424242"}}),
            404,
        ),
        (
            app.api(Method::POST, "/todos")
                .json(&json!({"title": 5, "extra": true})),
            create_todo,
            json!({"body": {"title": 5, "extra": true}}),
            400,
        ),
        (app.api(Method::GET, "/whoami"), whoami, json!({}), 401),
        (app.api(Method::GET, "/broken"), broken, json!({}), 500),
    ];
    for (live_req, id, run_req, status) in cases {
        let (live_status, live) = app.send(live_req).await;
        assert_eq!(live_status, status, "{live}");
        assert!(live["error"]["message"].is_string(), "{live}");
        let out = debug_run(&app, id, run_req).await;
        assert_eq!(out["response"]["status"], status, "{out}");
        let debug = out["response"]["body"].clone();
        if status >= 500 {
            assert_eq!(
                without_request_id(debug),
                without_request_id(live.clone()),
                "{out}"
            );
        } else {
            assert_eq!(debug, live, "{out}");
        }
        assert_eq!(
            out["response"]["headers"]["content-type"], "application/json",
            "{out}"
        );
        assert_eq!(out["response"]["content_type"], "json");
    }
}

/// Reads the request log of `flow` until it has an entry (bounded wait).
async fn logged(app: &TestApp, flow: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app
            .send(app.admin(Method::GET, &format!("/request-log?flow={flow}")))
            .await;
        assert_eq!(status, 200, "{body}");
        if let Some(e) = body["entries"].as_array().and_then(|a| a.first()) {
            return e.clone();
        }
        assert!(Instant::now() < until, "nothing logged for {flow}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn requests_are_not_captured_unless_the_endpoint_asks() {
    let app = spawn_app_with(|c| c.ops.request_log.sample = 1.0).await;
    app.load_todo_example().await;
    let (status, _) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "not kept"})),
        )
        .await;
    assert_eq!(status, 201);
    let entry = logged(&app, "create_todo").await;
    assert_eq!(entry["status"], 201, "{entry}");
    assert!(entry["request"].is_null(), "{entry}");
    let stored: Option<Value> = sqlx::query_scalar("SELECT request FROM sluice.request_log")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert_eq!(stored, None);
}

#[tokio::test]
async fn a_captured_request_keeps_params_query_and_body_with_secrets_redacted() {
    let app = spawn_app_with(|c| c.ops.request_log.sample = 1.0).await;
    app.create_table(&json!({"name": "members", "fields": [
        {"name": "email", "type": "text", "required": true},
        {"name": "pin", "type": "password"}
    ]}))
    .await;
    app.publish(&json!({
        "format": "sluice.flow", "format_version": 1, "name": "join",
        "endpoint": {"method": "POST", "path": "/join/{team}"},
        "settings": {"capture": true},
        "entry": "insert", "nodes": {
            "insert": {"type": "db.insert", "table": "members", "as": "member",
                       "values": {"email": {"$rhai": "request.body.email"},
                                  "pin": {"$rhai": "request.body.pin"}},
                       "next": {"ok": "closed"}},
            "closed": {"type": "fail", "status": 409, "code": "join.closed", "message": "closed"}
        }
    }))
    .await;
    let (status, body) = app
        .send(
            app.api(Method::POST, "/join/red?debug=1&access_token=q-secret")
                .header("Authorization", "Bearer bearer-secret")
                .header("Cookie", "sid=cookie-secret")
                .header("X-Api-Key", "header-secret")
                .header("X-Trace", "kept")
                .json(&json!({"email": "ann@example.com", "pin": "1234-secret",
                              "password": "pw-secret",
                              "profile": {"name": "Ann", "API_KEY": "nested-secret"}})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let entry = logged(&app, "join").await;
    let req = &entry["request"];
    assert_eq!(req["params"], json!({"team": "red"}), "{entry}");
    assert_eq!(
        req["query"],
        json!({"debug": "1", "access_token": "***"}),
        "{entry}"
    );
    assert_eq!(
        req["body"],
        json!({"email": "ann@example.com", "pin": "***", "password": "***",
               "profile": {"name": "Ann", "API_KEY": "***"}}),
        "{entry}"
    );
    let headers = req["headers"].as_object().expect("headers");
    assert!(headers.get("authorization").is_none(), "{entry}");
    assert!(headers.get("cookie").is_none(), "{entry}");
    assert_eq!(headers["x-api-key"], "***");
    assert_eq!(headers["x-trace"], "kept");
    let mut redacted: Vec<&str> = req["redacted"]
        .as_array()
        .expect("redacted")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    redacted.sort_unstable();
    assert_eq!(
        redacted,
        [
            "/body/password",
            "/body/pin",
            "/body/profile/API_KEY",
            "/headers/x-api-key",
            "/query/access_token"
        ]
    );
    assert_eq!(req["body_omitted"], false);
    let stored: String = sqlx::query_scalar("SELECT request::text FROM sluice.request_log")
        .fetch_one(&app.db)
        .await
        .expect("row");
    assert!(!stored.contains("-secret"), "{stored}");

    // A body over 16 KiB is left out, the rest is kept.
    let (status, body) = app
        .send(app.api(Method::POST, "/join/big").json(
            &json!({"email": "b@example.com", "pin": "9-secret", "note": "x".repeat(17 * 1024)}),
        ))
        .await;
    assert_eq!(status, 409, "{body}");
    let until = Instant::now() + Duration::from_secs(10);
    let big = loop {
        let e = logged(&app, "join").await;
        if e["request"]["params"]["team"] == "big" {
            break e;
        }
        assert!(Instant::now() < until, "the second request was not logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(big["request"]["body_omitted"], true, "{big}");
    assert!(big["request"]["body"].is_null(), "{big}");
}

async fn counts(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM sluice.tables), (SELECT count(*) FROM sluice.flows)",
    )
    .fetch_one(&app.db)
    .await
    .expect("counts")
}

#[tokio::test]
async fn the_sample_project_fills_an_empty_instance_once() {
    let app = spawn_app().await;
    let (status, made) = app.send(app.admin(Method::POST, "/sample-project")).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["tables"], json!(["authors", "books", "reviews"]));
    assert_eq!(made["rows"], 14);
    let flows = made["flows"].as_array().expect("flows");
    assert_eq!(flows.len(), 18, "{made}");
    assert!(flows.iter().all(|f| f["published_version"] == 1), "{made}");

    // The hand-drawn endpoint is public and served at once.
    let id: i64 = sqlx::query_scalar("SELECT id FROM app.authors WHERE name = 'Italo Calvino'")
        .fetch_one(&app.db)
        .await
        .expect("author");
    let (status, body) = app
        .send(app.api(Method::GET, &format!("/authors/{id}/books")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["author"]["name"], "Italo Calvino");
    let titles: Vec<&str> = body["books"]
        .as_array()
        .expect("books")
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        ["If on a winter's night a traveler", "Invisible Cities"]
    );
    // Sorted as the caller asks.
    let (_, body) = app
        .send(app.api(Method::GET, &format!("/authors/{id}/books?sort=-pages")))
        .await;
    assert_eq!(
        body["books"][0]["title"], "If on a winter's night a traveler",
        "{body}"
    );
    // A book's page: its author and its reviews, best first, in one statement.
    let book: i64 = sqlx::query_scalar("SELECT id FROM app.books WHERE title = 'Invisible Cities'")
        .fetch_one(&app.db)
        .await
        .expect("book");
    let (status, body) = app
        .send(app.api(Method::GET, &format!("/books/{book}/page")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["author"]["name"], "Italo Calvino", "{body}");
    let ratings: Vec<i64> = body["reviews"]
        .as_array()
        .expect("reviews")
        .iter()
        .filter_map(|r| r["rating"].as_i64())
        .collect();
    assert_eq!(ratings, [5, 3], "{body}");
    // Ratings per book, counted and averaged by the database, best first.
    let (status, body) = app.send(app.api(Method::GET, "/ratings")).await;
    assert_eq!(status, 200, "{body}");
    let first = &body["ratings"][0];
    assert_eq!(
        (first["reviews"].as_i64(), first["rating"].as_f64()),
        (Some(1), Some(5.0)),
        "{body}"
    );
    let invisible = body["ratings"]
        .as_array()
        .expect("ratings")
        .iter()
        .find(|r| r["book"] == book)
        .expect("the book's line");
    assert_eq!(
        (invisible["reviews"].as_i64(), invisible["rating"].as_f64()),
        (Some(2), Some(4.0)),
        "{body}"
    );
    // The generated CRUD endpoints are for signed-in users.
    let (status, body) = app.send(app.api(Method::GET, "/books")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("auth.token_missing"))
    );

    let before = counts(&app).await;
    let (status, body) = app.send(app.admin(Method::POST, "/sample-project")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("project.not_empty"))
    );
    assert_eq!(counts(&app).await, before);
}

#[tokio::test]
async fn the_sample_project_is_refused_when_a_flow_exists_and_leaves_nothing() {
    let app = spawn_app().await;
    let (status, _) = app
        .send(app.admin(Method::POST, "/flows").json(
            &json!({"format": "sluice.flow", "format_version": 1, "name": "hello",
                              "endpoint": {"method": "GET", "path": "/hello"}, "entry": "r",
                              "nodes": {"r": {"type": "respond", "body": "hi"}}}),
        ))
        .await;
    assert_eq!(status, 201);
    let (status, body) = app.send(app.admin(Method::POST, "/sample-project")).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("project.not_empty"))
    );
    assert_eq!(counts(&app).await, (0, 1));
    let authors: Option<String> = sqlx::query_scalar("SELECT to_regclass('app.authors')::text")
        .fetch_one(&app.db)
        .await
        .expect("regclass");
    assert_eq!(authors, None);
}

/// `sluice serve` with a configured admin (so no setup link) still says where the editor is.
#[test]
fn the_start_up_log_prints_the_editor_url() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("editor-url-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.join("data"))
        .env_remove("SLUICE_DATABASE_URL")
        .env("SLUICE_ADMIN_EMAIL", "ops@example.com")
        .env("SLUICE_ADMIN_PASSWORD", "long enough secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    // The log goes to stdout.
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let want = format!("Editor: http://127.0.0.1:{port}/_/");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut log = String::new();
    let mut seen = false;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                seen |= line.contains(&want);
                log.push_str(&line);
                log.push('\n');
                if seen {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(seen, "no `{want}` in the log:\n{log}");
    assert!(!log.contains("setup?token"), "{log}");
}
