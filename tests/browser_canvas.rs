//! The readable canvas and the stack view in a real headless Chromium against a real Sluice
//! and Postgres: node cards summarise their table, fields, condition and code; Fit keeps a
//! readable zoom and a large flow gets a minimap; new nodes land in free space; the stack view
//! and the canvas edit the same flow; a node is wired with the keyboard only. Each test ends
//! with a screenshot in `<target dir>/screenshots/<test>.png`.

mod common;

use common::browser::{Browser, ENTER, ESCAPE};
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// Creates a flow through the admin API; returns its id.
async fn create_flow(app: &TestApp, doc: &Value) -> i64 {
    let (status, body) = app.send(app.admin(Method::POST, "/flows").json(doc)).await;
    assert_eq!(status, 201, "create flow: {body}");
    body["id"].as_i64().expect("flow id")
}

async fn saved_document(app: &TestApp, id: i64) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body["document"].clone()
}

async fn open_flow(b: &Browser, app: &TestApp, id: i64, first_node: &str) {
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    present(b, &format!(".fl-node[data-id={first_node}]")).await;
}

/// Waits until an element matching `css` exists, shown or not: a node card may lie outside
/// the canvas's view (Fit keeps a readable zoom and pans instead of shrinking).
async fn present(b: &Browser, css: &str) {
    b.wait_until(
        &format!("{css} exists"),
        &format!(
            "return document.querySelector({}) ? true : null",
            json!(css)
        ),
    )
    .await;
}

/// Presses keys on whatever has focus (key actions, so selects and buttons get them too).
async fn keys(b: &Browser, text: &str) {
    let mut acts = Vec::new();
    for c in text.chars() {
        acts.push(json!({"type": "keyDown", "value": c.to_string()}));
        acts.push(json!({"type": "keyUp", "value": c.to_string()}));
    }
    b.perform(json!([{"type": "key", "id": "kbd", "actions": acts}]))
        .await;
}

/// Ctrl + `key` on whatever has focus.
async fn chord(b: &Browser, key: &str) {
    b.perform(json!([{"type": "key", "id": "kbd", "actions": [
        {"type": "keyDown", "value": "\u{E009}"}, {"type": "keyDown", "value": key},
        {"type": "keyUp", "value": key}, {"type": "keyUp", "value": "\u{E009}"}]}]))
        .await;
}

/// The text of a node card's summary line.
async fn card_summary(b: &Browser, id: &str) -> String {
    let css = format!(".fl-node[data-id={id}] .fl-summary-text");
    present(b, &css).await;
    b.execute(
        "return document.querySelector(arguments[0]).textContent",
        json!([css]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Whether two node cards overlap on screen: the pairs that do.
const OVERLAPS: &str = "const els = [...document.querySelectorAll('.fl-node')];
  const rs = els.map(e => [e.dataset.id, e.getBoundingClientRect()]);
  const bad = [];
  for (let i = 0; i < rs.length; i++) for (let j = i + 1; j < rs.length; j++) {
    const [a, p] = rs[i], [c, q] = rs[j];
    if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) bad.push(a + '/' + c);
  }
  return bad;";

/// Whether the element matching `css` lies inside the visible canvas.
const IN_VIEW: &str = "const c = document.querySelector('.fl-canvas').getBoundingClientRect();
  const r = document.querySelector(arguments[0]).getBoundingClientRect();
  return r.left >= c.left - 1 && r.right <= c.right + 1 && r.top >= c.top - 1 && r.bottom <= c.bottom + 1;";

fn books_table() -> Value {
    json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "pages", "type": "integer"}]})
}

