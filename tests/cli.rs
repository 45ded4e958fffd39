//! The `sluice` binary as a person runs it: `validate` on files, and `serve` with its own
//! private Postgres, stopped cleanly by SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn examples() -> String {
    format!("{}/flows/examples", env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn validate_accepts_the_shipped_examples() {
    let out = sluice()
        .arg("validate")
        .arg(examples())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every shipped flow and tests file is checked and ok (todo, auth, ...).
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": ok")).count(),
        files_ending(std::path::Path::new(&examples()), ".flow.json")
            + files_ending(std::path::Path::new(&examples()), ".tests.json"),
        "{stdout}"
    );
    assert!(stdout.contains("todo/get_todo.tests.json: ok"), "{stdout}");
    assert!(stdout.contains("auth/login.flow.json: ok"), "{stdout}");
}

/// How many files whose name ends with `suffix` are under `dir`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .expect("readable")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            if p.is_dir() {
                files_ending(&p, suffix)
            } else {
                usize::from(p.to_string_lossy().ends_with(suffix))
            }
        })
        .sum()
}

#[test]
fn validate_prints_every_problem_with_node_and_pointer_and_fails() {
    let dir = scratch("validate");
    let file = dir.join("bad.flow.json");
    let doc = serde_json::json!({
        "format": "sluice.flow", "format_version": 1, "name": "bad", "entry": "a",
        "nodes": {
            "a": {"type": "if", "condition": {"$rhai": "missing_var > 1"}, "next": {"then": "b", "else": "nowhere"}},
            "b": {"type": "respnd"}
        }
    });
    std::fs::write(&file, doc.to_string()).expect("write");
    let out = sluice().arg("validate").arg(&file).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .contains("flow.rhai_syntax at /nodes/a/condition/$rhai (node `a`, line 1, column 1)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("flow.dangling_target at /nodes/a/next/else (node `a`)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("flow.unknown_node_type at /nodes/b/type (node `b`)"),
        "{stdout}"
    );

    std::fs::write(&file, "{ not json").expect("write");
    let out = sluice().arg("validate").arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn validate_prints_warnings_and_still_succeeds() {
    let dir = scratch("validate-warning");
    let file = dir.join("risky.flow.json");
    let doc = serde_json::json!({
        "format": "sluice.flow", "format_version": 1, "name": "risky",
        "endpoint": {"method": "POST", "path": "/risky"}, "entry": "issue",
        "nodes": {
            "issue": {"type": "auth.issue_token", "as": "t", "sub": "1",
                      "claims": {"role": {"$rhai": "request.body.role"}}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "t.token"}}
        }
    });
    std::fs::write(&file, doc.to_string()).expect("write");
    let out = sluice().arg("validate").arg(&file).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("risky.flow.json: ok"), "{stdout}");
    assert!(
        stdout
            .contains("warning: flow.role_from_request at /nodes/issue/claims/role (node `issue`)"),
        "{stdout}"
    );
    // An endpoint of an audience no flow issues, checked alone: a warning, still exit 0.
    let reset = format!("{}/auth/reset_password.flow.json", examples());
    let out = sluice().arg("validate").arg(&reset).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "warning at /endpoint/audience: no flow checked here issues tokens of audience `password_reset`"
        ),
        "{stdout}"
    );
    // With the flow that issues them, none.
    let out = sluice()
        .arg("validate")
        .arg(format!("{}/auth", examples()))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("warning"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn validate_does_not_read_serve_settings_and_misplaced_serve_flags_are_refused() {
    let out = sluice()
        .arg("validate")
        .arg(examples())
        .env("SLUICE_ADDR", "not an address")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sluice()
        .args(["--addr", "127.0.0.1:1", "validate"])
        .arg(examples())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "flags of serve before another command are an error"
    );
}

