//! The data grid and the table designer in a real headless Chromium against a real Sluice and
//! Postgres: reference labels and the row picker, the sticky header, arrow-key navigation,
//! several filters and sorts, designer edits that survive a refresh, dialogs that close on
//! Back. Each test ends with a screenshot in `target/screenshots/<test>.png`.

mod common;

use common::browser::{Browser, ENTER, ESCAPE, TAB};
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

const ARROW_UP: &str = "\u{E013}";
const ARROW_RIGHT: &str = "\u{E014}";
const ARROW_DOWN: &str = "\u{E015}";
const HOME: &str = "\u{E011}";
const END: &str = "\u{E010}";
const PAGE_DOWN: &str = "\u{E00F}";
const SHIFT: &str = "\u{E008}";

/// Sets a `<select>` (found by CSS, the last match) to `value` as a person would.
async fn choose(b: &Browser, css: &str, value: &str) {
    b.execute(
        "const all = document.querySelectorAll(arguments[0]); const s = all[all.length - 1];
         s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([css, value]),
    )
    .await;
}

async fn insert(app: &TestApp, table: &str, row: Value) -> Value {
    let (status, body) = app
        .send(
            app.admin(Method::POST, &format!("/tables/{table}/rows"))
                .json(&row),
        )
        .await;
    assert_eq!(status, 201, "insert {row}: {body}");
    body
}

async fn row(app: &TestApp, table: &str, id: i64) -> Value {
    let (status, body) = app
        .send(app.admin(Method::GET, &format!("/tables/{table}/rows/{id}")))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Where the focus is: `<col>@<row id>` for a cell, the aria-label of a control, or the tag.
async fn focused(b: &Browser) -> String {
    b.execute(
        "const a = document.activeElement;
         if (!a) return '';
         const td = a.closest && a.closest('#rows td, #rows th');
         if (td && td === a && td.dataset.col) return td.dataset.col + '@' + (td.parentElement.dataset.id || 'head');
         return a.getAttribute('aria-label') || a.id || a.tagName;",
        json!([]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_string()
}

async fn library_app() -> TestApp {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "authors", "fields": [
        {"name": "born", "type": "integer"},
        {"name": "name", "type": "text", "required": true},
        {"name": "country", "type": "text"}
    ]}))
    .await;
    app.create_table(&json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "author", "type": "reference", "table": "authors"}
    ]}))
    .await;
    for (name, born, country) in [
        ("Ada Lovelace", 1815, "UK"),
        ("Grace Hopper", 1906, "US"),
        ("Edsger Dijkstra", 1930, "NL"),
    ] {
        insert(
            &app,
            "authors",
            json!({"name": name, "born": born, "country": country}),
        )
        .await;
    }
    app
}