/// request → check (if) → then: add (insert into books) → created (201); else: calc (script)
/// → plain (200).
fn summarised_flow() -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": "summaries", "entry": "check",
    "endpoint": {"method": "POST", "path": "/summaries"},
    "nodes": {
        "check": {"type": "if", "condition": {"$rhai": "request.query.x == \"1\""},
                  "next": {"then": "add", "else": "calc"}},
        "add": {"type": "db.insert", "table": "books", "as": "book",
                "values": {"title": {"$rhai": "request.body.title"}, "pages": {"$rhai": "request.body.pages"}},
                "rules": {"bypass": "imports keep the owner they had"},
                "next": {"ok": "created"}},
        "created": {"type": "respond", "status": 201, "body": {"$rhai": "book"}},
        "calc": {"type": "script", "as": "n", "code": "\n// count the pages\nlet n = 2;\nn", "next": {"ok": "plain"}},
        "plain": {"type": "respond", "status": 200, "body": {"$rhai": "n"}}
    }})
}

#[tokio::test]
async fn node_cards_summarise_their_table_fields_condition_and_code() {
    let app = spawn_app().await;
    app.create_table(&books_table()).await;
    let id = create_flow(&app, &summarised_flow()).await;
    let b = Browser::start("canvas_card_summaries").await;
    open_flow(&b, &app, id, "add").await;

    // A node that bypasses access rules says so first.
    assert_eq!(
        card_summary(&b, "add").await,
        "bypasses access rules · books · pages, title"
    );
    assert_eq!(
        card_summary(&b, "check").await,
        "if request.query.x == \"1\""
    );
    assert_eq!(card_summary(&b, "calc").await, "// count the pages");
    assert_eq!(card_summary(&b, "created").await, "201 · book");
    // The full text is the tooltip; a long one is cut with an ellipsis by CSS, not lost.
    let title = b
        .execute(
            "return document.querySelector('.fl-node[data-id=add] .fl-summary-text').title",
            json!([]),
        )
        .await;
    assert_eq!(title, json!("bypasses access rules · books · pages, title"));

    // The same sentences in the stack view, branches under the `if`.
    b.click(".fl-view-switch [data-view=stack]").await;
    b.wait_for(".fl-stack-step[data-id=add]").await;
    let text = |id: &str| {
        format!(
            "return document.querySelector('.fl-stack-step[data-id={id}] .fl-stack-text').textContent"
        )
    };
    assert_eq!(
        b.execute(&text("add"), json!([])).await,
        json!("Insert into books: pages, title")
    );
    assert_eq!(
        b.execute(&text("check"), json!([])).await,
        json!("If request.query.x == \"1\"")
    );
    assert_eq!(
        b.execute(&text("created"), json!([])).await,
        json!("Respond 201 with book")
    );
    let branches = b
        .execute(
            "return [...document.querySelectorAll('.fl-stack-item[data-id=check] > .fl-stack-branch > .fl-stack-port')]
               .map(p => p.textContent)",
            json!([]),
        )
        .await;
    assert_eq!(branches, json!(["then →", "else →"]));
    b.finish().await;
}

/// A chain of six nodes without positions: request → a → b → c → d → e → done.
fn six_node_flow() -> Value {
    let mut nodes = serde_json::Map::new();
    let names = ["a", "b", "c", "d", "e"];
    for (i, n) in names.iter().enumerate() {
        let next = names.get(i + 1).copied().unwrap_or("done");
        nodes.insert(
            (*n).into(),
            json!({"type": "set", "as": n, "value": {"$rhai": format!("{i}")}, "next": {"ok": next}}),
        );
    }
    nodes.insert(
        "done".into(),
        json!({"type": "respond", "status": 200, "body": {"$rhai": "e"}}),
    );
    json!({"format": "sluice.flow", "format_version": 1, "name": "six", "entry": "a",
           "endpoint": {"method": "GET", "path": "/six"}, "nodes": nodes})
}

