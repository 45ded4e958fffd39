//! The flow screens in a real headless Chromium against a real Sluice and Postgres: CRUD
//! endpoints, wiring a script node in, live Rhai diagnostics, run and trace, publish, export
//! and import, rollback, and a 61-node flow that loads, fits and drags. Each test ends with a
//! screenshot in `<target dir>/screenshots/<test>.png`.

mod common;

use common::browser::Browser;
use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// The middle of the element matching `css`, in viewport pixels.
async fn center(b: &Browser, css: &str) -> (i64, i64) {
    b.wait_for(css).await;
    let v = b
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();
             return [Math.round(r.x + r.width / 2), Math.round(r.y + r.height / 2)];",
            json!([css]),
        )
        .await;
    (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0))
}

/// Presses the mouse at `from`, moves in `steps` steps to `to`, releases.
async fn drag_points(b: &Browser, from: (i64, i64), to: (i64, i64), steps: i64) {
    let mut acts = vec![
        json!({"type": "pointerMove", "x": from.0, "y": from.1, "duration": 0}),
        json!({"type": "pointerDown", "button": 0}),
    ];
    for i in 1..=steps {
        acts.push(json!({"type": "pointerMove", "duration": 16,
            "x": from.0 + (to.0 - from.0) * i / steps, "y": from.1 + (to.1 - from.1) * i / steps}));
    }
    acts.push(json!({"type": "pointerUp", "button": 0}));
    b.perform(json!([{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": acts}]))
        .await;
}

async fn drag(b: &Browser, from_css: &str, to_css: &str) {
    let from = center(b, from_css).await;
    let to = center(b, to_css).await;
    drag_points(b, from, to, 8).await;
}

/// Ctrl + `key` on whatever has focus.
async fn chord(b: &Browser, key: &str) {
    b.perform(json!([{"type": "key", "id": "kbd", "actions": [
        {"type": "keyDown", "value": "\u{E009}"}, {"type": "keyDown", "value": key},
        {"type": "keyUp", "value": key}, {"type": "keyUp", "value": "\u{E009}"}]}]))
        .await;
}

async fn flow_by_name(app: &TestApp, name: &str) -> Value {
    let (_, list) = app.send(app.admin(Method::GET, "/flows")).await;
    let id = list["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == name)
        .and_then(|f| f["id"].as_i64())
        .unwrap_or_else(|| panic!("flow {name} exists: {list}"));
    let (_, flow) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    flow
}

/// Calls a generated endpoint from the page with `fetch`: `[status, body]`.
async fn fetch_from_page(b: &Browser, method: &str, path: &str, body: Value) -> Value {
    b.execute_async(
        "const done = arguments[arguments.length - 1];
         const init = {method: arguments[0], headers: {'content-type': 'application/json'}};
         if (arguments[2] !== null) init.body = JSON.stringify(arguments[2]);
         fetch(arguments[1], init).then(r => r.text().then(t => done([r.status, t ? JSON.parse(t) : null])))
           .catch(e => done([0, String(e)]));",
        json!([method, path, body]),
    )
    .await
}

#[tokio::test]
async fn crud_endpoints_get_a_script_node_wired_in_checked_run_published_and_called() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let b = Browser::start("flow_canvas_script_run_publish").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for_text(".fl-list", "No endpoints yet").await;

    // CRUD endpoints from the table, published at once.
    b.execute(
        "[...document.querySelectorAll('.fl-list-head button')].find(x => x.textContent.startsWith('CRUD')).click()",
        json!([]),
    )
    .await;
    b.wait_for("dialog[open] #fl-crud-table").await;
    // The dialog proposes signed-in users for a table without a password field; this test
    // calls the endpoints anonymously, so it picks "Anyone".
    let proposed = b
        .execute(
            "return document.querySelector('#fl-crud-auth').value",
            json!([]),
        )
        .await;
    assert_eq!(proposed, "user");
    b.execute(
        "document.querySelector('#fl-crud-auth').value = 'public'",
        json!([]),
    )
    .await;
    b.click("dialog[open] button[type=submit]").await;
    b.wait_for(".fl-row[data-flow=todos_create]").await;
    b.wait_for_text(".fl-list", "todos_delete").await;

    b.click(".fl-row[data-flow=todos_create]").await;
    b.wait_for(".fl-node[data-id=insert]").await;
    b.wait_for_text(".fl-state", "published v1").await;

    // Add a script node from the palette and wire it between the request and `insert`.
    b.click(".fl-palette-item[data-type=script]").await;
    b.wait_for(".fl-node[data-id=script]").await;
    let (x, y) = center(&b, ".fl-node[data-id=insert] .fl-node-head").await;
    drag_points(
        &b,
        center(&b, ".fl-node[data-id=script] .fl-node-head").await,
        (x - 60, y + 170),
        6,
    )
    .await;
    drag(
        &b,
        ".fl-start .fl-out[data-port=entry]",
        ".fl-node[data-id=script] .fl-node-head",
    )
    .await;
    drag(
        &b,
        ".fl-node[data-id=script] .fl-out[data-port=ok]",
        ".fl-node[data-id=insert] .fl-node-head",
    )
    .await;
    let doc = b.execute("return window.sluiceFlow.doc()", json!([])).await;
    assert_eq!(doc["entry"], "script", "{doc}");
    assert_eq!(doc["nodes"]["script"]["next"]["ok"], "insert", "{doc}");

    // A Rhai typo is flagged on the node and under the code field, with its position.
    b.click(".fl-node[data-id=script] .fl-id").await;
    b.set_value(
        ".fl-inspector textarea.fl-code",
        "let t = requets.body.title;\nt",
    )
    .await;
    b.wait_for(".fl-node[data-id=script].has-problem").await;
    let diag = b
        .wait_for_text(".fl-inspector .fl-diag-item", "requets")
        .await;
    let text = diag.text().await;
    assert!(text.contains("line 1, column"), "{text}");
    b.screenshot_as("flow_canvas_typo_flagged").await;
    b.set_value(
        ".fl-inspector textarea.fl-code",
        "let t = request.body.title;\nt",
    )
    .await;
    b.wait_gone(".fl-node.has-problem").await;

    // Save with Ctrl+S: the server has the script node.
    b.execute("document.activeElement.blur()", json!([])).await;
    chord(&b, "s").await;
    b.wait_until(
        "the draft is saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false'",
    )
    .await;
    let saved = flow_by_name(&app, "todos_create").await;
    assert_eq!(saved["document"]["nodes"]["script"]["type"], "script");
    assert_eq!(saved["document"]["entry"], "script");

    // Run with a trace: the response and the trace on the canvas.
    b.click("#fl-run-toggle").await;
    // The request is a form by default; this part types the body as raw JSON.
    b.click("#fl-run-json-toggle").await;
    b.set_value("#fl-run-body", r#"{"title": "from the canvas"}"#)
        .await;
    b.click("#fl-run").await;
    b.wait_for_text(".fl-run-result", "HTTP 201").await;
    b.wait_for(".fl-node[data-id=script].was-run").await;
    b.wait_for(".fl-node[data-id=insert].was-run").await;
    let fired = b
        .execute(
            "return document.querySelectorAll('.fl-wire.is-fired').length",
            json!([]),
        )
        .await;
    assert_eq!(fired, json!(3), "entry → script → insert → reply fired");
    b.click(".fl-node[data-id=script] .fl-id").await;
    b.wait_for_text(".fl-inspector .fl-trace", "from the canvas")
        .await;
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM app.todos")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(count, 0, "a debug run rolls its writes back");

    // Publish, then call the endpoint from the page.
    b.click("#fl-publish").await;
    // The publish dialog asks for an optional note.
    b.click("dialog[open] #fl-publish-confirm").await;
    b.wait_for_text(".fl-state", "published v2").await;
    let called = fetch_from_page(&b, "POST", "/api/todos", json!({"title": "via fetch"})).await;
    assert_eq!(called[0], 201, "{called}");
    assert_eq!(called[1]["title"], "via fetch");
    b.finish().await;
}

#[tokio::test]
async fn an_exported_flow_imports_again_under_a_new_path_after_its_problems_are_shown() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let list_todos = flow_by_name(&app, "list_todos").await;
    let id = list_todos["id"].as_i64().expect("id");
    let b = Browser::start("flow_export_import").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=reply]").await;
    b.click("#fl-export").await;

    // The exported file, as the browser downloads it (same request, same session).
    let exported = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.text()).then(done, e => done(String(e)));",
            json!([format!("/_/api/v1/flows/{id}/export")]),
        )
        .await;
    let text = exported.as_str().expect("export text").to_string();
    assert!(text.ends_with("}\n"), "canonical export: {text}");
    let dir = std::env::temp_dir().join(format!("sluice-import-{}", app.db_name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("list_todos.flow.json");
    std::fs::write(&file, &text).expect("write export");
    let mut broken: Value = serde_json::from_str(&text).expect("JSON");
    broken["nodes"]["reply"]["body"] = json!({"items": {"$rhai": "todoz"}});
    let broken_file = dir.join("broken.flow.json");
    std::fs::write(&broken_file, broken.to_string()).expect("write broken");

    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for(".fl-row[data-flow=list_todos]").await;
    // A broken file: every problem shown, nothing written.
    b.find("input.fl-file-input")
        .await
        .type_text(&broken_file.to_string_lossy())
        .await;
    b.wait_for_text("dialog[open] .fl-import-status", "todoz")
        .await;
    let create_disabled = b
        .execute(
            "return [...document.querySelectorAll('dialog[open] button')].find(x => x.textContent === 'Create new flow').disabled",
            json!([]),
        )
        .await;
    assert_eq!(create_disabled, json!(true));
    b.click("dialog[open] .dialog-close").await;
    b.wait_gone("dialog[open]").await;

    // The real export, under a new name and path.
    b.find("input.fl-file-input")
        .await
        .type_text(&file.to_string_lossy())
        .await;
    b.wait_for_text("dialog[open] .fl-import-status", "compiles")
        .await;
    b.set_value("#fl-imp-name", "list_todos_again").await;
    b.set_value("#fl-imp-path", "/todos-again").await;
    b.wait_until(
        "the renamed copy can be created",
        "const x = [...document.querySelectorAll('dialog[open] button')].find(x => x.textContent === 'Create new flow');
         return x && !x.disabled && document.querySelector('dialog[open] .fl-import-status').textContent.includes('compiles');",
    )
    .await;
    b.execute(
        "[...document.querySelectorAll('dialog[open] button')].find(x => x.textContent === 'Create new flow').click()",
        json!([]),
    )
    .await;
    b.wait_for_text(".fl-route", "/api/todos-again").await;
    b.click("#fl-publish").await;
    // The publish dialog asks for an optional note.
    b.click("dialog[open] #fl-publish-confirm").await;
    b.wait_for_text(".fl-state", "published v1").await;
    let called = fetch_from_page(&b, "GET", "/api/todos-again", Value::Null).await;
    assert_eq!(called, json!([200, {"items": []}]));
    let copy = flow_by_name(&app, "list_todos_again").await;
    assert_eq!(copy["document"]["nodes"], list_todos["document"]["nodes"]);
    let _ = std::fs::remove_dir_all(&dir);
    b.finish().await;
}

#[tokio::test]
async fn a_version_is_diffed_and_rolled_back_in_one_click() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let flow = flow_by_name(&app, "list_todos").await;
    let id = flow["id"].as_i64().expect("id");
    let mut doc = flow["document"].clone();
    doc["nodes"]["reply"]["body"] = json!({"todos": {"$rhai": "todos"}});
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &format!("/flows/{id}"))
                .header(
                    "if-match",
                    format!("\"{}\"", flow["rev"].as_str().unwrap_or_default()),
                )
                .json(&doc),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app
        .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 200);
    let (_, served) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(served, json!({"todos": []}));

    let b = Browser::start("flow_versions_rollback").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for_text(".fl-state", "published v2").await;
    b.click("#fl-versions").await;
    b.wait_for_text("dialog[open] .fl-table", "admin@example.com")
        .await;
    // Diff v1 → v2: the changed body key, as removed and added lines.
    b.execute(
        "document.querySelector('dialog[open] .fl-table tbody tr:first-child button').click()",
        json!([]),
    )
    .await;
    b.wait_for_text("dialog[open] .fl-diff", "v1 → v2").await;
    let removed = b.wait_for_text("dialog[open] .fl-del", "\"items\"").await;
    assert!(removed.text().await.contains("items"));
    b.wait_for_text("dialog[open] .fl-add", "\"todos\"").await;
    b.screenshot_as("flow_versions_diff").await;

    // Roll back to v1 and publish: served at once as v3.
    b.execute(
        "document.querySelectorAll('dialog[open] .fl-table tbody tr')[1].querySelector('.fl-primary').click()",
        json!([]),
    )
    .await;
    // Roll back & publish is confirmed first: it replaces what is live.
    b.wait_for_text("dialog[open]", "GET /api/todos").await;
    b.click("dialog[open] .dialog-actions .btn-danger").await;
    b.wait_for_text(".fl-state", "published v3").await;
    let (_, served) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(served, json!({"items": []}));
    let body = b
        .execute("return window.sluiceFlow.doc().nodes.reply.body", json!([]))
        .await;
    assert_eq!(body, json!({"items": {"$rhai": "todos"}}));
    b.finish().await;
}

