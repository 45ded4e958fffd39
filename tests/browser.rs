//! The editor in a real headless Chromium against a real Sluice and Postgres. Each test ends
//! with a screenshot in `<target dir>/screenshots/<test>.png`. These tests fail, never skip,
//! when Chromium or chromedriver is missing.

mod common;

use common::browser::{Browser, ENTER, ESCAPE, SELECT_ALL, SETUP_TOKEN, spawn_first_run_app};
use common::{example, spawn_app};
use serde_json::json;

/// Signs in through the login form of a fresh browser.
#[tokio::test]
async fn a_first_run_creates_the_admin_then_signs_out_and_in_again() {
    let app = spawn_first_run_app().await;
    let b = Browser::start("setup_and_login").await;
    // Without the link from the log, the page only says where to find it.
    b.goto(&format!("{}/_/", app.base)).await;
    b.wait_for_text("h1", "Welcome to Sluice").await;
    b.wait_for_text(".lead", "setup link").await;
    assert!(b.try_find("input[name=password]").await.is_none());
    b.screenshot_as("setup_needs_the_link").await;
    b.goto(&format!("{}/_/setup?token={SETUP_TOKEN}", app.base))
        .await;
    b.wait_for("input[name=password]").await;
    b.screenshot_as("setup_page").await;
    // A too-short password is refused by the server with the field named.
    b.fill("input[name=email]", "owner@example.com").await;
    b.fill("input[name=password]", "short").await;
    b.click("form.auth-form button[type=submit]").await;
    b.wait_for_text(".error-box", "/password").await;
    b.fill("input[name=password]", "a long enough password")
        .await;
    b.click("form.auth-form button[type=submit]").await;
    b.wait_for_text(".account-email", "owner@example.com").await;
    b.wait_for(".nav-link.active[href='#/tables']").await;
    // The spent token is gone from the address bar.
    let url = b.current_url().await;
    assert!(!url.contains("token"), "{url}");
    // Setup is closed now, for everyone, even with the token.
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/setup", app.base))
                .json(&json!({"email": "late@example.com", "password": "another password", "token": SETUP_TOKEN})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "setup.done");

    b.click(".account button").await;
    b.wait_for_text("h1", "Sign in").await;
    b.fill("input[name=email]", "owner@example.com").await;
    b.fill("input[name=password]", "wrong password").await;
    b.click("form.auth-form button[type=submit]").await;
    b.wait_for_text(".error-box", "email or password is wrong")
        .await;
    b.screenshot_as("login_page").await;
    b.fill("input[name=password]", "a long enough password")
        .await;
    b.click("form.auth-form button[type=submit]").await;
    b.wait_for_text(".account-email", "owner@example.com").await;
    // The session survives a reload: the cookie is in Postgres, not in the page.
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.wait_for(".nav-link.active[href='#/settings']").await;
    b.finish().await;
}

/// Clicks the submit button of the open dialog.
async fn submit_dialog(b: &Browser) {
    b.click("dialog[open] button[type=submit]").await;
}

/// Sets a `<select>` (found by CSS, the last match) to `value` as a person would.
async fn choose(b: &Browser, css: &str, value: &str) {
    b.execute(
        "const all = document.querySelectorAll(arguments[0]); const s = all[all.length - 1];
         s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([css, value]),
    )
    .await;
}