#[tokio::test]
async fn fit_keeps_a_readable_zoom_and_a_large_flow_gets_a_minimap_that_pans() {
    let app = spawn_app().await;
    let id = create_flow(&app, &six_node_flow()).await;
    let b = Browser::start("canvas_fit_minimap").await;
    open_flow(&b, &app, id, "done").await;
    b.click(".fl-zoom button[title^='Fit']").await;
    let zoom = b
        .execute("return window.sluiceFlow.canvas.z", json!([]))
        .await
        .as_f64()
        .unwrap_or(0.0);
    assert!(zoom >= 0.8, "a six-node flow is fitted at {zoom}");
    let font = b
        .execute(
            "const el = document.querySelector('.fl-node[data-id=a] .fl-summary-text');
             return parseFloat(getComputedStyle(el).fontSize) * window.sluiceFlow.canvas.z",
            json!([]),
        )
        .await
        .as_f64()
        .unwrap_or(0.0);
    assert!(font >= 9.0, "summary text is {font} px on screen");
    // The start is in view, the flow does not fit, so the minimap shows where the rest is.
    assert_eq!(b.execute(IN_VIEW, json!([".fl-start"])).await, json!(true));
    let fits = b
        .execute(
            "return [...document.querySelectorAll('.fl-node')].every(n => {
               const c = document.querySelector('.fl-canvas').getBoundingClientRect(), r = n.getBoundingClientRect();
               return r.left >= c.left && r.right <= c.right && r.top >= c.top && r.bottom <= c.bottom; })",
            json!([]),
        )
        .await;
    let minimap = b
        .execute(
            "const m = document.querySelector('.fl-minimap');
             return [m.classList.contains('is-shown'), m.getAttribute('aria-hidden'), m.querySelectorAll('.fl-mini-node').length]",
            json!([]),
        )
        .await;
    // In the 1280 px window the chain is wider than the canvas at a readable zoom.
    assert_eq!(fits, json!(false), "seven boxes in a row do not fit at 0.8");
    assert_eq!(
        minimap,
        json!([true, "true", 7]),
        "the minimap has every box"
    );
    // A click on the minimap's right end pans there: the last node comes into view.
    let (x, y) = {
        let v = b
            .execute(
                "const r = document.querySelector('.fl-minimap').getBoundingClientRect();
                 return [Math.round(r.right - 12), Math.round(r.top + r.height / 2)]",
                json!([]),
            )
            .await;
        (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0))
    };
    b.perform(json!([{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
        {"type": "pointerMove", "x": x, "y": y, "duration": 0}, {"type": "pointerDown", "button": 0},
        {"type": "pointerUp", "button": 0}]}]))
        .await;
    b.wait_until(
        "the minimap click pans to the end of the flow",
        &format!(
            "return (() => {{ {} }})() || null",
            IN_VIEW.replace("arguments[0]", "'.fl-node[data-id=done]'")
        ),
    )
    .await;
    b.screenshot().await;

    // The 61-node flow: still readable, the start in view, the minimap shown.
    let (status, created) = app
        .send(app.admin(Method::POST, "/flows").json(&sixty_node_flow()))
        .await;
    assert_eq!(status, 201, "{created}");
    let big = created["id"].as_i64().expect("id");
    b.goto(&format!("{}/_/#/flows/{big}", app.base)).await;
    b.wait_until(
        "all 62 boxes are drawn",
        "return document.querySelectorAll('.fl-node').length === 62 || null",
    )
    .await;
    b.click(".fl-zoom button[title^='Fit']").await;
    let zoom = b
        .execute("return window.sluiceFlow.canvas.z", json!([]))
        .await
        .as_f64()
        .unwrap_or(0.0);
    assert!(zoom >= 0.8, "the large flow is fitted at {zoom}");
    assert_eq!(b.execute(IN_VIEW, json!([".fl-start"])).await, json!(true));
    b.wait_for(".fl-minimap.is-shown").await;
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('.fl-minimap .fl-mini-node').length",
            json!([])
        )
        .await,
        json!(62)
    );
    b.finish().await;
}

