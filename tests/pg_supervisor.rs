//! The embedded PostgreSQL supervisor against the machine's real PostgreSQL
//! server binaries: data survives restarts, and a postgres orphaned by a
//! crashed Sluice is recovered.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sluice::pg::EmbeddedPg;
use sqlx::{Connection, PgConnection};

/// A fresh directory under /tmp, removed on drop (also after a failed test).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "sluice-pg-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch(path)
    }

    fn cluster_dir(&self) -> PathBuf {
        self.0.join("pg")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // A relocated cluster lives behind a symlink; remove its target too.
        if let Ok(target) = std::fs::read_link(self.cluster_dir()) {
            let _ = std::fs::remove_dir_all(target);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Shows the supervisor's tracing output for failing tests (`--nocapture` for all).
fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("sluice=debug")
        .with_test_writer()
        .try_init();
}

async fn connect(pg: &EmbeddedPg) -> PgConnection {
    PgConnection::connect(pg.database_url())
        .await
        .expect("connect to the embedded cluster")
}

async fn insert_note(pg: &EmbeddedPg, text: &str) {
    let mut conn = connect(pg).await;
    sqlx::query("CREATE TABLE IF NOT EXISTS notes (body text NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO notes (body) VALUES ($1)")
        .bind(text)
        .execute(&mut conn)
        .await
        .expect("insert row");
    conn.close().await.expect("close connection");
}

async fn notes(pg: &EmbeddedPg) -> Vec<String> {
    let mut conn = connect(pg).await;
    let rows = sqlx::query_scalar("SELECT body FROM notes ORDER BY body")
        .fetch_all(&mut conn)
        .await
        .expect("select rows");
    conn.close().await.expect("close connection");
    rows
}

fn postmaster_pid(cluster: &Path) -> u32 {
    let content =
        std::fs::read_to_string(cluster.join("postmaster.pid")).expect("read postmaster.pid");
    content
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .expect("pid on the first line of postmaster.pid")
}

/// Parent pid from /proc/<pid>/stat (field 4, after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_cluster_keeps_its_data() {
    init_logs();
    let scratch = Scratch::new("restart");
    let dir = scratch.cluster_dir();

    let began = Instant::now();
    let pg = EmbeddedPg::start(&dir).await.expect("first start");
    eprintln!("first start (initdb) took {:?}", began.elapsed());
    let url = pg.database_url().to_owned();
    assert!(url.starts_with("postgres://sluice:"), "{pg:?}");
    assert!(url.ends_with("/sluice"), "{pg:?}");
    assert!(
        !format!("{pg:?}").contains(&url),
        "Debug must not leak the URL"
    );
    insert_note(&pg, "kept").await;
    pg.stop().await.expect("first stop");
    assert!(!dir.join("postmaster.pid").exists());

    let began = Instant::now();
    let pg = EmbeddedPg::start(&dir).await.expect("second start");
    let second_start = began.elapsed();
    eprintln!("second start (existing cluster) took {second_start:?}");
    assert!(
        second_start < Duration::from_secs(2),
        "took {second_start:?}"
    );
    assert_eq!(notes(&pg).await, ["kept"]);
    pg.stop().await.expect("second stop");

    let password_file = scratch.0.join("pg-password");
    let mode = std::fs::metadata(&password_file)
        .expect("password file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!scratch.0.join("pg.init-tmp").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orphaned_postgres_is_recovered() {
    init_logs();
    let scratch = Scratch::new("orphan");
    let dir = scratch.cluster_dir();
    let crashed = EmbeddedPg::start(&dir).await.expect("first start");
    insert_note(&crashed, "survives").await;

    // Kill the whole watchdog (the sh and its stdin reader) but not postgres,
    // as if everything around postgres had been killed with -9.
    let postgres = postmaster_pid(&dir);
    let watchdog = parent_of(postgres).expect("postgres has a parent");
    let reader_and_others: Vec<u32> = std::fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| *pid != postgres && parent_of(*pid) == Some(watchdog))
        .collect();
    kill_9(watchdog);
    for pid in reader_and_others {
        kill_9(pid);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(is_running(postgres), "postgres should now be an orphan");

    let began = Instant::now();
    let recovered = EmbeddedPg::start(&dir).await.expect("start after crash");
    eprintln!("start with orphan recovery took {:?}", began.elapsed());
    assert!(!is_running(postgres), "the orphan must have been stopped");
    assert_ne!(postmaster_pid(&dir), postgres);
    assert_eq!(notes(&recovered).await, ["survives"]);
    recovered.stop().await.expect("stop");
    drop(crashed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_the_postgres_user_cannot_reach_is_relocated() {
    init_logs();
    if !is_root() {
        eprintln!("skipped: only root switches to an unprivileged PostgreSQL user");
        return;
    }
    init_logs();
    let scratch = Scratch::new("private");
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o700))
        .expect("make scratch dir private");
    let dir = scratch.cluster_dir();

    let pg = EmbeddedPg::start(&dir).await.expect("start");
    insert_note(&pg, "relocated").await;
    pg.stop().await.expect("stop");
    let target = std::fs::read_link(&dir).expect("cluster dir became a symlink");
    assert!(target.starts_with("/var/lib/sluice/clusters"), "{target:?}");

    let pg = EmbeddedPg::start(&dir)
        .await
        .expect("restart through the symlink");
    assert_eq!(notes(&pg).await, ["relocated"]);
    pg.stop().await.expect("stop again");
}
