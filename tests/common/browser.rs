//! A small WebDriver client for browser tests: starts `chromedriver` on a free port with a
//! headless Chromium and a fresh profile, and drives it over the W3C WebDriver protocol with
//! reqwest. No crate of its own: the protocol is a handful of JSON requests.
//!
//! The browser and the driver are found at `SLUICE_CHROMEDRIVER` / `SLUICE_CHROMIUM`, else on
//! the usual Debian paths (`chromium-driver` and `chromium` packages). When either is missing
//! the test panics with a message that says what to install: browser tests never skip.
//!
//! Screenshots go to `target/screenshots/<test>.png` in the checkout, whatever
//! `CARGO_TARGET_DIR` says, so they are found in one place after any run.
//!
//! Accessibility: [`Browser::axe`] injects the vendored axe-core (`tests/fixtures/axe/`, test
//! tooling, never served by the editor) through WebDriver's execute, which runs outside the
//! page's Content-Security-Policy, so the editor's policy stays as strict as it ships.
//! [`Browser::assert_accessible`] fails on serious or critical violations.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `wait_*` helpers poll before failing the test. An upper bound, never a timing
/// that the test asserts.
pub const WAIT: Duration = Duration::from_secs(30);

/// The WebDriver key for Escape (W3C "Normalized key value" table).
pub const ESCAPE: &str = "\u{E00C}";
/// The WebDriver key for Enter.
pub const ENTER: &str = "\u{E007}";
/// Control+A (select all) then releasing the modifiers: typed before text, replaces the
/// focused field's content without `clear`, which would blur the field.
pub const SELECT_ALL: &str = "\u{E009}a\u{E000}";
/// The WebDriver key for Tab.
pub const TAB: &str = "\u{E004}";

const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,800",
];

fn find_program(env_var: &str, candidates: &[&str], package: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env_var) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{env_var} points at {}, which does not exist",
            p.display()
        );
        return p;
    }
    for c in candidates {
        let p = Path::new(c);
        if p.is_file() {
            return p.to_path_buf();
        }
        if !c.contains('/')
            && let Some(path) = std::env::var_os("PATH")
        {
            for dir in std::env::split_paths(&path) {
                let full = dir.join(c);
                if full.is_file() {
                    return full;
                }
            }
        }
    }
    panic!(
        "browser tests need {} (tried {:?}); install the Debian package `{package}` \
         (`apt-get install chromium chromium-driver`) or set {env_var}",
        candidates[0], candidates
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// The one-time setup token of [`spawn_first_run_app`] (`SLUICE_SETUP_TOKEN`).
pub const SETUP_TOKEN: &str = "test-setup-token-0123456789abcdef";

/// Starts the real server on port 0 against a fresh database with no editor account at all,
/// as a first run looks, with [`SETUP_TOKEN`] as its setup token. `token` is empty: nobody is
/// signed in.
pub async fn spawn_first_run_app() -> super::TestApp {
    let (url, db_name) = super::fresh_database().await;
    let mut config = sluice::config::Config::for_database(&url);
    config.setup_token = Some(sluice::config::Secret::new(SETUP_TOKEN));
    let app = sluice::startup::App::build(config)
        .await
        .expect("the app builds");
    let port = app.port();
    let db = app.state().db.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    super::TestApp {
        base: format!("http://127.0.0.1:{port}"),
        editor_base: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        token: String::new(),
        db,
        db_name,
        db_url: url,
    }
}

/// Where screenshots are written: `target/screenshots` in the checkout.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// axe-core, the accessibility rules engine (MPL-2.0), injected into pages under test. Read
/// from the checkout when first needed rather than compiled into every test binary.
fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/axe/axe.min.js");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("axe-core is vendored at {}: {e}", path.display()))
    })
}

