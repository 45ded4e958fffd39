//! The edge of the server against hostile clients (issue 10, items 1, 2, 3 and 15).
//!
//! Symptoms on the old main: requests that sent headers and stalled their bodies took every
//! in-flight slot (503 `server.busy` for every endpoint) and slowloris connections stayed open
//! without limit; 200 parallel wrong logins took the process to gigabytes of memory and
//! guessing was unthrottled; the editor could only share the API's address; `/metrics` was
//! open on any address. Fixes: header and body deadlines, the in-flight slot taken only once
//! the body is here, a cap of connections per address, one bounded password hasher with
//! throttled failures, an optional editor address, and `/metrics` refused on a public address
//! without its token.

mod common;

use common::{TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The password hasher is one pool per process: the burst of wrong logins runs alone so the
/// other tests' sign-ins (the harness signs in at start) do not queue behind it.
static HASHER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A TCP connection to the app from the loopback address `from` (127.0.0.0/8 is all loopback
/// on Linux, so each test can be its own client address).
async fn connect_from(app: &TestApp, from: [u8; 4]) -> TcpStream {
    let port: u16 = app
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in base");
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind a loopback source address");
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection (or resets it); returns what was read, or
/// `None` if the connection was still open after `limit`.
async fn until_closed(mut stream: TcpStream, limit: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// A client whose connections come from `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(from))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[tokio::test]
async fn stalled_bodies_and_slow_headers_neither_block_the_api_nor_stay_open() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|c| {
        c.edge.header_timeout = Duration::from_secs(2);
        c.edge.body_timeout = Duration::from_secs(3);
        c.edge.max_connections_per_ip = 2000;
        c.ops.max_in_flight = 64;
    })
    .await;
    app.load_todo_example().await;

    // 300 requests that announce a body and stall it, 250 that never finish their headers.
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut s = connect_from(&app, [127, 0, 0, 5]).await;
        s.write_all(
            b"POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"title\": \"",
        )
        .await
        .expect("write");
        stalled.push((true, s));
    }
    for _ in 0..250 {
        let mut s = connect_from(&app, [127, 0, 0, 5]).await;
        s.write_all(b"GET /api/todos HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            .await
            .expect("write");
        stalled.push((false, s));
    }

    // Meanwhile the API answers: reads and writes alike.
    let probe = client_from([127, 0, 0, 6]);
    for i in 0..10 {
        let resp = probe
            .get(format!("{}/api/todos", app.base))
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 200, "probe {i} while clients stall");
        let resp = probe
            .post(format!("{}/api/todos", app.base))
            .json(&json!({"title": format!("probe {i}")}))
            .send()
            .await
            .expect("answered");
        assert!(
            resp.status().is_success(),
            "write probe {i}: {}",
            resp.status()
        );
    }

    // Every stalled connection is closed within a generous bound of its deadline; a stalled
    // body is told why.
    let closing: Vec<_> = stalled
        .into_iter()
        .map(|(body, s)| {
            tokio::spawn(async move { (body, until_closed(s, Duration::from_secs(40)).await) })
        })
        .collect();
    for task in closing {
        let (body, seen) = task.await.expect("task");
        let seen =
            seen.unwrap_or_else(|| panic!("a stalled connection (body: {body}) is still open"));
        if body {
            assert!(
                seen.starts_with("HTTP/1.1 408"),
                "stalled body answered: {seen}"
            );
            assert!(seen.contains("request.body_timeout"), "{seen}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(45));
    let resp = probe
        .get(format!("{}/api/todos", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_at_its_budget() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|c| c.edge.body_timeout = Duration::from_secs(2)).await;
    app.load_todo_example().await;
    let mut s = connect_from(&app, [127, 0, 0, 10]).await;
    s.write_all(b"POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .expect("write");
    // One byte every 300 ms: never idle for long, never done.
    let started = Instant::now();
    let (mut read, mut write) = s.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if write.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut seen)).await;
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cut off in time"
    );
    trickle.abort();
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_header_deadline() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|c| c.edge.header_timeout = Duration::from_secs(1)).await;
    let mut s = connect_from(&app, [127, 0, 0, 7]).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let seen = until_closed(s, Duration::from_secs(15))
        .await
        .expect("the idle connection is closed");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
}

#[tokio::test]
async fn connections_beyond_the_cap_of_one_address_are_closed() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|c| {
        c.edge.max_connections_per_ip = 10;
        c.edge.header_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = connect_from(&app, [127, 0, 0, 8]).await;
        // A whole request and its answer: the server has counted this connection.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.expect("read");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let extra = connect_from(&app, [127, 0, 0, 8]).await;
    let seen = until_closed(extra, Duration::from_secs(5))
        .await
        .expect("the eleventh connection is closed at once");
    assert_eq!(seen, "", "nothing is served on it");
    // Another address is not affected.
    let resp = client_from([127, 0, 0, 9])
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    // A closed connection frees its slot.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = connect_from(&app, [127, 0, 0, 8]).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let seen = until_closed(s, Duration::from_secs(5))
            .await
            .unwrap_or_default();
        if seen.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot is never reused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn on_a_public_address_metrics_need_a_token() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|c| c.addr = SocketAddr::from(([0, 0, 0, 0], 0))).await;
    let url = format!("{}/metrics", app.base);
    let (status, body) = app.send(app.client.get(&url)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("metrics.token_required"))
    );
    let app = spawn_app_with(|c| {
        c.addr = SocketAddr::from(([0, 0, 0, 0], 0));
        c.ops.metrics_token = Some(sluice::config::Secret::new("scrape"));
    })
    .await;
    let url = format!("{}/metrics", app.base);
    let (status, _) = app.send(app.client.get(&url)).await;
    assert_eq!(status, 401);
    let resp = app
        .client
        .get(&url)
        .bearer_auth("scrape")
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    // On loopback, as before, no token is needed.
    let app = spawn_app_with(|_| {}).await;
    let (status, _) = app
        .send(app.client.get(format!("{}/metrics", app.base)))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn with_an_editor_address_the_editor_is_served_only_there() {
    let _shared = HASHER.read().await;
    let app =
        spawn_app_with(|c| c.edge.editor_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)))).await;
    assert_ne!(app.editor_base, app.base);
    // The editor address serves the admin API (the harness signed in there) and the pages.
    let (status, _) = app.send(app.admin(Method::GET, "/flows")).await;
    assert_eq!(status, 200);
    let resp = app
        .client
        .get(format!("{}/_/", app.editor_base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
    // The main address answers 404 for everything under /_/, with or without a token.
    for path in ["/_/", "/_/api/v1/flows", "/_/api/v1/session"] {
        let (status, body) = app
            .send(
                app.client
                    .get(format!("{}{path}", app.base))
                    .bearer_auth(&app.token),
            )
            .await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/auth/login", app.base))
                .json(&json!({"email": common::ADMIN_EMAIL, "password": common::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(status, 404);
    // The API keeps its own address.
    app.load_todo_example().await;
    let (status, _) = app.send(app.api(Method::GET, "/todos")).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send(app.client.get(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send(app.client.get(format!("{}/api/todos", app.editor_base)))
        .await;
    assert_eq!(status, 404, "the editor address serves no API");
}

/// Resident memory of this process (the server runs inside it), in MiB.
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

#[tokio::test]
async fn a_burst_of_wrong_logins_keeps_memory_bounded_and_the_api_answering() {
    let _alone = HASHER.write().await;
    let app = spawn_app_with(|_| {}).await;
    app.load_todo_example().await;
    app.load_auth_example().await;
    let before = resident_mib();
    let peak = std::sync::Arc::new(std::sync::Mutex::new(before));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let now = resident_mib();
                {
                    let mut p = peak.lock().expect("lock");
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // 200 parallel wrong logins, editor and end-user alike, from 200 client addresses so the
    // address throttle does not spare the hasher.
    let mut burst = Vec::new();
    for i in 0..200u8 {
        let client = client_from([127, 0, 1, i]);
        let (url, body) = if i % 2 == 0 {
            (
                format!("{}/_/api/v1/auth/login", app.editor_base),
                json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"}),
            )
        } else {
            (
                format!("{}/api/auth/login", app.base),
                json!({"email": format!("nobody{i}@example.com"), "password": "wrong password"}),
            )
        };
        burst.push(tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.expect("answered");
            let retry = resp.headers().get("retry-after").is_some();
            (resp.status().as_u16(), retry)
        }));
    }
    // Meanwhile the API answers.
    let probe = client_from([127, 0, 2, 1]);
    for _ in 0..5 {
        let resp = probe
            .get(format!("{}/api/todos", app.base))
            .send()
            .await
            .expect("answered");
        assert_eq!(resp.status(), 200);
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in burst {
        let (status, retry) = task.await.expect("task");
        assert!(
            matches!(status, 401 | 503),
            "a wrong login answered {status}"
        );
        if status == 503 {
            assert!(retry, "503 carries Retry-After");
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    sampling.abort();
    let grew = *peak.lock().expect("lock") - before;
    eprintln!("wrong logins: {statuses:?}; resident memory grew by {grew:.1} MiB at most");
    // The old code kept 200 argon2 areas of 19 MiB at once (gigabytes); the pool holds one per
    // core. A generous bound, far from both.
    assert!(grew < 400.0, "resident memory grew by {grew:.1} MiB");
    assert!(
        statuses.get(&401).copied().unwrap_or(0) > 0,
        "some were checked"
    );
    let resp = probe
        .get(format!("{}/api/todos", app.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200);
}

/// Sends a login and returns status, `Retry-After` and the error code.
async fn login_from(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> (u16, Option<u64>, String) {
    let resp = client
        .post(url)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, retry, code)
}

#[tokio::test]
async fn repeated_wrong_logins_of_one_account_are_throttled_with_growing_delays() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|_| {}).await;
    let url = format!("{}/_/api/v1/auth/login", app.editor_base);
    let attacker = client_from([127, 0, 3, 1]);
    let admin = common::ADMIN_EMAIL;
    for i in 0..6 {
        let (status, _, code) = login_from(&attacker, &url, admin, "guess").await;
        assert_eq!(
            (status, code.as_str()),
            (401, "auth.invalid_credentials"),
            "guess {i}"
        );
    }
    let (status, retry, code) = login_from(&attacker, &url, admin, "guess").await;
    assert_eq!((status, code.as_str()), (429, "auth.throttled"));
    assert_eq!(retry, Some(1));
    // The account is held whatever the address, and whichever login form is used; even the
    // right password waits.
    let other = client_from([127, 0, 3, 2]);
    let (status, _, _) = login_from(&other, &url, admin, common::ADMIN_PASSWORD).await;
    assert_eq!(status, 429);
    let session = format!("{}/_/api/v1/session", app.editor_base);
    let (status, _, code) = login_from(&other, &session, admin, "guess").await;
    assert_eq!((status, code.as_str()), (429, "auth.throttled"));
    // The delay doubles with each further failure.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, _) = login_from(&attacker, &url, admin, "guess").await;
    assert_eq!(status, 401);
    let (status, retry, _) = login_from(&attacker, &url, admin, "guess").await;
    assert_eq!((status, retry), (429, Some(2)));
    // Once the delay is over the right password works, and clears the account's failures.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, _) = login_from(&other, &url, admin, common::ADMIN_PASSWORD).await;
    assert_eq!(status, 200);
    let (status, _, _) = login_from(&other, &url, admin, "guess").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_throttled_and_end_users_too() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|_| {}).await;
    app.load_auth_example().await;
    // End users: one account, several addresses.
    let url = format!("{}/api/auth/login", app.base);
    for i in 0..6u8 {
        let (status, _, _) = login_from(
            &client_from([127, 0, 4, i]),
            &url,
            "victim@example.com",
            "guess",
        )
        .await;
        assert_eq!(status, 401, "guess {i}");
    }
    let (status, retry, code) = login_from(
        &client_from([127, 0, 4, 9]),
        &url,
        "victim@example.com",
        "guess",
    )
    .await;
    assert_eq!((status, code.as_str()), (429, "auth.throttled"));
    assert!(retry.is_some());
    // One address, a new account each time: 20 free failures, then the address waits.
    let spray = client_from([127, 0, 5, 1]);
    for i in 0..20 {
        let (status, _, _) =
            login_from(&spray, &url, &format!("user{i}@example.com"), "guess").await;
        assert_eq!(status, 401, "spray {i}");
    }
    let (status, _, _) = login_from(&spray, &url, "user20@example.com", "guess").await;
    assert_eq!(status, 401, "the 21st failure is still checked");
    let (status, _, code) = login_from(&spray, &url, "user21@example.com", "guess").await;
    assert_eq!((status, code.as_str()), (429, "auth.throttled"));
    // The editor's login counts separately from the app's.
    let editor = format!("{}/_/api/v1/auth/login", app.editor_base);
    let (status, _, _) = login_from(&spray, &editor, "x@example.com", "guess").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn overlong_passwords_are_refused_with_a_pointer() {
    let _shared = HASHER.read().await;
    let app = spawn_app_with(|_| {}).await;
    let long = "x".repeat(1025);
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/auth/login", app.editor_base))
                .json(&json!({"email": common::ADMIN_EMAIL, "password": long})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "auth.password_too_long");
    assert_eq!(body["error"]["details"][0]["pointer"], "/password");
    let (status, body) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/session", app.editor_base))
                .json(&json!({"email": common::ADMIN_EMAIL, "password": long})),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("auth.password_too_long"))
    );
    // Password fields written through the rows API.
    app.load_auth_example().await;
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/users/rows")
                .json(&json!({"email": "a@example.com", "password": long})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"][0]["pointer"], "/password");
}
