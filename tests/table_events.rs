//! Table events against the real server: a table with `"events": true` logs every change
//! (flows, the admin data API, CSV import, `db.sql`, plain SQL), the dispatcher turns each
//! change into exactly one job per matching flow (`on`, `columns`, `when`), password columns
//! never reach the log or the jobs, a transaction that commits late is not skipped, and turning
//! events off stops the log. Jobs are only checked in `sluice.jobs` (no worker runs them here).

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use sluice::events::changes::{self, Listener};
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};

const SECRET: &str = "hunter2-never-logged";

fn orders() -> Value {
    json!({"name": "orders", "events": true, "fields": [
        {"name": "status", "type": "text"},
        {"name": "amount", "type": "integer"},
        {"name": "secret", "type": "password"}
    ]})
}

fn trigger_flow(name: &str, trigger: Value) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name, "trigger": trigger,
           "entry": "done", "nodes": {"done": {"type": "respond", "status": 200, "body": {"ok": true}}}})
}

fn endpoint(name: &str, path: &str, nodes: Value, entry: &str) -> Value {
    json!({"format": "sluice.flow", "format_version": 1, "name": name,
           "endpoint": {"method": "POST", "path": path, "auth": "public"},
           "entry": entry, "nodes": nodes})
}

/// The jobs of `flow`, oldest first, as (job id, change id, args).
async fn jobs_of(app: &TestApp, flow: &str) -> Vec<(i64, i64, Value)> {
    let rows: Vec<(i64, Value, Value, Option<String>)> = sqlx::query_as(
        "SELECT id, source, args, unique_key FROM sluice.jobs WHERE kind = $1 ORDER BY id",
    )
    .bind(flow)
    .fetch_all(&app.db)
    .await
    .expect("jobs");
    rows.into_iter()
        .map(|(id, source, args, key)| {
            assert_eq!(source["kind"], "table", "{source}");
            let change = source["change"].as_i64().expect("change id");
            assert_eq!(key, Some(format!("change:{change}:{flow}")));
            (id, change, args)
        })
        .collect()
}