/// 6 × 10 `if`/`respond` nodes behind a `switch`: 61 nodes, 114 wires, no positions.
fn sixty_node_flow() -> Value {
    let (w, layers) = (6, 10);
    let mut nodes = serde_json::Map::new();
    for k in 0..layers {
        for i in 0..w {
            let node = if k == layers - 1 {
                json!({"type": "respond", "status": 200, "body": {"at": format!("n{k}_{i}")}})
            } else {
                json!({"type": "if", "condition": {"$rhai": format!("request.query.len() > {i}")},
                       "next": {"then": format!("n{}_{i}", k + 1), "else": format!("n{}_{}", k + 1, (i + 1) % w)}})
            };
            nodes.insert(format!("n{k}_{i}"), node);
        }
    }
    let mut cases = serde_json::Map::new();
    let mut next = serde_json::Map::new();
    next.insert("default".into(), json!("n0_0"));
    for i in 1..w {
        cases.insert(format!("c{i}"), json!(i));
        next.insert(format!("c{i}"), json!(format!("n0_{i}")));
    }
    nodes.insert(
        "start".into(),
        json!({"type": "switch", "value": {"$rhai": "request.query.len()"}, "cases": cases, "next": next}),
    );
    json!({"format": "sluice.flow", "format_version": 1, "name": "sixty", "entry": "start",
           "endpoint": {"method": "GET", "path": "/sixty"}, "nodes": nodes})
}

