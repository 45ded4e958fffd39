//! "Save as test case" in the run panel, in a real headless Chromium against a real Sluice and
//! Postgres: a debug run of `GET /todos/{id}` is saved as a case of the flow's tests (its
//! request as a client sends it, its status and body), a bad name shows the server's problems
//! in the panel, and the saved case is a real test: exported with the project and run by
//! `sluice test`. Screenshots: `target/screenshots/save_test_case_saved.png` (the panel after
//! saving) and `save_test_case.png` (the end).

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;

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

#[tokio::test(flavor = "multi_thread")]
async fn a_run_saved_as_a_test_case_is_kept_with_the_flow_and_run_by_sluice_test() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let title = "Water the plants";
    let (status, row) = app
        .send(
            app.admin(Method::POST, "/tables/todos/rows")
                .json(&json!({"title": title})),
        )
        .await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["id"], 1, "{row}");
    let id = flow_id(&app, "get_todo").await;

    let b = Browser::start("save_test_case").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for("#fl-run-toggle").await;
    b.click("#fl-run-toggle").await;
    b.wait_for("#fl-run").await;
    // Before any run: the flow's cases (none yet), and nothing to save.
    b.wait_for_text(".fl-run-cases", "No test cases for this flow yet")
        .await;
    assert!(!b.find("#fl-run-case-name").await.is_displayed().await);

    b.set_value("#fl-run-params-id", "1").await;
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 200").await;
    // The name starts as what the run was, and the box is labelled.
    b.wait_until(
        "the case name is suggested",
        "return document.querySelector('#fl-run-case-name').value === 'GET /todos/1 answers 200'",
    )
    .await;
    let label = b
        .execute(
            "return document.querySelector('label[for=\"fl-run-case-name\"]')?.textContent || ''",
            json!([]),
        )
        .await;
    assert_eq!(label, "Save as test case");

    // A case without a name is refused by the server; its problem is shown in the panel.
    b.set_value("#fl-run-case-name", "").await;
    b.click("#fl-run-save-case").await;
    let refused = b
        .wait_for_text("#fl-run-case-status .error-box", "/cases/0/name")
        .await;
    assert!(
        refused.text().await.contains("problem"),
        "{}",
        refused.text().await
    );

    b.fill("#fl-run-case-name", "reads the first todo").await;
    b.click("#fl-run-save-case").await;
    b.wait_for_text("#fl-run-case-status", "Saved: 1 test case for this flow")
        .await;
    b.wait_for_text("#fl-run-cases", "reads the first todo")
        .await;
    b.assert_accessible("the run panel after saving a test case")
        .await;
    b.screenshot_as("save_test_case_saved").await;

    // Stored with the flow: the request as a client sends it, the status and body it answered.
    let (status, tests) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}/tests")))
        .await;
    assert_eq!(status, 200, "{tests}");
    assert_eq!(tests["flow"], "get_todo", "{tests}");
    let cases = tests["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 1, "{tests}");
    let case = &cases[0];
    assert_eq!(case["name"], "reads the first todo", "{case}");
    assert_eq!(case["when"]["method"], "GET", "{case}");
    assert_eq!(case["when"]["path"], "/todos/1", "{case}");
    assert_eq!(case["then"]["status"], 200, "{case}");
    assert_eq!(case["then"]["body"]["title"], title, "{case}");
    // Empty parts are left out.
    assert!(case.get("given").is_none(), "{case}");
    assert!(case["when"].get("query").is_none(), "{case}");

    // Opening the panel again lists the saved case.
    b.refresh().await;
    b.wait_for("#fl-run-toggle").await;
    b.click("#fl-run-toggle").await;
    b.wait_for_text("#fl-run-cases", "reads the first todo")
        .await;
    b.finish().await;

    // A real test: exported with the project and run by `sluice test` on a throwaway database.
    // That database has no rows, so the case fails, which shows that it ran and checked.
    let (status, project) = app.send(app.admin(Method::GET, "/project")).await;
    assert_eq!(status, 200, "{project}");
    let files = project["files"].as_object().expect("files");
    assert!(files.contains_key("get_todo.tests.json"), "{project}");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("save-test-case-{}", app.db_name));
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("dir");
        std::fs::write(&path, text.as_str().expect("file text")).expect("write");
    }
    let (run_dir, url) = (dir.clone(), app.db_url.clone());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("test")
            .arg(&run_dir)
            .env("SLUICE_DATABASE_URL", url)
            .output()
            .expect("sluice test runs")
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("FAIL get_todo.tests.json › reads the first todo"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
