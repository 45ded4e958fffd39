//! The `sh` watchdog that postgres runs under.
//!
//! Sluice holds the write end of the watchdog's stdin. When Sluice closes it,
//! or dies in any way (the kernel closes it then), the watchdog sends postgres
//! SIGINT (fast shutdown) and waits for it. The watchdog also exits as soon as
//! postgres does, so a failed start shows up as the child exiting.
//!
//! It is a std (not tokio) child so it does not depend on a runtime that may
//! already be gone, and it runs in its own process group so a terminal Ctrl-C
//! reaches only Sluice, which then stops postgres in order.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::PgError;
use super::cluster::{self, Prepared};

/// `$1` postgres binary, `$2` data directory, `$3` port; paths never become
/// script text. stdin is kept as fd 3 for the reader only; postgres gets
/// /dev/null. The reader is killed once postgres is gone so it can never
/// signal a recycled pid.
const SCRIPT: &str = r#"
exec 3<&0 0</dev/null
"$1" -D "$2" -p "$3" -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c logging_collector=off -c log_error_verbosity=terse -c log_min_error_statement=panic 3<&- &
pg=$!
{ read -r _ <&3 || true; kill -INT "$pg" 2>/dev/null; } &
reader=$!
exec 3<&-
wait "$pg"
status=$?
kill "$reader" 2>/dev/null
exit "$status"
"#;

/// Rotate `postgres.log` once it grows past this, keeping one old file.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;

pub(super) enum Stopped {
    Exited(ExitStatus),
    Killed,
}

pub(super) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// Where this start's output begins in the log, so errors quote only it.
    log_offset: u64,
}

impl Watchdog {
    pub fn spawn(prepared: &Prepared, port: u16) -> Result<Watchdog, PgError> {
        let log_path = prepared.log_dir().join("postgres.log");
        let (log, log_offset) = open_log(&log_path)?;
        prepared.user.chown(&log_path)?;
        let log_err = log.try_clone().map_err(|source| PgError::Io {
            action: "duplicate handle of",
            path: log_path.clone(),
            source,
        })?;
        let mut child = prepared
            .user
            .command("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("sluice-pg-watchdog")
            .arg(&prepared.binaries.postgres)
            .arg(&prepared.data_dir)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0)
            .spawn()
            .map_err(|source| PgError::Spawn {
                program: "/bin/sh (postgres watchdog)".into(),
                source,
            })?;
        tracing::debug!(
            dir = %prepared.data_dir.display(),
            port,
            user = %prepared.user.name,
            watchdog_pid = child.id(),
            "started postgres under its watchdog"
        );
        let stdin = child.stdin.take();
        Ok(Watchdog {
            child,
            stdin,
            data_dir: prepared.data_dir.clone(),
            log_path,
            log_offset,
        })
    }

    /// Tells the watchdog to shut postgres down.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, PgError> {
        self.child.try_wait().map_err(|e| self.wait_error(e))
    }

    /// Blocks until the watchdog (and so postgres) exits; after `timeout` the
    /// whole process group, postgres and its backends included, is killed.
    pub fn wait_or_kill(mut self, timeout: Duration) -> Result<Stopped, PgError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Stopped::Exited(status));
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster::signal_raw(&format!("-{}", self.child.id()), "KILL")?;
        self.child.wait().map_err(|e| self.wait_error(e))?;
        Ok(Stopped::Killed)
    }

    /// Waits for the exit without a bound, for the detached reaper thread.
    pub fn reap(mut self) {
        self.stdin = None;
        let _ = self.child.wait();
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines this start attempt wrote to the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log_path) {
            let _ = file.seek(SeekFrom::Start(self.log_offset));
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let tail = cluster::tail(&text, lines);
        if tail.is_empty() {
            String::from("(nothing logged)")
        } else {
            tail
        }
    }

    fn wait_error(&self, source: std::io::Error) -> PgError {
        PgError::Io {
            action: "wait for the postgres watchdog of",
            path: self.data_dir.clone(),
            source,
        }
    }
}

/// Whether postgres failed because its port was taken in the meantime.
pub(super) fn is_port_conflict(log_tail: &str) -> bool {
    log_tail.contains("could not create any TCP/IP sockets")
        || log_tail.contains("Address already in use")
}

/// Opens the log for appending (rotating it when large) and returns where
/// this start's output will begin.
fn open_log(path: &Path) -> Result<(File, u64), PgError> {
    if fs::metadata(path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let _ = fs::rename(path, old);
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| PgError::Io {
            action: "open",
            path: path.to_path_buf(),
            source,
        })?;
    let offset = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file, offset))
}