#[tokio::test]
async fn a_reference_shows_its_label_and_is_picked_from_a_list() {
    let app = library_app().await;
    insert(&app, "books", json!({"title": "Notes", "author": 1})).await;
    insert(&app, "books", json!({"title": "Compilers", "author": 2})).await;
    insert(
        &app,
        "books",
        json!({"title": "Shortest paths", "author": 3}),
    )
    .await;
    insert(&app, "books", json!({"title": "Anonymous"})).await;
    let b = Browser::start("grid_reference_picker").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/books", app.base)).await;
    // The label is the first text field of authors (`name`), the id stays visible.
    let first = "#rows tbody tr[data-id='1'] td[data-col=author]";
    b.wait_for_text(&format!("{first} .ref-label"), "Ada Lovelace")
        .await;
    b.wait_for_text(&format!("{first} .ref-id"), "#1").await;
    b.wait_for_text(
        "#rows tbody tr[data-id='3'] td[data-col=author] .ref-label",
        "Edsger Dijkstra",
    )
    .await;
    // One request for the labels of the whole page, not one per row.
    let label_requests = b
        .execute(
            "return performance.getEntriesByType('resource')
               .filter((e) => e.name.includes('/tables/authors/rows/query')).length;",
            json!([]),
        )
        .await;
    assert_eq!(label_requests, json!(1));

    // Editing the cell opens the picker; typing searches by label; Enter picks.
    b.click(first).await;
    b.press(ENTER).await;
    b.wait_for("dialog[open] .pick-search").await;
    b.wait_for_text("dialog[open] .pick-list", "Edsger Dijkstra")
        .await;
    let list = b.find("dialog[open] .pick-list").await.text().await;
    assert!(
        list.contains("1906") || list.contains("US"),
        "a second column: {list}"
    );
    b.press("hop").await;
    b.wait_until(
        "the search to leave one author",
        "const items = document.querySelectorAll('dialog[open] [role=option]');
         return items.length === 1 && items[0].textContent.includes('Grace Hopper');",
    )
    .await;
    b.screenshot_as("grid_reference_picker_open").await;
    b.press(ENTER).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text(&format!("{first} .ref-label"), "Grace Hopper")
        .await;
    assert_eq!(row(&app, "books", 1).await["author"], 2);
    // Focus is back on the cell.
    assert_eq!(focused(&b).await, "author@1");

    // The list starts on the current row; arrow keys move; Escape cancels and changes nothing.
    b.press(ENTER).await;
    b.wait_for_text("dialog[open] .pick-list", "Ada Lovelace")
        .await;
    b.wait_until(
        "the current row to be active",
        "const s = document.querySelector('dialog[open] [role=option][aria-selected=true]');
         return s && s.textContent.includes('Grace Hopper');",
    )
    .await;
    // Sorted by name: Ada, Edsger, Grace.
    b.press(&format!("{ARROW_UP}{ARROW_UP}{ARROW_DOWN}")).await;
    b.wait_until(
        "the second option to be active",
        "const s = document.querySelector('dialog[open] [role=option][aria-selected=true]');
         return s && s.textContent.includes('Edsger Dijkstra');",
    )
    .await;
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;
    assert_eq!(row(&app, "books", 1).await["author"], 2);

    // Clear sets NULL (the field is not required).
    b.press(ENTER).await;
    b.click("#pick-clear").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text(first, "NULL").await;
    assert_eq!(row(&app, "books", 1).await["author"], Value::Null);

    // The Add row form has the same picker for its reference. With more authors than one
    // batch, More fetches the next ones.
    for i in 1..=22 {
        insert(
            &app,
            "authors",
            json!({"name": format!("Zz author {i:02}")}),
        )
        .await;
    }
    b.click("#add-row").await;
    b.fill("#row-form input[name=title]", "Go To").await;
    b.click("#row-form button[data-pick=author]").await;
    b.wait_for_text("dialog[open] .pick-status", "25 matching rows")
        .await;
    let options = "return document.querySelectorAll('dialog[open] [role=option]').length;";
    assert_eq!(b.execute(options, json!([])).await, json!(20));
    b.click("#pick-more").await;
    b.wait_until(
        "the next batch",
        "return document.querySelectorAll('dialog[open] [role=option]').length === 25;",
    )
    .await;
    b.wait_gone("#pick-more:not([hidden])").await;
    b.press("dijk").await;
    b.wait_until(
        "the search to leave Dijkstra",
        "const items = document.querySelectorAll('dialog[open] [role=option]');
         return items.length === 1 && items[0].textContent.includes('Dijkstra');",
    )
    .await;
    b.press(ENTER).await;
    b.wait_for_text("#row-form .ref-picked", "Edsger Dijkstra")
        .await;
    let value = b
        .find("#row-form input[name=author]")
        .await
        .property("value")
        .await;
    assert_eq!(value, "3");
    b.click("dialog[open] button[type=submit]").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text(
        "#rows tbody tr[data-id='5'] td[data-col=author] .ref-label",
        "Edsger Dijkstra",
    )
    .await;
    assert_eq!(row(&app, "books", 5).await["author"], 3);
    b.finish().await;
}

