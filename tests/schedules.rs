//! Schedule triggers against the real server and Postgres (docs/EVENTS.md, "Schedules"): each
//! occurrence becomes exactly one job across instances, downtime is caught up per policy with
//! every occurrence not run recorded, overlapping runs are skipped, publishing starts and
//! unpublishing stops a schedule, and the editor's preview. These tests look at the jobs
//! table; running the jobs is the workers' business.

mod common;

use common::{TestApp, spawn_app_on, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An instance that runs no worker (`SLUICE_WORKERS=0`): these tests check the jobs the
/// scheduler makes, so they stay as enqueued instead of being run.
async fn scheduling_only() -> TestApp {
    spawn_app_with(|c| c.jobs.workers = 0).await
}

/// A flow that a schedule runs.
fn scheduled(name: &str, trigger: Value) -> Value {
    let mut t = json!({"kind": "schedule", "timezone": "UTC"});
    for (k, v) in trigger.as_object().expect("an object") {
        t[k] = v.clone();
    }
    json!({
        "format": "sluice.flow", "format_version": 1, "name": name, "entry": "done",
        "trigger": t,
        "nodes": {"done": {"type": "respond", "status": 200, "body": {"ok": true}}}
    })
}

/// Waits (at most `limit`) until `check` holds; panics with `what` otherwise.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn jobs_of(app: &TestApp, flow: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sluice.jobs WHERE kind = $1")
        .bind(flow)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

async fn schedule_row(app: &TestApp, flow: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT to_char(next_fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') \
         FROM sluice.schedules WHERE flow = $1",
    )
    .bind(flow)
    .fetch_optional(&app.db)
    .await
    .expect("schedule")
}

#[tokio::test]
async fn two_instances_enqueue_each_occurrence_exactly_once() {
    let a = scheduling_only().await;
    let b = spawn_app_on(&a.db_url, &a.db_name, |c| c.jobs.workers = 0).await;
    let id = a
        .publish(&scheduled(
            "every_second",
            json!({"cron": "* * * * * *", "overlap": "allow"}),
        ))
        .await;
    wait_until(Duration::from_secs(30), "six jobs", || async {
        jobs_of(&a, "every_second").await >= 6
    })
    .await;
    let (status, _) = a
        .send(a.admin(Method::DELETE, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 204);
    wait_until(Duration::from_secs(10), "the schedule stops", || async {
        schedule_row(&a, "every_second").await.is_none()
    })
    .await;

    let keys: Vec<(String, i64, Value, Value)> = sqlx::query_as(
        "SELECT unique_key, count(*) OVER (PARTITION BY unique_key), args, source \
         FROM sluice.jobs WHERE kind = 'every_second' ORDER BY unique_key",
    )
    .fetch_all(&a.db)
    .await
    .expect("jobs");
    let mut seconds = Vec::new();
    for (key, n, args, source) in &keys {
        assert_eq!(*n, 1, "one job per occurrence: {key}");
        let occurrence = args["occurrence"].as_str().expect("an occurrence");
        assert_eq!(key, &format!("schedule:every_second:{occurrence}"));
        assert_eq!(
            args["scheduled_for"].as_str(),
            Some(occurrence.replace('Z', "+00:00").as_str())
        );
        assert_eq!(source["kind"], "schedule");
        let t = chrono::DateTime::parse_from_rfc3339(occurrence).expect("RFC 3339");
        seconds.push(t.timestamp());
    }
    assert!(seconds.len() >= 6);
    for pair in seconds.windows(2) {
        assert_eq!(pair[1] - pair[0], 1, "consecutive occurrences: {seconds:?}");
    }
    let skipped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sluice.schedule_skips WHERE flow = 'every_second'",
    )
    .fetch_one(&a.db)
    .await
    .expect("skips");
    assert_eq!(skipped, 0);

    // The instances' metrics together count every job.
    let mut fired = 0.0;
    for app in [&a, &b] {
        let text = app
            .client
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        for line in text.lines() {
            if let Some(v) =
                line.strip_prefix("sluice_schedule_fired_total{flow=\"every_second\"} ")
            {
                fired += v.parse::<f64>().expect("a number");
            }
        }
        assert!(text.contains("# TYPE sluice_schedule_lateness_seconds gauge"));
    }
    assert_eq!(fired as usize, seconds.len());
}

#[tokio::test]
async fn downtime_is_caught_up_per_policy_and_every_occurrence_not_run_is_recorded() {
    let app = scheduling_only().await;
    let policies = [("c_skip", "skip"), ("c_latest", "latest"), ("c_all", "all")];
    for (name, policy) in policies {
        app.publish(&scheduled(
            name,
            json!({"cron": "* * * * *", "catch_up": policy, "catch_up_max": 3,
                   "max_lateness_ms": 1_200_000, "overlap": "allow"}),
        ))
        .await;
    }
    for (name, _) in policies {
        wait_until(Duration::from_secs(10), "the schedule row", || async {
            schedule_row(&app, name).await.is_some()
        })
        .await;
    }
    // Far enough from a minute's start that no occurrence is on time, and from its end that
    // the minute does not change before the scheduler looks.
    wait_until(Duration::from_secs(70), "a quiet second", || async {
        let s: f64 = sqlx::query_scalar("SELECT extract(second FROM now())::float8")
            .fetch_one(&app.db)
            .await
            .expect("now");
        (12.0..45.0).contains(&s)
    })
    .await;
    // As if no instance had run for the last 30 minutes (a minute that passed while waiting
    // was fired on time: its job goes, so the catch-up may enqueue it again).
    sqlx::query("DELETE FROM sluice.jobs WHERE kind LIKE 'c\\_%'")
        .execute(&app.db)
        .await
        .expect("clear");
    let t0: String = sqlx::query_scalar(
        "UPDATE sluice.schedules SET next_fire_at = date_trunc('minute', now()) - interval '30 minutes' \
         WHERE flow LIKE 'c\\_%' RETURNING to_char(next_fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .fetch_one(&app.db)
    .await
    .expect("set back");
    let t0 = chrono::DateTime::parse_from_rfc3339(&t0)
        .expect("t0")
        .timestamp();
    for (name, _) in policies {
        wait_until(Duration::from_secs(10), "the catch-up", || async {
            let next: bool = sqlx::query_scalar(
                "SELECT next_fire_at > now() FROM sluice.schedules WHERE flow = $1",
            )
            .bind(name)
            .fetch_one(&app.db)
            .await
            .expect("next");
            next
        })
        .await;
    }
    let minute = |k: i64| t0 + 60 * (30 - k);
    for (name, policy) in policies {
        let mut runs: Vec<i64> = sqlx::query_scalar::<_, String>(
            "SELECT args->>'occurrence' FROM sluice.jobs WHERE kind = $1",
        )
        .bind(name)
        .fetch_all(&app.db)
        .await
        .expect("jobs")
        .iter()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("time")
                .timestamp()
        })
        .collect();
        runs.sort();
        let expected: Vec<i64> = match policy {
            "skip" => vec![],
            "latest" => vec![minute(0)],
            _ => vec![minute(2), minute(1), minute(0)],
        };
        assert_eq!(runs, expected, "{policy}");
        let skips: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT to_char(first_occurrence AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    to_char(last_occurrence AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    occurrences, reason \
             FROM sluice.schedule_skips WHERE flow = $1 ORDER BY first_occurrence",
        )
        .bind(name)
        .fetch_all(&app.db)
        .await
        .expect("skips");
        let ts = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("time")
                .timestamp()
        };
        // 20 minutes of lateness allowed: occurrences 20 to 30 minutes old are too late.
        assert_eq!(
            (
                ts(&skips[0].0),
                ts(&skips[0].1),
                skips[0].2,
                skips[0].3.as_str()
            ),
            (minute(30), minute(20), 11, "too_late"),
            "{policy}"
        );
        let last_missed = minute(expected.len() as i64);
        assert_eq!(
            (
                ts(&skips[1].0),
                ts(&skips[1].1),
                skips[1].2,
                skips[1].3.as_str()
            ),
            (
                minute(19),
                last_missed,
                20 - expected.len() as i64,
                "missed"
            ),
            "{policy}"
        );
        assert_eq!(skips.len(), 2, "{policy}");
    }

    // The admin API shows the same.
    let (status, body) = app.send(app.admin(Method::GET, "/schedules")).await;
    assert_eq!(status, 200, "{body}");
    let list = body["schedules"].as_array().expect("a list");
    assert_eq!(list.len(), 3);
    let latest = list
        .iter()
        .find(|s| s["flow"] == "c_latest")
        .expect("c_latest");
    assert_eq!(latest["cron"], "* * * * *");
    assert_eq!(latest["timezone"], "UTC");
    assert_eq!(latest["skipped"], 30);
    assert_eq!(latest["last_job_state"], "available");
    assert!(latest["last_job_id"].is_i64());
    assert_eq!(latest["trigger"]["catch_up"], "latest");
    let (status, body) = app
        .send(app.admin(Method::GET, "/schedules/c_skip/skips"))
        .await;
    assert_eq!(status, 200, "{body}");
    let reasons: Vec<&str> = body["skips"]
        .as_array()
        .expect("skips")
        .iter()
        .map(|s| s["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(reasons, ["missed", "too_late"]);
    let (status, body) = app
        .send(app.admin(Method::GET, "/schedules/nope/skips"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("api.not_found"))
    );
}

#[tokio::test]
async fn an_occurrence_due_while_a_run_is_unfinished_is_skipped_under_overlap_skip() {
    let app = scheduling_only().await;
    app.publish(&scheduled(
        "busy",
        json!({"cron": "* * * * * *", "overlap": "skip"}),
    ))
    .await;
    wait_until(Duration::from_secs(10), "a first job", || async {
        jobs_of(&app, "busy").await >= 1
    })
    .await;
    sqlx::query(
        "UPDATE sluice.jobs SET state = 'running', attempt = 1, attempted_at = now(), \
         lease_until = now() + interval '1 hour' WHERE kind = 'busy'",
    )
    .execute(&app.db)
    .await
    .expect("running");
    wait_until(Duration::from_secs(10), "two overlap skips", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(occurrences), 0)::bigint FROM sluice.schedule_skips \
             WHERE flow = 'busy' AND reason = 'overlap'",
        )
        .fetch_one(&app.db)
        .await
        .expect("skips");
        n >= 2
    })
    .await;
    assert_eq!(jobs_of(&app, "busy").await, 1);
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let skipped: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sluice_schedule_skipped_total{flow=\"busy\"} "))
        .expect("the skipped counter")
        .parse()
        .expect("a number");
    assert!(skipped >= 2.0, "{text}");
}

