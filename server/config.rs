//! Configuration, read in one place: command-line flags with environment fallbacks. Nothing else
//! in Sluice reads the environment. Secrets are wrapped so they cannot be printed by accident.

use crate::base::{RateLimit, RateRule};
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
    /// A direct (or session-pooled) connection to the same database, for migrations and for
    /// listening to catalog changes, when `SLUICE_DATABASE_URL` is a transaction pooler.
    /// Default: `SLUICE_DATABASE_URL`.
    #[arg(long, env = "SLUICE_DATABASE_DIRECT_URL", hide_env_values = true)]
    pub database_direct_url: Option<Secret>,
    /// A read replica: flows that do not write run their statements there.
    #[arg(long, env = "SLUICE_DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<Secret>,
    /// What `SLUICE_DATABASE_URL` (and `SLUICE_DATABASE_READ_URL`) connect to: `none`
    /// (Postgres itself), `session` or `transaction` (a pooler in that mode).
    #[arg(long, env = "SLUICE_DATABASE_POOLER", value_enum, default_value_t = Pooler::None)]
    pub database_pooler: Pooler,
    /// Email of the first editor account, created when no account exists.
    #[arg(long, env = "SLUICE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Password of the first editor account.
    #[arg(long, env = "SLUICE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Largest result one database node (and one data API page) may read, in bytes.
    #[arg(long, env = "SLUICE_MAX_RESULT_BYTES", default_value_t = 16 << 20)]
    pub max_result_bytes: usize,
    /// Wall-clock limit of one Rhai expression or script, in milliseconds.
    #[arg(long, env = "SLUICE_SCRIPT_TIMEOUT_MS", default_value_t = 1000)]
    pub script_timeout_ms: u64,
    /// Most database connections this instance opens.
    #[arg(long, env = "SLUICE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Private hosts the `http.request` node may reach: comma-separated host names
    /// (`*.example.internal` for subdomains), IP addresses or CIDR ranges, each optionally with
    /// a port that is then the only one allowed (`name:8443`, `10.0.0.0/8:5432`, `[fd00::1]:443`).
    #[arg(long, env = "SLUICE_HTTP_ALLOW", value_delimiter = ',')]
    pub http_allow: Vec<String>,
    /// Mark the editor's session cookie `Secure` (HTTPS only) and name it `__Host-sluice_session`.
    /// Default: on, unless the server listens on a loopback address (plain http://127.0.0.1).
    #[arg(long, env = "SLUICE_SECURE_COOKIES", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub secure_cookies: Option<bool>,
    /// Accept the first-run setup (`/_/setup`) from clients that are not on this machine.
    #[arg(long, env = "SLUICE_SETUP_ALLOW_REMOTE", num_args = 0..=1, default_missing_value = "true",
          default_value_t = false, value_parser = clap::builder::BoolishValueParser::new())]
    pub setup_allow_remote: bool,
    /// The one-time setup token of a fresh instance, instead of a random one (provisioning).
    #[arg(long, env = "SLUICE_SETUP_TOKEN", hide_env_values = true)]
    pub setup_token: Option<Secret>,
    /// Listen for catalog changes made by other instances (`false`: rely on the periodic check).
    #[arg(long, env = "SLUICE_RELOAD_LISTEN", default_value_t = true, action = clap::ArgAction::Set)]
    pub reload_listen: bool,
    /// How often to compare the catalog's serving generation with the one served, in
    /// milliseconds; heals a missed change notification.
    #[arg(long, env = "SLUICE_RELOAD_CHECK_MS", default_value_t = 5000)]
    pub reload_check_ms: u64,
    /// How long completed and cancelled jobs are kept: a number with a unit, `7d`, `12h`,
    /// `30m` or `90s` (discarded jobs: at least 30 days).
    #[arg(long, env = "SLUICE_JOB_RETENTION", default_value = "7d", value_parser = parse_retention)]
    pub job_retention: Duration,
    /// Jobs this instance runs at the same time (`0`: an API-only instance, no worker and no
    /// rescuer).
    #[arg(long, env = "SLUICE_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// How long a claimed job stays this worker's without a heartbeat, in milliseconds; the
    /// rescuer hands on a job whose lease ended (its worker died).
    #[arg(long, env = "SLUICE_JOB_LEASE_MS", default_value_t = 30_000)]
    pub job_lease_ms: u64,
    /// The fallback poll for jobs (notifications wake workers at once), in milliseconds.
    #[arg(long, env = "SLUICE_JOB_POLL_MS", default_value_t = 1000)]
    pub job_poll_ms: u64,
    /// How long running jobs may finish after a shutdown signal, in milliseconds; jobs still
    /// running then are left to the rescuer.
    #[arg(long, env = "SLUICE_WORKER_DRAIN_MS", default_value_t = 30_000)]
    pub worker_drain_ms: u64,
    /// 32 bytes (64 hex digits, or base64) that encrypt the token signing keys stored in the
    /// database (AES-256-GCM). Without it they are stored in plaintext.
    #[arg(long, env = "SLUICE_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<Secret>,
    /// Boxed, as `edge`: they keep `ServeArgs` small next to the other commands' arguments
    /// (clippy's `large_enum_variant` on the CLI's command enum).
    #[command(flatten)]
    pub ops: Box<OpsArgs>,
    #[command(flatten)]
    pub edge: Box<EdgeArgs>,
}