#[tokio::test]
async fn the_header_stays_while_rows_scroll_and_arrow_keys_move_the_focus() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "items", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "qty", "type": "integer"}
    ]}))
    .await;
    for i in 1..=40 {
        insert(
            &app,
            "items",
            json!({"title": format!("item {i:02}"), "qty": i}),
        )
        .await;
    }
    let b = Browser::start("grid_keyboard").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/items", app.base)).await;
    b.wait_for_text("#rows tbody", "item 40").await;

    // Sticky header: scrolling the rows leaves the column heads where they are.
    let before = b
        .execute(
            "const s = document.getElementById('grid-scroll');
             return {head: document.querySelector('#rows thead th').getBoundingClientRect().top,
                     row: document.querySelector('#rows tbody tr').getBoundingClientRect().top,
                     scrollable: s.scrollHeight > s.clientHeight};",
            json!([]),
        )
        .await;
    assert_eq!(before["scrollable"], true, "{before}");
    b.execute(
        "document.getElementById('grid-scroll').scrollTop = 600;",
        json!([]),
    )
    .await;
    let after = b
        .execute(
            "return {head: document.querySelector('#rows thead th').getBoundingClientRect().top,
                     row: document.querySelector('#rows tbody tr').getBoundingClientRect().top};",
            json!([]),
        )
        .await;
    assert_eq!(after["head"], before["head"], "{before} {after}");
    assert_ne!(
        after["row"], before["row"],
        "the rows scrolled: {before} {after}"
    );
    b.screenshot_as("grid_sticky_header").await;
    b.execute(
        "document.getElementById('grid-scroll').scrollTop = 0;",
        json!([]),
    )
    .await;

    // One Tab stop in the grid.
    let stops = b
        .execute(
            "return document.querySelectorAll('#rows [tabindex=\"0\"]').length;",
            json!([]),
        )
        .await;
    assert_eq!(stops, json!(1));

    b.click("#rows tbody tr[data-id='1'] td[data-col=title]")
        .await;
    assert_eq!(focused(&b).await, "title@1");
    b.press(ARROW_DOWN).await;
    assert_eq!(focused(&b).await, "title@2");
    b.press(ARROW_RIGHT).await;
    assert_eq!(focused(&b).await, "qty@2");
    b.press(ARROW_UP).await;
    assert_eq!(focused(&b).await, "qty@1");
    b.press(PAGE_DOWN).await;
    assert_eq!(focused(&b).await, "qty@11");
    b.press(HOME).await;
    assert_eq!(focused(&b).await, "Select row 11");
    b.press(END).await;
    assert_eq!(focused(&b).await, "Delete row 11");
    b.press(HOME).await;
    b.press(ARROW_RIGHT).await;
    b.press(ARROW_RIGHT).await;
    assert_eq!(focused(&b).await, "title@11");
    // Up into the head row: the sort buttons.
    for _ in 0..11 {
        b.press(ARROW_UP).await;
    }
    assert_eq!(focused(&b).await, "Sort by title");
    b.press(ARROW_DOWN).await;
    assert_eq!(focused(&b).await, "title@1");
    // The focused row is scrolled into view below the sticky heads, not under them.
    let clear = b
        .execute(
            "return document.activeElement.getBoundingClientRect().top >=
                    document.querySelector('#rows thead').getBoundingClientRect().bottom - 1;",
            json!([]),
        )
        .await;
    assert_eq!(clear, true);

    // Enter edits; Escape leaves the editor with the focus on the cell again.
    b.press(ENTER).await;
    b.wait_for("#rows td.editing input").await;
    b.press(ESCAPE).await;
    b.wait_gone("#rows td.editing").await;
    assert_eq!(focused(&b).await, "title@1");
    // The Tab stop follows the focus, and Tab leaves the grid.
    let stop = b
        .execute(
            "const s = document.querySelectorAll('#rows [tabindex=\"0\"]');
             return s.length === 1 && s[0] === document.activeElement;",
            json!([]),
        )
        .await;
    assert_eq!(stop, true);
    b.press(TAB).await;
    let inside = b
        .execute(
            "return document.getElementById('rows').contains(document.activeElement);",
            json!([]),
        )
        .await;
    assert_eq!(inside, false, "Tab leaves the grid: {}", focused(&b).await);

    // Deleting a row from the keyboard puts the focus back on the grid, on the next row.
    b.click("#rows tbody tr[data-id='1'] td[data-col=title]")
        .await;
    b.press(END).await;
    assert_eq!(focused(&b).await, "Delete row 1");
    b.press(ENTER).await;
    b.click("dialog[open] .btn-danger").await;
    b.wait_gone("#rows tbody tr[data-id='1']").await;
    b.wait_until(
        "the focus back in the grid",
        "return document.activeElement && document.activeElement.getAttribute('aria-label') === 'Delete row 2';",
    )
    .await;
    b.finish().await;
}

