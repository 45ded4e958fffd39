//! Test harness: one real Postgres per test process (the embedded supervisor, or
//! `SLUICE_TEST_DATABASE_URL`), a fresh database per test, and the real server on port 0.

#![allow(dead_code)]

pub mod browser;
pub mod external;

use serde_json::{Value, json};
use sluice::config::{Config, Secret};
use sluice::pg::EmbeddedPg;
use sluice::startup::App;
use sqlx::{Connection, PgConnection, PgPool};
use std::sync::OnceLock;
use std::time::Duration;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// URL of a database on the shared cluster with rights to create databases.
fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("SLUICE_TEST_DATABASE_URL") {
            return url;
        }
        // Started on its own thread and runtime because each test has its own runtime. The
        // cluster lives until the process exits; its watchdog then stops postgres.
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sluice-test-pg");
                let pg = EmbeddedPg::start(&dir)
                    .await
                    .expect("the embedded Postgres starts");
                let url = pg.database_url().to_string();
                drop_stale_databases(&url).await;
                std::mem::forget(pg);
                url
            })
        })
        .join()
        .expect("cluster thread")
    })
}

/// Databases left by earlier runs of the suite.
async fn drop_stale_databases(url: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'sluice_test_%'")
            .fetch_all(&mut conn)
            .await
            .expect("list databases");
    for name in names {
        let _ = sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

fn random_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates an empty database on the shared cluster and returns its URL.
pub async fn fresh_database() -> (String, String) {
    let admin = cluster_url();
    let name = format!("sluice_test_{}", random_suffix());
    let mut conn = PgConnection::connect(admin)
        .await
        .expect("connect to the test cluster");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("url has a database");
    (format!("{base}/{name}"), name)
}

#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    /// Where the editor and admin API answer: `base`, or the editor's own address when set.
    pub editor_base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub db: PgPool,
    pub db_name: String,
    pub db_url: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the real server on port 0 against a fresh database, signed in as the first admin.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_until(adjust, std::future::pending()).await.0
}

/// Like [`spawn_app_with`], serving until `shutdown` completes; the handle ends when the
/// server has stopped.
pub async fn spawn_app_until(
    adjust: impl FnOnce(&mut Config),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    TestApp,
    tokio::task::JoinHandle<Result<(), sluice::startup::StartupError>>,
) {
    let (url, db_name) = fresh_database().await;
    spawn_app_on_until(&url, &db_name, adjust, shutdown).await
}

/// Starts another instance of the server on an existing database (e.g. `app.db_url`), signed
/// in as the first admin.
pub async fn spawn_app_on(url: &str, db_name: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on_until(url, db_name, adjust, std::future::pending())
        .await
        .0
}

/// Like [`spawn_app_on`], serving until `shutdown` completes.
pub async fn spawn_app_on_until(
    url: &str,
    db_name: &str,
    adjust: impl FnOnce(&mut Config),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (
    TestApp,
    tokio::task::JoinHandle<Result<(), sluice::startup::StartupError>>,
) {
    let (url, db_name) = (url.to_string(), db_name.to_string());
    let mut config = Config::for_database(&url);
    config.admin = Some((ADMIN_EMAIL.into(), Secret::new(ADMIN_PASSWORD)));
    adjust(&mut config);
    let app = App::build(config).await.expect("the app builds");
    let port = app.port();
    let editor_port = app.editor_port().unwrap_or(port);
    let db = app.state().db.clone();
    let server = tokio::spawn(app.run_until(shutdown));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let editor_base = format!("http://127.0.0.1:{editor_port}");
    let login: Value = client
        .post(format!("{editor_base}/_/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login request")
        .json()
        .await
        .expect("login body");
    let token = login["token"].as_str().expect("a token").to_string();
    (
        TestApp {
            base,
            editor_base,
            client,
            token,
            db,
            db_name,
            db_url: url,
        },
        server,
    )
}

/// Reads a file of the shipped example app.
pub fn example(path: &str) -> Value {
    let full = format!("{}/flows/examples/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).expect("example exists"))
        .expect("example is JSON")
}

impl TestApp {
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/_/api/v1{path}", self.editor_base))
            .bearer_auth(&self.token)
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api{path}", self.base))
    }

    /// Sends and returns status and JSON body (`null` when the body is not JSON).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn create_table(&self, def: &Value) {
        let (status, body) = self
            .send(self.admin(reqwest::Method::POST, "/tables").json(def))
            .await;
        assert_eq!(status, 201, "create table: {body}");
    }

    /// Saves and publishes a flow; returns its id.
    pub async fn publish(&self, doc: &Value) -> i64 {
        let (status, body) = self
            .send(self.admin(reqwest::Method::POST, "/flows").json(doc))
            .await;
        assert_eq!(status, 201, "save flow: {body}");
        let id = body["id"].as_i64().expect("flow id");
        let (status, body) = self
            .send(self.admin(reqwest::Method::POST, &format!("/flows/{id}/publish")))
            .await;
        assert_eq!(status, 200, "publish: {body}");
        id
    }

    /// The OpenAPI document the server serves at `/api/openapi.json`, with its headers.
    pub async fn openapi(&self) -> (Value, reqwest::header::HeaderMap) {
        let resp = self
            .api(reqwest::Method::GET, "/openapi.json")
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 200);
        let headers = resp.headers().clone();
        (resp.json().await.expect("JSON"), headers)
    }

    /// The example todo app: table and its three flows, published.
    pub async fn load_todo_example(&self) {
        self.create_table(&example("todo/todos.table.json")).await;
        for f in ["list_todos", "get_todo", "create_todo"] {
            self.publish(&example(&format!("todo/{f}.flow.json"))).await;
        }
    }

    /// The auth example app: a users table and the signup, login, me and list_users flows.
    pub async fn load_auth_example(&self) {
        self.create_table(&example("auth/users.table.json")).await;
        for f in ["signup", "login", "me", "list_users"] {
            self.publish(&example(&format!("auth/{f}.flow.json"))).await;
        }
    }
}
