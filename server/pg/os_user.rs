//! The OS user that runs `initdb` and `postgres`.
//!
//! PostgreSQL refuses to run as root, so a root Sluice drops to `postgres`
//! (or `nobody`) for every PostgreSQL process; otherwise the current user runs
//! them.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::PgError;

/// Preferred unprivileged users, in order.
const CANDIDATES: [&str; 2] = ["postgres", "nobody"];

#[derive(Debug, Clone)]
pub(super) struct PgUser {
    /// For logs only.
    pub name: String,
    /// `(uid, gid)` to switch to; `None` when Sluice is not root and PostgreSQL
    /// simply runs as the current user.
    pub switch_to: Option<(u32, u32)>,
}

impl PgUser {
    pub fn detect() -> Result<PgUser, PgError> {
        // /proc/self is owned by the effective uid; this avoids libc::geteuid.
        let euid = std::fs::metadata("/proc/self")
            .map_err(|source| PgError::Io {
                action: "inspect",
                path: "/proc/self".into(),
                source,
            })?
            .uid();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        if euid != 0 {
            let name = parse_passwd(&passwd)
                .find(|entry| entry.uid == euid)
                .map_or_else(|| euid.to_string(), |entry| entry.name.to_owned());
            return Ok(PgUser {
                name,
                switch_to: None,
            });
        }
        CANDIDATES
            .iter()
            .find_map(|wanted| parse_passwd(&passwd).find(|entry| entry.name == *wanted))
            .map(|entry| PgUser {
                name: entry.name.to_owned(),
                switch_to: Some((entry.uid, entry.gid)),
            })
            .ok_or(PgError::NoUnprivilegedUser)
    }

    /// A command that runs as this user, from `/` so a cwd the user cannot
    /// enter (e.g. /root) does not trip up initdb.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir("/");
        if let Some((uid, gid)) = self.switch_to {
            // std also drops supplementary groups when switching away from root.
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Whether this user can reach and enter `dir`, tested for real (ACLs,
    /// every ancestor's mode) rather than guessed from permission bits.
    pub fn can_enter(&self, dir: &Path) -> bool {
        self.command("/bin/sh")
            .args(["-c", r#"test -x "$1""#, "sh"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Hands `path` itself to this user (no-op unless switching users).
    pub fn chown(&self, path: &Path) -> Result<(), PgError> {
        if let Some((uid, gid)) = self.switch_to {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|source| {
                PgError::Io {
                    action: "change the owner of",
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Whether `path` already belongs to the user PostgreSQL runs as.
    pub fn owns(&self, metadata: &std::fs::Metadata) -> bool {
        self.switch_to.is_none_or(|(uid, _)| metadata.uid() == uid)
    }

    /// Hands a whole tree to this user without following symlinks; used when a
    /// cluster changes hands (e.g. the `postgres` user appeared after it was
    /// created for `nobody`).
    pub fn chown_tree(&self, root: &Path) -> Result<(), PgError> {
        if self.switch_to.is_none() {
            return Ok(());
        }
        let mut pending = vec![root.to_path_buf()];
        while let Some(path) = pending.pop() {
            self.chown(&path)?;
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            if is_dir {
                let entries = std::fs::read_dir(&path).map_err(|source| PgError::Io {
                    action: "list",
                    path: path.clone(),
                    source,
                })?;
                pending.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
            }
        }
        Ok(())
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

/// `name:password:uid:gid:gecos:home:shell` lines; malformed ones are skipped.
fn parse_passwd(content: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    content.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        (!name.is_empty() && !name.starts_with('#')).then_some(PasswdEntry { name, uid, gid })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
broken line
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
";

    #[test]
    fn passwd_lines_yield_names_and_ids() {
        let postgres = parse_passwd(PASSWD)
            .find(|e| e.name == "postgres")
            .expect("postgres entry");
        assert_eq!((postgres.uid, postgres.gid), (101, 104));
        let names: Vec<&str> = parse_passwd(PASSWD).map(|e| e.name).collect();
        assert_eq!(names, ["root", "nobody", "postgres"]);
    }
}
