//! Embedded PostgreSQL supervisor: runs a private PostgreSQL cluster for Sluice
//! from the PostgreSQL server binaries installed on the machine (`initdb`,
//! `postgres`).
//!
//! This module owns the cluster's whole lifecycle: finding the binaries,
//! choosing the OS user that runs them (PostgreSQL refuses to run as root),
//! crash-safe first-time initialization, recovery from a previous crash of
//! Sluice, start-up behind a watchdog that stops PostgreSQL when Sluice dies
//! (even by `kill -9`), and shutdown.
//!
//! It is infrastructure below the HTTP layer and must not depend on http/axum
//! or any other part of Sluice; all it hands out is a database URL. [`pinning`]
//! is the relay to a transaction pooler, infrastructure of the same kind.

mod binaries;
mod cluster;
mod os_user;
pub mod pinning;
mod watchdog;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use self::watchdog::{Stopped, Watchdog};

/// The role and database Sluice uses inside its private cluster.
const ROLE_AND_DATABASE: &str = "sluice";
/// How long PostgreSQL gets to accept connections after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a clean shutdown may take before PostgreSQL is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How often readiness is probed; start-up latency is bounded by this.
const READY_POLL: Duration = Duration::from_millis(50);
/// A port picked as free can be taken by someone else before postgres binds
/// it; a few fresh attempts make that race harmless.
const START_ATTEMPTS: u32 = 3;
/// Lines of `postgres.log` quoted in start-up errors.
const LOG_TAIL_LINES: usize = 20;

/// Everything that can go wrong while running the embedded cluster.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Neither PATH, `pg_config` nor the Debian layout has `initdb` and `postgres`.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH, via pg_config or under \
         /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install postgresql) or \
         set SLUICE_DATABASE_URL"
    )]
    BinariesNotFound,
    /// Sluice runs as root and there is no unprivileged user to run PostgreSQL as.
    #[error(
        "running as root, but neither a `postgres` nor a `nobody` user exists in /etc/passwd to \
         run PostgreSQL as (it refuses to run as root); create one or set SLUICE_DATABASE_URL"
    )]
    NoUnprivilegedUser,
    /// A filesystem operation failed.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being attempted, e.g. "create directory".
        action: &'static str,
        /// The path it was attempted on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An external program (initdb, sh, kill) could not be run at all.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The cluster directory cannot be used as given.
    #[error("cannot use {} as the PostgreSQL cluster directory: {reason}", path.display())]
    BadClusterDir {
        /// The offending directory.
        path: PathBuf,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The cluster exists but its password file is gone, so Sluice cannot log in.
    #[error(
        "the PostgreSQL cluster exists but its password file {} is missing; restore it or move the \
         cluster away to create a new one",
        path.display()
    )]
    PasswordMissing {
        /// Where the password file was expected.
        path: PathBuf,
    },
    /// `initdb` failed; `output` is the tail of what it printed.
    #[error("initdb failed ({status}):\n{output}")]
    InitdbFailed {
        /// initdb's exit status.
        status: ExitStatus,
        /// The last lines of initdb's output.
        output: String,
    },
    /// A postgres left running by a crashed Sluice would not exit.
    #[error("an orphaned postgres (pid {pid}) from a previous run is still running after SIGKILL")]
    OrphanSurvived {
        /// The orphan's process id.
        pid: u32,
    },
    /// postgres exited while Sluice waited for it to accept connections.
    #[error("PostgreSQL exited during start-up ({status}); last lines of {}:\n{log_tail}", log.display())]
    ExitedDuringStart {
        /// The watchdog's exit status, which is postgres's.
        status: ExitStatus,
        /// The server log.
        log: PathBuf,
        /// Its last lines from this start attempt.
        log_tail: String,
    },
    /// postgres did not accept connections in time.
    #[error(
        "PostgreSQL did not accept connections within {}s (last error: {last_error}); last lines of {}:\n{log_tail}",
        READY_TIMEOUT.as_secs(),
        log.display()
    )]
    StartTimedOut {
        /// The last connection error seen.
        last_error: String,
        /// The server log.
        log: PathBuf,
        /// Its last lines from this start attempt.
        log_tail: String,
    },
    /// A SQL step of the set-up (creating the `sluice` database) failed.
    #[error("could not {action}: {source}")]
    Database {
        /// What was being attempted.
        action: &'static str,
        /// The underlying error.
        source: sqlx::Error,
    },
    /// PostgreSQL ignored the fast-shutdown request and had to be killed.
    #[error(
        "PostgreSQL did not shut down within {}s and was killed; it will run crash recovery on next start",
        STOP_TIMEOUT.as_secs()
    )]
    StopTimedOut,
    /// A blocking helper task panicked or was cancelled.
    #[error("background task of the PostgreSQL supervisor failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A running private PostgreSQL cluster.
///
/// Dropping it without [`EmbeddedPg::stop`] still shuts PostgreSQL down (in the
/// background), and so does Sluice dying: the watchdog notices its stdin closing.
pub struct EmbeddedPg {
    data_dir: PathBuf,
    port: u16,
    user: String,
    url: String,
    watchdog: Option<Watchdog>,
}