/// What the database URLs connect to (`SLUICE_DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Pooler {
    /// Postgres itself.
    #[default]
    None,
    /// A pooler in session mode: the same as Postgres for Sluice.
    Session,
    /// A pooler in transaction mode (PgBouncer's `pool_mode = transaction`): connections go
    /// through a local relay that keeps each statement on one server connection
    /// (`pg::pinning`), and no statement is kept prepared.
    Transaction,
}

/// Connections, deadlines of slow clients and the editor's own address (docs/OPERATIONS.md).
#[derive(Debug, Clone, Args)]
pub struct EdgeArgs {
    /// Serve the editor and the admin API (`/_/`) only on this address; the main address then
    /// answers 404 under `/_/`. Unset: everything on the main address.
    #[arg(long, env = "SLUICE_EDITOR_ADDR")]
    pub editor_addr: Option<SocketAddr>,
    /// Longest wait for a request's headers, in milliseconds; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "SLUICE_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Longest wait in all for the bytes of one request body, in milliseconds.
    #[arg(long, env = "SLUICE_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,
    /// Most open connections per client address (trusted proxies are not counted). 0: no cap.
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,
}

/// Validated [`EdgeArgs`].
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub editor_addr: Option<SocketAddr>,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// 0: no cap.
    pub max_connections_per_ip: usize,
}

impl Default for EdgeConfig {
    fn default() -> EdgeConfig {
        EdgeConfig {
            editor_addr: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections_per_ip: 64,
        }
    }
}

impl EdgeConfig {
    fn from_args(a: EdgeArgs) -> EdgeConfig {
        EdgeConfig {
            editor_addr: a.editor_addr,
            header_timeout: Duration::from_millis(a.header_timeout_ms.max(100)),
            body_timeout: Duration::from_millis(a.body_timeout_ms.max(100)),
            max_connections_per_ip: a.max_connections_per_ip,
        }
    }
}

