//! The `sluice` binary as a person runs it: `validate` on files, and `serve` with its own
//! private Postgres, stopped cleanly by SIGTERM.

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
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": ok")).count(),
        3,
        "{stdout}"
    );
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
        let mut log = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut log);
        }
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