/// Waits (up to 20 s) until `flow` has `n` jobs, then returns them.
async fn wait_jobs(app: &TestApp, flow: &str, n: usize) -> Vec<(i64, i64, Value)> {
    let start = Instant::now();
    loop {
        let jobs = jobs_of(app, flow).await;
        if jobs.len() >= n || start.elapsed() > Duration::from_secs(20) {
            assert_eq!(jobs.len(), n, "jobs of {flow}: {jobs:?}");
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the dispatcher has passed every change logged so far (so a job that was going
/// to be made is made), up to 20 s.
async fn wait_dispatched(app: &TestApp) {
    let start = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sluice.changes c, sluice.change_cursor k \
             WHERE (c.xid, c.id) > (k.last_xid, k.last_id)",
        )
        .fetch_one(&app.db)
        .await
        .expect("pending");
        if pending == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{pending} changes not dispatched"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn change_ids(app: &TestApp) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM sluice.changes ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("changes")
}

/// The whole change log and every job's args as text: the secret is in none of it.
async fn assert_secret_never_logged(app: &TestApp) {
    let logged: String =
        sqlx::query_scalar("SELECT coalesce(string_agg(c::text, ' '), '') FROM sluice.changes c")
            .fetch_one(&app.db)
            .await
            .expect("log");
    let args: String =
        sqlx::query_scalar("SELECT coalesce(string_agg(args::text, ' '), '') FROM sluice.jobs")
            .fetch_one(&app.db)
            .await
            .expect("args");
    for text in [&logged, &args] {
        assert!(!text.contains(SECRET), "the password value leaked: {text}");
        assert!(
            !text.contains("\"secret\":"),
            "the password column leaked: {text}"
        );
    }
}

async fn plain_sql(app: &TestApp) -> PgConnection {
    PgConnection::connect(&app.db_url).await.expect("connect")
}

#[tokio::test]
async fn every_write_path_makes_exactly_one_job_per_change() {
    let app = common::spawn_app().await;
    app.create_table(&orders()).await;
    app.publish(&trigger_flow(
        "on_order",
        json!({"kind": "table", "table": "orders", "on": ["insert", "update", "delete"]}),
    ))
    .await;
    app.publish(&endpoint(
        "create_order",
        "/orders",
        json!({
            "insert": {"type": "db.insert", "table": "orders", "as": "row", "next": {"ok": "reply"},
                       "values": {"status": "new", "amount": 5, "secret": SECRET}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "row"}}
        }),
        "insert",
    ))
    .await;
    app.publish(&endpoint(
        "sql_order",
        "/orders-sql",
        json!({
            "sql": {"type": "db.sql", "as": "rows", "next": {"ok": "reply"},
                    "sql": "insert into orders (status, amount) values (:status, 7)",
                    "params": {"status": "from-sql"}},
            "reply": {"type": "respond", "body": {"ok": true}}
        }),
        "sql",
    ))
    .await;

    // A flow write.
    let (status, body) = app.send(app.api(Method::POST, "/orders")).await;
    assert_eq!(status, 201, "{body}");
    wait_jobs(&app, "on_order", 1).await;
    // An admin-API row write.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/orders/rows")
                .json(&json!({"status": "admin", "amount": 1, "secret": SECRET})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    wait_jobs(&app, "on_order", 2).await;
    // A CSV import of three rows.
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/tables/orders/import?mode=all")
                .header("content-type", "text/csv")
                .body("status,amount\ncsv1,1\ncsv2,2\ncsv3,3\n"),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    wait_jobs(&app, "on_order", 5).await;
    // db.sql, as the restricted application role.
    let (status, body) = app.send(app.api(Method::POST, "/orders-sql")).await;
    assert_eq!(status, 200, "{body}");
    wait_jobs(&app, "on_order", 6).await;
    // Plain SQL on a connection of its own: an insert, an update and a delete.
    let mut conn = plain_sql(&app).await;
    sqlx::query("INSERT INTO app.orders (status, amount, secret) VALUES ('psql', 9, $1)")
        .bind(SECRET)
        .execute(&mut conn)
        .await
        .expect("insert");
    sqlx::query("UPDATE app.orders SET amount = 10 WHERE status = 'psql'")
        .execute(&mut conn)
        .await
        .expect("update");
    sqlx::query("DELETE FROM app.orders WHERE status = 'psql'")
        .execute(&mut conn)
        .await
        .expect("delete");
    let jobs = wait_jobs(&app, "on_order", 9).await;
    wait_dispatched(&app).await;

    // Exactly one job per change, in the order of the changes.
    let ids = change_ids(&app).await;
    assert_eq!(ids.len(), 9);
    let changes: Vec<i64> = jobs.iter().map(|(_, c, _)| *c).collect();
    assert_eq!(changes, ids);
    assert_eq!(jobs_of(&app, "on_order").await.len(), 9, "nothing twice");

    let events: Vec<&Value> = jobs.iter().map(|(_, _, a)| &a["event"]).collect();
    let ops: Vec<&str> = events
        .iter()
        .map(|e| e["op"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        ops,
        [
            "insert", "insert", "insert", "insert", "insert", "insert", "insert", "update",
            "delete"
        ]
    );
    assert!(events.iter().all(|e| e["table"] == "orders"));
    let statuses: Vec<&str> = events[..7]
        .iter()
        .map(|e| e["new"]["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        ["new", "admin", "csv1", "csv2", "csv3", "from-sql", "psql"]
    );
    assert_eq!(events[0]["old"], Value::Null);
    assert_eq!(events[7]["old"]["amount"], 9);
    assert_eq!(events[7]["new"]["amount"], 10);
    let changed: Vec<&str> = events[7]["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        changed.contains(&"amount") && !changed.contains(&"status"),
        "{changed:?}"
    );
    assert_eq!(events[8]["new"], Value::Null);
    assert_eq!(events[8]["old"]["status"], "psql");
    assert_secret_never_logged(&app).await;
}

#[tokio::test]
async fn on_columns_and_when_choose_the_changes_a_flow_gets() {
    let app = common::spawn_app().await;
    app.create_table(&orders()).await;
    app.publish(&trigger_flow(
        "big_paid",
        json!({"kind": "table", "table": "orders", "on": ["update"], "columns": ["status"],
               "when": {"and": [{"field": "status", "op": "eq", "value": "paid"},
                                {"field": "amount", "op": "ge", "value": 100}]}}),
    ))
    .await;
    app.publish(&trigger_flow(
        "removed",
        json!({"kind": "table", "table": "orders", "on": ["delete"]}),
    ))
    .await;
    let mut conn = plain_sql(&app).await;
    for sql in [
        "INSERT INTO app.orders (status, amount) VALUES ('new', 50), ('new', 150)",
        // Not the watched column.
        "UPDATE app.orders SET amount = amount + 1",
        // Status changes, but `when` holds for the 151 only.
        "UPDATE app.orders SET status = 'paid'",
        "DELETE FROM app.orders WHERE amount = 51",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    let removed = wait_jobs(&app, "removed", 1).await;
    wait_dispatched(&app).await;
    assert_eq!(removed[0].2["event"]["old"]["amount"], 51);
    let paid = jobs_of(&app, "big_paid").await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0].2["event"]["new"]["amount"], 151);
    assert_eq!(paid[0].2["event"]["new"]["status"], "paid");
    assert_eq!(paid[0].2["event"]["old"]["status"], "new");
    assert_eq!(change_ids(&app).await.len(), 7);
}

/// The listeners the server builds, compiled here from the published flows, for running the
/// dispatcher by hand.
async fn published_listeners(app: &TestApp, docs: &[Value]) -> Vec<Listener> {
    let tables = sluice::tables::store::all(&app.db).await.expect("tables");
    let plans: Vec<_> = docs
        .iter()
        .map(|d| sluice::nodes::compile(d, Some(&tables)).expect("compiles"))
        .collect();
    changes::listeners(plans.iter(), &tables)
}

#[tokio::test]
async fn a_transaction_that_commits_late_is_neither_skipped_nor_delivered_twice() {
    let app = common::spawn_app().await;
    app.create_table(&orders()).await;
    let flow = trigger_flow(
        "on_order",
        json!({"kind": "table", "table": "orders", "on": ["insert"]}),
    );
    app.publish(&flow).await;
    let listeners = published_listeners(&app, &[flow]).await;
    assert_eq!(listeners.len(), 1);

    // The first transaction writes a change (the lower id) and stays open.
    let mut first = plain_sql(&app).await;
    let mut open = first.begin().await.expect("begin");
    sqlx::query("INSERT INTO app.orders (status) VALUES ('early-id, late commit')")
        .execute(&mut *open)
        .await
        .expect("insert");
    // The second writes a change with a higher id and commits.
    let mut second = plain_sql(&app).await;
    sqlx::query("INSERT INTO app.orders (status) VALUES ('late id, early commit')")
        .execute(&mut second)
        .await
        .expect("insert");
    let committed: i64 = sqlx::query_scalar("SELECT max(id) FROM sluice.changes")
        .fetch_one(&app.db)
        .await
        .expect("change");

    // The dispatcher runs (by hand here, besides the server's own) while the first is open: a
    // change behind an open transaction is held back, so the cursor cannot pass the open one.
    for _ in 0..3 {
        changes::dispatch_once(&app.db, &listeners, None)
            .await
            .expect("dispatches");
    }
    assert!(
        jobs_of(&app, "on_order").await.is_empty(),
        "nothing is dispatched past a transaction that may still commit"
    );

    open.commit().await.expect("commit");
    let start = Instant::now();
    while jobs_of(&app, "on_order").await.len() < 2 && start.elapsed() < Duration::from_secs(20) {
        let _ = changes::dispatch_once(&app.db, &listeners, None).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_dispatched(&app).await;
    for _ in 0..3 {
        changes::dispatch_once(&app.db, &listeners, None)
            .await
            .expect("dispatches");
    }
    let jobs = jobs_of(&app, "on_order").await;
    let got: Vec<i64> = jobs.iter().map(|(_, c, _)| *c).collect();
    let all = change_ids(&app).await;
    assert_eq!(all.len(), 2);
    // Both, once each, the earlier transaction's change first.
    assert_eq!(got, all, "{jobs:?}");
    assert_eq!(got[1], committed);
}

#[tokio::test]
async fn events_follow_the_table_definition() {
    let app = common::spawn_app().await;
    let mut quiet = orders();
    quiet["events"] = json!(false);
    quiet["name"] = json!("quiet");
    app.create_table(&quiet).await;
    // A trigger on a table without events, or on no table, does not publish.
    for (table, code) in [
        ("quiet", "flow.table_events_off"),
        ("nowhere", "flow.unknown_table"),
    ] {
        let (status, body) = app
            .send(app.admin(Method::POST, "/flows").json(&trigger_flow(
                &format!("on_{table}"),
                json!({"kind": "table", "table": table, "on": ["insert"]}),
            )))
            .await;
        let text = body.to_string();
        if status == 201 {
            let id = body["id"].as_i64().expect("id");
            let (status, body) = app
                .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
                .await;
            assert!(status >= 400, "{body}");
            assert!(body.to_string().contains(code), "{body}");
        } else {
            assert!(text.contains(code), "{text}");
        }
    }
    let mut conn = plain_sql(&app).await;
    sqlx::query("INSERT INTO app.quiet (status) VALUES ('a')")
        .execute(&mut conn)
        .await
        .expect("insert");
    assert!(change_ids(&app).await.is_empty(), "events off: no log");

    // Turning events on plans the trigger like any other step.
    let (_, t) = app.send(app.admin(Method::GET, "/tables/quiet")).await;
    let mut def = json!({"name": "quiet", "events": true, "fields": t["fields"]});
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/quiet")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": def})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("capture_change"), "{body}");
    sqlx::query("INSERT INTO app.quiet (status, secret) VALUES ('b', $1)")
        .bind(SECRET)
        .execute(&mut conn)
        .await
        .expect("insert");
    assert_eq!(change_ids(&app).await.len(), 1);

    // Renaming the table keeps its events, under the new name; a new password field is left
    // out of the log as well.
    let (_, t) = app.send(app.admin(Method::GET, "/tables/quiet")).await;
    def["name"] = json!("loud");
    def["fields"] = t["fields"].clone();
    def["fields"]
        .as_array_mut()
        .expect("fields")
        .push(json!({"name": "pin", "type": "password"}));
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/quiet")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": def})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    sqlx::query("INSERT INTO app.loud (status, secret, pin) VALUES ('c', $1, $1)")
        .bind(SECRET)
        .execute(&mut conn)
        .await
        .expect("insert");
    let (table, new): (String, Value) =
        sqlx::query_as("SELECT table_name, new FROM sluice.changes ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.db)
            .await
            .expect("change");
    assert_eq!(table, "loud");
    assert_eq!(new["status"], "c");
    assert!(
        new.get("pin").is_none() && new.get("secret").is_none(),
        "{new}"
    );
    assert_secret_never_logged(&app).await;

    // Off again: the trigger is dropped and nothing more is logged.
    let (_, t) = app.send(app.admin(Method::GET, "/tables/loud")).await;
    let def = json!({"name": "loud", "events": false, "fields": t["fields"]});
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/loud")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": def})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    sqlx::query("INSERT INTO app.loud (status) VALUES ('d')")
        .execute(&mut conn)
        .await
        .expect("insert");
    assert_eq!(change_ids(&app).await.len(), 2);
}