#[tokio::test]
async fn republishing_keeps_the_next_fire_time_and_unpublishing_stops_the_schedule() {
    let app = scheduling_only().await;
    let doc = scheduled("yearly", json!({"cron": "0 0 1 1 *"}));
    let id = app.publish(&doc).await;
    wait_until(Duration::from_secs(10), "the schedule row", || async {
        schedule_row(&app, "yearly").await.is_some()
    })
    .await;
    // An occurrence no fresh computation would give.
    sqlx::query(
        "UPDATE sluice.schedules SET next_fire_at = '2030-01-01T00:00:00Z' WHERE flow = 'yearly'",
    )
    .execute(&app.db)
    .await
    .expect("set");

    let republish = |doc: Value| {
        let app = &app;
        async move {
            let (_, flow) = app
                .send(app.admin(Method::GET, &format!("/flows/{id}")))
                .await;
            let rev = flow["rev"].as_str().expect("a rev").to_string();
            let (status, body) = app
                .send(
                    app.admin(Method::PUT, &format!("/flows/{id}"))
                        .header("If-Match", format!("\"{rev}\""))
                        .json(&doc),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = app
                .send(app.admin(Method::POST, &format!("/flows/{id}/publish")))
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // A new policy, same cron and zone: the next fire time stays.
    republish(scheduled(
        "yearly",
        json!({"cron": "0 0 1 1 *", "overlap": "allow"}),
    ))
    .await;
    wait_until(Duration::from_secs(10), "the new policy", || async {
        let overlap: String = sqlx::query_scalar(
            "SELECT trigger->>'overlap' FROM sluice.schedules WHERE flow = 'yearly'",
        )
        .fetch_one(&app.db)
        .await
        .expect("trigger");
        overlap == "allow"
    })
    .await;
    assert_eq!(
        schedule_row(&app, "yearly").await.as_deref(),
        Some("2030-01-01T00:00:00")
    );
    // A new cron: computed afresh.
    republish(scheduled(
        "yearly",
        json!({"cron": "0 0 2 1 *", "overlap": "allow"}),
    ))
    .await;
    wait_until(Duration::from_secs(10), "the new cron", || async {
        schedule_row(&app, "yearly")
            .await
            .is_some_and(|t| t.ends_with("-01-02T00:00:00") && !t.starts_with("2030"))
    })
    .await;

    let (status, _) = app
        .send(app.admin(Method::DELETE, &format!("/flows/{id}/publish")))
        .await;
    assert_eq!(status, 204);
    wait_until(Duration::from_secs(10), "the schedule stops", || async {
        schedule_row(&app, "yearly").await.is_none()
    })
    .await;

    // A frequent schedule stops enqueueing once unpublished.
    let id = app
        .publish(&scheduled(
            "often",
            json!({"cron": "* * * * * *", "overlap": "allow"}),
        ))
        .await;
    wait_until(Duration::from_secs(10), "a job", || async {
        jobs_of(&app, "often").await >= 1
    })
    .await;
    app.send(app.admin(Method::DELETE, &format!("/flows/{id}/publish")))
        .await;
    wait_until(Duration::from_secs(10), "the schedule stops", || async {
        schedule_row(&app, "often").await.is_none()
    })
    .await;
    let after = jobs_of(&app, "often").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jobs_of(&app, "often").await, after);
}

#[tokio::test]
async fn the_preview_gives_the_next_times_across_a_dst_change_or_points_at_the_bad_field() {
    let app = scheduling_only().await;
    let (status, body) = app
        .send(app.admin(Method::POST, "/schedules/preview").json(&json!({
            "cron": "30 2 * * *", "timezone": "Europe/Paris", "after": "2026-10-23T12:00:00Z"
        })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["times"],
        json!([
            "2026-10-24T02:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:30:00+01:00",
            "2026-10-27T02:30:00+01:00",
            "2026-10-28T02:30:00+01:00"
        ])
    );
    let (status, body) = app
        .send(app.admin(Method::POST, "/schedules/preview").json(&json!({
            "cron": "30 2 * * *", "timezone": "Europe/Paris", "after": "2026-03-28T12:00:00Z",
            "count": 2
        })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["times"],
        json!(["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"])
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/schedules/preview")
                .json(&json!({"cron": "61 * * * *", "timezone": "UTC"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "schedule.invalid");
    assert_eq!(body["error"]["details"][0]["pointer"], "/cron");
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/schedules/preview")
                .json(&json!({"cron": "* * * * *", "timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "schedule.invalid");
    assert_eq!(body["error"]["details"][0]["pointer"], "/timezone");
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/schedules/preview")
                .json(&json!({"cron": "* * * * *", "timezone": "UTC", "count": 21})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["details"][0]["pointer"].as_str()),
        (400, Some("/count"))
    );
    let (status, body) = app
        .send(
            app.admin(Method::POST, "/schedules/preview")
                .json(&json!({"cron": "* * * * *", "timezone": "UTC"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["times"].as_array().map(Vec::len), Some(5));
    let (status, _) = app
        .send(
            app.client
                .post(format!("{}/_/api/v1/schedules/preview", app.editor_base))
                .json(&json!({"cron": "* * * * *", "timezone": "UTC"})),
        )
        .await;
    assert_eq!(status, 401);
}

#[test]
fn validate_refuses_a_bad_cron_with_its_pointer() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("schedules-validate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let doc = scheduled("nightly", json!({"cron": "0 25 * * *"}));
    std::fs::write(dir.join("nightly.flow.json"), doc.to_string()).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .arg(&dir)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("flow.bad_cron at /trigger/cron"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn concurrent_ticks_fire_a_due_schedule_once() {
    use sluice::events::scheduler::{ScheduleStats, tick};
    use sluice::flow::trigger::{Trigger, trigger};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let app = scheduling_only().await;
    let doc = scheduled(
        "race",
        json!({"cron": "* * * * *", "catch_up": "all", "catch_up_max": 3, "overlap": "allow"}),
    );
    app.publish(&doc).await;
    wait_until(Duration::from_secs(10), "the schedule row", || async {
        schedule_row(&app, "race").await.is_some()
    })
    .await;
    let mut diags = Vec::new();
    let Some(Trigger::Schedule(s)) = trigger(&doc, &mut diags) else {
        panic!("a schedule: {diags:?}")
    };
    let schedules = Arc::new(BTreeMap::from([("race".to_string(), *s)]));
    let stats = Arc::new(ScheduleStats::default());
    // As if no instance had run for ten minutes; then eight ticks at once, besides the app's.
    let t0: f64 = sqlx::query_scalar(
        "UPDATE sluice.schedules \
         SET next_fire_at = date_trunc('minute', now()) - interval '10 minutes' \
         WHERE flow = 'race' RETURNING extract(epoch FROM next_fire_at)::float8",
    )
    .fetch_one(&app.db)
    .await
    .expect("set back");
    let ticks: Vec<_> = (0..8)
        .map(|_| {
            let (db, schedules, stats) = (app.db.clone(), schedules.clone(), stats.clone());
            tokio::spawn(async move { tick(&db, &schedules, &stats).await })
        })
        .collect();
    for t in ticks {
        t.await.expect("joined").expect("a tick");
    }
    let (next, jobs, skipped, skip_rows): (f64, i64, i64, i64) = sqlx::query_as(
        "SELECT extract(epoch FROM next_fire_at)::float8, \
                (SELECT count(*) FROM sluice.jobs WHERE kind = 'race'), \
                (SELECT COALESCE(sum(occurrences), 0)::bigint FROM sluice.schedule_skips \
                 WHERE flow = 'race'), \
                (SELECT count(*) FROM sluice.schedule_skips WHERE flow = 'race') \
         FROM sluice.schedules WHERE flow = 'race'",
    )
    .fetch_one(&app.db)
    .await
    .expect("figures");
    // Every minute from t0 up to the next fire time is one job or one skipped occurrence.
    let minutes = ((next - t0) / 60.0).round() as i64;
    assert!(minutes >= 11, "{minutes}");
    assert_eq!(jobs + skipped, minutes, "jobs {jobs}, skipped {skipped}");
    assert!((3..=4).contains(&jobs), "{jobs}");
    assert_eq!(skip_rows, 1, "one record of the missed minutes");
}