/// One accessibility rule broken on the page, as axe-core reports it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule, e.g. `label`, `color-contrast`, `button-name`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    /// What the rule asks for, in one sentence.
    pub help: String,
    /// Deque's page about the rule.
    pub help_url: String,
    /// CSS selectors of the offending elements (at most ten).
    pub targets: Vec<String>,
    /// How to fix each of `targets`, as axe says it (same order).
    pub summaries: Vec<String>,
}

impl Violation {
    /// Serious and critical violations fail [`Browser::assert_accessible`].
    pub fn is_blocking(&self) -> bool {
        self.impact == "serious" || self.impact == "critical"
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "[{}] {}: {} ({})",
            self.impact, self.id, self.help, self.help_url
        )?;
        for (target, summary) in self.targets.iter().zip(&self.summaries) {
            // The first line of a summary says "Fix any/all of the following:"; the reasons follow.
            let why: Vec<&str> = summary.lines().skip(1).map(str::trim).collect();
            writeln!(f, "      {target}: {}", why.join("; "))?;
        }
        Ok(())
    }
}

/// One headless Chromium driven through its own chromedriver.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    port: u16,
    session_id: String,
    driver: Child,
    profile: PathBuf,
    name: String,
}

/// An element found on the page (a WebDriver element reference).
#[derive(Clone)]
pub struct Element {
    http: reqwest::Client,
    url: String,
    pub css: String,
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Value) -> Value {
    let mut req = http.request(method.clone(), url);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        panic!("WebDriver {method} {url} failed with {status}: {v}");
    }
    v.get("value").cloned().unwrap_or(Value::Null)
}

/// Like `call`, but a WebDriver error comes back as `Err(error name)` instead of a panic.
async fn try_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Value,
) -> Result<Value, String> {
    let mut req = http.request(method.clone(), url);
    if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
        req = req.json(&body);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("WebDriver {method} {url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string())
    }
}