/// 6 × 10 `if`/`respond` nodes behind a `switch`: 61 nodes, no positions.
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
async fn nodes_added_from_the_palette_and_pasted_land_in_free_space() {
    let app = spawn_app().await;
    app.create_table(&books_table()).await;
    let id = create_flow(&app, &summarised_flow()).await;
    let b = Browser::start("canvas_free_placement").await;
    open_flow(&b, &app, id, "add").await;
    assert_eq!(b.execute(OVERLAPS, json!([])).await, json!([]));

    // Next to the selected node, three times in a row: never on another box.
    b.click(".fl-node[data-id=check] .fl-id").await;
    for _ in 0..3 {
        b.click(".fl-palette-item[data-type=respond]").await;
    }
    b.wait_until(
        "three nodes were added",
        "return Object.keys(window.sluiceFlow.doc().nodes).length === 8 || null",
    )
    .await;
    assert_eq!(b.execute(OVERLAPS, json!([])).await, json!([]));
    let selected = b
        .execute("return [...window.sluiceFlow.state.selection]", json!([]))
        .await;
    let last = selected[0].as_str().unwrap_or_default().to_string();
    assert_eq!(
        b.execute(IN_VIEW, json!([format!(".fl-node[data-id={last}]")]))
            .await,
        json!(true),
        "the new node is shown"
    );

    // With nothing selected: in the view's free space.
    b.press(ESCAPE).await;
    b.click(".fl-palette-item[data-type=set]").await;
    present(&b, ".fl-node[data-id=set]").await;
    assert_eq!(b.execute(OVERLAPS, json!([])).await, json!([]));

    // Copy and paste two nodes: the copies overlap nothing either.
    b.execute(
        "window.sluiceFlow.canvas.select(['add', 'created']); document.querySelector('.fl-canvas').focus()",
        json!([]),
    )
    .await;
    chord(&b, "c").await;
    chord(&b, "v").await;
    present(&b, ".fl-node[data-id=add_2]").await;
    assert_eq!(b.execute(OVERLAPS, json!([])).await, json!([]));
    b.finish().await;
}

/// request → greet (script) → done (respond 200).
fn linear_flow() -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": "stacked", "entry": "greet",
    "endpoint": {"method": "GET", "path": "/stacked"},
    "nodes": {
        "greet": {"type": "script", "as": "greet", "code": "let x = 1;\nx", "next": {"ok": "done"}},
        "done": {"type": "respond", "status": 200, "body": {"$rhai": "greet"}}
    }})
}

/// In the quick-add menu, moves focus to the item of `kind` and presses Enter on it.
async fn pick_quick(b: &Browser, kind: &str) {
    b.wait_until(
        &format!("the menu offers {kind}"),
        &format!(
            "const i = [...document.querySelectorAll('.fl-quick-item')].find(i => i.querySelector('.fl-type').textContent === {});
             if (!i) return null; i.focus(); return true;",
            json!(kind)
        ),
    )
    .await;
    b.press(ENTER).await;
}

