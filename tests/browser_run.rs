//! The run panel and the first run in a real headless Chromium against a real Sluice and
//! Postgres: the request form built from the input schema with the path parameter pre-filled
//! (so the first run is not a 500), recent live requests with replay of a captured failing
//! request on the draft, and the sample project offered by an empty instance. Each test ends
//! with a screenshot in `target/screenshots/<test>.png`.

mod common;

use common::browser::Browser;
use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

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

/// A string property of the element matching `css`.
async fn prop(b: &Browser, css: &str, name: &str) -> Value {
    b.execute(
        "const e = document.querySelector(arguments[0]); return e ? e[arguments[1]] : null;",
        json!([css, name]),
    )
    .await
}

/// Opens the run panel of flow `id`.
async fn open_run_panel(b: &Browser, app: &TestApp, id: i64) {
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for("#fl-run-toggle").await;
    b.click("#fl-run-toggle").await;
    b.wait_for("#fl-run").await;
}

#[tokio::test]
async fn the_run_form_comes_from_the_input_schema_and_the_first_run_finds_a_row() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    // Two rows; the sample id is the first row's.
    let mut ids = Vec::new();
    for title in ["first", "second"] {
        let (status, row) = app
            .send(
                app.api(Method::POST, "/todos")
                    .json(&json!({"title": title})),
            )
            .await;
        assert_eq!(status, 201, "{row}");
        ids.push(row["id"].as_i64().expect("id"));
    }
    let b = Browser::start("run_form_prefilled").await;
    b.sign_in(&app.base).await;

    open_run_panel(&b, &app, flow_id(&app, "get_todo").await).await;
    let id_field = "#fl-run-params-id";
    b.wait_for("label[for=fl-run-params-id]").await;
    b.wait_until(
        "the path parameter is pre-filled",
        &format!(
            "return document.querySelector('{id_field}').value === '{}'",
            ids[0]
        ),
    )
    .await;
    assert_eq!(prop(&b, id_field, "type").await, "number");
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 200").await;
    b.wait_for_text(".fl-run-body", "\"first\"").await;
    b.wait_for(".fl-node[data-id=load].was-run").await;

    // A body schema becomes typed, labelled fields; required ones are marked.
    open_run_panel(&b, &app, flow_id(&app, "create_todo").await).await;
    b.wait_for("#fl-run-body-title").await;
    for (name, ty) in [
        ("title", "text"),
        ("done", "checkbox"),
        ("priority", "number"),
        ("due_at", "text"),
    ] {
        let css = format!("#fl-run-body-{name}");
        assert_eq!(prop(&b, &css, "type").await, ty, "{name}");
        let label = b
            .execute(
                "return document.querySelector(`label[for=\"${arguments[0]}\"]`)?.textContent || ''",
                json!([format!("fl-run-body-{name}")]),
            )
            .await;
        assert!(
            label.as_str().is_some_and(|l| l.starts_with(name)),
            "{name}: {label}"
        );
    }
    assert_eq!(
        b.find("#fl-run-body-title")
            .await
            .attribute("aria-required")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        b.find("#fl-run-body-priority")
            .await
            .attribute("aria-required")
            .await,
        None
    );
    b.fill("#fl-run-body-title", "from the form").await;
    b.fill("#fl-run-body-priority", "3").await;
    // The raw request, as JSON.
    b.click("#fl-run-json-toggle").await;
    b.wait_for("#fl-run-body").await;
    let raw: Value = serde_json::from_str(
        prop(&b, "#fl-run-body", "value")
            .await
            .as_str()
            .unwrap_or(""),
    )
    .unwrap_or(Value::Null);
    assert_eq!(raw, json!({"title": "from the form", "priority": 3}));
    b.click("#fl-run-json-toggle").await;
    b.wait_for("#fl-run-body-title").await;
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 201").await;
    b.wait_for_text(".fl-run-body", "from the form").await;
    b.finish().await;
}

