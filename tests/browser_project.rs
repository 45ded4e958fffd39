//! Export project and Import project in Settings, in real headless Chromium against real
//! servers: the export button's download is the whole project; on a second, empty instance the
//! bundle's plan is shown (and nothing is changed) before Apply, publish is an option that
//! re-plans, and Apply serves the imported endpoints. A broken flow file is listed as a problem
//! with its file and pointer, and Apply stays disabled.

mod common;

use common::browser::Browser;
use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;

/// A fresh directory for the files a test chooses in the file input.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("project-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

async fn table_names(app: &TestApp) -> Vec<String> {
    let (status, body) = app.send(app.admin(Method::GET, "/tables")).await;
    assert_eq!(status, 200, "{body}");
    body["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

async fn flow_count(app: &TestApp) -> usize {
    let (status, body) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(status, 200, "{body}");
    body["flows"].as_array().map_or(0, Vec::len)
}

/// Opens Settings and waits for the project panel.
async fn open_project_panel(b: &Browser, app: &TestApp) {
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.wait_for("#project #project-files").await;
}

/// Scrolls the element into view, for the screenshots.
async fn show(b: &Browser, css: &str) {
    b.execute(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'start'})",
        json!([css]),
    )
    .await;
}

#[tokio::test]
async fn an_exported_project_is_planned_first_then_applied_on_a_fresh_instance() {
    let source = spawn_app().await;
    source.load_todo_example().await;
    let b = Browser::start("project_export_import").await;
    open_project_panel(&b, &source).await;

    // Export: the button saves a Blob through a link named sluice-project.json. Headless
    // Chromium keeps downloads out of reach, so the page's link is watched instead.
    b.execute(
        "window.__sluiceDownloads = [];
         const blobs = new Map();
         const create = URL.createObjectURL;
         URL.createObjectURL = (blob) => { const url = create.call(URL, blob); blobs.set(url, blob); return url; };
         HTMLAnchorElement.prototype.click = function () {
           const blob = blobs.get(this.href);
           if (blob) blob.text().then((text) => window.__sluiceDownloads.push({ name: this.download, text }));
         };",
        json!([]),
    )
    .await;
    b.click("#export-project").await;
    let download = b
        .wait_until(
            "the export's download",
            "return window.__sluiceDownloads[0] || null",
        )
        .await;
    assert_eq!(download["name"], "sluice-project.json");
    let text = download["text"].as_str().expect("the download's text");
    let bundle: Value = serde_json::from_str(text).expect("the download is JSON");
    assert_eq!(bundle["format"], "sluice.project", "{bundle}");
    assert_eq!(bundle["version"], 1, "{bundle}");
    for file in ["todos.table.json", "list_todos.flow.json", "env.json"] {
        assert!(bundle["files"][file].is_string(), "{file} in {bundle}");
    }
    let dir = scratch_dir("export_import");
    let path = dir.join("sluice-project.json");
    std::fs::write(&path, text).expect("write the bundle");

    // Import on a second instance: the plan is shown and nothing is applied yet.
    let target = spawn_app().await;
    assert!(table_names(&target).await.is_empty());
    open_project_panel(&b, &target).await;
    b.find("#project-files")
        .await
        .type_text(&path.display().to_string())
        .await;
    b.wait_for_text("#project-status", "Nothing has been applied yet")
        .await;
    b.wait_for("#project-tables li[data-name=todos][data-action=create]")
        .await;
    b.wait_for_text("#project-tables", "todos").await;
    b.wait_for_text("#project-tables", "create").await;
    b.wait_for("#project-flows li[data-name=list_todos][data-action=create]")
        .await;
    assert!(
        b.try_find("#project-flows .tag-accent").await.is_none(),
        "nothing is published without the option"
    );
    let apply = b.find("#project-apply").await;
    assert_eq!(apply.property("disabled").await, json!(false));
    assert!(
        table_names(&target).await.is_empty(),
        "a plan changes nothing"
    );
    assert_eq!(flow_count(&target).await, 0, "a plan changes nothing");
    assert_eq!(target.send(target.api(Method::GET, "/todos")).await.0, 404);
    b.assert_accessible("settings with a project plan").await;

    // Publish is an option: ticking it plans again, now publishing the flows.
    b.click("#project-publish").await;
    b.wait_for_text("#project-flows li[data-name=list_todos]", "publish")
        .await;
    b.wait_until(
        "Apply is enabled for the new plan",
        "return !document.querySelector('#project-apply').disabled",
    )
    .await;
    show(&b, "#project-plan").await;
    b.screenshot_as("project_plan").await;
    assert!(table_names(&target).await.is_empty());

    b.click("#project-apply").await;
    b.wait_for_text("#project-applied", "Applied").await;
    show(&b, "#project-applied").await;
    assert_eq!(table_names(&target).await, vec!["todos".to_string()]);
    let (status, body) = target.send(target.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200, "the imported endpoint is served: {body}");
    assert_eq!(
        b.find("#project-apply").await.property("disabled").await,
        json!(true),
        "nothing left to apply"
    );
    b.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_broken_flow_file_is_a_problem_of_the_plan_and_nothing_can_be_applied() {
    let app = spawn_app().await;
    let dir = scratch_dir("broken_flow");
    let table = dir.join("todos.table.json");
    std::fs::write(&table, example("todo/todos.table.json").to_string()).expect("table file");
    let mut flow = example("todo/list_todos.flow.json");
    flow["name"] = json!("broken");
    flow["nodes"]["load"]["next"]["ok"] = json!("nowhere");
    let broken = dir.join("broken.flow.json");
    std::fs::write(&broken, flow.to_string()).expect("flow file");

    let b = Browser::start("project_broken_flow").await;
    open_project_panel(&b, &app).await;
    // Several files chosen together: one path per line.
    b.find("#project-files")
        .await
        .type_text(&format!("{}\n{}", table.display(), broken.display()))
        .await;
    let problems = b
        .wait_for_text("#project-problems", "broken.flow.json")
        .await
        .text()
        .await;
    assert!(problems.contains("/nodes/load"), "the pointer: {problems}");
    assert!(problems.contains("nowhere"), "{problems}");
    show(&b, "#project-problems").await;
    b.wait_for_text("#project-status", "nothing can be applied")
        .await;
    assert_eq!(
        b.find("#project-apply").await.property("disabled").await,
        json!(true)
    );
    assert!(table_names(&app).await.is_empty(), "nothing was applied");
    assert_eq!(flow_count(&app).await, 0, "nothing was applied");

    // The same files as a folder: paths inside it, anything else left out and said so.
    std::fs::write(dir.join("README.md"), "notes\n").expect("readme");
    b.find("#project-folder")
        .await
        .type_text(&dir.display().to_string())
        .await;
    b.wait_for_text("#project-ignored", "README.md").await;
    b.wait_for_text("#project-status", "The plan for 2 files has 2 problems")
        .await;
    let problems = b.find("#project-problems").await.text().await;
    assert!(
        problems.contains("broken.flow.json /nodes/load/next/ok"),
        "{problems}"
    );
    assert_eq!(
        b.find("#project-apply").await.property("disabled").await,
        json!(true)
    );
    b.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}
