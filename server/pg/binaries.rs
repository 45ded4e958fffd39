//! Finding the machine's PostgreSQL server binaries.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::PgError;

/// Where Debian/Ubuntu install one directory per major version.
const DEBIAN_VERSIONS_ROOT: &str = "/usr/lib/postgresql";

/// `initdb` and `postgres` from one directory, so their versions match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl Binaries {
    /// Searches PATH, then `pg_config --bindir`, then
    /// `/usr/lib/postgresql/*/bin` (highest version first).
    pub fn find() -> Result<Binaries, PgError> {
        let path_var = std::env::var_os("PATH");
        search(
            path_var.as_deref(),
            pg_config_bindir,
            Path::new(DEBIAN_VERSIONS_ROOT),
        )
        .ok_or(PgError::BinariesNotFound)
    }

    fn in_dir(dir: &Path) -> Option<Binaries> {
        let initdb = dir.join("initdb");
        let postgres = dir.join("postgres");
        (is_executable(&initdb) && is_executable(&postgres))
            .then_some(Binaries { initdb, postgres })
    }
}

/// The search order, with its inputs injectable for tests. `pg_config` is only
/// run when PATH has no match, since spawning it costs start-up time.
fn search(
    path_var: Option<&OsStr>,
    pg_config: impl FnOnce() -> Option<PathBuf>,
    versions_root: &Path,
) -> Option<Binaries> {
    if let Some(found) = path_var
        .into_iter()
        .flat_map(std::env::split_paths)
        .filter(|dir| !dir.as_os_str().is_empty())
        .find_map(|dir| Binaries::in_dir(&dir))
    {
        return Some(found);
    }
    if let Some(found) = pg_config().and_then(|dir| Binaries::in_dir(&dir)) {
        return Some(found);
    }
    versioned_bin_dirs(versions_root)
        .into_iter()
        .find_map(|dir| Binaries::in_dir(&dir))
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = String::from_utf8(output.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<root>/<version>/bin`, newest version first ("16" before "9.6"); names
/// that are not versions go last.
fn versioned_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u64>, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let key = version_key(&entry.file_name().to_string_lossy());
            (key, entry.path().join("bin"))
        })
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// `"15"` -> `[15]`, `"9.6"` -> `[9, 6]`, `"17beta1"` -> `[17]`, non-numeric -> `[]`.
fn version_key(name: &str) -> Vec<u64> {
    name.split('.')
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    /// A directory under /tmp removed on drop; unique per test and process.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let path = std::env::temp_dir().join(format!(
                "sluice-pg-binaries-{name}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        /// Creates `<rel>/initdb` and `<rel>/postgres` as executables
        /// (`names` picks which ones) and returns the directory.
        fn bin_dir(&self, rel: &str, names: &[&str]) -> PathBuf {
            let dir = self.0.join(rel);
            std::fs::create_dir_all(&dir).expect("create bin dir");
            for name in names {
                let file = dir.join(name);
                std::fs::write(&file, "#!/bin/sh\n").expect("write fake binary");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod fake binary");
            }
            dir
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const BOTH: &[&str] = &["initdb", "postgres"];

    fn path_of(dirs: &[&Path]) -> OsString {
        std::env::join_paths(dirs).expect("join paths")
    }

    fn found_in(found: Option<Binaries>) -> Option<PathBuf> {
        found.map(|b| {
            assert_eq!(b.initdb.parent(), b.postgres.parent());
            b.initdb
                .parent()
                .expect("binary has a parent")
                .to_path_buf()
        })
    }

    #[test]
    fn path_wins_over_pg_config_and_the_debian_layout() {
        let tmp = TempDir::new("path-wins");
        let on_path = tmp.bin_dir("path-bin", BOTH);
        let from_pg_config = tmp.bin_dir("pg-config-bin", BOTH);
        tmp.bin_dir("versions/15/bin", BOTH);
        let found = search(
            Some(&path_of(&[&on_path])),
            || panic!("pg_config must not run when PATH has the binaries: {from_pg_config:?}"),
            &tmp.0.join("versions"),
        );
        assert_eq!(found_in(found), Some(on_path));
    }

    #[test]
    fn a_path_entry_needs_both_binaries() {
        let tmp = TempDir::new("needs-both");
        let only_initdb = tmp.bin_dir("a", &["initdb"]);
        let complete = tmp.bin_dir("b", BOTH);
        let found = search(Some(&path_of(&[&only_initdb, &complete])), || None, &tmp.0);
        assert_eq!(found_in(found), Some(complete));
    }

    #[test]
    fn non_executable_files_do_not_count() {
        let tmp = TempDir::new("not-exec");
        let dir = tmp.bin_dir("bin", BOTH);
        std::fs::set_permissions(dir.join("postgres"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        assert_eq!(search(Some(&path_of(&[&dir])), || None, &tmp.0), None);
    }

    #[test]
    fn pg_config_is_used_when_path_has_nothing() {
        let tmp = TempDir::new("pg-config");
        let empty = tmp.bin_dir("empty", &[]);
        let from_pg_config = tmp.bin_dir("pg-config-bin", BOTH);
        tmp.bin_dir("versions/15/bin", BOTH);
        let reported = from_pg_config.clone();
        let found = search(
            Some(&path_of(&[&empty])),
            || Some(reported),
            &tmp.0.join("versions"),
        );
        assert_eq!(found_in(found), Some(from_pg_config));
    }

    #[test]
    fn the_highest_complete_debian_version_is_the_last_resort() {
        let tmp = TempDir::new("debian");
        let versions = tmp.0.join("versions");
        tmp.bin_dir("versions/9.6/bin", BOTH);
        let thirteen = tmp.bin_dir("versions/13/bin", BOTH);
        tmp.bin_dir("versions/16/bin", &["initdb"]);
        tmp.bin_dir("versions/not-a-version/bin", BOTH);
        let found = search(None, || None, &versions);
        assert_eq!(found_in(found), Some(thirteen));
    }

    #[test]
    fn nothing_found_anywhere_is_none() {
        let tmp = TempDir::new("nothing");
        let empty = tmp.bin_dir("empty", &[]);
        let found = search(
            Some(&path_of(&[&empty])),
            || Some(tmp.0.join("missing")),
            &tmp.0.join("no-such-root"),
        );
        assert_eq!(found, None);
    }

    #[test]
    fn versions_sort_numerically() {
        let mut names = vec!["9.6", "16", "13", "17beta1", "x"];
        names.sort_by_key(|n| std::cmp::Reverse(version_key(n)));
        assert_eq!(names, ["17beta1", "16", "13", "9.6", "x"]);
    }

    #[test]
    fn the_not_found_message_is_one_actionable_line() {
        let message = PgError::BinariesNotFound.to_string();
        assert!(!message.contains('\n'));
        assert!(message.contains("apt-get install postgresql"));
        assert!(message.contains("SLUICE_DATABASE_URL"));
    }
}