#[tokio::test]
async fn a_recorded_failing_request_is_listed_and_replayed_on_the_draft_with_a_trace() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let mut doc = example("todo/get_todo.flow.json");
    doc["settings"] = json!({"capture": true});
    let id = app.publish(&doc).await;
    let (status, body) = app
        .send(
            app.api(Method::GET, "/todos/424242")
                .header("X-Client", "browser-test"),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("todo.not_found"))
    );

    let b = Browser::start("run_replay").await;
    b.sign_in(&app.base).await;
    open_run_panel(&b, &app, id).await;
    // The request log is written in batches: refresh until the request shows.
    b.wait_until(
        "the live request is listed",
        "if (document.querySelector('.fl-recent-body[aria-busy]')) return false;
         if (document.querySelector('.fl-recent-table .fl-recent-replay')) return true;
         document.querySelector('#fl-recent-refresh').click();
         return false;",
    )
    .await;
    let row = b
        .execute(
            "return document.querySelector('.fl-recent-table tbody tr').textContent",
            json!([]),
        )
        .await;
    let row = row.as_str().unwrap_or_default();
    for part in ["GET", "/api/todos/424242", "404", "todo.not_found"] {
        assert!(row.contains(part), "{part} in {row}");
    }
    // The form starts with a sample id; replay puts the recorded one in and runs the draft.
    b.click(".fl-recent-replay").await;
    b.wait_for_text(".fl-run-replay", "Replaying GET /api/todos/424242")
        .await;
    b.wait_until(
        "the recorded id is in the form",
        "return document.querySelector('#fl-run-params-id').value === '424242'",
    )
    .await;
    b.wait_for_text(".fl-run-result", "HTTP 404").await;
    b.wait_for_text(".fl-run-body", "no todo with id 424242")
        .await;
    b.wait_for(".fl-node[data-id=missing].was-run").await;
    b.wait_for_text(".fl-run-replay", "recorded headers").await;
    b.finish().await;
}

/// Capture is turned on with the endpoint settings form and published; a captured request
/// whose values were redacted is loaded for replay but not run until the builder runs it.
#[tokio::test]
async fn capture_is_turned_on_in_the_settings_and_a_redacted_replay_waits_for_the_builder() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let id = flow_id(&app, "create_todo").await;
    let b = Browser::start("run_replay_redacted").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for("#fl-publish").await;
    b.wait_until(
        "the endpoint settings have the capture control",
        "return [...document.querySelectorAll('label')].some((l) => l.textContent === 'Capture requests')",
    )
    .await;
    b.execute(
        "const l = [...document.querySelectorAll('label')].find((l) => l.textContent === 'Capture requests');
         const s = document.getElementById(l.htmlFor); s.value = 'on';
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;
    b.click("#fl-publish").await;
    b.click("dialog[open] #fl-publish-confirm").await;
    b.wait_for_text(".fl-state", "published v2").await;
    let (_, flow) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(
        flow["document"]["settings"],
        json!({"capture": true}),
        "{flow}"
    );

    let (status, body) = app
        .send(
            app.api(Method::POST, "/todos")
                .json(&json!({"title": "kept", "api_token": "s3cret-value"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    b.click("#fl-run-toggle").await;
    b.wait_until(
        "the live request is listed",
        "if (document.querySelector('.fl-recent-body[aria-busy]')) return false;
         if (document.querySelector('.fl-recent-table .fl-recent-replay')) return true;
         document.querySelector('#fl-recent-refresh').click();
         return false;",
    )
    .await;
    b.click(".fl-recent-replay").await;
    b.wait_for_text(".fl-run-replay", "/body/api_token").await;
    assert_eq!(prop(&b, "#fl-run-body-title", "value").await, "kept");
    let ran = b
        .execute(
            "return document.querySelector('.fl-run-result').textContent",
            json!([]),
        )
        .await;
    assert_eq!(
        ran, "",
        "a replay with redacted values must wait for the builder"
    );
    assert!(!b.page_source().await.contains("s3cret-value"));
    // The form sends only declared fields, so the run goes through.
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 201").await;
    b.finish().await;
}

#[tokio::test]
async fn the_empty_instance_creates_the_sample_project_in_one_click() {
    let app = spawn_app().await;
    let b = Browser::start("first_run_sample_project").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables", app.base)).await;
    b.wait_for_text(".sample-card", "Start with a sample project")
        .await;
    b.click("#sample-project").await;
    b.wait_for(".card[data-table=authors]").await;
    b.wait_for(".card[data-table=books]").await;
    b.wait_gone(".sample-card").await;
    let (status, body) = app.send(app.api(Method::GET, "/authors/1/books")).await;
    assert_eq!(status, 200, "{body}");
    b.finish().await;
}
