//! The code field of the flow inspector in a real headless Chromium against a real Sluice and
//! Postgres: line numbers and highlighting, completion of the names in scope at the node (the
//! server's `scope`), Tab and Shift+Tab, bracket matching, a diagnostic at its line, Escape
//! then Tab leaving the field, and the typed code saved exactly. Screenshots go to
//! `<checkout>/target/screenshots/`.

mod common;

use common::browser::{Browser, ENTER, ESCAPE, TAB};
use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

const SHIFT_TAB: &str = "\u{E008}\u{E004}\u{E000}";
const LEFT: &str = "\u{E012}";
const END: &str = "\u{E010}";
const BACKSPACE: &str = "\u{E003}";
const DOWN: &str = "\u{E015}";
const CTRL_SPACE: &str = "\u{E009} \u{E000}";

/// A draft endpoint: insert a todo (bound as `todo`), a script `calc`, respond.
fn draft() -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": "code_field",
        "endpoint": {"method": "POST", "path": "/code-field"},
        "input": {"body": {"type": "object", "properties": {"title": {"type": "string"}}}},
        "entry": "insert",
        "nodes": {
            "insert": {"type": "db.insert", "table": "todos", "as": "todo",
                       "values": {"title": {"$rhai": "request.body.title"}}, "next": {"ok": "calc"}},
            "calc": {"type": "script", "as": "out", "code": "let x = 1;\nx", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "out"}}
        }
    })
}

const FIELD: &str = ".fl-inspector .cf[data-lang=rhai] textarea";