#[tokio::test]
async fn a_new_table_gets_a_field_after_its_plan_is_previewed() {
    let app = spawn_app().await;
    let b = Browser::start("table_designer").await;
    b.sign_in(&app.base).await;
    b.wait_for_text(".table-list", "No tables yet").await;
    b.click("#new-table").await;
    b.fill("dialog[open] input[name=table_name]", "customers")
        .await;
    submit_dialog(&b).await;
    b.wait_for("#add-field").await;
    b.wait_for_text(".fields", "created_at").await;

    b.click("#add-field").await;
    b.fill(".field-row.new [data-role=name]", "email").await;
    choose(&b, ".field-row.new [data-role=type]", "email").await;
    b.click("#add-field").await;
    b.fill(".field-row.new:last-child [data-role=name]", "full_name")
        .await;
    b.click("#review-changes").await;
    // The plan shows each step with its SQL before anything is applied.
    let plan = b.wait_for_text("#plan-preview", "ALTER TABLE").await;
    let text = plan.text().await;
    assert!(text.contains("email"), "{text}");
    assert!(text.contains("full_name"), "{text}");
    let (_, def) = app
        .send(app.admin(reqwest::Method::GET, "/tables/customers"))
        .await;
    assert_eq!(def["fields"], json!([]), "previewing changes nothing");
    b.screenshot_as("table_designer_plan").await;
    b.click("#apply-changes").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for("#add-field").await;
    let (_, def) = app
        .send(app.admin(reqwest::Method::GET, "/tables/customers"))
        .await;
    let fields: Vec<(String, String)> = def["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_string(),
                f["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("email".to_string(), "email".to_string()),
            ("full_name".to_string(), "text".to_string())
        ]
    );
    b.wait_for(".field-row[data-field=full_name]").await;

    // Rename one field and retype another: the data stays, the plan says how.
    app.send(
        app.admin(reqwest::Method::POST, "/tables/customers/rows")
            .json(&json!({"email": "ada@example.com", "full_name": "Ada"})),
    )
    .await;
    b.fill(
        ".field-row[data-field=full_name] [data-role=name]",
        "display_name",
    )
    .await;
    choose(&b, ".field-row[data-field=email] [data-role=type]", "text").await;
    // Ctrl+S opens the review, like the button.
    b.click(".field-row[data-field=display_name] [data-role=name]")
        .await;
    b.press("\u{E009}s\u{E000}").await;
    let plan = b.wait_for_text("#plan-preview", "RENAME COLUMN").await;
    // email → text keeps the column and drops the email check.
    assert!(
        plan.text().await.contains("DROP CONSTRAINT"),
        "{}",
        plan.text().await
    );
    b.click("#apply-changes").await;
    b.wait_gone("dialog[open]").await;
    b.wait_for(".field-row[data-field=display_name]").await;
    let (_, rows) = app
        .send(app.admin(reqwest::Method::GET, "/tables/customers/rows"))
        .await;
    assert_eq!(rows["rows"][0]["display_name"], "Ada", "{rows}");
    assert_eq!(rows["rows"][0]["email"], "ada@example.com", "{rows}");
    // After applying, nothing is pending.
    b.wait_gone(".field-row.changed, .field-row.new").await;
    b.screenshot_as("table_designer_applied").await;
    // Each applied change is in the table's history with its SQL.
    b.click("#tab-history").await;
    b.wait_for_text("#history", "rename field customers.full_name")
        .await;
    b.wait_for_text("#history", "add field customers.email")
        .await;
    b.screenshot_as("table_history").await;
    b.click(".crumbs a").await;
    b.wait_for(".card[data-table=customers]").await;
    b.finish().await;
}

#[tokio::test]
async fn rows_are_inserted_and_edited_in_the_grid() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "todos", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "done", "type": "boolean", "required": true, "default": false},
        {"name": "priority", "type": "integer"}
    ]}))
    .await;
    let b = Browser::start("data_grid").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/todos", app.base)).await;
    b.wait_for_text("#rows", "No rows yet").await;

    b.click("#add-row").await;
    b.fill("#row-form input[name=title]", "buy milk").await;
    b.fill("#row-form input[name=priority]", "not a number")
        .await;
    submit_dialog(&b).await;
    b.wait_for_text("dialog[open] .error-box", "/priority")
        .await;
    b.fill("#row-form input[name=priority]", "2").await;
    submit_dialog(&b).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text("#rows tbody", "buy milk").await;

    // Inline edit: focus the cell, Enter opens the editor, Enter saves.
    b.click("#rows tbody td[data-col=title]").await;
    b.press(ENTER).await;
    b.wait_for("#rows td.editing input").await;
    b.press(&format!("{SELECT_ALL}buy oat milk")).await;
    b.press(ENTER).await;
    b.wait_for_text("#rows tbody td[data-col=title]", "buy oat milk")
        .await;
    // Escape cancels an edit without saving.
    b.click("#rows tbody td[data-col=priority]").await;
    b.press(ENTER).await;
    b.wait_for("#rows td.editing input").await;
    b.press(&format!("{SELECT_ALL}99")).await;
    b.press(ESCAPE).await;
    b.wait_gone("#rows td.editing").await;

    let (_, rows) = app
        .send(app.admin(reqwest::Method::GET, "/tables/todos/rows"))
        .await;
    assert_eq!(rows["rows"].as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows["rows"][0]["title"], "buy oat milk");
    assert_eq!(rows["rows"][0]["priority"], 2);
    assert_eq!(rows["rows"][0]["done"], false);

    // Sorting and filtering go through the server.
    for title in ["alpha", "zulu"] {
        app.send(
            app.admin(reqwest::Method::POST, "/tables/todos/rows")
                .json(&json!({"title": title, "priority": 1})),
        )
        .await;
    }
    b.refresh().await;
    b.wait_for_text("#rows tbody", "zulu").await;
    b.click("#rows th button[aria-label='Sort by title']").await;
    b.wait_for_text("#rows tbody tr:first-child td[data-col=title]", "alpha")
        .await;
    b.click("#rows th button[aria-label='Sort by title']").await;
    b.wait_for_text("#rows tbody tr:first-child td[data-col=title]", "zulu")
        .await;
    choose(&b, "#filter-field", "title").await;
    choose(&b, "#filter-op", "contains").await;
    b.fill("#filter-value", "milk").await;
    b.press(ENTER).await;
    b.wait_for_text(".grid-footer", "of 1 row").await;
    b.wait_for_text("#rows tbody", "buy oat milk").await;
    b.screenshot_as("data_grid_filtered").await;
    // Select what the filter shows and delete it in one go.
    b.click("#select-all").await;
    b.wait_for_text("#delete-selected", "Delete 1 selected")
        .await;
    b.click("#delete-selected").await;
    b.click("dialog[open] .btn-danger").await;
    b.wait_for_text("#rows", "No rows match the filter").await;
    let (_, rows) = app
        .send(app.admin(reqwest::Method::GET, "/tables/todos/rows?sort=title"))
        .await;
    let titles: Vec<&str> = rows["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["title"].as_str())
        .collect();
    assert_eq!(titles, ["alpha", "zulu"]);
    b.finish().await;
}