#[tokio::test]
async fn a_sixty_node_flow_loads_fits_the_view_and_drags_with_its_wires() {
    let app = spawn_app().await;
    let (status, created) = app
        .send(app.admin(Method::POST, "/flows").json(&sixty_node_flow()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    let rev = created["rev"].as_str().expect("rev").to_string();
    let b = Browser::start("flow_sixty_nodes").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_until(
        "all nodes are drawn",
        "return document.querySelectorAll('.fl-node').length === 62",
    )
    .await;
    // Laid out automatically and fitted at a readable zoom (never below 0.8): the flow is too
    // large to fit at that zoom, so Fit shows its start and the minimap shows the rest.
    let fitted = b
        .wait_until(
            "the flow is fitted from its start",
            "const c = document.querySelector('.fl-canvas').getBoundingClientRect();
             const r = document.querySelector('.fl-start').getBoundingClientRect();
             const shown = r.left >= c.left && r.right <= c.right && r.top >= c.top && r.bottom <= c.bottom;
             return shown && document.querySelector('.fl-minimap.is-shown') ? window.sluiceFlow.canvas.z : null;",
        )
        .await;
    assert!(
        fitted.as_f64().unwrap_or(0.0) >= 0.8,
        "fitted at a readable zoom: {fitted}"
    );
    let wires = b
        .execute(
            "return document.querySelectorAll('.fl-wire:not(.fl-wire-temp)').length",
            json!([]),
        )
        .await;
    assert_eq!(
        wires,
        json!(115),
        "114 wires between nodes and the entry wire"
    );

    // Drag one node in many small steps: it and its wires move; the rev does not change.
    // The node is panned into view first, as the builder would (or Tab to it).
    b.execute("window.sluiceFlow.canvas.reveal(['n5_3'])", json!([]))
        .await;
    let before = b
        .execute(
            "return {p: window.sluiceFlow.doc().ui.nodes.n5_3,
                     d: [...document.querySelectorAll('.fl-wire-hit')].find(w => w.dataset.wire === 'n5_3\\u0000then')
                          .getAttribute('d'), z: window.sluiceFlow.canvas.z}",
            json!([]),
        )
        .await;
    let from = center(&b, ".fl-node[data-id=n5_3] .fl-node-head").await;
    drag_points(&b, from, (from.0 + 90, from.1 + 60), 30).await;
    let after = b
        .execute(
            "return {p: window.sluiceFlow.doc().ui.nodes.n5_3,
                     d: [...document.querySelectorAll('.fl-wire-hit')].find(w => w.dataset.wire === 'n5_3\\u0000then')
                          .getAttribute('d')}",
            json!([]),
        )
        .await;
    let z = before["z"].as_f64().expect("zoom");
    let moved_x =
        after["p"]["x"].as_f64().unwrap_or(0.0) - before["p"]["x"].as_f64().unwrap_or(0.0);
    let moved_y =
        after["p"]["y"].as_f64().unwrap_or(0.0) - before["p"]["y"].as_f64().unwrap_or(0.0);
    assert!(
        (moved_x - 90.0 / z).abs() <= 2.0,
        "moved {moved_x} at zoom {z}"
    );
    assert!(
        (moved_y - 60.0 / z).abs() <= 2.0,
        "moved {moved_y} at zoom {z}"
    );
    assert_ne!(before["d"], after["d"], "the node's wire follows it");

    chord(&b, "s").await;
    b.wait_until(
        "the layout is saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false'",
    )
    .await;
    let (_, saved) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(
        saved["rev"],
        rev.as_str(),
        "moving nodes is not a logic change"
    );
    assert_eq!(saved["document"]["ui"]["nodes"]["n5_3"], after["p"]);
    b.finish().await;
}

