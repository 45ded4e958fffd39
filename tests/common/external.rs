//! Outside programs a test runs next to the shared cluster: PgBouncer and a streaming replica
//! made with `pg_basebackup`. As root they run as the `postgres` user (PostgreSQL and PgBouncer
//! refuse root), as `sluice::pg` runs its own cluster. Each is stopped and its directory removed
//! when its handle drops.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an outside program gets to accept connections.
const READY: Duration = Duration::from_secs(30);

/// The parts of a `postgres://user:password@host:port/database` URL.
#[derive(Debug, Clone)]
pub struct PgUrl {
    pub user: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl PgUrl {
    pub fn parse(url: &str) -> PgUrl {
        let u = reqwest::Url::parse(url).expect("a database URL");
        PgUrl {
            user: u.username().to_string(),
            password: u.password().unwrap_or_default().to_string(),
            host: u.host_str().expect("a host").to_string(),
            port: u.port().unwrap_or(5432),
            database: u.path().trim_start_matches('/').to_string(),
        }
    }

    /// The same URL on another port (and database).
    pub fn with(&self, port: u16, database: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{port}/{database}",
            self.user, self.password, self.host
        )
    }
}

/// `(uid, gid)` of `postgres` when this process is root; `None` runs programs as ourselves.
fn unprivileged() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.first() == Some(&"postgres"))
            .then(|| (f[2].parse().expect("uid"), f[3].parse().expect("gid")))
    })
}

/// A command run as the unprivileged user, from `/`.
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    c.current_dir("/");
    if let Some((uid, gid)) = unprivileged() {
        c.uid(uid).gid(gid);
    }
    c
}

/// A fresh directory the unprivileged user owns, mode 0700 (PostgreSQL insists).
fn own_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "sluice-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    if let Some((uid, gid)) = unprivileged() {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown");
    }
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A program of the test and its directory; both go when it drops.
struct Running {
    child: Child,
    dir: PathBuf,
    what: &'static str,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGINT: PgBouncer exits at once, postgres makes a fast shutdown.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Running {
    /// Waits until `port` accepts connections; panics with the log when the program died.
    async fn ready(&mut self, port: u16, log: &Path) {
        let deadline = Instant::now() + READY;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}): {}",
                    self.what,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not accept connections: {}",
                self.what,
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// PgBouncer's pooling modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    Session,
    Transaction,
}

/// A PgBouncer in front of the server of `upstream`, for every database on it.
pub struct PgBouncer {
    pub port: u16,
    upstream: PgUrl,
    _run: Running,
}

impl PgBouncer {
    /// Starts PgBouncer (`pgbouncer` on PATH or in /usr/sbin) with `server_pool` server
    /// connections per database and user.
    pub async fn start(upstream: &str, mode: PoolMode, server_pool: u32) -> PgBouncer {
        let upstream = PgUrl::parse(upstream);
        let dir = own_dir("pgbouncer");
        let port = free_port();
        let log = dir.join("pgbouncer.log");
        let mode = match mode {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        };
        std::fs::write(
            dir.join("users.txt"),
            format!("\"{}\" \"{}\"\n", upstream.user, upstream.password),
        )
        .expect("write the user list");
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={pg}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = md5\nauth_file = {users}\npool_mode = {mode}\n\
                 default_pool_size = {server_pool}\nmax_client_conn = 500\n\
                 logfile = {log}\npidfile = {pid}\n",
                host = upstream.host,
                pg = upstream.port,
                users = dir.join("users.txt").display(),
                log = log.display(),
                pid = dir.join("pgbouncer.pid").display(),
            ),
        )
        .expect("write pgbouncer.ini");
        if let Some((uid, gid)) = unprivileged() {
            for f in ["users.txt", "pgbouncer.ini"] {
                std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).expect("chown");
            }
        }
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("pgbouncer");
        let child = command(program)
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer runs (apt-get install pgbouncer)");
        let mut run = Running {
            child,
            dir,
            what: "pgbouncer",
        };
        run.ready(port, &log).await;
        PgBouncer {
            port,
            upstream,
            _run: run,
        }
    }

    /// The URL of `database` through this pooler.
    pub fn url(&self, database: &str) -> String {
        self.upstream.with(self.port, database)
    }
}

/// The directory of the PostgreSQL server programs (`pg_basebackup`, `postgres`).
fn pg_bin(program: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|b| b.join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// A streaming replica of the cluster of `primary` (a URL of a role that may replicate),
/// made with `pg_basebackup -R` and running on a port of its own.
pub struct Replica {
    pub port: u16,
    primary: PgUrl,
    _run: Running,
}

impl Replica {
    pub async fn start(primary: &str) -> Replica {
        let primary = PgUrl::parse(primary);
        let dir = own_dir("replica");
        let data = dir.join("data");
        let log = dir.join("postgres.log");
        let backup = command(pg_bin("pg_basebackup"))
            .arg("--dbname")
            .arg(primary.with(primary.port, &primary.database))
            .arg("--pgdata")
            .arg(&data)
            .args([
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("pg_basebackup runs");
        assert!(
            backup.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&backup.stderr)
        );
        let port = free_port();
        let child = command(pg_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories=", "-c", "hot_standby=on"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("postgres runs");
        let mut run = Running {
            child,
            dir,
            what: "the replica",
        };
        run.ready(port, &log).await;
        Replica {
            port,
            primary,
            _run: run,
        }
    }

    /// The URL of `database` on the replica.
    pub fn url(&self, database: &str) -> String {
        self.primary.with(self.port, database)
    }
}