/// Limits, metrics and the request log (docs/OPERATIONS.md).
#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    /// Server-wide budget per client address over all generated endpoints, `REQUESTS/SECONDS`
    /// (e.g. `600/60`). Unset: none.
    #[arg(long, env = "SLUICE_RATE_LIMIT_PER_IP")]
    pub rate_limit_per_ip: Option<String>,
    /// Server-wide budget per bearer token over all generated endpoints, `REQUESTS/SECONDS`.
    #[arg(long, env = "SLUICE_RATE_LIMIT_PER_TOKEN")]
    pub rate_limit_per_token: Option<String>,
    /// Most clients the rate limiter remembers at once.
    #[arg(long, env = "SLUICE_RATE_LIMIT_MAX_KEYS", default_value_t = 100_000)]
    pub rate_limit_max_keys: usize,
    /// Proxies whose `X-Forwarded-For` is believed: comma-separated addresses or CIDR ranges.
    #[arg(long, env = "SLUICE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Most generated-endpoint requests served at once; more get 503. 0: no limit.
    #[arg(long, env = "SLUICE_MAX_IN_FLIGHT", default_value_t = 512)]
    pub max_in_flight: usize,
    /// When set, `/metrics` needs `Authorization: Bearer <this>`.
    #[arg(long, env = "SLUICE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Share of successful requests written to the request log, 0 to 1 (errors always are).
    #[arg(long, env = "SLUICE_REQUEST_LOG_SAMPLE", default_value_t = 0.01)]
    pub request_log_sample: f64,
    /// Request log rows older than this many hours are deleted.
    #[arg(long, env = "SLUICE_REQUEST_LOG_MAX_AGE_HOURS", default_value_t = 168)]
    pub request_log_max_age_hours: u64,
    /// The request log keeps at most this many rows.
    #[arg(long, env = "SLUICE_REQUEST_LOG_MAX_ROWS", default_value_t = 100_000)]
    pub request_log_max_rows: u64,
}

/// Validated settings of limits, metrics and the request log.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// Server-wide rate limits over all generated endpoints.
    pub rate_limit: RateLimit,
    pub rate_limit_max_keys: usize,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// 0: no limit.
    pub max_in_flight: usize,
    pub metrics_token: Option<Secret>,
    pub request_log: LogConfig,
}

impl Default for OpsConfig {
    fn default() -> OpsConfig {
        OpsConfig {
            rate_limit: RateLimit::default(),
            rate_limit_max_keys: 100_000,
            trusted_proxies: Vec::new(),
            max_in_flight: 512,
            metrics_token: None,
            request_log: LogConfig::default(),
        }
    }
}

impl OpsConfig {
    fn from_args(a: OpsArgs) -> Result<OpsConfig, ConfigError> {
        let rule = |name: &'static str, v: Option<String>| {
            v.filter(|s| !s.trim().is_empty())
                .map(|s| parse_rate(&s).ok_or(ConfigError::RateLimit(name, s)))
                .transpose()
        };
        let nets = HttpAllow::parse(&a.trusted_proxies)
            .map_err(|_| ConfigError::TrustedProxies(a.trusted_proxies.join(",")))?;
        if !nets.hosts.is_empty() || !nets.host_ports.is_empty() || !nets.net_ports.is_empty() {
            return Err(ConfigError::TrustedProxies(a.trusted_proxies.join(",")));
        }
        if !(0.0..=1.0).contains(&a.request_log_sample) {
            return Err(ConfigError::Sample(a.request_log_sample));
        }
        Ok(OpsConfig {
            rate_limit: RateLimit {
                per_ip: rule("SLUICE_RATE_LIMIT_PER_IP", a.rate_limit_per_ip)?,
                per_token: rule("SLUICE_RATE_LIMIT_PER_TOKEN", a.rate_limit_per_token)?,
            },
            rate_limit_max_keys: a.rate_limit_max_keys.max(16),
            trusted_proxies: nets.nets,
            max_in_flight: a.max_in_flight,
            metrics_token: a.metrics_token.filter(|t| !t.expose().is_empty()),
            request_log: LogConfig {
                sample: a.request_log_sample,
                max_age: Duration::from_secs(a.request_log_max_age_hours.saturating_mul(3600)),
                max_rows: a.request_log_max_rows,
            },
        })
    }
}

/// `REQUESTS/SECONDS`, both positive.
fn parse_rate(s: &str) -> Option<RateRule> {
    let (n, w) = s.trim().split_once('/')?;
    let rule = RateRule {
        requests: n.trim().parse().ok().filter(|n| *n > 0)?,
        window_secs: w
            .trim()
            .trim_end_matches('s')
            .parse()
            .ok()
            .filter(|w| *w > 0)?,
    };
    Some(rule)
}