#[tokio::test]
async fn a_stale_save_shows_the_conflict_and_keeps_local_edits_until_the_builder_chooses() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let flow = flow_by_name(&app, "get_todo").await;
    let id = flow["id"].as_i64().expect("id");
    let b = Browser::start("flow_stale_save_conflict").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=load]").await;

    // Someone else saves meanwhile.
    let mut theirs = flow["document"].clone();
    theirs["description"] = json!("their change");
    let (status, body) = app
        .send(
            app.admin(Method::PUT, &format!("/flows/{id}"))
                .header(
                    "if-match",
                    format!("\"{}\"", flow["rev"].as_str().unwrap_or_default()),
                )
                .json(&theirs),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Our edit: the endpoint's description, then Ctrl+S.
    b.set_value(".fl-inspector textarea[id][rows='2']", "my change")
        .await;
    b.execute("document.activeElement.blur()", json!([])).await;
    chord(&b, "s").await;
    b.wait_for_text("dialog[open]", "changed elsewhere").await;
    let mine = b
        .execute("return window.sluiceFlow.doc().description", json!([]))
        .await;
    assert_eq!(mine, "my change", "nothing local is lost");
    let (_, stored) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(
        stored["document"]["description"], "their change",
        "the stale save wrote nothing"
    );
    b.screenshot_as("flow_stale_save_dialog").await;

    b.execute(
        "[...document.querySelectorAll('dialog[open] button')].find(x => x.textContent === 'Overwrite with mine').click()",
        json!([]),
    )
    .await;
    b.wait_until(
        "the draft is saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false'",
    )
    .await;
    let (_, stored) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(stored["document"]["description"], "my change");
    b.finish().await;
}