impl EmbeddedPg {
    /// Creates (first run) or reuses the cluster in `dir` (e.g. `<data-dir>/pg`),
    /// recovers from a previous crash, starts it, waits until it accepts connections.
    ///
    /// The password lives next to `dir` in `pg-password`.
    pub async fn start(dir: &Path) -> Result<EmbeddedPg, PgError> {
        let began = Instant::now();
        let requested = dir.to_path_buf();
        let prepared = tokio::task::spawn_blocking(move || cluster::prepare(&requested)).await??;
        let mut attempt = 1;
        loop {
            match Self::launch(&prepared).await {
                Ok(pg) => {
                    tracing::info!(
                        dir = %pg.data_dir.display(),
                        port = pg.port,
                        user = %pg.user,
                        elapsed_ms = began.elapsed().as_millis() as u64,
                        "embedded PostgreSQL is ready"
                    );
                    return Ok(pg);
                }
                Err(PgError::ExitedDuringStart { log_tail, .. })
                    if attempt < START_ATTEMPTS && watchdog::is_port_conflict(&log_tail) =>
                {
                    tracing::warn!(
                        dir = %prepared.data_dir.display(),
                        attempt,
                        "port taken before PostgreSQL could bind it; retrying on another port"
                    );
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `postgres://sluice:<password>@127.0.0.1:<port>/sluice`
    pub fn database_url(&self) -> &str {
        &self.url
    }

    /// Fast shutdown (SIGINT semantics), waits for the postgres process to exit.
    ///
    /// After 30 s PostgreSQL is killed and [`PgError::StopTimedOut`] is
    /// returned; the data stays safe (crash recovery runs on the next start).
    pub async fn stop(mut self) -> Result<(), PgError> {
        let Some(mut watchdog) = self.watchdog.take() else {
            return Ok(());
        };
        watchdog.close_stdin();
        let began = Instant::now();
        let stopped =
            tokio::task::spawn_blocking(move || watchdog.wait_or_kill(STOP_TIMEOUT)).await??;
        match stopped {
            Stopped::Exited(status) => {
                tracing::info!(
                    dir = %self.data_dir.display(),
                    port = self.port,
                    %status,
                    elapsed_ms = began.elapsed().as_millis() as u64,
                    "embedded PostgreSQL stopped"
                );
                Ok(())
            }
            Stopped::Killed => {
                tracing::warn!(
                    dir = %self.data_dir.display(),
                    port = self.port,
                    "embedded PostgreSQL ignored fast shutdown and was killed"
                );
                Err(PgError::StopTimedOut)
            }
        }
    }

    /// One start attempt on a fresh port; on failure the watchdog is dropped,
    /// which stops whatever was started.
    async fn launch(prepared: &cluster::Prepared) -> Result<EmbeddedPg, PgError> {
        let port = free_port()?;
        let watchdog = Watchdog::spawn(prepared, port)?;
        let mut pg = EmbeddedPg {
            data_dir: prepared.data_dir.clone(),
            port,
            user: prepared.user.name.clone(),
            url: format!(
                "postgres://{ROLE_AND_DATABASE}:{}@127.0.0.1:{port}/{ROLE_AND_DATABASE}",
                prepared.password
            ),
            watchdog: Some(watchdog),
        };
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(port)
            .username(ROLE_AND_DATABASE)
            .password(&prepared.password)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable);
        let conn = pg.wait_until_ready(&options).await?;
        ensure_database(conn).await?;
        Ok(pg)
    }

    async fn wait_until_ready(
        &mut self,
        options: &PgConnectOptions,
    ) -> Result<PgConnection, PgError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(watchdog) = self.watchdog.as_mut()
                && let Some(status) = watchdog.try_wait()?
            {
                return Err(PgError::ExitedDuringStart {
                    status,
                    log: watchdog.log_path().to_path_buf(),
                    log_tail: watchdog.log_tail(LOG_TAIL_LINES),
                });
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = PgConnection::connect_with(options);
            let last_error =
                match tokio::time::timeout(remaining.min(Duration::from_secs(5)), attempt).await {
                    Ok(Ok(conn)) => return Ok(conn),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => String::from("connection attempt timed out"),
                };
            if Instant::now() >= deadline {
                let (log, log_tail) = match &self.watchdog {
                    Some(w) => (w.log_path().to_path_buf(), w.log_tail(LOG_TAIL_LINES)),
                    None => (PathBuf::new(), String::new()),
                };
                return Err(PgError::StartTimedOut {
                    last_error,
                    log,
                    log_tail,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

impl Drop for EmbeddedPg {
    /// Closing the watchdog's stdin makes it shut PostgreSQL down; the exit is
    /// awaited on a detached thread so dropping never blocks.
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            watchdog.close_stdin();
            tracing::debug!(dir = %self.data_dir.display(), port = self.port,
                "EmbeddedPg dropped; shutting PostgreSQL down in the background");
            let _ = std::thread::Builder::new()
                .name("sluice-pg-reaper".into())
                .spawn(move || watchdog.reap());
        }
    }
}

impl fmt::Debug for EmbeddedPg {
    // Hand-written so the password in the URL never ends up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedPg")
            .field("data_dir", &self.data_dir)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Asks the kernel for a currently free loopback port.
fn free_port() -> Result<u16, PgError> {
    let io = |source| PgError::Io {
        action: "reserve a TCP port on",
        path: PathBuf::from("127.0.0.1"),
        source,
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}

/// Creates database `sluice` (owned by role `sluice`, who is connected) unless
/// it exists; checked on every start so a crash right after initdb is harmless.
async fn ensure_database(mut conn: PgConnection) -> Result<(), PgError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(ROLE_AND_DATABASE)
            .fetch_one(&mut conn)
            .await
            .map_err(|source| PgError::Database {
                action: "check for database sluice",
                source,
            })?;
    if !exists {
        // Simple-query protocol: CREATE DATABASE refuses to run inside the
        // implicit transaction of an extended-protocol statement.
        sqlx::raw_sql("CREATE DATABASE sluice")
            .execute(&mut conn)
            .await
            .map_err(|source| PgError::Database {
                action: "create database sluice",
                source,
            })?;
        tracing::info!("created database sluice");
    }
    let _ = conn.close().await;
    Ok(())
}