/// Non-public targets that outbound requests may reach anyway (`SLUICE_HTTP_ALLOW`).
/// Everything else that is not a public address is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAllow {
    /// Lowercase host names without a trailing dot; `*.name` allows every subdomain of `name`.
    pub hosts: Vec<String>,
    /// Address ranges; a bare address is a range of one.
    pub nets: Vec<ipnet::IpNet>,
    /// Host name patterns allowed on one port only (`billing.internal:8443`).
    pub host_ports: Vec<(String, u16)>,
    /// Address ranges allowed on one port only (`10.0.0.0/8:5432`, `[fd00::1]:443`).
    pub net_ports: Vec<(ipnet::IpNet, u16)>,
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
            if let Some((target, port)) = split_port(entry) {
                let bracketed = target.starts_with('[');
                let target = target.trim_start_matches('[').trim_end_matches(']');
                if let Some(net) = parse_net(target) {
                    allow.net_ports.push((net, port));
                } else if !bracketed && is_host_pattern(target) {
                    allow
                        .host_ports
                        .push((target.trim_end_matches('.').to_ascii_lowercase(), port));
                } else {
                    return Err(ConfigError::HttpAllow(entry.to_string()));
                }
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

/// Splits `target:port` where the entry names a port: `name:443`, `10.0.0.1:443`,
/// `10.0.0.0/8:443`, `[fd00::1]:443`, `[fd00::/8]:443`. A bare IPv6 address or range (which
/// holds colons itself) names no port; an entry whose port is not 1 to 65535 names none either
/// and is then refused as malformed.
fn split_port(entry: &str) -> Option<(&str, u16)> {
    let (target, port) = if entry.starts_with('[') {
        let close = entry.find(']')?;
        let port = entry[close + 1..].strip_prefix(':')?;
        (&entry[..=close], port)
    } else {
        let (target, port) = entry.rsplit_once(':')?;
        if target.contains(':') {
            return None;
        }
        (target, port)
    };
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    Some((target, port))
}

/// An address or a CIDR range (truncated to its network).
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .map(|n| n.trunc())
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
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
    /// `SLUICE_DATABASE_DIRECT_URL`: migrations and the catalog listener (`None`: the main URL).
    pub database_direct_url: Option<Secret>,
    /// `SLUICE_DATABASE_READ_URL`: where flows that do not write read (`None`: the main URL).
    pub database_read_url: Option<Secret>,
    /// `SLUICE_DATABASE_POOLER`: what the database URLs connect to.
    pub database_pooler: Pooler,
    pub admin: Option<(String, Secret)>,
    pub max_body_bytes: usize,
    /// `SLUICE_MAX_RESULT_BYTES`: what one database node or data API page may read.
    pub max_result_bytes: usize,
    pub script_timeout: Duration,
    pub db_max_connections: u32,
    pub http_allow: HttpAllow,
    /// The editor's session cookie is `Secure` and `__Host-` (`None`: unless bound to loopback).
    pub secure_cookies: Option<bool>,
    /// First-run setup is accepted from non-loopback clients.
    pub setup_allow_remote: bool,
    /// The setup token of a fresh instance (`None`: a random one, printed in the log).
    pub setup_token: Option<Secret>,
    pub ops: OpsConfig,
    pub edge: EdgeConfig,
    /// Listen on the catalog's change channel.
    pub reload_listen: bool,
    /// Period of the serving-generation check.
    pub reload_check: Duration,
    /// Completed and cancelled jobs are deleted this long after they finished.
    pub job_retention: Duration,
    /// Encrypts token signing keys at rest (`SLUICE_KEY_ENCRYPTION_KEY`).
    pub key_encryption_key: Option<KeyEncryptionKey>,
    /// The job workers (`SLUICE_WORKERS`, `SLUICE_JOB_*`).
    pub jobs: JobsConfig,
    /// `sluice worker`: no API and no editor, only /healthz, /readyz and /metrics.
    pub worker_only: bool,
}