#[tokio::test]
async fn the_stack_view_and_the_canvas_edit_the_same_flow() {
    let app = spawn_app().await;
    let id = create_flow(&app, &linear_flow()).await;
    let b = Browser::start("canvas_stack_view").await;
    open_flow(&b, &app, id, "greet").await;

    b.click(".fl-view-switch [data-view=stack]").await;
    b.wait_for(".fl-stack-step[data-id=done]").await;
    assert_eq!(
        b.execute(
            "return [...document.querySelectorAll('.fl-stack-step')].map(s => s.getAttribute('aria-label'))",
            json!([])
        )
        .await,
        json!([
            "The request comes in: GET /api/stacked",
            "1. Run the script let x = 1;",
            "2. Respond 200 with greet"
        ])
    );

    // A step selects its node; the inspector edits it; the step's sentence follows.
    b.click(".fl-stack-step[data-id=done]").await;
    b.wait_for(".fl-stack-item[data-id=done].is-selected").await;
    b.wait_until(
        "the inspector field is there",
        "return [...document.querySelectorAll('.fl-inspector label')].some(l => l.textContent.trim().toLowerCase().startsWith('status')) || null",
    )
    .await;
    b.execute(
        "const l = [...document.querySelectorAll('.fl-inspector label')].find(l => l.textContent.trim().toLowerCase().startsWith('status'));
         const c = document.getElementById(l.htmlFor); c.focus(); c.value = '201';
         c.dispatchEvent(new Event('input', {bubbles: true})); c.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;
    b.wait_until(
        "the step reads the new status",
        "return document.querySelector('.fl-stack-step[data-id=done] .fl-stack-text').textContent === 'Respond 201 with greet' || null",
    )
    .await;

    // Add a step after greet: the quick-add menu, type to filter, Enter.
    b.click(".fl-stack-step[data-id=greet]").await;
    b.click(".fl-stack-item[data-id=greet] > .fl-stack-actions .fl-stack-add")
        .await;
    b.wait_for(".fl-quick input").await;
    keys(&b, "set").await;
    b.wait_for(".fl-quick-item").await;
    b.press(ENTER).await;
    b.wait_for(".fl-stack-step[data-id=set]").await;
    let order = b
        .execute(
            "return [...document.querySelectorAll('.fl-stack-step')].map(s => s.dataset.id)",
            json!([]),
        )
        .await;
    assert_eq!(order, json!(["__start", "greet", "set", "done"]));

    // Move it up above greet, then back down: the chain is rewired each time.
    b.click(".fl-stack-item[data-id=set] > .fl-stack-actions .fl-stack-up")
        .await;
    b.wait_until(
        "set moved up",
        "return window.sluiceFlow.doc().entry === 'set' || null",
    )
    .await;
    assert_eq!(
        b.execute(
            "return document.activeElement.closest('.fl-stack-item')?.dataset.id",
            json!([])
        )
        .await,
        json!("set"),
        "focus stays on the moved step"
    );
    b.click(".fl-stack-item[data-id=set] > .fl-stack-actions .fl-stack-down")
        .await;
    b.wait_until(
        "set moved back down",
        "const d = window.sluiceFlow.doc(); return (d.entry === 'greet' && d.nodes.greet.next.ok === 'set' && d.nodes.set.next.ok === 'done') || null",
    )
    .await;

    // Switch to the canvas: the card shows the new status, the new node is there and wired.
    b.click(".fl-view-switch [data-view=canvas]").await;
    present(&b, ".fl-node[data-id=set]").await;
    assert_eq!(card_summary(&b, "done").await, "201 · greet");
    let wires = b
        .execute(
            "return [...document.querySelectorAll('.fl-wire-hit')].map(w => w.dataset.wire.replace('\\u0000', '.')).sort()",
            json!([]),
        )
        .await;
    assert_eq!(wires, json!(["__start.entry", "greet.ok", "set.ok"]));
    assert_eq!(b.execute(OVERLAPS, json!([])).await, json!([]));

    // Save and reload: the document has it, and the view choice is remembered.
    chord(&b, "s").await;
    b.wait_until(
        "saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false' || null",
    )
    .await;
    let doc = saved_document(&app, id).await;
    assert_eq!(doc["nodes"]["greet"]["next"]["ok"], "set");
    assert_eq!(doc["nodes"]["set"]["next"]["ok"], "done");
    assert_eq!(doc["nodes"]["done"]["status"], 201);
    b.click(".fl-view-switch [data-view=stack]").await;
    b.refresh().await;
    b.wait_for(".fl-stack-step[data-id=set]").await;
    assert_eq!(
        b.execute(
            "return document.querySelector('.fl-view-switch [data-view=stack]').getAttribute('aria-pressed')",
            json!([])
        )
        .await,
        json!("true")
    );

    // A branching step goes in with the rest of the chain on its first branch; its open
    // branch gets a step of its own.
    b.click(".fl-stack-step[data-id=greet]").await;
    b.click(".fl-stack-item[data-id=greet] > .fl-stack-actions .fl-stack-add")
        .await;
    b.wait_for(".fl-quick input").await;
    keys(&b, "if").await;
    pick_quick(&b, "if").await;
    b.wait_for(".fl-stack-item[data-id=if] .fl-stack-add-branch")
        .await;
    assert_eq!(
        b.execute("return window.sluiceFlow.doc().nodes.if.next", json!([]))
            .await,
        json!({"then": "set"})
    );
    b.click(".fl-stack-item[data-id=if] .fl-stack-add-branch")
        .await;
    b.wait_for(".fl-quick input").await;
    keys(&b, "fail").await;
    pick_quick(&b, "fail").await;
    b.wait_for(".fl-stack-step[data-id=fail]").await;
    assert_eq!(
        b.execute("return window.sluiceFlow.doc().nodes.if.next", json!([]))
            .await,
        json!({"then": "set", "else": "fail"})
    );
    chord(&b, "z").await;
    chord(&b, "z").await;
    chord(&b, "z").await;
    chord(&b, "z").await;
    b.wait_gone(".fl-stack-step[data-id=if]").await;

    // Remove the middle step: its neighbours are joined.
    b.click(".fl-stack-step[data-id=set]").await;
    b.click(".fl-stack-item[data-id=set] > .fl-stack-actions .fl-stack-remove")
        .await;
    b.wait_gone(".fl-stack-step[data-id=set]").await;
    let doc = b.execute("return window.sluiceFlow.doc()", json!([])).await;
    assert_eq!(doc["nodes"]["greet"]["next"]["ok"], "done");
    assert!(doc["nodes"].get("set").is_none());
    b.finish().await;
}

#[tokio::test]
async fn a_node_is_wired_with_the_keyboard_only() {
    let app = spawn_app().await;
    let id = create_flow(&app, &linear_flow()).await;
    let b = Browser::start("canvas_keyboard_wiring").await;
    open_flow(&b, &app, id, "greet").await;

    // Add a `set` node from the palette with the keyboard: it is not wired yet.
    b.execute(
        "document.querySelector('.fl-palette-item[data-type=set]').focus()",
        json!([]),
    )
    .await;
    b.press(ENTER).await;
    present(&b, ".fl-node[data-id=set]").await;

    // Tab from the canvas to the `greet` node; W opens the Connect dialog for it.
    b.execute("document.querySelector('.fl-canvas').focus()", json!([]))
        .await;
    let mut reached = false;
    for _ in 0..6 {
        keys(&b, "\u{E004}").await;
        let on = b
            .execute(
                "return document.activeElement && document.activeElement.dataset.id",
                json!([]),
            )
            .await;
        if on == json!("greet") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab reaches the greet node");
    b.wait_for(".fl-node[data-id=greet].is-selected").await;
    keys(&b, "w").await;
    b.wait_for("dialog[open] .fl-wire-port").await;
    let focused = b
        .execute("return document.activeElement.className", json!([]))
        .await;
    assert!(
        focused
            .as_str()
            .unwrap_or_default()
            .contains("fl-wire-port"),
        "the port list has focus: {focused}"
    );
    // Port `ok` is first; Tab to the node list, type to choose `set`, Enter connects.
    keys(&b, "\u{E004}").await;
    keys(&b, "set").await;
    b.wait_until(
        "set is chosen",
        "return document.querySelector('dialog[open] .fl-wire-to').value === 'set' || null",
    )
    .await;
    b.screenshot_as("canvas_connect_dialog").await;
    keys(&b, "\u{E007}").await;
    b.wait_gone("dialog[open]").await;
    b.wait_until(
        "greet.ok leads to set",
        "return window.sluiceFlow.doc().nodes.greet.next.ok === 'set' || null",
    )
    .await;

    // Tab on to the `set` node and wire its `ok` to `done` the same way.
    let mut reached = false;
    for _ in 0..6 {
        let on = b
            .execute(
                "return document.activeElement && document.activeElement.dataset.id",
                json!([]),
            )
            .await;
        if on == json!("set") {
            reached = true;
            break;
        }
        keys(&b, "\u{E004}").await;
    }
    assert!(reached, "Tab reaches the set node");
    keys(&b, "w").await;
    b.wait_for("dialog[open] .fl-wire-port").await;
    keys(&b, "\u{E004}").await;
    keys(&b, "done").await;
    b.wait_until(
        "done is chosen",
        "return document.querySelector('dialog[open] .fl-wire-to').value === 'done' || null",
    )
    .await;
    keys(&b, "\u{E007}").await;
    b.wait_gone("dialog[open]").await;

    // A wire is removed with the keyboard too: W, then the Disconnect button; undo restores.
    keys(&b, "w").await;
    b.wait_for("dialog[open] .fl-wire-disconnect").await;
    b.execute(
        "document.querySelector('dialog[open] .fl-wire-disconnect').focus()",
        json!([]),
    )
    .await;
    keys(&b, "\u{E007}").await;
    b.wait_gone("dialog[open]").await;
    b.wait_until(
        "set.ok is disconnected",
        "return !window.sluiceFlow.doc().nodes.set.next || null",
    )
    .await;
    chord(&b, "z").await;
    b.wait_until(
        "undo brings the wire back",
        "return window.sluiceFlow.doc().nodes.set.next?.ok === 'done' || null",
    )
    .await;

    chord(&b, "s").await;
    b.wait_until(
        "saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false' || null",
    )
    .await;
    let doc = saved_document(&app, id).await;
    assert_eq!(doc["nodes"]["greet"]["next"]["ok"], "set", "{doc}");
    assert_eq!(doc["nodes"]["set"]["next"]["ok"], "done", "{doc}");
    b.finish().await;
}

/// Runs `body` (an async function body with the editor's modules `layout`, `summary` and
/// `steps` in scope) in the page and returns its result.
async fn with_modules(b: &Browser, body: &str) -> Value {
    b.execute_async(
        &format!(
            "const done = arguments[arguments.length - 1];
             Promise.all(['layout', 'summary', 'steps'].map(m => import('/_/js/flows/' + m + '.js')))
               .then(async ([layout, summary, steps]) => {{ {body} }})
               .then(done, e => done('error: ' + e));"
        ),
        json!([]),
    )
    .await
}

#[tokio::test]
async fn placement_summaries_and_step_moves_follow_their_rules() {
    let app = spawn_app().await;
    let b = Browser::start("canvas_pure_functions").await;
    b.sign_in(&app.base).await;

    // freeSpot: right of the selected box when free; past a blocking box otherwise; inside the
    // view when the neighbourhood is full; never overlapping.
    let spots = with_modules(
        &b,
        "const near = {x: 0, y: 0, w: 210, h: 100};
         const a = layout.freeSpot([near], {w: 210, h: 80}, {near});
         const blocker = {x: 270, y: 0, w: 210, h: 100};
         const c = layout.freeSpot([near, blocker], {w: 210, h: 80}, {near});
         const wall = [];
         for (let x = -2000; x < 3000; x += 250) for (let y = -2000; y < 3000; y += 130) wall.push({x, y, w: 210, h: 100});
         const view = {x: 5000, y: 0, w: 800, h: 600};
         const d = layout.freeSpot(wall, {w: 210, h: 80}, {near: wall.find(q => q.x === 500 && q.y >= 0), view});
         const free = (p, boxes) => boxes.every(q => !layout.overlaps({...p, w: 210, h: 80}, q));
         return {a, cFree: free(c, [near, blocker]), d, dFree: free(d, wall)};",
    )
    .await;
    assert_eq!(spots["a"], json!({"x": 270, "y": 0}), "{spots}");
    assert_eq!(spots["cFree"], json!(true), "{spots}");
    assert_eq!(spots["dFree"], json!(true), "{spots}");
    let dx = spots["d"]["x"].as_i64().unwrap_or(0);
    assert!((5000..5800).contains(&dx), "in the view: {spots}");

    // Summaries by kind: a filter, a column map, code, a literal, a schema; sentences leave
    // out optional parts without a value.
    let texts = with_modules(
        &b,
        "const t = (type, props, hint) => ({type, title: type, schema: {properties: props, ...hint}});
         const q = t('db.query', {table: {type: 'string'}, filter: {}, order_by: {type: 'array'}},
           {'x-summary': ['table', 'filter', 'order_by'], 'x-sentence': 'Query {table}[ where {filter}][ ordered by {order_by}]'});
         const node = {type: 'db.query', table: 'todos', order_by: [{column: 'priority', desc: true}],
           filter: {and: [{field: 'done', op: 'eq', value: false},
             {or: [{field: 'title', op: 'contains', value: {$rhai: 'request.query.q'}}, {field: 'priority', op: 'ge', value: 3}]}]}};
         const s = t('script', {code: {type: 'string', 'x-widget': 'code'}}, {'x-summary': ['code']});
         const r = t('respond', {status: {type: 'integer'}, body: {'x-widget': 'expression'}},
           {'x-summary': ['status', 'body'], 'x-sentence': 'Respond[ {status}][ with {body}]'});
         const v = t('validate', {value: {}, schema: {type: 'object'}}, {});
         return [
           summary.summary(node, q),
           summary.sentence({type: 'db.query', table: 'todos'}, q),
           summary.summary({type: 'script', code: '\\n\\n  // first\\nlet x = 1;'}, s),
           summary.summary({type: 'respond', body: {ok: true}}, r),
           summary.sentence({type: 'respond', body: {$rhai: 'todo'}}, r),
           summary.summary({type: 'validate', value: {$rhai: 'request.body'},
             schema: {type: 'object', properties: {title: {}, pages: {}}}}, {schema: {required: ['type', 'value', 'schema'], properties: {}}}),
         ];",
    )
    .await;
    assert_eq!(
        texts,
        json!([
            "todos · done = false and (title contains request.query.q or priority ≥ 3) · priority desc",
            "Query todos",
            "// first",
            "{\"ok\":true}",
            "Respond with todo",
            "request.body · title, pages"
        ])
    );

    // Moving a step: a straight chain swaps and rewires; a step with two ways in stays.
    let moves = with_modules(
        &b,
        "const types = new Map(['set', 'respond', 'if'].map(t => [t, {type: t, terminal: t === 'respond',
           ports: t === 'if' ? [{name: 'then', required: true, binds: false}, {name: 'else', required: true, binds: false}]
             : t === 'set' ? [{name: 'ok', required: true, binds: true}] : []}]));
         const chain = {entry: 'a', nodes: {a: {type: 'set', next: {ok: 'b'}}, b: {type: 'set', next: {ok: 'c'}}, c: {type: 'respond'}}};
         const up = steps.moveStep(chain, types, 'b', -1);
         const fork = {entry: 'i', nodes: {i: {type: 'if', next: {then: 'b', else: 'b'}}, b: {type: 'set', next: {ok: 'c'}}, c: {type: 'respond'}}};
         const stuck = steps.moveStep(fork, types, 'b', -1);
         const list = steps.stackOf(fork, types);
         return {up, chain, stuck, fork: fork.nodes.i.next, jumps: list.main[0].branches.map(b => b.items[0].kind)};",
    )
    .await;
    assert_eq!(moves["up"], json!(true), "{moves}");
    assert_eq!(moves["chain"]["entry"], "b", "{moves}");
    assert_eq!(moves["chain"]["nodes"]["b"]["next"]["ok"], "a", "{moves}");
    assert_eq!(moves["chain"]["nodes"]["a"]["next"]["ok"], "c", "{moves}");
    assert_eq!(moves["stuck"], json!(false), "{moves}");
    assert_eq!(moves["fork"], json!({"then": "b", "else": "b"}), "{moves}");
    assert_eq!(moves["jumps"], json!(["step", "jump"]), "{moves}");
    b.finish().await;
}
