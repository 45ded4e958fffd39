//! Accessibility of every main screen of the editor, checked by axe-core (vendored in
//! `tests/fixtures/axe/`) in a real headless Chromium against a real Sluice and Postgres. A
//! serious or critical violation fails the test with the rule, the elements and how to fix it.
//!
//! The same walk takes the screenshots of the main screens shown in README.md and
//! docs/EDITOR.md (`docs/img/*.png`, 1280×800). They are written only when
//! `SLUICE_UPDATE_SCREENSHOTS=1` is set, so an ordinary run never rewrites tracked files:
//!
//! ```sh
//! SLUICE_UPDATE_SCREENSHOTS=1 cargo test --test browser_a11y
//! ```

mod common;

use common::browser::{Browser, ESCAPE, SETUP_TOKEN, TAB, spawn_first_run_app};
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::json;

/// Writes `docs/img/<name>.png` when `SLUICE_UPDATE_SCREENSHOTS=1`.
async fn doc_screenshot(b: &Browser, name: &str) {
    if std::env::var("SLUICE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        // No caret, no focus ring, no hover left over from the walk in the pictures.
        b.execute(
            "document.activeElement && document.activeElement.blur && document.activeElement.blur();",
            json!([]),
        )
        .await;
        b.screenshot_to(&format!("docs/img/{name}.png")).await;
    }
}

/// The todo example (table, three published flows) with a few rows, so screens show data.
async fn app_with_data() -> TestApp {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let rows = [
        (
            "Write the release notes",
            true,
            3,
            Some("2026-12-07T09:00:00Z"),
        ),
        (
            "Review the CSV import report",
            false,
            2,
            Some("2026-12-08T14:30:00Z"),
        ),
        ("Rotate the signing key", false, 5, None),
        ("Add an index on due_at", false, 1, None),
        (
            "Answer the support inbox",
            true,
            0,
            Some("2026-12-04T17:00:00Z"),
        ),
        ("Plan the schema change for tags", false, 2, None),
    ];
    for (title, done, priority, due) in rows {
        let (status, body) = app
            .send(
                app.admin(Method::POST, "/tables/todos/rows").json(
                    &json!({"title": title, "done": done, "priority": priority, "due_at": due}),
                ),
            )
            .await;
        assert_eq!(status, 201, "insert row: {body}");
    }
    for (name, value, secret) in [
        ("PUBLIC_SITE_URL", "https://todo.example.com", false),
        ("MAIL_API_KEY", "not-a-real-key", true),
    ] {
        let (status, body) = app
            .send(
                app.admin(Method::PUT, &format!("/env/{name}"))
                    .json(&json!({"value": value, "secret": secret})),
            )
            .await;
        assert_eq!(status, 204, "env {name}: {body}");
    }
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/api-tokens")
                .json(&json!({"name": "CI deploy"})),
        )
        .await;
    assert_eq!(status, 201, "api token: {body}");
    app
}

/// Clicks the first `css` element whose text starts with `text`.
async fn click_text(b: &Browser, css: &str, text: &str) {
    // `wait_until` takes no arguments: the two strings go in as JSON literals.
    let script = format!(
        "const e = [...document.querySelectorAll({css})]
           .find((x) => x.textContent.trim().startsWith({text}));
         if (e) e.click();
         return !!e;",
        css = json!(css),
        text = json!(text)
    );
    b.wait_until(&format!("a `{css}` reading {text:?}"), &script)
        .await;
}

/// Checks the dialog that is open, then closes it with Escape.
async fn check_dialog(b: &Browser, what: &str) {
    b.wait_for("dialog[open] .dialog-body").await;
    b.assert_accessible(what).await;
    // Kept in target/screenshots (not tracked) to compare the dialogs' looks by eye.
    b.screenshot_as(&format!("a11y {what}").replace(' ', "_"))
        .await;
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;
}

