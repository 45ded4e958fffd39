//! Configuration, read in one place: command-line flags with environment fallbacks. Nothing else
//! in Sluice reads the environment. Secrets are wrapped so they cannot be printed by accident.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A value that must never reach a log: `Debug` prints a placeholder.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Settings of `sluice serve` (also the defaults of a bare `sluice`).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, env = "SLUICE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory for Sluice's own files, including the private Postgres cluster.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./sluice-data")]
    pub data_dir: PathBuf,
    /// Postgres to use. Without it, Sluice runs a private cluster under <data-dir>/pg.
    #[arg(long, env = "SLUICE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
    /// Email of the first editor account, created when no account exists.
    #[arg(long, env = "SLUICE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Password of the first editor account.
    #[arg(long, env = "SLUICE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Wall-clock limit of one Rhai expression or script, in milliseconds.
    #[arg(long, env = "SLUICE_SCRIPT_TIMEOUT_MS", default_value_t = 1000)]
    pub script_timeout_ms: u64,
    /// Most database connections this instance opens.
    #[arg(long, env = "SLUICE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Private hosts the `http.request` node may reach: comma-separated host names
    /// (`*.example.internal` for subdomains), IP addresses or CIDR ranges.
    #[arg(long, env = "SLUICE_HTTP_ALLOW", value_delimiter = ',')]
    pub http_allow: Vec<String>,
    /// Listen for catalog changes made by other instances (`false`: rely on the periodic check).
    #[arg(long, env = "SLUICE_RELOAD_LISTEN", default_value_t = true, action = clap::ArgAction::Set)]
    pub reload_listen: bool,
    /// How often to compare the catalog's serving generation with the one served, in
    /// milliseconds; heals a missed change notification.
    #[arg(long, env = "SLUICE_RELOAD_CHECK_MS", default_value_t = 5000)]
    pub reload_check_ms: u64,
}

/// Non-public targets that outbound requests may reach anyway (`SLUICE_HTTP_ALLOW`).
/// Everything else that is not a public address is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAllow {
    /// Lowercase host names without a trailing dot; `*.name` allows every subdomain of `name`.
    pub hosts: Vec<String>,
    /// Address ranges; a bare address is a range of one.
    pub nets: Vec<ipnet::IpNet>,
}

impl HttpAllow {
    /// Parses comma-separated entries (empty entries are skipped).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<HttpAllow, ConfigError> {
        let mut allow = HttpAllow::default();
        for raw in entries {
            let entry = raw.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            if let Ok(net) = entry.parse::<ipnet::IpNet>() {
                allow.nets.push(net.trunc());
            } else if let Ok(ip) = entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
            {
                allow.nets.push(ipnet::IpNet::from(ip));
            } else if is_host_pattern(entry) {
                allow
                    .hosts
                    .push(entry.trim_end_matches('.').to_ascii_lowercase());
            } else {
                return Err(ConfigError::HttpAllow(entry.to_string()));
            }
        }
        Ok(allow)
    }
}

/// A DNS name, optionally starting with `*.`: labels of letters, digits, `-` and `_`.
fn is_host_pattern(s: &str) -> bool {
    let name = s.strip_prefix("*.").unwrap_or(s).trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // A name made only of digits and dots is a malformed address, not a host.
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub admin: Option<(String, Secret)>,
    pub max_body_bytes: usize,
    pub script_timeout: Duration,
    pub db_max_connections: u32,
    pub http_allow: HttpAllow,
    /// Listen on the catalog's change channel.
    pub reload_listen: bool,
    /// Period of the serving-generation check.
    pub reload_check: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("SLUICE_ADMIN_EMAIL and SLUICE_ADMIN_PASSWORD must be set together")]
    HalfAdmin,
    #[error("SLUICE_ADMIN_PASSWORD must be at least 8 characters")]
    ShortPassword,
    #[error(
        "SLUICE_HTTP_ALLOW: `{0}` is not a host name, an IP address or a CIDR range (e.g. 10.0.0.0/8)"
    )]
    HttpAllow(String),
}

impl Config {
    pub fn from_args(a: ServeArgs) -> Result<Config, ConfigError> {
        let admin = match (a.admin_email, a.admin_password) {
            (Some(e), Some(p)) if p.expose().chars().count() < 8 => {
                let _ = e;
                return Err(ConfigError::ShortPassword);
            }
            (Some(e), Some(p)) => Some((e, p)),
            (None, None) => None,
            _ => return Err(ConfigError::HalfAdmin),
        };
        Ok(Config {
            addr: a.addr,
            data_dir: a.data_dir,
            database_url: a.database_url.filter(|u| !u.expose().is_empty()),
            admin,
            max_body_bytes: a.max_body_bytes,
            script_timeout: Duration::from_millis(a.script_timeout_ms.max(1)),
            db_max_connections: a.db_max_connections.max(2),
            http_allow: HttpAllow::parse(&a.http_allow)?,
            reload_listen: a.reload_listen,
            reload_check: Duration::from_millis(a.reload_check_ms.max(100)),
        })
    }

    /// Defaults for embedding and tests: a free port, a given database, no admin.
    pub fn for_database(url: &str) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::from("./sluice-data"),
            database_url: Some(Secret::new(url)),
            admin: None,
            max_body_bytes: 1 << 20,
            script_timeout: Duration::from_millis(1000),
            db_max_connections: 8,
            http_allow: HttpAllow::default(),
            reload_listen: true,
            reload_check: Duration::from_secs(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_allow_list_takes_hosts_addresses_and_ranges() {
        let allow = HttpAllow::parse(&[
            " api.internal. ",
            "*.svc.local",
            "10.1.2.3/8",
            "127.0.0.1",
            "[::1]",
            "fd00::/8",
            "",
        ])
        .expect("parses");
        assert_eq!(allow.hosts, ["api.internal", "*.svc.local"]);
        let nets: Vec<String> = allow.nets.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8"]);
    }

    #[test]
    fn a_malformed_http_allow_entry_is_a_configuration_error() {
        for bad in [
            "10.0.0/8",
            "http://x",
            "a b",
            "10.0.0.0/33",
            "*.",
            "300.1.1.1",
        ] {
            assert!(
                matches!(HttpAllow::parse(&[bad]), Err(ConfigError::HttpAllow(_))),
                "{bad}"
            );
        }
    }
}

/// How the command line reaches a running Sluice's admin API (`export`, `import`).
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the Sluice to talk to.
    #[arg(long, env = "SLUICE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin API token (from `POST /_/api/v1/auth/login`).
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Log in with this editor account instead of a token.
    #[arg(long, env = "SLUICE_ADMIN_EMAIL")]
    pub email: Option<String>,
    #[arg(long, env = "SLUICE_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
}