#[tokio::test]
async fn nodes_are_selected_copied_pasted_deleted_and_undone_from_the_keyboard() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let flow = flow_by_name(&app, "create_todo").await;
    let id = flow["id"].as_i64().expect("id");
    let b = Browser::start("flow_keyboard_editing").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    // Fit keeps a readable zoom, at which this flow is wider than the canvas: zoom out, as a
    // builder would, until the band below can reach every node.
    b.wait_until(
        "every node is in view after zooming out",
        "const cv = document.querySelector('.fl-canvas');
         if (!cv || !document.querySelector('.fl-node[data-id=reply]')) return null;
         const c = cv.getBoundingClientRect();
         const all = [...document.querySelectorAll('.fl-node')].every(n => { const r = n.getBoundingClientRect();
           return r.left >= c.left && r.right <= c.right && r.top >= c.top && r.bottom <= c.bottom; });
         if (!all) document.querySelector('.fl-zoom button[title=\"Zoom out\"]').click();
         return all || null;",
    )
    .await;
    b.wait_for(".fl-node[data-id=reply]").await;
    let nodes = "return Object.keys(window.sluiceFlow.doc().nodes).sort()";
    let original = b.execute(nodes, json!([])).await;

    // Shift-drag on empty canvas selects an area: here, every node.
    let canvas = b
        .execute(
            "const r = document.querySelector('.fl-canvas').getBoundingClientRect();
             return [Math.round(r.left + 4), Math.round(r.top + 4), Math.round(r.right - 4), Math.round(r.bottom - 4)];",
            json!([]),
        )
        .await;
    let (x0, y0, x1, y1) = (
        canvas[0].as_i64().unwrap_or(0),
        canvas[1].as_i64().unwrap_or(0),
        canvas[2].as_i64().unwrap_or(0),
        canvas[3].as_i64().unwrap_or(0),
    );
    b.perform(json!([
        {"type": "key", "id": "kbd", "actions": [{"type": "keyDown", "value": "\u{E008}"}, {"type": "pause", "duration": 0},
            {"type": "pause", "duration": 0}, {"type": "pause", "duration": 0}, {"type": "pause", "duration": 0},
            {"type": "keyUp", "value": "\u{E008}"}]},
        {"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
            {"type": "pointerMove", "x": x0, "y": y0, "duration": 0}, {"type": "pointerDown", "button": 0},
            {"type": "pointerMove", "x": x1, "y": y1, "duration": 50}, {"type": "pointerUp", "button": 0},
            {"type": "pause", "duration": 0}]}
    ]))
    .await;
    let selected = b
        .execute(
            "return document.querySelectorAll('.fl-node.is-selected:not(.fl-start)').length",
            json!([]),
        )
        .await;
    assert_eq!(
        selected,
        json!(original.as_array().map(Vec::len)),
        "the band selects every node"
    );

    // Escape clears; click + shift-click selects two.
    b.press(common::browser::ESCAPE).await;
    b.click(".fl-node[data-id=reply] .fl-id").await;
    b.execute(
        "const el = document.querySelector('.fl-node[data-id=blank] .fl-id'); const r = el.getBoundingClientRect();
         el.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true, shiftKey: true, button: 0, pointerId: 1,
           clientX: r.x + 2, clientY: r.y + 2}));",
        json!([]),
    )
    .await;
    let selected = b
        .execute(
            "return [...window.sluiceFlow.canvas.selection].sort()",
            json!([]),
        )
        .await;
    assert_eq!(selected, json!(["blank", "reply"]));

    // Copy, paste: two new nodes; undo removes them, redo brings them back; Delete removes.
    chord(&b, "c").await;
    chord(&b, "v").await;
    let pasted = b.execute(nodes, json!([])).await;
    assert_eq!(
        pasted.as_array().map(Vec::len),
        original.as_array().map(|a| a.len() + 2),
        "{pasted}"
    );
    assert!(
        pasted
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n == "reply_2"),
        "{pasted}"
    );
    chord(&b, "z").await;
    assert_eq!(b.execute(nodes, json!([])).await, original);
    b.perform(json!([{"type": "key", "id": "kbd", "actions": [
        {"type": "keyDown", "value": "\u{E009}"}, {"type": "keyDown", "value": "\u{E008}"},
        {"type": "keyDown", "value": "z"}, {"type": "keyUp", "value": "z"},
        {"type": "keyUp", "value": "\u{E008}"}, {"type": "keyUp", "value": "\u{E009}"}]}]))
        .await;
    assert_eq!(b.execute(nodes, json!([])).await, pasted);
    b.execute(
        "window.sluiceFlow.canvas.select(['reply_2', 'blank_2'])",
        json!([]),
    )
    .await;
    b.perform(json!([{"type": "key", "id": "kbd", "actions": [
        {"type": "keyDown", "value": "\u{E017}"}, {"type": "keyUp", "value": "\u{E017}"}]}]))
        .await;
    assert_eq!(b.execute(nodes, json!([])).await, original);

    // Disconnect a wire by clicking it, then Delete; the flow now has a problem. Fit first
    // (back to a readable zoom) and bring `reply` into view, as a builder would.
    b.execute(
        "window.sluiceFlow.canvas.fit(); window.sluiceFlow.canvas.reveal(['reply'])",
        json!([]),
    )
    .await;
    let (x, y) = center(&b, ".fl-node[data-id=reply] .fl-in").await;
    b.perform(json!([{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
        {"type": "pointerMove", "x": x - 8, "y": y, "duration": 0}, {"type": "pointerDown", "button": 0},
        {"type": "pointerUp", "button": 0}]}]))
        .await;
    b.wait_for(".fl-unwire").await;
    b.click(".fl-unwire").await;
    let next = b
        .execute(
            "return window.sluiceFlow.doc().nodes.insert.next || null",
            json!([]),
        )
        .await;
    assert_eq!(next, Value::Null, "insert → reply is disconnected");
    b.wait_for(".fl-node[data-id=insert].has-problem").await;
    b.finish().await;
}