/// Presses Tab up to `max` times from the start of the page and returns every control that
/// took the focus without a visible focus mark (no outline, and no box shadow that focus
/// adds), described by tag, id, class and name.
async fn tab_without_visible_focus(b: &Browser, max: usize) -> Vec<String> {
    b.execute(
        "document.activeElement && document.activeElement.blur && document.activeElement.blur();
         window.getSelection().removeAllRanges();",
        json!([]),
    )
    .await;
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..max {
        // A key action, not keys sent to the focused element: that fails on a file input.
        b.perform(json!([{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": TAB}, {"type": "keyUp", "value": TAB}]}]))
            .await;
        let v = b
            .execute(
                "const e = document.activeElement;
                 if (!e || e === document.body) return null;
                 const cs = getComputedStyle(e);
                 // A code field shows its focus on its frame (`.cf:focus-within`): the textarea
                 // is see-through over the highlighted text.
                 const shown = (el) => { const s = getComputedStyle(el); return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0; };
                 const frame = e.classList.contains('cf-input') ? e.closest('.cf') : null;
                 const outline = shown(e) || (!!frame && shown(frame));
                 // A box shadow counts only when focus adds it (some controls always have one).
                 const focused = cs.boxShadow;
                 e.blur();
                 const blurred = getComputedStyle(e).boxShadow;
                 e.focus();
                 const shadow = focused !== 'none' && focused !== blurred;
                 const name = e.getAttribute('aria-label') || (e.textContent || '').trim().slice(0, 30);
                 return { visible: outline || !!shadow,
                          what: `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')} \"${name}\"` };",
                json!([]),
            )
            .await;
        if v.is_null() {
            continue;
        }
        let what = v["what"].as_str().unwrap_or_default().to_string();
        if !seen.insert(what.clone()) {
            break;
        }
        if v["visible"] != true {
            missing.push(what);
        }
    }
    missing
}

/// The id of the flow named `name`.
async fn flow_id(app: &TestApp, name: &str) -> i64 {
    let (status, body) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(status, 200, "{body}");
    body["flows"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == name))
        .and_then(|f| f["id"].as_i64())
        .unwrap_or_else(|| panic!("no flow named {name}: {body}"))
}

#[tokio::test]
async fn an_unlabelled_input_is_reported_as_a_critical_violation() {
    let app = spawn_first_run_app().await;
    let b = Browser::start("a11y_detects_unlabelled_input").await;
    b.set_viewport(1280, 800).await;
    b.goto(&format!("{}/_/setup?token={SETUP_TOKEN}", app.base))
        .await;
    b.wait_for("input[name=password]").await;
    // The page as shipped passes; then an input with no label is put into it (only into
    // this browser's copy of the page) and axe must name it.
    b.assert_accessible("the setup page").await;
    b.execute(
        "const i = document.createElement('input'); i.type = 'text'; i.id = 'a11y-probe';
         document.querySelector('form').append(i);",
        json!([]),
    )
    .await;
    let found = b.axe("").await;
    let label = found
        .iter()
        .find(|v| v.id == "label")
        .unwrap_or_else(|| panic!("axe did not report the unlabelled input: {found:?}"));
    assert!(label.is_blocking(), "{label}");
    assert!(
        label.targets.iter().any(|t| t.contains("a11y-probe")),
        "{label}"
    );
    // Limited to a context, axe checks only that part of the page.
    let outside = b.axe(".auth-card h1").await;
    assert!(outside.iter().all(|v| v.id != "label"), "{outside:?}");
    b.finish().await;
}

#[tokio::test]
async fn every_icon_draws_something_and_an_unknown_name_throws() {
    let app = spawn_first_run_app().await;
    let b = Browser::start("icons_draw").await;
    b.goto(&format!("{}/_/", app.base)).await;
    b.wait_for("h1").await;
    let v = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             import('/_/js/icons.js').then(({ icon, ICON_NAMES }) => {
               const box = document.createElement('div');
               document.body.append(box);
               const drawn = {};
               for (const name of ICON_NAMES) {
                 const svg = icon(name);
                 box.append(svg);
                 const r = svg.querySelector('path').getBBox();
                 drawn[name] = [r.width + r.height > 0, svg.getAttribute('aria-hidden')];
               }
               const labelled = icon('check', { label: 'Saved' });
               let unknown = null;
               try { icon('no-such-icon'); } catch (e) { unknown = e.message; }
               box.remove();
               done({ drawn, count: ICON_NAMES.length, role: labelled.getAttribute('role'),
                      name: labelled.getAttribute('aria-label'),
                      hidden: labelled.getAttribute('aria-hidden'), unknown });
             }).catch((e) => done({ error: String(e) }));",
            json!([]),
        )
        .await;
    assert!(v["error"].is_null(), "{v}");
    // The set the editor's screens use, at least.
    let drawn = v["drawn"].as_object().expect("icons");
    for name in [
        "plus", "trash", "copy", "edit", "play", "upload", "download", "history", "undo", "redo",
        "save", "settings", "table", "flow", "function", "search", "close", "chevron", "check",
        "warning", "link", "eye", "grip", "zoom-in", "zoom-out", "fit", "minimap", "list",
    ] {
        assert_eq!(
            drawn.get(name),
            Some(&json!([true, "true"])),
            "icon {name}: {v}"
        );
    }
    assert_eq!(v["count"].as_u64(), Some(drawn.len() as u64));
    // A labelled icon is an image with that name; an unknown name is a programming error.
    assert_eq!(v["role"], "img");
    assert_eq!(v["name"], "Saved");
    assert!(v["hidden"].is_null(), "{v}");
    assert_eq!(v["unknown"], "unknown icon: no-such-icon");
    b.finish().await;
}

#[tokio::test]
#[should_panic(expected = "serious or critical violation(s) on a page with a nameless button")]
async fn assert_accessible_fails_the_test_on_a_nameless_button() {
    let app = spawn_first_run_app().await;
    let b = Browser::start("a11y_fails_on_nameless_button").await;
    b.set_viewport(1280, 800).await;
    b.goto(&format!("{}/_/", app.base)).await;
    b.wait_for("h1").await;
    b.execute(
        "document.querySelector('h1').after(document.createElement('button'));",
        json!([]),
    )
    .await;
    b.assert_accessible("a page with a nameless button").await;
}

#[tokio::test]
async fn the_first_run_and_sign_in_pages_have_no_serious_violations() {
    let first = spawn_first_run_app().await;
    let b = Browser::start("a11y_first_run").await;
    b.set_viewport(1280, 800).await;
    b.goto(&format!("{}/_/", first.base)).await;
    b.wait_for_text("h1", "Welcome to Sluice").await;
    b.assert_accessible("the first-run page without a setup link")
        .await;
    b.goto(&format!("{}/_/setup?token={SETUP_TOKEN}", first.base))
        .await;
    b.wait_for("input[name=password]").await;
    b.assert_accessible("the setup page").await;

    let app = spawn_app().await;
    b.goto(&format!("{}/_/", app.base)).await;
    b.wait_for_text("h1", "Sign in").await;
    b.assert_accessible("the sign-in page").await;
    doc_screenshot(&b, "sign-in").await;
    // An error shown on the form is announced and still accessible.
    b.fill("input[name=email]", "admin@example.com").await;
    b.fill("input[name=password]", "not the password").await;
    b.click("form.auth-form button[type=submit]").await;
    b.wait_for(".error-box").await;
    b.assert_accessible("the sign-in page with an error").await;
    b.finish().await;
}

#[tokio::test]
async fn the_table_and_settings_screens_have_no_serious_violations() {
    let app = app_with_data().await;
    let b = Browser::start("a11y_tables").await;
    b.set_viewport(1280, 800).await;
    b.sign_in(&app.base).await;

    b.goto(&format!("{}/_/#/tables", app.base)).await;
    b.wait_for(".card").await;
    b.assert_accessible("the tables list").await;
    doc_screenshot(&b, "tables").await;
    b.click("#new-table").await;
    check_dialog(&b, "the new table dialog").await;

    b.goto(&format!("{}/_/#/tables/todos", app.base)).await;
    b.wait_for_text("#rows", "Write the release notes").await;
    b.assert_accessible("the data grid").await;
    doc_screenshot(&b, "grid").await;
    click_text(&b, ".page-actions button", "Create endpoints").await;
    check_dialog(&b, "the create endpoints dialog").await;

    b.goto(&format!("{}/_/#/tables/todos/schema", app.base))
        .await;
    b.wait_for("#add-field").await;
    b.assert_accessible("the schema designer").await;
    // With a pending change and its review dialog open.
    b.click("#add-field").await;
    b.wait_for(".field-row.new [data-role=name]").await;
    b.press("tags").await;
    b.assert_accessible("the schema designer with a new field")
        .await;
    doc_screenshot(&b, "designer").await;
    b.click("#review-changes").await;
    b.wait_for("dialog[open] #plan-preview").await;
    b.assert_accessible("the schema change review dialog").await;
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;

    // Leaving with the pending field asks first (the browser's own question); answer "leave".
    b.execute("window.confirm = () => true;", json!([])).await;
    b.goto(&format!("{}/_/#/tables/todos/history", app.base))
        .await;
    b.wait_for("#history").await;
    b.assert_accessible("the table history").await;

    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.wait_for("#env-list").await;
    b.wait_for("#token-list").await;
    b.assert_accessible("the settings").await;
    doc_screenshot(&b, "settings").await;
    // The three kinds of toast, as every screen shows them.
    b.execute_async(
        "const done = arguments[arguments.length - 1];
         import('/_/js/ui.js').then(({ toast }) => {
           toast('Saved the value', 'success'); toast('Could not reach the server', 'error');
           toast('Copied'); done(true);
         });",
        json!([]),
    )
    .await;
    b.wait_for(".toast-error").await;
    b.assert_accessible("the settings with toasts").await;
    b.screenshot_as("a11y_toasts").await;
    b.click("#add-env").await;
    b.wait_for("dialog[open]").await;
    b.assert_accessible("the new environment value dialog")
        .await;
    b.finish().await;
}

#[tokio::test]
async fn the_endpoint_screens_have_no_serious_violations() {
    let app = app_with_data().await;
    let b = Browser::start("a11y_flows").await;
    b.set_viewport(1280, 800).await;
    b.sign_in(&app.base).await;

    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for(".fl-row").await;
    b.assert_accessible("the endpoints list").await;
    doc_screenshot(&b, "endpoints").await;
    for (button, what) in [
        ("New endpoint", "the new endpoint dialog"),
        ("New function", "the new function dialog"),
        ("CRUD from a table", "the CRUD endpoints dialog"),
        ("From a template", "the templates dialog"),
    ] {
        click_text(&b, ".fl-list-head button", button).await;
        check_dialog(&b, what).await;
    }

    let id = flow_id(&app, "create_todo").await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=insert]").await;
    b.assert_accessible("the flow canvas").await;
    b.click(".fl-node[data-id=insert] .fl-id").await;
    b.wait_for(".fl-node[data-id=insert].is-selected").await;
    b.wait_until(
        "the inspector to show the selected node",
        "return [...document.querySelectorAll('.fl-inspector input')].some((i) => i.value === 'insert');",
    )
    .await;
    b.assert_accessible("the flow canvas with the inspector open")
        .await;
    doc_screenshot(&b, "flow").await;
    // An `if` node: its condition is an expression (the expression / JSON switch).
    b.click(".fl-node[data-id=check] .fl-id").await;
    b.wait_for(".fl-node[data-id=check].is-selected").await;
    b.wait_until(
        "the inspector to show the if node",
        "return [...document.querySelectorAll('.fl-inspector input')].some((i) => i.value === 'check');",
    )
    .await;
    b.assert_accessible("the inspector of an if node").await;
    b.click(".fl-node[data-id=insert] .fl-id").await;

    // The run panel, run once, with its trace over the canvas.
    b.click("#fl-run-toggle").await;
    b.fill("#fl-run-body-title", "Ship the editor").await;
    b.fill("#fl-run-body-priority", "2").await;
    b.click("#fl-run").await;
    b.wait_for(".fl-node[data-id=insert].was-run").await;
    b.wait_for(".fl-run-result *").await;
    b.click(".fl-node[data-id=insert] .fl-id").await;
    b.assert_accessible("the run panel with a trace").await;
    doc_screenshot(&b, "run").await;

    b.click("#fl-versions").await;
    b.wait_for_text("dialog[open] .fl-table", "admin@example.com")
        .await;
    b.assert_accessible("the versions dialog").await;
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;

    // A Rhai syntax error: the node's outline and count, the problems button and its list.
    b.execute(
        "window.sluiceFlow.state.edit((d) => { d.nodes.normalize.code = 'let x = ;'; });",
        json!([]),
    )
    .await;
    b.wait_for(".fl-node[data-id=normalize].has-problem").await;
    b.wait_for(".fl-problems").await;
    b.assert_accessible("the flow canvas with a problem").await;
    b.click(".fl-problems").await;
    check_dialog(&b, "the problems dialog").await;
    b.finish().await;
}

#[tokio::test]
async fn every_control_reached_with_tab_shows_where_the_focus_is() {
    let app = app_with_data().await;
    let b = Browser::start("a11y_focus_visible").await;
    b.set_viewport(1280, 800).await;
    b.sign_in(&app.base).await;
    let id = flow_id(&app, "create_todo").await;
    let mut report = Vec::new();
    for (hash, ready) in [
        ("#/tables", ".card"),
        ("#/tables/todos", "#rows tbody tr"),
        ("#/tables/todos/schema", "#add-field"),
        ("#/settings", "#env-list"),
        ("#/flows", ".fl-row"),
        (&format!("#/flows/{id}") as &str, ".fl-node[data-id=insert]"),
    ] {
        b.goto(&format!("{}/_/{hash}", app.base)).await;
        b.wait_for(ready).await;
        for what in tab_without_visible_focus(&b, 80).await {
            report.push(format!("{hash}: {what}"));
        }
    }
    assert!(
        report.is_empty(),
        "focus not visible on:\n  {}",
        report.join("\n  ")
    );
    b.finish().await;
}