#[tokio::test]
async fn a_csv_import_reports_the_rows_it_rejected() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "people", "fields": [
        {"name": "name", "type": "text", "required": true},
        {"name": "age", "type": "integer"}
    ]}))
    .await;
    let csv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("people-{}.csv", std::process::id()));
    std::fs::write(&csv, "name,age\nAda,36\nBob,not a number\nCy,40\n").expect("write csv");
    let b = Browser::start("csv_import").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/people", app.base)).await;
    b.wait_for_text("#rows", "No rows yet").await;
    b.click("#import-csv").await;
    b.find("#csv-file")
        .await
        .type_text(&csv.display().to_string())
        .await;
    b.click("#start-import").await;
    let report = b.wait_for_text("#import-report", "2 rows imported").await;
    assert!(report.text().await.contains("1 rejected"));
    let errors = b.wait_for("#import-errors").await.text().await;
    assert!(errors.contains("age"), "{errors}");
    assert!(errors.contains("whole number"), "{errors}");
    assert!(errors.contains('3'), "the line of Bob's row: {errors}");
    b.screenshot_as("csv_import_report").await;
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text("#rows tbody", "Cy").await;
    let body = b.find("#rows tbody").await.text().await;
    assert!(body.contains("Ada") && !body.contains("Bob"), "{body}");
    // Export: the button's download is the CSV of what was imported. The page fetches it
    // the way the button does (headless Chromium keeps downloads out of reach).
    b.click("#export-csv").await;
    let csv_text = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/_/api/v1/tables/people/export', {credentials: 'same-origin'})
               .then((r) => r.text()).then(done, (e) => done(String(e)));",
            json!([]),
        )
        .await;
    let csv_text = csv_text.as_str().unwrap_or_default();
    assert!(
        csv_text.starts_with("id,created_at,updated_at,name,age\n"),
        "{csv_text}"
    );
    assert!(
        csv_text.contains(",Ada,36\n") && csv_text.contains(",Cy,40\n"),
        "{csv_text}"
    );
    b.finish().await;
    let _ = std::fs::remove_file(&csv);
}

#[tokio::test]
async fn a_secret_value_never_reaches_the_page() {
    let app = spawn_app().await;
    let secret = "sk_live_do_not_show_4f9a2c";
    let b = Browser::start("secrets").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.click("#add-env").await;
    b.fill("dialog[open] input[name=env_name]", "STRIPE_KEY")
        .await;
    b.fill("dialog[open] textarea[name=env_value]", secret)
        .await;
    submit_dialog(&b).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text("#env-list", "STRIPE_KEY").await;
    b.wait_for_text("#env-list", "value hidden").await;
    // A plain value is shown; the secret is not, not even in the DOM.
    b.click("#add-env").await;
    b.fill("dialog[open] input[name=env_name]", "PUBLIC_URL")
        .await;
    b.fill(
        "dialog[open] textarea[name=env_value]",
        "https://example.com",
    )
    .await;
    b.click("dialog[open] input[name=env_secret]").await;
    submit_dialog(&b).await;
    b.wait_for_text("#env-list", "https://example.com").await;
    assert!(!b.page_source().await.contains(secret));
    // Not after a reload either, and not when editing it.
    b.refresh().await;
    b.wait_for_text("#env-list", "STRIPE_KEY").await;
    b.click("#env-list li[data-name=STRIPE_KEY] button.btn")
        .await;
    b.wait_for("dialog[open] textarea[name=env_value]").await;
    let value = b
        .find("dialog[open] textarea[name=env_value]")
        .await
        .property("value")
        .await;
    assert_eq!(value, "", "the secret's field starts empty");
    assert!(!b.page_source().await.contains(secret));
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;
    // The flows can still read it: the value is on the server.
    let stored: String =
        sqlx::query_scalar("SELECT value FROM sluice.env WHERE name = 'STRIPE_KEY'")
            .fetch_one(&app.db)
            .await
            .expect("stored");
    assert_eq!(stored, secret);
    b.finish().await;
}