fn wait_ready(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let answer = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/readyz")])
            .output();
        if answer.is_ok_and(|o| o.status.success()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn postmaster_pid(data: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(data.join("pg/postmaster.pid")).ok()?;
    text.lines().next().map(str::to_string)
}

#[test]
fn serve_runs_a_private_postgres_reuses_it_and_stops_it_on_sigterm() {
    let dir = scratch("serve");
    let data = dir.join("data");
    for round in 0..2 {
        let port = free_port();
        let mut child = sluice()
            .args([
                "serve",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .env_remove("SLUICE_DATABASE_URL")
            .env("SLUICE_ADMIN_EMAIL", "ops@example.com")
            .env("SLUICE_ADMIN_PASSWORD", "long enough secret")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        assert!(
            wait_ready(port, Duration::from_secs(60)),
            "round {round}: /readyz never answered 200"
        );
        let pg = postmaster_pid(&data).expect("a running cluster has a postmaster.pid");
        assert!(std::path::Path::new(&format!("/proc/{pg}")).exists());

        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = child.wait().expect("exits");
        let mut bytes = Vec::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_end(&mut bytes);
        }
        let log = String::from_utf8_lossy(&bytes);
        assert!(exit.success(), "round {round}: exit {exit:?}\n{log}");
        assert!(
            postmaster_pid(&data).is_none(),
            "round {round}: postgres was not stopped\n{log}"
        );
        assert!(
            !log.contains("long enough secret"),
            "the admin password reached the log"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn export_writes_the_project_and_plan_and_apply_take_it_back_all_or_nothing() {
    let app = common::spawn_app().await;
    app.load_todo_example().await;
    let dir = scratch("export");
    let base = app.base.clone();
    let token = app.token.clone();
    let run = move |args: Vec<String>| {
        let (base, token) = (base.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            sluice()
                .args(&args)
                .args(["--url", &base, "--token", &token])
                .output()
                .expect("runs")
        })
    };

    let out = run(vec!["export".into(), dir.display().to_string()])
        .await
        .expect("joined");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shipped = std::fs::read_to_string(format!("{}/todo/create_todo.flow.json", examples()))
        .expect("example");
    let exported =
        std::fs::read_to_string(dir.join("create_todo.flow.json")).expect("exported flow");
    assert_eq!(exported, shipped, "the export is the canonical file");
    assert!(dir.join("todos.table.json").exists());
    assert!(dir.join("default.group.json").exists());
    assert!(dir.join("env.json").exists());
    // A project file of a flow the project no longer has is removed by the next export.
    std::fs::write(dir.join("gone.flow.json"), "{}").expect("write");
    std::fs::write(dir.join("notes.txt"), "mine").expect("write");
    let out = run(vec!["export".into(), dir.display().to_string()])
        .await
        .expect("joined");
    assert!(out.status.success());
    assert!(!dir.join("gone.flow.json").exists());
    assert!(dir.join("notes.txt").exists(), "other files stay");

    // A changed file and a broken one: nothing is applied (`import` is `apply`).
    let list = dir.join("list_todos.flow.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&list).expect("read")).expect("json");
    doc["nodes"]["reply"]["body"] = serde_json::json!({"todos": {"$rhai": "todos"}});
    std::fs::write(&list, doc.to_string()).expect("write");
    let broken = dir.join("broken.flow.json");
    std::fs::write(&broken, r#"{"format": "sluice.flow", "format_version": 1, "name": "broken", "entry": "x", "nodes": {"x": {"type": "nope"}}}"#).expect("write");
    let out = run(vec![
        "import".into(),
        dir.display().to_string(),
        "--publish".into(),
    ])
    .await
    .expect("joined");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("flow.unknown_node_type"));
    let (_, body) = app.send(app.api(reqwest::Method::GET, "/todos")).await;
    assert!(body.get("items").is_some(), "unchanged: {body}");

    std::fs::remove_file(&broken).expect("remove");
    // The plan shows the change and changes nothing; --detailed-exitcode says there is one.
    let out = run(vec![
        "plan".into(),
        dir.display().to_string(),
        "--publish".into(),
        "--detailed-exitcode".into(),
    ])
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("flow list_todos: change, publish"),
        "{stdout}"
    );
    assert!(stdout.contains("table todos: unchanged"), "{stdout}");
    let (_, body) = app.send(app.api(reqwest::Method::GET, "/todos")).await;
    assert!(body.get("items").is_some(), "unchanged: {body}");
    let out = run(vec![
        "apply".into(),
        dir.display().to_string(),
        "--publish".into(),
    ])
    .await
    .expect("joined");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("flow list_todos: change, publish"));

    // A tests file beside the flows travels too, and the next export writes it back.
    let tests = serde_json::json!({"format": "sluice.test", "format_version": 1, "flow": "list_todos",
        "cases": [{"name": "lists", "when": {"method": "GET", "path": "/todos"}, "then": {"status": 200}}]});
    std::fs::write(dir.join("list_todos.tests.json"), tests.to_string()).expect("write");
    let out = run(vec!["apply".into(), dir.display().to_string()])
        .await
        .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("tests of list_todos: create"), "{stdout}");
    std::fs::remove_file(dir.join("list_todos.tests.json")).expect("remove");
    let out = run(vec!["export".into(), dir.display().to_string()])
        .await
        .expect("joined");
    assert!(out.status.success());
    let back = std::fs::read_to_string(dir.join("list_todos.tests.json")).expect("exported tests");
    assert!(back.contains("\"name\": \"lists\""), "{back}");
    let (_, body) = app.send(app.api(reqwest::Method::GET, "/todos")).await;
    assert_eq!(body, serde_json::json!({"todos": []}));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn validate_reports_the_tables_rules_and_every_bypass_with_its_reason() {
    let dir = scratch("rules-report");
    let table = serde_json::json!({"name": "notes", "fields": [{"name": "owner", "type": "integer"}],
        "rules": {"list": {"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}}},
                  "create": {"set": {"owner": {"auth": "id"}}}}});
    std::fs::write(dir.join("notes.table.json"), table.to_string()).expect("table file");
    let flow = serde_json::json!({
        "format": "sluice.flow", "format_version": 1, "name": "count", "entry": "q",
        "endpoint": {"method": "GET", "path": "/count", "auth": "user"},
        "nodes": {
            "q": {"type": "db.query", "table": "notes", "as": "rows",
                  "rules": {"bypass": "the dashboard counts every note"}, "next": {"ok": "r"}},
            "r": {"type": "respond", "body": {"$rhai": "rows.len()"}}
        }
    });
    std::fs::write(dir.join("count.flow.json"), flow.to_string()).expect("flow file");
    let out = sluice()
        .arg("validate")
        .arg("--rules-report")
        .arg(&dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("table `notes`: rules on create, list"),
        "{stdout}"
    );
    assert!(
        stdout.contains("== nodes that bypass access rules: 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("count.flow.json: node `q` (db.query): the dashboard counts every note"),
        "{stdout}"
    );

    // A rule that reads a field the table file does not have fails validation, with its
    // pointer, as saving the table would.
    let broken = serde_json::json!({"name": "notes", "fields": [{"name": "owner", "type": "integer"}],
        "rules": {"view": {"where": {"field": "author", "op": "eq", "value": {"auth": "id"}}}}});
    std::fs::write(dir.join("notes.table.json"), broken.to_string()).expect("table file");
    let out = sluice().arg("validate").arg(&dir).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "notes.table.json: error at /rules/view/where/field: table `notes` has no field `author`"
        ),
        "{stdout}"
    );
}

/// `sluice openapi DIR` gives, from the files alone, the document a server serves once the same
/// tables and flows are in it and published.
#[tokio::test]
async fn openapi_from_files_is_what_the_server_serves_for_them() {
    let app = common::spawn_app().await;
    app.load_todo_example().await;
    let (served, _) = app.openapi().await;
    let out = sluice()
        .arg("openapi")
        .arg(format!("{}/todo", examples()))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(offline, served);
    assert!(offline["paths"]["/todos"]["get"].is_object(), "{offline}");
}

#[test]
fn openapi_and_validate_refuse_flows_that_do_not_fit_the_table_files_or_share_a_route() {
    let dir = scratch("offline-project");
    std::fs::write(
        dir.join("notes.table.json"),
        serde_json::json!({"name": "notes", "fields": [{"name": "title", "type": "text"}]})
            .to_string(),
    )
    .expect("table file");
    let get = |name: &str, column: &str| {
        serde_json::json!({
            "format": "sluice.flow", "format_version": 1, "name": name, "entry": "q",
            "endpoint": {"method": "GET", "path": "/notes", "auth": "public"},
            "nodes": {
                "q": {"type": "db.query", "table": "notes", "as": "rows",
                      "order_by": [{"column": column}], "next": {"ok": "r"}},
                "r": {"type": "respond", "body": {"$rhai": "rows"}}
            }
        })
        .to_string()
    };
    std::fs::write(dir.join("list.flow.json"), get("list", "title")).expect("flow");
    std::fs::write(dir.join("again.flow.json"), get("again", "missing")).expect("flow");
    // Both commands fail, saying `expected`.
    let both_refuse = |expected: &[&str]| {
        for command in ["validate", "openapi"] {
            let out = sluice().arg(command).arg(&dir).output().expect("runs");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(1), "{command}: {said}");
            assert!(
                expected.iter().all(|e| said.contains(e)),
                "{command}: {said}"
            );
        }
    };
    both_refuse(&["again.flow.json", "missing"]);
    // With the column fixed, the two flows still share GET /notes.
    std::fs::write(dir.join("again.flow.json"), get("again", "title")).expect("flow");
    both_refuse(&["route GET /notes is served by"]);
}