#[tokio::test]
async fn unsaved_edits_survive_leaving_the_flow_and_can_be_restored() {
    let app = spawn_app().await;
    app.load_todo_example().await;
    let flow = flow_by_name(&app, "get_todo").await;
    let id = flow["id"].as_i64().expect("id");
    let b = Browser::start("flow_unsaved_edits_restored").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.wait_for(".fl-node[data-id=load]").await;
    b.set_value(".fl-inspector textarea[id][rows='2']", "not saved yet")
        .await;
    b.wait_until(
        "the edit is pending",
        "return document.querySelector('.fl-screen').dataset.dirty === 'true'",
    )
    .await;

    // Leave through the sidebar, come back.
    b.click(".nav-link[href='#/flows']").await;
    b.wait_for(".fl-row[data-flow=get_todo]").await;
    b.click(".fl-row[data-flow=get_todo]").await;
    b.wait_for_text("dialog[open]", "not saved").await;
    b.execute(
        "[...document.querySelectorAll('dialog[open] button')].find(x => x.textContent === 'Restore my edits').click()",
        json!([]),
    )
    .await;
    let description = b
        .execute("return window.sluiceFlow.doc().description", json!([]))
        .await;
    assert_eq!(description, "not saved yet");
    b.click("#fl-save").await;
    b.wait_until(
        "the draft is saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false'",
    )
    .await;
    let (_, stored) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(stored["document"]["description"], "not saved yet");
    b.finish().await;
}