#[tokio::test]
async fn a_rolled_back_write_logs_nothing_and_the_app_role_cannot_reach_the_log() {
    let app = common::spawn_app().await;
    app.create_table(&orders()).await;
    let mut conn = plain_sql(&app).await;
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("INSERT INTO app.orders (status) VALUES ('never')")
        .execute(&mut *tx)
        .await
        .expect("insert");
    tx.rollback().await.expect("rollback");
    assert!(change_ids(&app).await.is_empty());

    // As the restricted role of db.sql: its writes are logged, the log itself is out of reach.
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("SET LOCAL ROLE sluice_app")
        .execute(&mut *tx)
        .await
        .expect("set role");
    sqlx::query("INSERT INTO app.orders (status) VALUES ('as app')")
        .execute(&mut *tx)
        .await
        .expect("the app role writes its tables");
    for sql in [
        "SELECT count(*) FROM sluice.changes",
        "DELETE FROM sluice.changes",
        "UPDATE sluice.change_cursor SET last_id = 0",
    ] {
        sqlx::query("SAVEPOINT s")
            .execute(&mut *tx)
            .await
            .expect("savepoint");
        let refused = sqlx::query(sql).execute(&mut *tx).await;
        assert!(refused.is_err(), "{sql} must be refused to sluice_app");
        sqlx::query("ROLLBACK TO SAVEPOINT s")
            .execute(&mut *tx)
            .await
            .expect("rollback to savepoint");
    }
    tx.commit().await.expect("commit");
    let (status, new): (String, Value) =
        sqlx::query_as("SELECT table_name, new FROM sluice.changes")
            .fetch_one(&app.db)
            .await
            .expect("one change");
    assert_eq!(status, "orders");
    assert_eq!(new["status"], "as app");
    let created = new["created_at"].as_str().expect("a timestamp");
    assert!(created.ends_with("+00:00"), "timestamps in UTC: {created}");

    // A table without password fields: its trigger has no arguments, every column is logged.
    app.create_table(&json!({"name": "notes", "events": true, "fields": [
        {"name": "body", "type": "text"}
    ]}))
    .await;
    sqlx::query("INSERT INTO app.notes (body) VALUES ('hello')")
        .execute(&mut conn)
        .await
        .expect("insert");
    let new: Value =
        sqlx::query_scalar("SELECT new FROM sluice.changes WHERE table_name = 'notes'")
            .fetch_one(&app.db)
            .await
            .expect("one change");
    assert_eq!(new["body"], "hello");
    assert!(
        new["id"].is_number() && new["updated_at"].is_string(),
        "{new}"
    );
}

