//! Preparing the cluster directory before postgres starts: where it lives,
//! crash-safe initialization, ownership, and recovery from a crashed Sluice.
//!
//! Everything here blocks (filesystem, initdb, waiting for an orphan), so it
//! runs on tokio's blocking pool.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use super::PgError;
use super::binaries::Binaries;
use super::os_user::PgUser;

/// Where clusters go when the PostgreSQL user cannot reach the requested
/// directory (e.g. a data dir under /root).
const RELOCATION_ROOT: &str = "/var/lib/sluice/clusters";
const PASSWORD_FILE: &str = "pg-password";
/// How long an orphaned postgres gets for a fast shutdown before SIGKILL.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(30);

/// A cluster ready to be started.
#[derive(Debug)]
pub(super) struct Prepared {
    pub binaries: Binaries,
    pub user: PgUser,
    /// Where the cluster really lives (the target if the requested dir is a symlink).
    pub data_dir: PathBuf,
    pub password: String,
}

impl Prepared {
    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }
}

pub(super) fn prepare(requested: &Path) -> Result<Prepared, PgError> {
    let binaries = Binaries::find()?;
    let user = PgUser::detect()?;
    let requested = std::path::absolute(requested).map_err(io("resolve", requested))?;
    let parent = requested
        .parent()
        .ok_or(PgError::BadClusterDir {
            path: requested.clone(),
            reason: "it has no parent directory",
        })?
        .to_path_buf();
    fs::create_dir_all(&parent).map_err(io("create directory", &parent))?;
    let data_dir = locate(&requested, &parent, &user)?;
    tracing::debug!(
        dir = %data_dir.display(),
        user = %user.name,
        initdb = %binaries.initdb.display(),
        "preparing embedded PostgreSQL"
    );
    let password_file = parent.join(PASSWORD_FILE);
    let password = if data_dir.join("PG_VERSION").is_file() {
        recover(&data_dir)?;
        read_password(&password_file)?.ok_or(PgError::PasswordMissing {
            path: password_file,
        })?
    } else {
        if data_dir.exists() && fs::remove_dir(&data_dir).is_err() {
            return Err(PgError::BadClusterDir {
                path: data_dir,
                reason: "it is not empty but has no PG_VERSION, so it is not a PostgreSQL cluster",
            });
        }
        let password = match read_password(&password_file)? {
            // Left by an initdb that crashed after the password was saved.
            Some(password) => password,
            None => create_password(&password_file)?,
        };
        initialize(&binaries, &user, &data_dir, &password)?;
        password
    };
    hand_over(&user, &data_dir)?;
    Ok(Prepared {
        binaries,
        user,
        data_dir,
        password,
    })
}

/// Decides where the cluster lives. A root Sluice whose PostgreSQL user cannot
/// enter the parent directory puts the cluster under [`RELOCATION_ROOT`] and
/// leaves a symlink at the requested path, so later runs simply follow it.
fn locate(requested: &Path, parent: &Path, user: &PgUser) -> Result<PathBuf, PgError> {
    if let Ok(meta) = fs::symlink_metadata(requested)
        && meta.file_type().is_symlink()
    {
        let target = fs::read_link(requested).map_err(io("read symlink", requested))?;
        return Ok(parent.join(target));
    }
    if user.switch_to.is_none() || user.can_enter(parent) {
        return Ok(requested.to_path_buf());
    }

    let root = Path::new(RELOCATION_ROOT);
    fs::create_dir_all(root).map_err(io("create directory", root))?;
    // Both levels must be traversable by the PostgreSQL user whatever the umask.
    for dir in [root.parent().unwrap_or(root), root] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(io("set permissions of", dir))?;
    }
    let digest = Sha256::digest(requested.as_os_str().as_encoded_bytes());
    let name: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let target = root.join(name);
    // A non-empty directory is a cluster created while the path was still
    // reachable; it moves along.
    if requested.is_dir() && fs::remove_dir(requested).is_err() {
        fs::rename(requested, &target).map_err(io("move cluster to", &target))?;
    }
    std::os::unix::fs::symlink(&target, requested).map_err(io("create symlink", requested))?;
    tracing::info!(
        dir = %requested.display(),
        target = %target.display(),
        user = %user.name,
        "PostgreSQL user cannot enter the cluster's parent directory; cluster placed under {RELOCATION_ROOT} with a symlink"
    );
    Ok(target)
}