#[tokio::test]
async fn the_auth_templates_create_their_table_and_run_on_an_empty_instance() {
    let app = spawn_app().await;
    let b = Browser::start("flow_auth_template").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows", app.base)).await;
    b.wait_for_text(".fl-list", "No endpoints yet").await;

    // signup from the auth templates: the users table does not exist yet.
    b.execute(
        "[...document.querySelectorAll('.fl-list-head button')].find(x => x.textContent.startsWith('From a template')).click()",
        json!([]),
    )
    .await;
    b.wait_for_text("dialog[open]", "/auth/signup").await;
    b.execute(
        "[...document.querySelectorAll('dialog[open] .fl-row')].find(x => x.textContent.includes('/auth/signup')).click()",
        json!([]),
    )
    .await;
    b.wait_for(".fl-node").await;
    let (status, table) = app.send(app.admin(Method::GET, "/tables/users")).await;
    assert_eq!(status, 200, "the template created its table: {table}");

    // Run the draft from the run panel: a new account is created (and rolled back).
    let flow = flow_by_name(&app, "signup").await;
    assert_eq!(flow["document"]["endpoint"]["path"], "/auth/signup");
    let id = flow["id"].as_i64().expect("id");
    let (status, run) = app
        .send(
            app.admin(Method::POST, &format!("/flows/{id}/run"))
                .json(&json!({
                    "body": {"email": "ann@example.com", "password": "correct horse", "name": "Ann"}
                })),
        )
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["response"]["status"], 201, "{run}");
    b.finish().await;
}