#[tokio::test]
async fn two_filters_and_two_sorts_give_the_right_rows_in_order() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "tasks", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "priority", "type": "integer"},
        {"name": "done", "type": "boolean", "required": true, "default": false}
    ]}))
    .await;
    for (title, priority, done) in [
        ("write docs", 2, false),
        ("fix bug", 3, false),
        ("answer mail", 1, false),
        ("deploy", 3, true),
        ("review", 2, false),
        ("backup", 3, false),
        ("lunch", 2, true),
        ("idle", 1, true),
    ] {
        insert(
            &app,
            "tasks",
            json!({"title": title, "priority": priority, "done": done}),
        )
        .await;
    }
    let b = Browser::start("grid_filters_sorts").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/tasks", app.base)).await;
    b.wait_for_text(".grid-footer", "of 8 rows").await;

    // Two conditions, all must hold: not done, priority ≥ 2.
    choose(&b, "#filter-field", "done").await;
    choose(&b, "#filter-op", "eq").await;
    b.fill("#filter-value", "false").await;
    b.click("#add-condition").await;
    choose(&b, "#filter-field-2", "priority").await;
    choose(&b, "#filter-op-2", "ge").await;
    b.fill("#filter-value-2", "2").await;
    b.press(ENTER).await;
    b.wait_for_text(".grid-footer", "of 4 rows").await;

    // Priority descending, then title ascending (Shift adds the second key).
    b.click("#rows th button[aria-label='Sort by priority']")
        .await;
    b.wait_for("#rows th[data-col=priority][aria-sort=ascending]")
        .await;
    b.click("#rows th button[aria-label='Sort by priority']")
        .await;
    b.wait_for("#rows th[data-col=priority][aria-sort=descending]")
        .await;
    b.find("#rows th button[aria-label='Sort by title']")
        .await
        .type_text(&format!("{SHIFT}{ENTER}"))
        .await;
    b.wait_for("#rows th[data-col=title][aria-sort=other]")
        .await;
    b.wait_for_text("#sort-info", "priority ↓, then title ↑")
        .await;
    let titles = b
        .execute(
            "return [...document.querySelectorAll('#rows tbody td[data-col=title]')].map((td) => td.textContent);",
            json!([]),
        )
        .await;
    assert_eq!(
        titles,
        json!(["backup", "fix bug", "review", "write docs"]),
        "done rows and priority 1 are filtered out; ties on priority are ordered by title"
    );
    b.screenshot_as("grid_filters_sorts_applied").await;

    // "Any" instead of "all": not done, or priority ≥ 2 (only "idle" is neither).
    choose(&b, "#filter-join", "or").await;
    b.click("#apply-filter").await;
    b.wait_for_text(".grid-footer", "of 7 rows").await;
    // Removing a condition and clearing.
    b.click("button[aria-label='Remove condition 2']").await;
    b.click("#apply-filter").await;
    b.wait_for_text(".grid-footer", "of 5 rows").await;
    b.click("#clear-filter").await;
    b.wait_for_text(".grid-footer", "of 8 rows").await;
    b.click("#clear-sort").await;
    b.wait_for("#rows th[data-col=priority][aria-sort=none]")
        .await;
    b.finish().await;
}