/// Runs initdb into `<dir>.init-tmp` and renames it into place only on
/// success, so a crash mid-way never leaves a half-made cluster at `dir`.
/// `data_dir` must not exist.
fn initialize(
    binaries: &Binaries,
    user: &PgUser,
    data_dir: &Path,
    password: &str,
) -> Result<(), PgError> {
    let began = Instant::now();
    let staging = with_suffix(data_dir, ".init-tmp");
    let pwfile = TempFile(with_suffix(data_dir, ".pwfile"));
    // The pwfile is readable only by the PostgreSQL user and lives just as long as initdb.
    remove_if_exists(&pwfile.0)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&pwfile.0)
        .map_err(io("create", &pwfile.0))?;
    writeln!(file, "{password}").map_err(io("write", &pwfile.0))?;
    drop(file);
    user.chown(&pwfile.0)?;

    // Proper character classification (upper(), ILIKE) needs a UTF-8 locale;
    // `--no-locale` is the fallback for systems without C.UTF-8.
    let mut failure = None;
    for locale in ["--locale=C.UTF-8", "--no-locale"] {
        if fs::symlink_metadata(&staging).is_ok() {
            fs::remove_dir_all(&staging).map_err(io("remove leftover", &staging))?;
        }
        fs::create_dir(&staging).map_err(io("create directory", &staging))?;
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions of", &staging))?;
        user.chown(&staging)?;
        let mut pwfile_arg = OsString::from("--pwfile=");
        pwfile_arg.push(&pwfile.0);
        let output = user
            .command(&binaries.initdb)
            .arg("-D")
            .arg(&staging)
            .args([
                "-U",
                "sluice",
                "-E",
                "UTF8",
                locale,
                "--auth=scram-sha-256",
                "--no-instructions",
            ])
            .arg(pwfile_arg)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| PgError::Spawn {
                program: binaries.initdb.display().to_string(),
                source,
            })?;
        if output.status.success() {
            failure = None;
            break;
        }
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        tracing::warn!(dir = %data_dir.display(), locale, "initdb attempt failed");
        failure = Some(PgError::InitdbFailed {
            status: output.status,
            output: tail(&text, 20),
        });
    }
    drop(pwfile);
    if let Some(error) = failure {
        let _ = fs::remove_dir_all(&staging);
        return Err(error);
    }
    fs::rename(&staging, data_dir).map_err(io("move initialized cluster to", data_dir))?;
    sync_parent(data_dir);
    tracing::info!(
        dir = %data_dir.display(),
        user = %user.name,
        elapsed_ms = began.elapsed().as_millis() as u64,
        "initialized new PostgreSQL cluster"
    );
    Ok(())
}

/// Makes the cluster belong to the PostgreSQL user with the 0700 mode postgres
/// insists on, and makes sure the log directory exists. The recursive chown
/// only runs when the owner is wrong, so a normal start stays cheap.
fn hand_over(user: &PgUser, data_dir: &Path) -> Result<(), PgError> {
    let meta = fs::metadata(data_dir).map_err(io("inspect", data_dir))?;
    if !user.owns(&meta) {
        tracing::info!(dir = %data_dir.display(), user = %user.name, "handing the cluster to the PostgreSQL user");
        user.chown_tree(data_dir)?;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions of", data_dir))?;
    }
    let log_dir = data_dir.join("log");
    if !log_dir.is_dir() {
        fs::create_dir(&log_dir).map_err(io("create directory", &log_dir))?;
        fs::set_permissions(&log_dir, fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions of", &log_dir))?;
        user.chown(&log_dir)?;
    }
    Ok(())
}

/// Stops a postgres that a crashed Sluice left running on this cluster, or
/// clears a stale `postmaster.pid`. Never touches the data itself.
fn recover(data_dir: &Path) -> Result<(), PgError> {
    let pid_file = data_dir.join("postmaster.pid");
    let content = match fs::read_to_string(&pid_file) {
        Ok(content) => content,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(PgError::Io {
                action: "read",
                path: pid_file,
                source,
            });
        }
    };
    let pid = content
        .lines()
        .next()
        .and_then(|line| line.trim().parse::<u32>().ok());
    match pid {
        Some(pid) if is_postgres_of(pid, data_dir) => stop_orphan(pid, data_dir)?,
        _ => tracing::info!(dir = %data_dir.display(), ?pid, "removing stale postmaster.pid"),
    }
    remove_if_exists(&pid_file)
}