/// How this instance runs jobs (docs/OPERATIONS.md, "Workers").
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// Jobs run at the same time; 0: none (no worker, no rescuer).
    pub workers: usize,
    pub lease: Duration,
    pub poll: Duration,
    pub drain: Duration,
}

impl Default for JobsConfig {
    fn default() -> JobsConfig {
        JobsConfig {
            workers: 4,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            drain: Duration::from_secs(30),
        }
    }
}

/// The 32-byte key that encrypts token signing keys at rest; `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey(pub [u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

impl KeyEncryptionKey {
    /// 64 hex digits, or base64 (standard or URL-safe, padding optional) of 32 bytes.
    pub fn parse(s: &str) -> Result<KeyEncryptionKey, ConfigError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .ok()
        } else {
            let unpadded = s.trim_end_matches('=');
            STANDARD_NO_PAD
                .decode(unpadded)
                .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
                .ok()
        };
        bytes
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(KeyEncryptionKey)
            .ok_or(ConfigError::KeyEncryptionKey)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("SLUICE_ADMIN_EMAIL and SLUICE_ADMIN_PASSWORD must be set together")]
    HalfAdmin,
    #[error("SLUICE_ADMIN_PASSWORD must be at least 8 characters")]
    ShortPassword,
    #[error("SLUICE_SETUP_TOKEN must be at least 16 characters")]
    ShortSetupToken,
    #[error(
        "SLUICE_HTTP_ALLOW: `{0}` is not a host name, an IP address or a CIDR range (e.g. 10.0.0.0/8), optionally with a port (name:8443, 10.0.0.0/8:5432, [fd00::1]:443)"
    )]
    HttpAllow(String),
    #[error("{0}: `{1}` is not REQUESTS/SECONDS with both above zero (e.g. 600/60)")]
    RateLimit(&'static str, String),
    #[error("SLUICE_TRUSTED_PROXIES: `{0}` must be IP addresses or CIDR ranges")]
    TrustedProxies(String),
    #[error("SLUICE_REQUEST_LOG_SAMPLE: {0} is not between 0 and 1")]
    Sample(f64),
    #[error(
        "SLUICE_KEY_ENCRYPTION_KEY must be 32 bytes written as 64 hex digits or in base64 (e.g. the output of `openssl rand -base64 32`)"
    )]
    KeyEncryptionKey,
    #[error("{0} needs SLUICE_DATABASE_URL: the private cluster has no pooler or replica")]
    WithoutDatabaseUrl(&'static str),
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
        let database_url = a.database_url.filter(|u| !u.expose().is_empty());
        let database_direct_url = a.database_direct_url.filter(|u| !u.expose().is_empty());
        let database_read_url = a.database_read_url.filter(|u| !u.expose().is_empty());
        if database_url.is_none() {
            if database_direct_url.is_some() {
                return Err(ConfigError::WithoutDatabaseUrl(
                    "SLUICE_DATABASE_DIRECT_URL",
                ));
            }
            if database_read_url.is_some() {
                return Err(ConfigError::WithoutDatabaseUrl("SLUICE_DATABASE_READ_URL"));
            }
            if a.database_pooler != Pooler::None {
                return Err(ConfigError::WithoutDatabaseUrl("SLUICE_DATABASE_POOLER"));
            }
        }
        Ok(Config {
            addr: a.addr,
            data_dir: a.data_dir,
            database_url,
            database_direct_url,
            database_read_url,
            database_pooler: a.database_pooler,
            admin,
            max_body_bytes: a.max_body_bytes,
            max_result_bytes: a.max_result_bytes.max(1024),
            script_timeout: Duration::from_millis(a.script_timeout_ms.max(1)),
            db_max_connections: a.db_max_connections.max(2),
            http_allow: HttpAllow::parse(&a.http_allow)?,
            secure_cookies: a.secure_cookies,
            setup_allow_remote: a.setup_allow_remote,
            setup_token: match a.setup_token {
                Some(t) if t.expose().chars().count() < 16 => {
                    return Err(ConfigError::ShortSetupToken);
                }
                t => t,
            },
            ops: OpsConfig::from_args(*a.ops)?,
            edge: EdgeConfig::from_args(*a.edge),
            reload_listen: a.reload_listen,
            reload_check: Duration::from_millis(a.reload_check_ms.max(100)),
            job_retention: a.job_retention,
            jobs: JobsConfig {
                workers: a.workers,
                lease: Duration::from_millis(a.job_lease_ms.max(1000)),
                poll: Duration::from_millis(a.job_poll_ms.max(10)),
                drain: Duration::from_millis(a.worker_drain_ms),
            },
            worker_only: false,
            key_encryption_key: a
                .key_encryption_key
                .filter(|k| !k.expose().is_empty())
                .map(|k| KeyEncryptionKey::parse(k.expose()))
                .transpose()?,
        })
    }

    /// Whether the editor's session cookie is `Secure` (and named `__Host-sluice_session`): as
    /// configured, else unless the editor listens on a loopback address (its own address when
    /// one is set), where plain `http://127.0.0.1` must keep working.
    pub fn cookies_secure(&self) -> bool {
        let editor = self.edge.editor_addr.unwrap_or(self.addr);
        self.secure_cookies
            .unwrap_or_else(|| !editor.ip().is_loopback())
    }

    /// Defaults for embedding and tests: a free port, a given database, no admin.
    pub fn for_database(url: &str) -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::from("./sluice-data"),
            database_url: Some(Secret::new(url)),
            database_direct_url: None,
            database_read_url: None,
            database_pooler: Pooler::None,
            admin: None,
            max_body_bytes: 1 << 20,
            max_result_bytes: 16 << 20,
            script_timeout: Duration::from_millis(1000),
            db_max_connections: 8,
            http_allow: HttpAllow::default(),
            secure_cookies: None,
            setup_allow_remote: false,
            setup_token: None,
            ops: OpsConfig::default(),
            edge: EdgeConfig::default(),
            reload_listen: true,
            reload_check: Duration::from_secs(5),
            job_retention: Duration::from_secs(7 * 24 * 3600),
            key_encryption_key: None,
            jobs: JobsConfig::default(),
            worker_only: false,
        }
    }
}