#[tokio::test]
async fn dispatched_changes_are_pruned_after_the_retention() {
    let app = common::spawn_app().await;
    app.create_table(&orders()).await;
    let mut conn = plain_sql(&app).await;
    sqlx::query("INSERT INTO app.orders (status) VALUES ('a'), ('b')")
        .execute(&mut conn)
        .await
        .expect("insert");
    wait_dispatched(&app).await;
    sqlx::query(
        "UPDATE sluice.changes SET at = now() - interval '8 days' WHERE new->>'status' = 'a'",
    )
    .execute(&app.db)
    .await
    .expect("age");
    let week = Duration::from_secs(7 * 24 * 3600);
    assert_eq!(changes::prune(&app.db, week).await.expect("prunes"), 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT new->>'status' FROM sluice.changes")
        .fetch_all(&app.db)
        .await
        .expect("changes");
    assert_eq!(left, ["b"]);

    // A change not dispatched yet is kept, however old: it is held behind an open transaction.
    let mut blocker = plain_sql(&app).await;
    let mut open = blocker.begin().await.expect("begin");
    sqlx::query("INSERT INTO app.orders (status) VALUES ('held')")
        .execute(&mut *open)
        .await
        .expect("insert");
    sqlx::query("INSERT INTO app.orders (status) VALUES ('after')")
        .execute(&mut conn)
        .await
        .expect("insert");
    sqlx::query("UPDATE sluice.changes SET at = now() - interval '8 days'")
        .execute(&app.db)
        .await
        .expect("age");
    assert_eq!(
        changes::prune(&app.db, week).await.expect("prunes"),
        1,
        "only b"
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT new->>'status' FROM sluice.changes")
        .fetch_all(&app.db)
        .await
        .expect("changes");
    assert_eq!(left, ["after"]);
    open.rollback().await.expect("rollback");
}

#[test]
fn sluice_validate_checks_a_table_trigger_against_the_table_files() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("table-events-validate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut quiet = orders();
    quiet["name"] = json!("quiet");
    quiet["events"] = json!(false);
    std::fs::write(dir.join("orders.table.json"), orders().to_string()).expect("write");
    std::fs::write(dir.join("quiet.table.json"), quiet.to_string()).expect("write");
    let run = |table: &str, extra: Value| {
        let mut trigger = json!({"kind": "table", "table": table, "on": ["update"]});
        if let (Some(t), Some(e)) = (trigger.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
        std::fs::write(
            dir.join("on_change.flow.json"),
            trigger_flow("on_change", trigger).to_string(),
        )
        .expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("validate")
            .arg(&dir)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, out) = run("orders", json!({"columns": ["status"]}));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run("nowhere", json!({}));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("flow.unknown_table"), "{out}");
    let (code, out) = run("quiet", json!({}));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("flow.table_events_off"), "{out}");
    let (code, out) = run(
        "orders",
        json!({"columns": ["colour"], "when": {"field": "secret", "op": "eq", "value": "x"}}),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("flow.unknown_column") && out.contains("flow.bad_filter"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_trigger_follows_a_renamed_table_and_protects_its_events() {
    let app = common::spawn_app().await;
    app.create_table(&orders()).await;
    app.publish(&trigger_flow(
        "on_order",
        json!({"kind": "table", "table": "orders", "on": ["update"], "columns": ["status"]}),
    ))
    .await;
    // Turning events off would leave the flow without events: refused unless forced.
    let (_, t) = app.send(app.admin(Method::GET, "/tables/orders")).await;
    let off = json!({"name": "orders", "events": false, "fields": t["fields"]});
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/orders")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": off})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("table.breaks_flows")),
        "{body}"
    );

    // Renaming the table and the watched field, with the flows following.
    let mut fields = t["fields"].clone();
    for f in fields.as_array_mut().expect("fields") {
        if f["name"] == "status" {
            f["name"] = json!("state");
        }
    }
    let renamed = json!({"name": "purchases", "events": true, "fields": fields});
    let (status, body) = app
        .send(
            app.admin(Method::PUT, "/tables/orders")
                .header("if-match", t["version"].to_string())
                .json(&json!({"table": renamed, "update_flows": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut conn = plain_sql(&app).await;
    sqlx::query("INSERT INTO app.purchases (state) VALUES ('new')")
        .execute(&mut conn)
        .await
        .expect("insert");
    sqlx::query("UPDATE app.purchases SET state = 'paid'")
        .execute(&mut conn)
        .await
        .expect("update");
    let jobs = wait_jobs(&app, "on_order", 1).await;
    let event = &jobs[0].2["event"];
    assert_eq!(event["table"], "purchases");
    assert_eq!(event["new"]["state"], "paid");
    assert_eq!(event["op"], "update");
}

#[tokio::test]
async fn the_designer_turns_change_events_on_through_the_plan() {
    let app = common::spawn_app().await;
    let mut quiet = orders();
    quiet["events"] = json!(false);
    app.create_table(&quiet).await;
    let b = common::browser::Browser::start("table_events_designer").await;
    b.sign_in(&app.base).await;
    b.goto(&format!("{}/_/#/tables/orders/schema", app.base))
        .await;
    b.wait_for("#table-events").await;
    assert_eq!(
        b.find("#table-events").await.property("checked").await,
        json!(false)
    );
    assert!(
        b.find("#review-changes")
            .await
            .attribute("disabled")
            .await
            .is_some(),
        "nothing to review yet"
    );
    b.click("#table-events").await;
    assert!(
        b.find("#review-changes")
            .await
            .attribute("disabled")
            .await
            .is_none(),
        "the setting is a change to review"
    );
    b.click("#review-changes").await;
    let plan = b.wait_for_text("#plan-preview", "capture_change").await;
    assert!(
        plan.text().await.contains("CREATE TRIGGER"),
        "{}",
        plan.text().await
    );
    b.click("#apply-changes").await;
    b.wait_gone("dialog[open]").await;
    let (_, def) = app.send(app.admin(Method::GET, "/tables/orders")).await;
    assert_eq!(def["events"], true, "{def}");
    b.wait_for("#table-events").await;
    b.assert_accessible("table designer with change events")
        .await;
    b.finish().await;
}

#[tokio::test]
async fn an_instance_that_has_not_followed_a_publish_leaves_the_changes_to_one_that_has() {
    let never = Duration::from_secs(3600);
    let stale = common::spawn_app_with(|c| {
        c.reload_listen = false;
        c.reload_check = never;
    })
    .await;
    stale.create_table(&orders()).await;
    let current = common::spawn_app_on(&stale.db_url, &stale.db_name, |c| {
        c.reload_listen = false;
        c.reload_check = never;
    })
    .await;
    // Published on `current`; `stale` never follows, so it must not dispatch meanwhile (it
    // would pass the changes without the new flow).
    current
        .publish(&trigger_flow(
            "on_order",
            json!({"kind": "table", "table": "orders", "on": ["insert"]}),
        ))
        .await;
    let mut conn = plain_sql(&current).await;
    for i in 0..6 {
        sqlx::query("INSERT INTO app.orders (amount) VALUES ($1)")
            .bind(i)
            .execute(&mut conn)
            .await
            .expect("insert");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let jobs = wait_jobs(&current, "on_order", 6).await;
    wait_dispatched(&current).await;
    assert_eq!(jobs.len(), 6);
    assert_eq!(jobs_of(&stale, "on_order").await.len(), 6);
}

#[tokio::test]
async fn a_table_triggers_jobs_get_the_flows_concurrency_key_and_retry_count() {
    // Without workers, so the jobs stay as the dispatcher made them.
    let app = common::spawn_app_with(|c| c.jobs.workers = 0).await;
    app.create_table(&orders()).await;
    let mut flow = trigger_flow(
        "per_status",
        json!({"kind": "table", "table": "orders", "on": ["insert"]}),
    );
    flow["settings"] = json!({"concurrency": {"limit": 1, "key": {"$rhai": "event[\"new\"].status"}},
                              "retry": {"max_attempts": 2}});
    app.publish(&flow).await;
    let mut sql = plain_sql(&app).await;
    sqlx::query("INSERT INTO app.orders (status) VALUES ('paid'), ('open')")
        .execute(&mut sql)
        .await
        .expect("insert");
    wait_dispatched(&app).await;
    let got: Vec<(Option<String>, i16)> = sqlx::query_as(
        "SELECT concurrency_key, max_attempts FROM sluice.jobs WHERE kind = 'per_status' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .expect("jobs");
    assert_eq!(got, [(Some("paid".into()), 2), (Some("open".into()), 2)]);
}