fn element_id(v: &Value) -> Option<String> {
    // The reference is the only member of the object, under the W3C element key.
    v.as_object()?.values().next()?.as_str().map(str::to_string)
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (1280×800) with a fresh profile. `name`
    /// names the screenshot file; use the test's name.
    pub async fn start(name: &str) -> Browser {
        let driver_bin = find_program(
            "SLUICE_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "chromedriver"],
            "chromium-driver",
        );
        let chromium = find_program(
            "SLUICE_CHROMIUM",
            &[
                "/usr/bin/chromium",
                "chromium",
                "chromium-browser",
                "google-chrome",
            ],
            "chromium",
        );
        let port = free_port();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromedriver-{name}.log"));
        let mut driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!(
                    "chromedriver exited at start ({status}); see {}",
                    log.display()
                );
            }
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .map(|v| v["value"]["ready"] == true)
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = driver.kill();
                panic!("chromedriver did not become ready; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chromium-profile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 30000, "pageLoad": 30000, "implicit": 0},
        }}});
        let resp = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session");
        let v: Value = resp.json().await.expect("session JSON");
        let Some(session_id) = v["value"]["sessionId"].as_str().map(str::to_string) else {
            let _ = driver.kill();
            panic!(
                "Chromium did not start ({}): {v}; see {}",
                chromium.display(),
                log.display()
            );
        };
        Browser {
            session: format!("{base}/session/{session_id}"),
            http,
            port,
            session_id,
            driver,
            profile,
            name: name.to_string(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.session),
            Value::Null,
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.session),
            body,
        )
        .await
    }

    /// Opens a URL and waits for the document to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Reloads the page (a `goto` to the URL already shown only moves to its fragment).
    pub async fn refresh(&self) {
        self.post("/refresh", json!({})).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, if there is one now.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let v = try_call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/element", self.session),
            json!({"using": "css selector", "value": css}),
        )
        .await
        .ok()?;
        Some(Element {
            http: self.http.clone(),
            url: format!("{}/element/{}", self.session, element_id(&v)?),
            css: css.to_string(),
        })
    }

    /// The first element matching `css`; fails the test if there is none now.
    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(e) => e,
            None => self.fail(&format!("no element matches `{css}`")).await,
        }
    }

    /// Every element matching `css` now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(element_id)
                    .map(|id| Element {
                        http: self.http.clone(),
                        url: format!("{}/element/{id}", self.session),
                        css: css.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls until an element matching `css` is present and visible.
    pub async fn wait_for(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(e) = self.try_find(css).await {
                if e.is_displayed().await {
                    return e;
                }
                self.pan_to_node(css).await;
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("`{css}` did not appear within {WAIT:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Pans the flow canvas to the node holding the element matching `css` when it is outside
    /// the view, as a builder scrolls to a node before touching it (WebDriver's own scrolling
    /// does not reach into the canvas's transform). Nothing happens off the flow screen.
    async fn pan_to_node(&self, css: &str) {
        self.execute(
            "const e = document.querySelector(arguments[0]);
             const n = e && e.closest('.fl-node');
             if (n && n.dataset.id && window.sluiceFlow) window.sluiceFlow.canvas.reveal([n.dataset.id]);",
            json!([css]),
        )
        .await;
    }

    /// Polls until no visible element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let started = Instant::now();
        loop {
            let visible = match self.try_find(css).await {
                Some(e) => e.is_displayed().await,
                None => false,
            };
            if !visible {
                return;
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("`{css}` was still shown after {WAIT:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the text of the first element matching `css` contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(e) = self.try_find(css).await {
                last = e.try_text().await.unwrap_or_default();
                if last.contains(text) {
                    return e;
                }
            }
            if started.elapsed() > WAIT {
                self.fail(&format!(
                    "`{css}` did not show {text:?} within {WAIT:?}; it showed {last:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `script` (a function body that returns a value) returns something truthy,
    /// and returns that value. `what` names the condition in the failure message.
    pub async fn wait_until(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.execute(script, json!([])).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("waited {WAIT:?} for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await;
    }

    /// Sets the value of the field matching `css` at once (no typing) and fires its `input`
    /// event, as a paste would.
    pub async fn set_value(&self, css: &str, text: &str) {
        self.wait_for(css).await;
        self.execute(
            "const t = document.querySelector(arguments[0]); t.focus(); t.value = arguments[1];
             t.dispatchEvent(new Event('input', {bubbles: true}));",
            json!([css, text]),
        )
        .await;
    }

    /// Picks `value` in the first `<select>` matching `css`, as a person would (focus, then a
    /// `change` event); fails naming the options when it has no such one.
    pub async fn choose(&self, css: &str, value: &str) {
        self.wait_for(css).await;
        let ok = self
            .execute(
                "const s = document.querySelector(arguments[0]);
                 if (![...s.options].some(o => o.value === arguments[1])) return [...s.options].map(o => o.value);
                 s.focus(); s.value = arguments[1]; s.dispatchEvent(new Event('change', {bubbles: true})); return true;",
                json!([css, value]),
            )
            .await;
        if ok != json!(true) {
            self.fail(&format!("`{css}` has no option {value:?}; it has {ok}"))
                .await;
        }
    }

    /// Clears the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.wait_for(css).await;
        e.clear().await;
        e.type_text(text).await;
    }

    /// Sends keys (text or the key constants above) to the focused element.
    pub async fn press(&self, keys: &str) {
        let v = self.get("/element/active").await;
        let id = element_id(&v).expect("an active element");
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/element/{id}/value", self.session),
            json!({ "text": keys }),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs an async `script`: its last argument is the callback to call with the result.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// Performs W3C WebDriver input actions (pointer drags, key chords) as one sequence.
    pub async fn perform(&self, actions: Value) {
        self.post("/actions", json!({ "actions": actions })).await;
    }

    /// The whole page's HTML as the browser has it now (after scripts ran).
    pub async fn page_source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Messages the page logged to the console at level SEVERE (uncaught errors, failed
    /// loads), since the last call.
    pub async fn console_errors(&self) -> Vec<String> {
        let v = try_call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/se/log", self.session),
            json!({"type": "browser"}),
        )
        .await
        .unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Errors the page's scripts raised (uncaught exceptions, `console.error`), leaving out
    /// the browser's own lines about HTTP error statuses, which are expected answers.
    pub async fn script_errors(&self) -> Vec<String> {
        self.console_errors()
            .await
            .into_iter()
            .filter(|m| !m.contains("Failed to load resource"))
            .collect()
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self) -> PathBuf {
        self.screenshot_as(&self.name.clone()).await
    }

    /// Saves a PNG of the viewport to `target/screenshots/<file>.png`.
    pub async fn screenshot_as(&self, file: &str) -> PathBuf {
        use base64::Engine as _;
        let v = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{file}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Resizes the window so that the page's viewport is `width` × `height` CSS pixels
    /// (`--window-size` sets the outer window, browser frame included).
    pub async fn set_viewport(&self, width: i64, height: i64) {
        for _ in 0..3 {
            let inner = self
                .execute("return [window.innerWidth, window.innerHeight];", json!([]))
                .await;
            let (iw, ih) = (
                inner[0].as_i64().unwrap_or(0),
                inner[1].as_i64().unwrap_or(0),
            );
            if (iw, ih) == (width, height) {
                return;
            }
            let rect = self.get("/window/rect").await;
            let (ow, oh) = (
                rect["width"].as_i64().unwrap_or(width),
                rect["height"].as_i64().unwrap_or(height),
            );
            self.post(
                "/window/rect",
                json!({"width": ow + width - iw, "height": oh + height - ih}),
            )
            .await;
        }
    }

    /// Saves a PNG of the viewport (1280×800 after `set_viewport(1280, 800)`) to `path` (relative paths are taken from the
    /// checkout), creating its folder. Used for the screenshots in `docs/img/`.
    pub async fn screenshot_to(&self, path: &str) -> PathBuf {
        use base64::Engine as _;
        let v = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Runs axe-core on the page and returns every violation (all impacts). `context` is a
    /// CSS selector of the part to check, or `""` for the whole document. axe is injected
    /// on first use per page load, through WebDriver (outside the page's CSP).
    pub async fn axe(&self, context: &str) -> Vec<Violation> {
        let loaded = self
            .execute("return typeof window.axe === 'object';", json!([]))
            .await;
        if loaded != true {
            let script = format!("{}\n;return typeof window.axe === 'object';", axe_source());
            let ok = self.execute(&script, json!([])).await;
            assert_eq!(ok, true, "axe-core did not load into the page");
        }
        let v = self
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const ctx = arguments[0] ? document.querySelector(arguments[0]) : document;
                 if (!ctx) { done({error: `nothing matches ${arguments[0]}`}); return; }
                 window.axe.run(ctx, {resultTypes: ['violations']})
                   .then((r) => done({violations: r.violations.map((v) => ({
                     id: v.id, impact: v.impact || '', help: v.help, helpUrl: v.helpUrl,
                     targets: v.nodes.slice(0, 10).map((n) => n.target.join(' ')),
                     summaries: v.nodes.slice(0, 10).map((n) => n.failureSummary || ''),
                   }))}))
                   .catch((e) => done({error: String(e && e.stack || e)}));",
                json!([context]),
            )
            .await;
        if let Some(e) = v["error"].as_str() {
            self.fail(&format!("axe-core failed: {e}")).await;
        }
        let s = |x: &Value| x.as_str().unwrap_or_default().to_string();
        v["violations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| Violation {
                        id: s(&x["id"]),
                        impact: s(&x["impact"]),
                        help: s(&x["help"]),
                        help_url: s(&x["helpUrl"]),
                        targets: x["targets"]
                            .as_array()
                            .map(|t| t.iter().map(s).collect())
                            .unwrap_or_default(),
                        summaries: x["summaries"]
                            .as_array()
                            .map(|t| t.iter().map(s).collect())
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs axe-core on the whole page and fails the test when it finds a serious or
    /// critical violation, listing each (rule, impact, selectors, how to fix). `screen`
    /// names the screen in the message and in the `-failed` screenshot.
    pub async fn assert_accessible(&self, screen: &str) {
        let (blocking, minor): (Vec<Violation>, Vec<Violation>) = self
            .axe("")
            .await
            .into_iter()
            .partition(Violation::is_blocking);
        // Minor and moderate findings do not fail; they are printed (see them with
        // `-- --nocapture`) so they can be fixed on the way.
        for v in &minor {
            eprint!("axe on {screen}: {v}");
        }
        if !blocking.is_empty() {
            let list: Vec<String> = blocking.iter().map(|v| format!("  {v}")).collect();
            self.fail(&format!(
                "axe-core found {} serious or critical violation(s) on {screen}:\n{}",
                blocking.len(),
                list.concat()
            ))
            .await;
        }
    }

    /// Fails the test with `msg`, after saving a screenshot and the page's console errors.
    pub async fn fail(&self, msg: &str) -> ! {
        let shot = self.screenshot_as(&format!("{}-failed", self.name)).await;
        let errors = self.console_errors().await;
        panic!(
            "{msg}\n  url: {}\n  screenshot: {}\n  console errors: {errors:?}",
            self.current_url().await,
            shot.display()
        );
    }

    /// Signs in to the editor at `base` as the test admin and waits for the app shell.
    pub async fn sign_in(&self, base: &str) {
        self.goto(&format!("{base}/_/")).await;
        self.fill("input[name=email]", super::ADMIN_EMAIL).await;
        self.fill("input[name=password]", super::ADMIN_PASSWORD)
            .await;
        self.click("form.auth-form button[type=submit]").await;
        self.wait_for(".sidebar").await;
    }

    /// Ends a test: a screenshot of the final state, then no script errors (uncaught
    /// exceptions, CSP violations), then the browser closed.
    pub async fn finish(self) {
        let errors = self.script_errors().await;
        self.screenshot().await;
        assert!(errors.is_empty(), "script errors: {errors:?}");
        self.quit().await;
    }

    /// Ends the browser session and the driver.
    pub async fn quit(mut self) {
        let _ = try_call(
            &self.http,
            reqwest::Method::DELETE,
            &self.session,
            Value::Null,
        )
        .await;
        self.session_id.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // After a panic the async `quit` did not run: end the session with a plain blocking
        // request so Chromium exits with its driver.
        if !self.session_id.is_empty()
            && let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                self.session_id
            );
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Element {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        call(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    pub async fn click(&self) {
        self.call(reqwest::Method::POST, "/click", json!({})).await;
    }

    pub async fn clear(&self) {
        self.call(reqwest::Method::POST, "/clear", json!({})).await;
    }

    /// Types text (or key constants) into the element.
    pub async fn type_text(&self, text: &str) {
        self.call(reqwest::Method::POST, "/value", json!({ "text": text }))
            .await;
    }

    /// The rendered text of the element.
    pub async fn text(&self) -> String {
        self.call(reqwest::Method::GET, "/text", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn try_text(&self) -> Option<String> {
        try_call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}/text", self.url),
            Value::Null,
        )
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
    }

    /// A DOM property (`value`, `checked`, ...).
    pub async fn property(&self, name: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/property/{name}"),
            Value::Null,
        )
        .await
    }

    pub async fn attribute(&self, name: &str) -> Option<String> {
        self.call(
            reqwest::Method::GET,
            &format!("/attribute/{name}"),
            Value::Null,
        )
        .await
        .as_str()
        .map(str::to_string)
    }

    pub async fn is_displayed(&self) -> bool {
        try_call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}/displayed", self.url),
            Value::Null,
        )
        .await
        .map(|v| v == true)
        .unwrap_or(false)
    }
}
