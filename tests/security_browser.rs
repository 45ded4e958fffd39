//! The editor takeover through one origin (issue 10, item 3), replayed in real headless
//! Chromium against a real Sluice and Postgres.
//!
//! Symptom: a builder's HTML endpoint that reflected a query parameter unescaped let a script,
//! opened in the signed-in editor's browser, read the CSRF token from `GET /_/api/v1/session`
//! and mint an admin API token with the editor's cookie. Cause: generated pages were served
//! with the editor's own origin. Fix: generated responses carry `Content-Security-Policy:
//! sandbox` without `allow-same-origin` (an opaque origin), and cookie requests that change
//! things must come from the editor's origin. On the code before the fix this test fails: the
//! script reads the session (`session:200`) and mints a token (`mint:201`).

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

async fn token_count(app: &TestApp) -> usize {
    let (status, body) = app.send(app.admin(Method::GET, "/api-tokens")).await;
    assert_eq!(status, 200, "{body}");
    body["tokens"].as_array().expect("tokens").len()
}

/// The attack: what the script could do, written into the page for the test to read.
const PAYLOAD: &str = r#"<script>
(async () => {
  const out = [];
  try { document.cookie; out.push('cookie-readable'); } catch (e) { out.push('cookie-denied'); }
  try {
    const s = await fetch('/_/api/v1/session', { credentials: 'include' });
    const j = await s.json();
    out.push('session:' + s.status);
    const m = await fetch('/_/api/v1/api-tokens', {
      method: 'POST', credentials: 'include',
      headers: { 'content-type': 'application/json', 'x-csrf-token': String(j.csrf_token) },
      body: JSON.stringify({ name: 'stolen' }),
    });
    out.push('mint:' + m.status);
  } catch (e) { out.push('fetch-blocked'); }
  try {
    // A blind simple request (no preflight): it may be sent, but must change nothing.
    await fetch('/_/api/v1/api-tokens', {
      method: 'POST', mode: 'no-cors', credentials: 'include',
      headers: { 'content-type': 'text/plain' }, body: '{"name":"blind"}',
    });
    out.push('blind-sent');
  } catch (e) { out.push('blind-blocked'); }
  document.body.setAttribute('data-result', out.join(' '));
})();
</script>"#;

/// The builder's mistake: a page that reflects a query parameter without escaping it.
fn reflecting_page(sandbox: bool) -> Value {
    let mut doc = json!({
        "format": "sluice.flow",
        "format_version": 1,
        "name": "hello_page",
        "endpoint": {"method": "GET", "path": "/hello"},
        "input": {"query": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "entry": "reply",
        "nodes": {"reply": {
            "type": "respond",
            "content_type": "html",
            "body": {"$rhai": "`<!doctype html><html><head><title>Hello</title></head><body><h1>Hello ${request.query.name}</h1></body></html>`"}
        }}
    });
    // The default is left out, as a builder's file would (and as before the setting existed).
    if !sandbox {
        doc["endpoint"]["sandbox"] = json!(false);
    }
    doc
}

/// Opens the page with the payload in the signed-in browser; returns what the script did.
async fn attack(b: &Browser, app: &TestApp) -> String {
    let name: String =
        percent_encoding::utf8_percent_encode(PAYLOAD, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    b.goto(&format!("{}/api/hello?name={name}", app.base)).await;
    let result = b
        .wait_until(
            "the injected script to finish",
            "return document.body && document.body.getAttribute('data-result');",
        )
        .await;
    result.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_script_injected_into_a_generated_page_cannot_take_over_the_signed_in_editor() {
    let app = spawn_app().await;
    app.publish(&reflecting_page(true)).await;
    let before = token_count(&app).await;

    let b = Browser::start("xss_editor_takeover").await;
    b.sign_in(&app.base).await;
    let result = attack(&b, &app).await;
    eprintln!("sandboxed page: {result}");
    // The script ran (the page still works), but in an opaque origin.
    assert!(result.contains("cookie-denied"), "{result}");
    let origin: Value = b.execute("return window.origin;", json!([])).await;
    assert_eq!(origin, "null");
    // It could not read the session (nor its CSRF token), and minted nothing.
    assert!(!result.contains("session:200"), "{result}");
    assert!(!result.contains("mint:"), "{result}");
    assert!(result.contains("fetch-blocked"), "{result}");
    assert_eq!(token_count(&app).await, before, "{result}");
    let (_, tokens) = app.send(app.admin(Method::GET, "/api-tokens")).await;
    assert_eq!(tokens["tokens"], json!([]), "{tokens}");
    b.screenshot_as("xss_editor_takeover_page").await;
    // The page's blocked requests are expected console errors; the editor's are not.
    let _ = b.console_errors().await;

    // The editor is still signed in and works.
    b.goto(&format!("{}/_/#/settings", app.base)).await;
    b.wait_for(".nav-link.active[href='#/settings']").await;
    b.finish().await;
}

/// The same attack on a page that opted out of the sandbox succeeds: the attack above is real,
/// and `"sandbox": false` really gives a page the editor's powers (as documented).
#[tokio::test]
async fn the_same_script_takes_over_the_editor_from_a_page_that_opted_out_of_the_sandbox() {
    let app = spawn_app().await;
    let id = app.publish(&reflecting_page(false)).await;
    let before = token_count(&app).await;
    let b = Browser::start("xss_unsandboxed_page").await;
    b.sign_in(&app.base).await;
    let result = attack(&b, &app).await;
    assert!(result.contains("session:200"), "{result}");
    assert!(result.contains("mint:201"), "{result}");
    assert_eq!(token_count(&app).await, before + 1, "{result}");
    // The editor shows the opt-out in the endpoint's settings.
    let _ = b.console_errors().await;
    b.goto(&format!("{}/_/#/flows/{id}", app.base)).await;
    let shown = b
        .wait_until(
            "the endpoint's sandbox setting",
            "const s = [...document.querySelectorAll('select')]
               .find((s) => s.querySelector('option[value=off]'));
             return s && s.value;",
        )
        .await;
    assert_eq!(shown, "off");
    b.screenshot_as("xss_unsandboxed_page_settings").await;
    b.finish().await;
}