#[tokio::test]
async fn designer_edits_survive_a_refresh_and_leaving_asks_first() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "customers", "fields": [
        {"name": "name", "type": "text", "required": true}
    ]}))
    .await;
    let b = Browser::start("designer_restore").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/customers/schema", app.base))
        .await;
    b.wait_for(".field-row[data-field=name]").await;
    b.click("#add-field").await;
    b.fill(".field-row.new [data-role=name]", "phone").await;
    // A refresh or close would ask (the page cancels `beforeunload`).
    let unload = "const e = new Event('beforeunload', {cancelable: true});
                  window.dispatchEvent(e); return e.defaultPrevented;";
    assert_eq!(b.execute(unload, json!([])).await, true);

    // A refresh keeps the pending field.
    b.refresh().await;
    b.wait_for_text("#designer-notice", "Unsaved changes restored")
        .await;
    let name = b
        .find(".field-row.new [data-role=name]")
        .await
        .property("value")
        .await;
    assert_eq!(name, "phone");
    b.screenshot_as("designer_restored").await;

    // Leaving in the app asks first; saying no stays.
    b.execute(
        "window.confirm = (q) => { window.__asked = q; return false; };",
        json!([]),
    )
    .await;
    b.click("#tab-data").await;
    let asked = b
        .wait_until("the leave question", "return window.__asked;")
        .await;
    assert!(
        asked.as_str().is_some_and(|q| q.contains("not applied")),
        "{asked}"
    );
    assert!(b.current_url().await.ends_with("/schema"));
    b.wait_for(".field-row.new").await;

    // Review shows it, Apply applies it, and nothing is pending (or stashed) afterwards.
    b.click("#review-changes").await;
    b.wait_for_text("#plan-preview", "phone").await;
    b.click("#apply-changes").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for(".field-row[data-field=phone]").await;
    b.wait_gone(".field-row.new").await;
    let (_, def) = app.send(app.admin(Method::GET, "/tables/customers")).await;
    let names: Vec<&str> = def["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["name", "phone"]);
    assert_eq!(
        b.execute(unload, json!([])).await,
        false,
        "nothing to lose after applying"
    );
    b.refresh().await;
    b.wait_for(".field-row[data-field=phone]").await;
    assert!(
        b.try_find("#designer-notice .notice").await.is_none(),
        "nothing to restore after applying"
    );

    // Edits made against a version that changed elsewhere: the notice says so; keep them,
    // and they apply to the current version.
    b.click("#add-field").await;
    b.fill(".field-row.new [data-role=name]", "city").await;
    let (status, def) = app.send(app.admin(Method::GET, "/tables/customers")).await;
    assert_eq!(status, 200);
    let mut table = def.clone();
    table["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "vip", "type": "boolean"}));
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/customers")
                .header("If-Match", format!("\"{}\"", def["version"]))
                .json(&json!({"table": table})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    b.refresh().await;
    b.wait_for_text("#designer-notice", "changed elsewhere")
        .await;
    b.wait_for(".field-row[data-field=vip]").await;
    b.click("#keep-restored").await;
    b.click("#review-changes").await;
    let plan = b.wait_for_text("#plan-preview", "city").await.text().await;
    assert!(
        !plan.contains("vip"),
        "the other change is kept, not undone: {plan}"
    );
    b.click("#apply-changes").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for(".field-row[data-field=city]").await;
    let (_, def) = app.send(app.admin(Method::GET, "/tables/customers")).await;
    let names: Vec<&str> = def["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["name", "phone", "vip", "city"]);

    // Discard drops restored edits.
    b.click("#add-field").await;
    b.fill(".field-row.new [data-role=name]", "zip").await;
    b.refresh().await;
    b.click("#discard-restored").await;
    b.wait_gone(".field-row.new").await;
    b.refresh().await;
    b.wait_for(".field-row[data-field=city]").await;
    assert!(b.try_find(".field-row.new").await.is_none());
    b.finish().await;
}

#[tokio::test]
async fn a_dialog_closes_on_back() {
    let app = library_app().await;
    let b = Browser::start("dialog_closes_on_back").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables", app.base)).await;
    b.wait_for(".card[data-table=books]").await;
    b.execute("location.hash = '#/tables/books';", json!([]))
        .await;
    b.wait_for("#add-row").await;
    b.click("#add-row").await;
    b.wait_for("dialog[open] #row-form").await;
    b.execute("history.back();", json!([])).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for(".card[data-table=books]").await;
    assert!(b.current_url().await.ends_with("#/tables"));
    // A nested dialog (the picker over the Add row form) closes with it.
    b.execute("location.hash = '#/tables/books';", json!([]))
        .await;
    b.click("#add-row").await;
    b.click("#row-form button[data-pick=author]").await;
    b.wait_for("dialog[open] .pick-search").await;
    b.execute("history.back();", json!([])).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for(".card[data-table=books]").await;
    b.finish().await;
}

/// Tabs (or, `back`, Shift+Tabs) through the page from the element `start` (a script that
/// returns it) and returns what got the focus, in order, until the focus leaves the page or
/// comes round again. Every element visited is numbered once (`data-walk`), so two walks can be
/// compared. Fails when a key press leaves the focus where it was (trapped).
async fn tab_walk(b: &Browser, back: bool, start: &str) -> Vec<String> {
    let name = "const a = document.activeElement;
         if (!a || a === document.body || a === document.documentElement) return '';
         if (!a.dataset.walk) a.dataset.walk = String(document.querySelectorAll('[data-walk]').length + 1);
         const name = a.getAttribute('aria-label') || a.id || (a.textContent || '').trim().slice(0, 24) || a.tagName;
         return a.dataset.walk + ' ' + name + (a.closest('#rows') ? ' [grid]' : '');";
    b.execute(&format!("({start}).focus();"), json!([])).await;
    let first = b.execute(name, json!([])).await;
    let mut seen: Vec<String> = vec![first.as_str().unwrap_or_default().to_string()];
    // A key action, not keys sent to the focused element: that fails on a file input (the
    // settings' project import).
    let actions = if back {
        json!([{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": SHIFT}, {"type": "keyDown", "value": TAB},
            {"type": "keyUp", "value": TAB}, {"type": "keyUp", "value": SHIFT}]}])
    } else {
        json!([{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": TAB}, {"type": "keyUp", "value": TAB}]}])
    };
    for _ in 0..600 {
        b.perform(actions.clone()).await;
        let id = b
            .execute(name, json!([]))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string();
        if id.is_empty() || seen.contains(&id) && seen.last() != Some(&id) {
            return seen;
        }
        if seen.last() == Some(&id) {
            b.fail(&format!("the focus is trapped on {id}")).await;
        }
        seen.push(id);
    }
    b.fail("tabbing never left the page").await;
}

#[tokio::test]
async fn tab_and_shift_tab_pass_through_the_grid_the_designer_and_settings() {
    let app = library_app().await;
    insert(&app, "books", json!({"title": "Notes", "author": 1})).await;
    insert(&app, "books", json!({"title": "Compilers", "author": 2})).await;
    let b = Browser::start("grid_focus_walk").await;
    b.sign_in(&app.base).await;
    for (hash, ready) in [
        ("#/tables/books", "#rows tbody tr[data-id='2']"),
        ("#/tables/books/schema", ".field-row[data-field=author]"),
        ("#/settings", "main h1"),
    ] {
        b.goto(&format!("{}/_/{hash}", app.base)).await;
        b.wait_for(ready).await;
        let forward = tab_walk(&b, false, "document.querySelector('.skip-link')").await;
        let last = forward.last().cloned().unwrap_or_default();
        let number = last.split(' ').next().unwrap_or_default().to_string();
        let mut backward = tab_walk(
            &b,
            true,
            &format!("document.querySelector('[data-walk=\"{number}\"]')"),
        )
        .await;
        assert!(forward.len() > 5, "{hash}: {forward:?}");
        // Every stop is reached both ways, in reverse order.
        backward.reverse();
        assert_eq!(forward, backward, "{hash}");
        let in_grid = forward.iter().filter(|s| s.ends_with("[grid]")).count();
        if hash == "#/tables/books" {
            assert_eq!(in_grid, 1, "the grid is one Tab stop: {forward:?}");
            assert!(
                forward.iter().any(|s| s.contains("Filter value"))
                    && forward.iter().any(|s| s.contains("add-row")),
                "{forward:?}"
            );
        }
    }
    b.finish().await;
}