#[tokio::test]
async fn a_change_that_breaks_published_endpoints_names_them_and_can_be_forced() {
    let app = spawn_app().await;
    app.create_table(&json!({"name": "books", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "note", "type": "text"}
    ]}))
    .await;
    let (status, body) = app
        .send(
            app.admin(reqwest::Method::POST, "/tables/books/crud")
                .json(&json!({"publish": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let b = Browser::start("table_breaks_flows").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/books/schema", app.base))
        .await;
    b.click("button[aria-label='Drop note']").await;
    b.wait_for(".field-row.dropped").await;
    b.click("#review-changes").await;
    b.wait_for_text("#plan-preview", "DROP COLUMN").await;
    // The preview already names the endpoints that would break.
    b.wait_for_text("dialog[open] #breaks", "books_create")
        .await;
    b.click("#apply-changes").await;
    b.wait_for("#force-apply").await;
    b.wait_for_text("dialog[open] .breaks[role=alert]", "books_create")
        .await;
    let (_, def) = app
        .send(app.admin(reqwest::Method::GET, "/tables/books"))
        .await;
    assert_eq!(def["fields"].as_array().map(Vec::len), Some(2), "refused");
    b.screenshot_as("table_breaks_flows_refused").await;
    b.click("#force-apply").await;
    b.wait_gone("dialog[open]").await;
    b.wait_gone(".field-row[data-field=note]").await;
    let (_, def) = app
        .send(app.admin(reqwest::Method::GET, "/tables/books"))
        .await;
    assert_eq!(def["fields"].as_array().map(Vec::len), Some(1), "{def}");
    b.finish().await;
}

#[tokio::test]
async fn an_admin_api_token_is_shown_once_in_settings_and_revoked_there() {
    let app = spawn_app().await;
    let b = Browser::start("api_tokens").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.click("#add-token").await;
    b.fill("dialog[open] input[name=token_name]", "CI deploy")
        .await;
    submit_dialog(&b).await;
    let token = b.wait_for("dialog[open] .token-value").await.text().await;
    assert!(token.starts_with("sluice_at_"), "{token}");
    let tables = |t: &str| {
        app.client
            .get(format!("{}/_/api/v1/tables", app.base))
            .bearer_auth(t.to_string())
    };
    assert_eq!(app.send(tables(&token)).await.0, 200);
    b.screenshot_as("api_tokens_created").await;
    b.press(ESCAPE).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text("#token-list", "CI deploy").await;
    assert!(
        !b.page_source().await.contains(&token),
        "shown only once, in the dialog"
    );
    b.click("#token-list li button").await;
    b.click("dialog[open] .btn-danger").await;
    b.wait_for_text("#token-list", "No tokens").await;
    assert_eq!(app.send(tables(&token)).await.0, 401);
    b.finish().await;
}

#[tokio::test]
async fn an_api_group_with_cors_is_created_in_settings_and_serves_preflights() {
    let app = spawn_app().await;
    let b = Browser::start("api_groups").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.wait_for_text("#cors-list", "default").await;
    b.click("#add-group").await;
    // The dialog opens as a form; this test writes the group as JSON through its toggle.
    b.click("dialog[open] .fm-json-toggle").await;
    b.wait_for("dialog[open] textarea[name=group]").await;
    // A wrong origin is refused with the problem's place shown, and nothing is created.
    b.fill(
        "dialog[open] textarea[name=group]",
        r#"{"name": "shop", "base_path": "/shop/v1", "cors": {"allowed_origins": ["not an origin"]}}"#,
    )
    .await;
    submit_dialog(&b).await;
    b.wait_for_text("dialog[open] .error-box", "/cors/allowed_origins/0")
        .await;
    b.fill(
        "dialog[open] textarea[name=group]",
        r#"{"name": "shop", "base_path": "/shop/v1", "cors": {"allowed_origins": ["http://localhost:5173"]}}"#,
    )
    .await;
    submit_dialog(&b).await;
    b.wait_gone("dialog[open]").await;
    b.wait_for_text("#cors-list li[data-name=shop]", "/api/shop/v1/")
        .await;
    b.wait_for_text("#cors-list li[data-name=shop]", "http://localhost:5173")
        .await;

    // An endpoint in the group answers a preflight from that origin.
    let mut doc = example("todo/list_todos.flow.json");
    doc["endpoint"]["group"] = json!("shop");
    app.create_table(&example("todo/todos.table.json")).await;
    app.publish(&doc).await;
    let resp = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/shop/v1/todos", app.base),
        )
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("preflight");
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    b.finish().await;
}