/// Settings of the request log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogConfig {
    /// Share of successful requests kept, 0.0 to 1.0. Errors (status 400 and up) are always kept.
    pub sample: f64,
    /// Rows older than this are deleted.
    pub max_age: Duration,
    /// At most this many rows are kept (the newest).
    pub max_rows: u64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            sample: 0.01,
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_rows: 100_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_retention_takes_a_number_with_a_unit() {
        assert_eq!(parse_retention("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_retention("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_retention("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_retention("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "7", "d", "7w", "-1d", "30s", "99999999999999999999d"] {
            assert!(parse_retention(bad).is_err(), "{bad}");
        }
    }

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

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn serve(argv: &[&str]) -> Result<Config, ConfigError> {
        use clap::Parser;
        let all = ["sluice"].iter().chain(argv).copied();
        Config::from_args(Serve::try_parse_from(all).expect("parses").args)
    }

    #[test]
    fn workers_default_to_four_and_a_lease_is_at_least_a_second() {
        let jobs = serve(&[]).expect("valid").jobs;
        assert_eq!(jobs, JobsConfig::default());
        let jobs = serve(&[
            "--workers",
            "0",
            "--job-lease-ms",
            "10",
            "--job-poll-ms",
            "250",
        ])
        .expect("valid")
        .jobs;
        assert_eq!(jobs.workers, 0);
        assert_eq!(jobs.lease, Duration::from_secs(1));
        assert_eq!(jobs.poll, Duration::from_millis(250));
    }

    #[test]
    fn the_cookie_is_secure_unless_bound_to_loopback_or_told() {
        let secure = |argv: &[&str]| serve(argv).expect("valid").cookies_secure();
        assert!(!secure(&[]), "the default address is loopback");
        assert!(!secure(&["--addr", "[::1]:8080"]));
        assert!(secure(&["--addr", "0.0.0.0:8080"]));
        assert!(secure(&["--addr", "192.0.2.7:8080"]));
        assert!(secure(&["--secure-cookies"]));
        assert!(secure(&["--secure-cookies", "--addr", "127.0.0.1:1"]));
        assert!(secure(&["--secure-cookies=yes"]));
        assert!(!secure(&[
            "--addr",
            "0.0.0.0:8080",
            "--secure-cookies",
            "false"
        ]));
        assert!(!secure(&["--addr", "0.0.0.0:8080", "--secure-cookies=off"]));
    }

    #[test]
    fn setup_settings_default_to_local_and_random() {
        let c = serve(&[]).expect("valid");
        assert!(!c.setup_allow_remote && c.setup_token.is_none());
        assert!(
            serve(&["--setup-allow-remote"])
                .expect("valid")
                .setup_allow_remote
        );
        let c = serve(&["--setup-token", "0123456789abcdef"]).expect("valid");
        assert_eq!(
            c.setup_token.map(|t| t.expose().to_string()).as_deref(),
            Some("0123456789abcdef")
        );
        assert!(matches!(
            serve(&["--setup-token", "short"]),
            Err(ConfigError::ShortSetupToken)
        ));
    }

    #[test]
    fn pooler_and_replica_urls_need_a_database_url() {
        let c = serve(&[]).expect("valid");
        assert!(c.database_direct_url.is_none() && c.database_read_url.is_none());
        assert_eq!(c.database_pooler, Pooler::None);
        let c = serve(&[
            "--database-url",
            "postgres://pooler/db",
            "--database-direct-url",
            "postgres://direct/db",
            "--database-read-url",
            "postgres://replica/db",
            "--database-pooler",
            "transaction",
        ])
        .expect("valid");
        assert_eq!(c.database_pooler, Pooler::Transaction);
        assert_eq!(
            c.database_read_url
                .map(|u| u.expose().to_string())
                .as_deref(),
            Some("postgres://replica/db")
        );
        assert!(matches!(
            serve(&["--database-read-url", "postgres://replica/db"]),
            Err(ConfigError::WithoutDatabaseUrl("SLUICE_DATABASE_READ_URL"))
        ));
        assert!(matches!(
            serve(&["--database-direct-url", "postgres://direct/db"]),
            Err(ConfigError::WithoutDatabaseUrl(
                "SLUICE_DATABASE_DIRECT_URL"
            ))
        ));
    }

    fn ops_args() -> OpsArgs {
        OpsArgs {
            rate_limit_per_ip: Some("600/60".into()),
            rate_limit_per_token: None,
            rate_limit_max_keys: 100_000,
            trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into()],
            max_in_flight: 512,
            metrics_token: Some(Secret::new("")),
            request_log_sample: 0.5,
            request_log_max_age_hours: 2,
            request_log_max_rows: 10,
        }
    }

    #[test]
    fn ops_settings_are_checked_once_at_start() {
        let ops = OpsConfig::from_args(ops_args()).expect("valid");
        assert_eq!(ops.rate_limit.per_ip.map(|r| r.requests), Some(600));
        assert_eq!(ops.trusted_proxies.len(), 2);
        assert!(ops.metrics_token.is_none(), "an empty token means none");
        assert_eq!(ops.request_log.max_age, Duration::from_secs(7200));
        let bad = |f: fn(&mut OpsArgs)| {
            let mut a = ops_args();
            f(&mut a);
            OpsConfig::from_args(a).map(|_| ())
        };
        assert!(matches!(
            bad(|a| a.rate_limit_per_token = Some("fast".into())),
            Err(ConfigError::RateLimit("SLUICE_RATE_LIMIT_PER_TOKEN", _))
        ));
        assert!(matches!(
            bad(|a| a.trusted_proxies = vec!["proxy.internal".into()]),
            Err(ConfigError::TrustedProxies(_))
        ));
        assert!(matches!(
            bad(|a| a.request_log_sample = 1.5),
            Err(ConfigError::Sample(_))
        ));
    }

    #[test]
    fn rates_are_requests_per_seconds() {
        assert_eq!(
            parse_rate(" 600/60s "),
            Some(RateRule {
                requests: 600,
                window_secs: 60
            })
        );
        for bad in ["0/60", "10/0", "10", "ten/60", "10/-1"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_key_encryption_key_is_32_bytes_in_hex_or_base64() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let k = KeyEncryptionKey::parse(hex).expect("hex");
        assert_eq!(k.0[1], 0x11);
        assert_eq!(k.0[31], 0xff);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]);
        assert_eq!(KeyEncryptionKey::parse(&b64).expect("base64").0, [0xfb; 32]);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert_eq!(
            KeyEncryptionKey::parse(&url).expect("base64url").0,
            [0xfb; 32]
        );
        for bad in [
            "",
            "short",
            &hex[..62],
            &base64::engine::general_purpose::STANDARD.encode([1u8; 31]),
        ] {
            assert!(KeyEncryptionKey::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format!("{k:?}"), "KeyEncryptionKey(***)");
    }

    #[test]
    fn http_allow_entries_can_name_a_port() {
        let allow = HttpAllow::parse(&[
            "billing.internal:8443",
            "*.svc.local:80",
            "10.0.0.0/8:5432",
            "10.1.2.3:80",
            "[fd00::1]:443",
            "[fd00::/8]:8080",
            "fd00::2",
            "[::1]",
        ])
        .expect("valid");
        assert_eq!(
            allow.host_ports,
            vec![
                ("billing.internal".to_string(), 8443),
                ("*.svc.local".to_string(), 80)
            ]
        );
        let net = |s: &str| s.parse::<ipnet::IpNet>().expect("net");
        assert_eq!(
            allow.net_ports,
            vec![
                (net("10.0.0.0/8"), 5432),
                (net("10.1.2.3/32"), 80),
                (net("fd00::1/128"), 443),
                (net("fd00::/8"), 8080)
            ]
        );
        assert_eq!(allow.nets, vec![net("fd00::2/128"), net("::1/128")]);
        assert!(allow.hosts.is_empty());
    }

    #[test]
    fn a_malformed_http_allow_entry_is_a_configuration_error() {
        for bad in [
            "host:0",
            "host:65536",
            "host:http",
            "10.0.0.1:",
            "[fd00::1]:",
            "[fd00::1]x",
            "[host]:80",
            "fd00::1:80:",
            "a b:80",
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

/// Where `sluice test` makes its throwaway database.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// A Postgres server on which a throwaway database is created for the run and dropped after
    /// it (the user needs CREATEDB). Without it, a private cluster is started in a temporary
    /// directory from the machine's PostgreSQL binaries.
    #[arg(long, env = "SLUICE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,
}

/// `SLUICE_JOB_RETENTION`: a whole number with a unit (`d`, `h`, `m`, `s`), at least a minute.
fn parse_retention(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let unit = match s.chars().last() {
        Some('d') => 86_400,
        Some('h') => 3_600,
        Some('m') => 60,
        Some('s') => 1,
        _ => return Err("a number with a unit: 7d, 12h, 30m or 90s".into()),
    };
    let n: u64 = s[..s.len() - 1]
        .parse()
        .map_err(|_| "a whole number with a unit: 7d, 12h, 30m or 90s".to_string())?;
    let secs = n.checked_mul(unit).ok_or("too long")?;
    if secs < 60 {
        return Err("at least one minute".into());
    }
    Ok(Duration::from_secs(secs))
}