/// The code field's text.
async fn text(b: &Browser) -> String {
    b.execute(
        "return document.querySelector(arguments[0]).value",
        json!([FIELD]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The labels of the open completion list (empty when it is closed).
async fn offered(b: &Browser) -> Vec<String> {
    let v = b
        .execute(
            "const l = document.querySelector('.fl-inspector .cf-list');
             return l.hidden ? [] : [...l.querySelectorAll('[role=option] .cf-opt-label')].map(o => o.textContent);",
            json!([]),
        )
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

/// Waits until the open list offers `label` as its active option, which the textarea names
/// in `aria-activedescendant`.
async fn wait_offered(b: &Browser, label: &str) {
    b.wait_until(
        &format!("`{label}` is the active completion"),
        &format!(
            "const ta = document.querySelector('{FIELD}');
             const id = ta.getAttribute('aria-activedescendant');
             const opt = id && document.getElementById(id);
             return !!opt && opt.getAttribute('role') === 'option' && opt.getAttribute('aria-selected') === 'true'
               && opt.closest('[role=listbox]') !== null
               && opt.querySelector('.cf-opt-label').textContent === {label:?};"
        ),
    )
    .await;
}

async fn flow_document(app: &TestApp, id: i64) -> Value {
    let (status, flow) = app
        .send(app.admin(Method::GET, &format!("/flows/{id}")))
        .await;
    assert_eq!(status, 200, "{flow}");
    flow["document"].clone()
}

/// The entry called `name` in a list of scope names.
fn entry<'v>(list: &'v Value, name: &str) -> &'v Value {
    list.as_array()
        .and_then(|l| l.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("`{name}` in {list}"))
}

#[tokio::test]
async fn validate_answers_the_names_in_scope_at_each_node_also_when_the_flow_has_problems() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    for (name, secret) in [("REGION", false), ("API_KEY", true)] {
        let (status, body) = app
            .send(
                app.admin(Method::PUT, &format!("/env/{name}"))
                    .json(&json!({"value": "x", "secret": secret})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let mut doc = draft();
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows/validate")
                .json(&json!({"document": doc})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    let at_insert: Vec<&str> = body["scope"]["insert"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(at_insert, ["request", "auth", "env"]);
    let todo = entry(&body["scope"]["calc"], "todo");
    assert_eq!(
        (&todo["kind"], &todo["table"], &todo["node"]),
        (&json!("row"), &json!("todos"), &json!("insert"))
    );
    assert_eq!(entry(&todo["fields"], "priority")["type"], "integer");
    let request = entry(&body["scope"]["calc"], "request");
    assert_eq!(
        entry(&entry(&request["fields"], "body")["fields"], "title")["kind"],
        "string"
    );
    // Plain environment values complete after `env.`; secrets are not listed.
    let env = entry(&body["scope"]["calc"], "env");
    assert_eq!(env["fields"], json!([{"name": "REGION", "kind": "string"}]));
    assert_eq!(entry(&body["scope"]["reply"], "out")["node"], "calc");

    // A script that does not compile: the diagnostics, and the scope all the same.
    doc["nodes"]["calc"]["code"] = json!("let y = todo.;");
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/flows/validate")
                .json(&json!({"document": doc})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(body["diagnostics"][0]["code"], "flow.rhai_syntax", "{body}");
    assert_eq!(body["diagnostics"][0]["line"], 1, "{body}");
    assert_eq!(entry(&body["scope"]["calc"], "todo")["kind"], "row");
}

#[tokio::test]
async fn the_code_field_highlights_completes_names_in_scope_shows_problems_and_lets_focus_go() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let (status, created) = app
        .send(app.admin(Method::POST, "/flows").json(&draft()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("flow id");

    let b = Browser::start("code_field").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    b.click(".fl-node[data-id=calc] .fl-id").await;
    b.wait_for(FIELD).await;

    // Line numbers and highlighted tokens.
    b.wait_until(
        "two line numbers",
        "return [...document.querySelectorAll('.fl-inspector .cf .cf-ln')].map(l => l.textContent).join(',') === '1,2'",
    )
    .await;
    wait_token(&b, ".fl-inspector .cf-hl .cf-kw", "let").await;
    wait_token(&b, ".fl-inspector .cf-hl .cf-num", "1").await;

    // The server has described the names in scope at `calc`: `todo` is a row of `todos`.
    b.wait_until(
        "the scope of calc is known",
        "return window.sluiceFlow && import('/_/js/code/complete.js')
           .then(m => m.namesAt('calc').some(n => n.name === 'todo' && n.kind === 'row'))",
    )
    .await;

    // A new line after the first: `req` offers `request`, Enter takes it.
    b.execute(
        "const t = document.querySelector(arguments[0]); t.focus(); t.setSelectionRange(10, 10);",
        json!([FIELD]),
    )
    .await;
    b.press(ENTER).await;
    b.press("let a = req").await;
    wait_offered(&b, "request").await;
    b.press(ENTER).await;
    assert_eq!(text(&b).await, "let x = 1;\nlet a = request\nx");
    // `request.bo` offers `body`; the body's declared properties follow.
    b.press(".bo").await;
    wait_offered(&b, "body").await;
    b.press(ENTER).await;
    b.press(".").await;
    let list = offered(&b).await;
    assert_eq!(list.first().map(String::as_str), Some("title"), "{list:?}");
    // Escape closes the list and keeps the caret in the field.
    b.press(ESCAPE).await;
    assert!(offered(&b).await.is_empty());
    b.press("title;").await;
    assert_eq!(
        b.execute(
            "return document.activeElement === document.querySelector(arguments[0])",
            json!([FIELD])
        )
        .await,
        true
    );

    // A name bound by an earlier node, and its table's columns.
    b.press(ENTER).await;
    // Ctrl+Space asks for the list with nothing typed: the names come first.
    b.press(CTRL_SPACE).await;
    wait_offered(&b, "request").await;
    b.press(ESCAPE).await;
    assert!(offered(&b).await.is_empty());
    b.press("let b = to").await;
    wait_offered(&b, "todo").await;
    let detail = b
        .execute(
            "return document.querySelector('.cf-list .is-active .cf-opt-detail').textContent",
            json!([]),
        )
        .await;
    assert_eq!(detail, "row of todos");
    b.press(ENTER).await;
    b.press(".").await;
    let columns = offered(&b).await;
    for c in ["id", "title", "done", "priority", "due_at", "created_at"] {
        assert!(columns.iter().any(|o| o == c), "{c} in {columns:?}");
    }
    b.screenshot_as("code_field_completion").await;
    // Ten entries show at once; the arrows move on through the rest.
    b.press(&DOWN.repeat(11)).await;
    let window = b
        .execute(
            "const l = document.querySelector('.fl-inspector .cf-list');
             const ta = document.querySelector(arguments[0]);
             const active = document.getElementById(ta.getAttribute('aria-activedescendant'));
             return [l.querySelectorAll('[role=option]').length, active.getAttribute('aria-posinset'),
                     Number(active.getAttribute('aria-setsize')) > 10];",
            json!([FIELD]),
        )
        .await;
    assert_eq!(window, json!([10, "12", true]), "{window}");
    b.press("do").await;
    wait_offered(&b, "done").await;
    b.press(ENTER).await;
    b.press(";").await;
    assert!(offered(&b).await.is_empty());

    // Tab indents, Shift+Tab outdents.
    b.press(ENTER).await;
    b.press(TAB).await;
    b.press("b;").await;
    assert_eq!(
        text(&b).await,
        "let x = 1;\nlet a = request.body.title;\nlet b = todo.done;\n  b;\nx"
    );
    b.press(SHIFT_TAB).await;
    assert_eq!(
        text(&b).await,
        "let x = 1;\nlet a = request.body.title;\nlet b = todo.done;\nb;\nx"
    );

    // Bracket matching: with the caret after `]`, it and its `[` are marked.
    b.press(END).await;
    b.press(ENTER).await;
    b.press("let c = [1, (2)];").await;
    b.press(LEFT).await;
    b.wait_until(
        "the bracket pair is marked",
        "return [...document.querySelectorAll('.fl-inspector .cf-hl .cf-match')].map(m => m.textContent).join('') === '[]'",
    )
    .await;
    b.press(LEFT).await;
    b.wait_until(
        "the parentheses are marked once the caret is after `)`",
        "return [...document.querySelectorAll('.fl-inspector .cf-hl .cf-match')].map(m => m.textContent).join('') === '()'",
    )
    .await;
    b.press(END).await;

    // A problem is marked on its line: gutter, underline, message beside the line.
    b.press(ENTER).await;
    b.press("let d = nope;").await;
    let bad_line = b
        .wait_for(".fl-inspector .cf .cf-ln.cf-ln-bad")
        .await
        .text()
        .await;
    assert_eq!(bad_line, "6");
    wait_token(&b, ".fl-inspector .cf-hl .cf-bad", "nope").await;
    wait_token(&b, ".fl-inspector .cf-lens", "nope").await;
    b.wait_for_text(".fl-inspector .fl-diag-item", "line 6, column 9")
        .await;
    b.screenshot_as("code_field_problem").await;
    b.press(&BACKSPACE.repeat("let d = nope;".len())).await;
    b.wait_gone(".fl-inspector .cf .cf-ln.cf-ln-bad").await;
    // A plain syntax error is marked on its line too.
    b.press("let d = 1 +;").await;
    let bad_line = b
        .wait_for(".fl-inspector .cf .cf-ln.cf-ln-bad")
        .await
        .text()
        .await;
    assert_eq!(bad_line, "6");
    wait_token(&b, ".fl-inspector .cf-hl .cf-bad", ";").await;
    b.press(&BACKSPACE.repeat("\nlet d = 1 +;".len())).await;
    b.wait_gone(".fl-inspector .cf .cf-ln.cf-ln-bad").await;
    b.wait_gone(".fl-node.has-problem").await;

    // Escape, then Tab: focus leaves the field, the text keeps no tab.
    let typed =
        "let x = 1;\nlet a = request.body.title;\nlet b = todo.done;\nb;\nlet c = [1, (2)];\nx";
    assert_eq!(text(&b).await, typed);
    b.press(ESCAPE).await;
    b.press(TAB).await;
    let outside = b
        .execute(
            "const a = document.activeElement;
             return a !== document.body && !a.closest('.cf') && a !== document.querySelector(arguments[0]);",
            json!([FIELD]),
        )
        .await;
    assert_eq!(outside, true, "focus left the code field");
    assert_eq!(text(&b).await, typed);

    // Saved: the document has exactly the typed code.
    b.execute("window.sluiceFlow.save()", json!([])).await;
    b.wait_until(
        "the draft is saved",
        "return document.querySelector('.fl-screen').dataset.dirty === 'false'",
    )
    .await;
    let doc = flow_document(&app, id).await;
    assert_eq!(doc["nodes"]["calc"]["code"], typed);
    b.finish().await;
}

#[tokio::test]
async fn expressions_get_the_code_field_and_template_and_sql_are_highlighted_lightly() {
    let app = spawn_app().await;
    app.create_table(&example("todo/todos.table.json")).await;
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "light_modes",
        "endpoint": {"method": "GET", "path": "/light"},
        "entry": "query",
        "nodes": {
            "query": {"type": "db.sql", "as": "rows", "sql": "select title from todos where done = :done -- open ones",
                      "params": {"done": false}, "next": {"ok": "page"}},
            "page": {"type": "template", "as": "html", "template": "<p>{{ title | upper }}</p>{# note #}",
                     "context": {"title": "x"}, "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "rows.len()"}}
        }
    });
    let (status, created) = app.send(app.admin(Method::POST, "/flows").json(&doc)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("flow id");

    let b = Browser::start("code_field_light_modes").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;

    b.click(".fl-node[data-id=query] .fl-id").await;
    wait_token(&b, ".fl-inspector .cf[data-lang=sql] .cf-kw", "select").await;
    wait_token(&b, ".fl-inspector .cf[data-lang=sql] .cf-var", ":done").await;
    wait_token(
        &b,
        ".fl-inspector .cf[data-lang=sql] .cf-com",
        "-- open ones",
    )
    .await;
    // SQL problems with a position are marked in the field too.
    b.execute(
        "const t = document.querySelector('.fl-inspector .cf[data-lang=sql] textarea'); t.focus();
         t.value = 'select title from todos\\nwhere done = :done and title = :nope';
         t.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([]),
    )
    .await;
    let bad_line = b
        .wait_for(".fl-inspector .cf[data-lang=sql] .cf-ln.cf-ln-bad")
        .await
        .text()
        .await;
    assert_eq!(bad_line, "2");
    wait_token(&b, ".fl-inspector .cf[data-lang=sql] .cf-bad", ":nope").await;
    b.execute(
        "const t = document.querySelector('.fl-inspector .cf[data-lang=sql] textarea');
         t.value = 'select title from todos where done = :done';
         t.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([]),
    )
    .await;
    b.wait_gone(".fl-inspector .cf .cf-ln.cf-ln-bad").await;
    b.wait_gone(".fl-node.has-problem").await;

    b.click(".fl-node[data-id=page] .fl-id").await;
    wait_token(&b, ".fl-inspector .cf[data-lang=tera] .cf-tag", "{{").await;
    wait_token(&b, ".fl-inspector .cf[data-lang=tera] .cf-fn", "upper").await;
    wait_token(
        &b,
        ".fl-inspector .cf[data-lang=tera] .cf-com",
        "{# note #}",
    )
    .await;

    // A `$rhai` value (in the value picker: "expression / JSON") is a one-line code field with
    // completion, named for screen readers after its property.
    b.click(".fl-node[data-id=reply] .fl-id").await;
    let field = ".fl-inspector .fl-value .cf[data-lang=rhai] textarea";
    b.wait_for(field).await;
    let labelled = b
        .execute(
            "const t = document.querySelector(arguments[0]);
             return /^body.*Rhai expression/.test(t.getAttribute('aria-label') || '');",
            json!([field]),
        )
        .await;
    assert_eq!(labelled, true);
    wait_token(&b, ".fl-inspector .fl-value .cf-hl .cf-fn", "len").await;
    // A dot typed in front of existing code (`rows|.len()`) completes too.
    b.execute(
        "const t = document.querySelector(arguments[0]); t.focus(); t.setSelectionRange(4, 4);",
        json!([field]),
    )
    .await;
    b.press(".").await;
    wait_offered_in(&b, field, "len()").await;
    b.press(ESCAPE).await;
    b.press(BACKSPACE).await;
    b.execute(
        "const t = document.querySelector(arguments[0]); t.focus(); t.setSelectionRange(t.value.length, t.value.length);",
        json!([field]),
    )
    .await;
    b.press(" + ro").await;
    wait_offered_in(&b, field, "rows").await;
    b.press(ENTER).await;
    b.press(".").await;
    wait_offered_in(&b, field, "len()").await;
    b.press(ESCAPE).await;
    b.press("len()").await;
    b.wait_until(
        "the expression is in the document",
        "return window.sluiceFlow.doc().nodes.reply.body.$rhai === 'rows.len() + rows.len()'",
    )
    .await;
    // Inside `${...}` of a backtick string, names complete; in the string's text they do not.
    b.press(" + `ro").await;
    assert!(offered(&b).await.is_empty());
    b.press(" ${ro").await;
    wait_offered_in(&b, field, "rows").await;
    b.press(ENTER).await;
    b.press("}`").await;
    b.wait_until(
        "the interpolation is in the document",
        "return window.sluiceFlow.doc().nodes.reply.body.$rhai === 'rows.len() + rows.len() + `ro ${rows}`'",
    )
    .await;
    b.finish().await;
}

/// Like [`wait_offered`] for the field matching `css`.
async fn wait_offered_in(b: &Browser, css: &str, label: &str) {
    b.wait_until(
        &format!("`{label}` is offered"),
        &format!(
            "const ta = document.querySelector({css:?});
             const id = ta.getAttribute('aria-activedescendant');
             const opt = id && document.getElementById(id);
             return !!opt && opt.querySelector('.cf-opt-label').textContent === {label:?};"
        ),
    )
    .await;
}

/// Waits until some element matching `css` contains `text` (scrolled out of view or not).
async fn wait_token(b: &Browser, css: &str, text: &str) {
    b.wait_until(
        &format!("{css} holds {text:?}"),
        &format!("return [...document.querySelectorAll({css:?})].some(e => e.textContent.includes({text:?}))"),
    )
    .await;
}
