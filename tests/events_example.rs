//! The shipped events example (`flows/examples/shop/`) on a real Sluice and Postgres: an
//! endpoint that enqueues a job in its own transaction, a table trigger that follows an order
//! becoming paid whatever wrote it, and a daily schedule. The outbound URLs are not set, so the
//! jobs fail and retry; what is checked is that each one exists exactly as the example says.

mod common;

use common::{TestApp, example, spawn_app};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Jobs of flow `kind`, as `(state, args)`.
async fn jobs_of(app: &TestApp, kind: &str) -> Vec<(String, serde_json::Value)> {
    sqlx::query_as("SELECT state, args FROM sluice.jobs WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&app.db)
        .await
        .expect("jobs")
}

/// Waits (at most 20 s, an upper bound) until flow `kind` has `n` jobs.
async fn wait_jobs(app: &TestApp, kind: &str, n: usize) -> Vec<(String, serde_json::Value)> {
    let started = Instant::now();
    loop {
        let jobs = jobs_of(app, kind).await;
        if jobs.len() >= n || started.elapsed() > Duration::from_secs(20) {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_shop_example_enqueues_receipts_follows_paid_orders_and_schedules_a_summary() {
    let app = spawn_app().await;
    app.create_table(&example("shop/orders.table.json")).await;
    // The job flow first: job.enqueue checks that its target exists.
    for f in [
        "send_receipt",
        "create_order",
        "notify_paid",
        "daily_summary",
    ] {
        app.publish(&example(&format!("shop/{f}.flow.json"))).await;
    }

    // An order stored: one receipt job with the order's id, made in the request's transaction.
    let (status, order) = app
        .send(app.api(Method::POST, "/orders").json(&json!({
            "customer": "ada@example.com", "total_cents": 1250
        })))
        .await;
    assert_eq!(status, 201, "{order}");
    let jobs = wait_jobs(&app, "send_receipt", 1).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        jobs[0].1,
        json!({"order_id": order["id"], "customer": "ada@example.com"})
    );
    // A refused order makes no job.
    let (status, _) = app
        .send(
            app.api(Method::POST, "/orders")
                .json(&json!({"customer": "not an email", "total_cents": 1})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(jobs_of(&app, "send_receipt").await.len(), 1);

    // The order becomes paid through the admin data API: the trigger sees it, once.
    let id = order["id"].as_i64().expect("id");
    let (status, body) = app
        .send(
            app.admin(Method::PATCH, &format!("/tables/orders/rows/{id}"))
                .json(&json!({"status": "paid"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let paid = wait_jobs(&app, "notify_paid", 1).await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0].1["event"]["op"], "update");
    assert_eq!(paid[0].1["event"]["new"]["status"], "paid");
    let changed = paid[0].1["event"]["changed"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(changed.contains(&json!("status")), "{changed:?}");
    // A change of another column, or to another status, is not told to the partner.
    sqlx::query("UPDATE app.orders SET total_cents = 99 WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("update");
    sqlx::query("UPDATE app.orders SET status = 'shipped' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .expect("update");
    // Plain SQL that pays another order is seen too.
    sqlx::query(
        "INSERT INTO app.orders (customer, total_cents, status) VALUES ('bob@example.com', 5, 'new')",
    )
    .execute(&app.db)
    .await
    .expect("insert");
    sqlx::query("UPDATE app.orders SET status = 'paid' WHERE customer = 'bob@example.com'")
        .execute(&app.db)
        .await
        .expect("pay");
    let paid = wait_jobs(&app, "notify_paid", 2).await;
    assert_eq!(paid.len(), 2, "{paid:?}");
    assert_eq!(paid[1].1["event"]["new"]["customer"], "bob@example.com");

    // The daily summary is scheduled at 07:00 in Paris.
    // (The scheduler takes up a publish within about a second.)
    let started = Instant::now();
    let s = loop {
        let (status, list) = app.send(app.admin(Method::GET, "/schedules")).await;
        assert_eq!(status, 200, "{list}");
        let found = list["schedules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["flow"] == "daily_summary")
            .cloned();
        match found {
            Some(s) => break s,
            None if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => panic!("daily_summary is scheduled: {list}"),
        }
    };
    assert_eq!(s["timezone"], "Europe/Paris", "{s}");
    let next = s["next_fire_at"].as_str().unwrap_or_default();
    let (status, preview) = app
        .send(app.admin(Method::POST, "/schedules/preview").json(&json!({
            "cron": "0 7 * * *", "timezone": "Europe/Paris", "count": 1
        })))
        .await;
    assert_eq!(status, 200, "{preview}");
    let first = preview["times"][0].as_str().unwrap_or_default();
    assert!(first.contains("T07:00:00"), "{preview}");
    let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).map(|d| d.timestamp());
    assert_eq!(at(next).ok(), at(first).ok(), "{s} {preview}");
}