fn stop_orphan(pid: u32, data_dir: &Path) -> Result<(), PgError> {
    tracing::warn!(dir = %data_dir.display(), pid, "stopping postgres left running by a previous Sluice");
    signal(pid, "INT")?;
    if wait_for_exit(pid, ORPHAN_TIMEOUT) {
        return Ok(());
    }
    tracing::warn!(
        dir = %data_dir.display(),
        pid,
        "orphaned postgres ignored fast shutdown for {}s; sending SIGKILL",
        ORPHAN_TIMEOUT.as_secs()
    );
    signal(pid, "KILL")?;
    if wait_for_exit(pid, Duration::from_secs(5)) {
        Ok(())
    } else {
        Err(PgError::OrphanSurvived { pid })
    }
}

/// Whether `pid` is a postgres serving `data_dir`. The cmdline check guards
/// against pid reuse; the cwd check (postgres chdirs into its data directory)
/// against another cluster's postgres, when /proc lets us see it.
fn is_postgres_of(pid: u32, data_dir: &Path) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let program = cmdline
        .split(|b| *b == 0 || *b == b' ')
        .next()
        .unwrap_or_default();
    let name = program.rsplit(|b| *b == b'/').next().unwrap_or_default();
    if !name.starts_with(b"postgres") {
        return false;
    }
    match (
        fs::read_link(format!("/proc/{pid}/cwd")),
        fs::canonicalize(data_dir),
    ) {
        (Ok(cwd), Ok(ours)) => cwd == ours,
        _ => true,
    }
}

/// Alive means running: a zombie has exited even if nobody reaped it yet
/// (orphans are reparented to an init that may never reap).
fn is_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

fn wait_for_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Sends a signal with the shell's `kill` builtin (no libc, no procps needed).
pub(super) fn signal(target: u32, signal: &str) -> Result<(), PgError> {
    signal_raw(&target.to_string(), signal)
}

/// Like [`signal`], but `target` may be `-<pgid>` for a process group.
pub(super) fn signal_raw(target: &str, signal: &str) -> Result<(), PgError> {
    std::process::Command::new("/bin/sh")
        .args([
            "-c",
            r#"kill -s "$1" -- "$2" 2>/dev/null"#,
            "sh",
            signal,
            target,
        ])
        .stdin(Stdio::null())
        .status()
        .map(drop)
        .map_err(|source| PgError::Spawn {
            program: "/bin/sh (kill)".into(),
            source,
        })
}

fn read_password(path: &Path) -> Result<Option<String>, PgError> {
    match fs::read_to_string(path) {
        Ok(content) => {
            let password = content.trim();
            if password.is_empty() {
                Ok(None)
            } else {
                Ok(Some(password.to_owned()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PgError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a fresh random password atomically (temp file + rename), 0600 and
/// owned by the user running Sluice.
fn create_password(path: &Path) -> Result<String, PgError> {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let staging = with_suffix(path, ".tmp");
    remove_if_exists(&staging)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)
        .map_err(io("create", &staging))?;
    writeln!(file, "{password}").map_err(io("write", &staging))?;
    file.sync_all().map_err(io("sync", &staging))?;
    drop(file);
    fs::rename(&staging, path).map_err(io("rename password file to", path))?;
    sync_parent(path);
    Ok(password)
}

/// Best effort: makes a rename durable before anything relies on it.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

fn remove_if_exists(path: &Path) -> Result<(), PgError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PgError::Io {
            action: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The last `lines` lines of `text`.
pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PgError {
    let path = path.to_path_buf();
    move |source| PgError::Io {
        action,
        path,
        source,
    }
}

/// Deletes the file on drop, so the pwfile disappears on every exit path.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[test]
    fn our_own_process_is_alive_and_not_postgres() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(!is_postgres_of(me, Path::new("/")));
    }

    #[test]
    fn suffixes_append_to_the_file_name() {
        assert_eq!(
            with_suffix(Path::new("/data/pg"), ".init-tmp"),
            PathBuf::from("/data/pg.init-tmp")
        );
    }
}
