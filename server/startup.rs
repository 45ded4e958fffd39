//! Building and running the server: socket first (so tests can use port 0 and read the port),
//! then the database (a private cluster when no URL is given), migrations, the first admin,
//! the route table; then serve until a shutdown signal and stop what was started.

use crate::config::Config;
use crate::engine::outbound::{AllowList, Outbound};
use crate::engine::{Runtime, ScriptLimits};
use crate::http::{self, AppState};
use crate::pg::EmbeddedPg;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A pooled connection idle for longer than this is checked before it is handed out.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(10);

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use the data directory {dir}: {source}")]
    DataDir { dir: String, source: std::io::Error },
    #[error("another Sluice is already using the data directory {0}")]
    DataDirLocked(String),
    #[error(transparent)]
    Postgres(#[from] crate::pg::PgError),
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot start the relay to the transaction pooler: {0}")]
    Relay(std::io::Error),
    #[error("cannot migrate the catalog: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the first admin or the token key: {0}")]
    Admin(#[from] crate::auth::AuthError),
    #[error("cannot build the outbound HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("cannot load the published flows: {0:?}")]
    Routes(crate::http::error::ApiError),
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// A built, not yet serving, Sluice.
pub struct App {
    listener: TcpListener,
    /// The editor's own listener, when `SLUICE_EDITOR_ADDR` is set.
    editor_listener: Option<TcpListener>,
    edge: crate::config::EdgeConfig,
    trusted_proxies: Vec<ipnet::IpNet>,
    state: AppState,
    pg: Option<EmbeddedPg>,
    _data_lock: Option<std::fs::File>,
    /// The relays to a transaction pooler (`SLUICE_DATABASE_POOLER=transaction`).
    _relays: Vec<crate::pg::pinning::Pinning>,
    /// Following other instances' changes; stops when the app is dropped.
    _sync: crate::serving::follow::SyncTasks,
    _sessions: AbortOnDrop,
    /// Firing schedule triggers (docs/EVENTS.md, "Schedules"); stops when dropped.
    _scheduler: crate::events::scheduler::Scheduler,
    /// The table-event dispatcher and the pruning of finished jobs; stop when dropped.
    _events: (crate::events::changes::Tasks, crate::events::prune::Task),
    /// The job workers (`None`: `SLUICE_WORKERS=0`).
    workers: Option<crate::events::worker::Workers>,
    /// `sluice worker`: only the health and metrics routes are served.
    worker_only: bool,
}

impl App {
    pub async fn build(config: Config) -> Result<App, StartupError> {
        let listener =
            TcpListener::bind(config.addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: config.addr,
                    source,
                })?;
        let editor_listener = match config.edge.editor_addr {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
        };
        let (url, pg, lock) = match &config.database_url {
            Some(url) => (url.expose().to_string(), None, None),
            None => {
                let lock = lock_data_dir(&config.data_dir)?;
                let pg = EmbeddedPg::start(&config.data_dir.join("pg")).await?;
                (pg.database_url().to_string(), Some(pg), Some(lock))
            }
        };
        let direct_url = config
            .database_direct_url
            .as_ref()
            .map_or(url.as_str(), |u| u.expose());
        // Without `extra_float_digits` (see [`pool`]): the direct URL may be a session pooler.
        let direct = PgConnectOptions::from_str(direct_url)
            .map_err(StartupError::Connect)?
            .extra_float_digits(None);
        migrate(&direct).await?;
        let mut relays = Vec::new();
        let db = pool(&config, &url, &mut relays).await?;
        let read = match &config.database_read_url {
            Some(u) => Some(pool(&config, u.expose(), &mut relays).await?),
            None => None,
        };
        if let Some((email, password)) = &config.admin {
            crate::auth::bootstrap_admin(&db, email, password.expose()).await?;
        }
        let limits = ScriptLimits {
            timeout: config.script_timeout,
            ..ScriptLimits::default()
        };
        let key_sealer = config
            .key_encryption_key
            .as_ref()
            .map(|k| crate::auth::key_seal::KeySealer::new(&k.0));
        // Makes the first signing key if there is none; the reload below loads the ring.
        crate::auth::token_key(&db, key_sealer.as_ref()).await?;
        // A fresh instance opens setup only to whoever holds the token printed in the log.
        let fresh = crate::catalog::users::count(&db)
            .await
            .map_err(StartupError::Connect)?
            == 0;
        let setup_token = fresh.then(|| match &config.setup_token {
            Some(t) => t.expose().to_string(),
            None => http::session::SetupGate::random_token(),
        });
        let allow = AllowList::new(
            config.http_allow.hosts.clone(),
            config.http_allow.nets.clone(),
        )
        .with_ports(
            config.http_allow.host_ports.clone(),
            config.http_allow.net_ports.clone(),
        );
        let outbound = Outbound::new(allow).map_err(StartupError::HttpClient)?;
        let ops = Arc::new(http::ops::Ops::start(
            &config.ops,
            db.clone(),
            !config.addr.ip().is_loopback(),
        ));
        let runtime = Arc::new(Runtime {
            max_result_bytes: config.max_result_bytes,
            read: read.map(crate::engine::lane::Lane::for_pool),
            pooled: config.database_pooler == crate::config::Pooler::Transaction,
            ..Runtime::new(db.clone(), limits, outbound)
        });
        let state = AppState {
            serving: Arc::new(http::Serving::new(runtime.clone(), key_sealer, ops.clone())),
            runtime,
            db,
            max_body: config.max_body_bytes,
            secure_cookies: config.cookies_secure(),
            setup: Arc::new(http::session::SetupGate::new(
                setup_token,
                config.setup_allow_remote,
            )),
            ops,
        };
        let served = state
            .serving
            .reload()
            .await
            .map_err(|e| StartupError::Routes(e.into()))?;
        tracing::info!(endpoints = served, "loaded published flows");
        // Table events and the queue's housekeeping (docs/EVENTS.md).
        let events = (
            crate::events::changes::start(
                state.serving.clone(),
                state.db.clone(),
                crate::events::changes::Options {
                    direct: direct.clone(),
                    listen: config.reload_listen,
                    every: Duration::from_secs(1),
                },
            ),
            crate::events::prune::start(
                state.db.clone(),
                crate::queue::admin::Retention {
                    finished: config.job_retention,
                    discarded: config
                        .job_retention
                        .max(Duration::from_secs(30 * 24 * 3600)),
                },
                Duration::from_secs(3600),
            ),
        );
        let workers = crate::events::worker::start(
            state.serving.clone(),
            state.runtime.clone(),
            crate::events::worker::WorkerOptions {
                listen: Some(direct.clone()),
                ..(&config.jobs).into()
            },
        );
        let sync = crate::serving::follow::start(
            state.serving.clone(),
            crate::serving::follow::SyncOptions {
                listen: config.reload_listen,
                check_every: config.reload_check,
                direct,
            },
        );
        // Sessions ended on other instances reach this one's revoked set (docs/SESSIONS.md).
        let sessions = AbortOnDrop(tokio::spawn(crate::auth::sessions::follow(
            state.db.clone(),
            state.runtime.sessions.clone(),
        )));
        let scheduler = crate::events::scheduler::start(
            state.serving.clone(),
            state.db.clone(),
            state.ops.metrics.schedules.clone(),
        );
        Ok(App {
            listener,
            editor_listener,
            edge: config.edge.clone(),
            trusted_proxies: config.ops.trusted_proxies.clone(),
            state,
            pg,
            _data_lock: lock,
            _relays: relays,
            _sync: sync,
            _sessions: sessions,
            _scheduler: scheduler,
            _events: events,
            workers,
            worker_only: config.worker_only,
        })
    }

    /// The job workers' name (`attempted_by`), when this instance runs workers.
    pub fn worker_id(&self) -> Option<&str> {
        self.workers.as_ref().map(|w| w.id())
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port of the editor's own listener, when it has one.
    pub fn editor_port(&self) -> Option<u16> {
        self.editor_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The one-time setup token while no editor account exists (it is printed in the log).
    pub fn setup_token(&self) -> Option<String> {
        self.state.setup.token()
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish, then closes the pool
    /// and stops the private cluster if there is one.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let App {
            listener,
            editor_listener,
            edge,
            trusted_proxies,
            state,
            pg,
            _data_lock,
            _relays: relays,
            _sync: sync,
            _sessions: sessions,
            _scheduler: scheduler,
            _events: events,
            workers,
            worker_only,
        } = self;
        let stop_claiming = workers.as_ref().map(|w| w.stopper());
        let db = state.db.clone();
        let runtime = state.runtime.clone();
        let ops = state.ops.clone();
        // In-flight requests get a bounded time to finish once shutdown starts.
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            if let Some(stop) = stop_claiming {
                stop();
            }
            let _ = started_tx.send(());
        };
        let (main, editor) = if worker_only {
            (http::health_router(state), None)
        } else {
            http::routers(state, editor_listener.is_some())
        };
        let mut listeners = vec![(listener, main)];
        if let (Some(l), Some(r)) = (editor_listener, editor) {
            listeners.push((l, r));
        }
        let limits = http::listener::ConnLimits {
            header_timeout: edge.header_timeout,
            body_timeout: edge.body_timeout,
            per_ip: edge.max_connections_per_ip,
            exempt: trusted_proxies,
        };
        let serving = http::listener::serve(listeners, limits, signal);
        let drained = async move {
            if started_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let served: Result<(), std::io::Error> = tokio::select! {
            () = serving => Ok(()),
            _ = drained => {
                tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "in-flight requests did not finish in time; stopping anyway");
                Ok(())
            }
        };
        // Running jobs finish (within the drain time) before the pool closes.
        if let Some(w) = workers {
            w.shutdown().await;
        }
        ops.shutdown().await;
        // No reload or schedule may start on a closing pool.
        drop(sync);
        drop(sessions);
        drop(scheduler);
        drop(events);
        // The flows' lanes hold connections of the pools until given back.
        runtime.lane.release_idle();
        db.close().await;
        if let Some(read) = &runtime.read {
            read.release_idle();
            read.pool().close().await;
        }
        drop(relays);
        if let Some(pg) = pg {
            pg.stop().await?;
        }
        served.map_err(StartupError::Serve)
    }
}

/// A pool of request connections to `url` (the database, or its read replica). Nothing is
/// sent at connection start beyond what every pooler accepts: every statement names its
/// schema, and the result cap is written into the statements
/// ([`crate::engine::sql::Prepared::text_capped`]). Behind a transaction pooler the pool
/// connects through a relay of its own ([`crate::pg::pinning`]), kept in `relays`, and
/// prepares every statement afresh (the relay runs it on one server connection).
async fn pool(
    config: &Config,
    url: &str,
    relays: &mut Vec<crate::pg::pinning::Pinning>,
) -> Result<PgPool, StartupError> {
    let mut options = PgConnectOptions::from_str(url)
        .map_err(StartupError::Connect)?
        // PgBouncer refuses unknown startup parameters, and `extra_float_digits` is one; since
        // PostgreSQL 12 its default already prints floats exactly.
        .extra_float_digits(None);
    if config.database_pooler == crate::config::Pooler::Transaction {
        let relay =
            crate::pg::pinning::Pinning::start(options.get_host().to_string(), options.get_port())
                .await
                .map_err(StartupError::Relay)?;
        options = options
            .host("127.0.0.1")
            .port(relay.port())
            .ssl_mode(sqlx::postgres::PgSslMode::Disable)
            .statement_cache_capacity(0);
        relays.push(relay);
    }
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings every connection it hands out: one more round trip to Postgres per
        // request. Only a connection that sat idle long enough for Postgres or the network to
        // have dropped it is checked (and replaced when the check fails); a busy pool hands
        // out connections it just used.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < CHECK_IDLE_AFTER {
                    return Ok(true);
                }
                Ok(sqlx::Connection::ping(conn).await.is_ok())
            })
        })
        .connect_with(options)
        .await
        .map_err(StartupError::Connect)
}

/// Brings the catalog up to date over one session of its own (`SLUICE_DATABASE_DIRECT_URL`):
/// sqlx's migration table is named without a schema and its lock is a session lock, so the
/// session's `search_path` is set to the catalog's schema first, which a transaction pooler
/// would not keep. Run before the request pool opens.
async fn migrate(direct: &PgConnectOptions) -> Result<(), StartupError> {
    use sqlx::Executor;
    let session = PgPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(format!("SET search_path TO \"{}\"", crate::catalog::SCHEMA).as_str())
                    .await
                    .map(|_| ())
            })
        })
        .connect_with(direct.clone())
        .await
        .map_err(StartupError::Connect)?;
    let migrated = crate::catalog::migrate(&session).await;
    session.close().await;
    Ok(migrated?)
}

/// One Sluice per data directory: a second one would stop the first one's cluster.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartupError> {
    let io = |source| StartupError::DataDir {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("sluice.lock"))
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StartupError::DataDirLocked(dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// `sluice serve`: build, log where to go, serve until Ctrl-C or SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartupError> {
    // Listen for the signals before anything starts: a signal that arrives while the server
    // starts (or just after it answers its first request) must still stop it.
    let shutdown = shutdown_signal();
    let app = App::build(config).await?;
    let addr = app.listener.local_addr().map_err(StartupError::Serve)?;
    tracing::info!(
        "Sluice is ready: admin API http://{addr}/_/api/v1 · endpoints http://{addr}/api"
    );
    // An address to open in a browser: a wildcard listener is reached through loopback here.
    let mut local = addr;
    if local.ip().is_unspecified() {
        local.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    tracing::info!("Editor: http://{local}/_/");
    if let Some(token) = app.setup_token() {
        // The one secret Sluice prints on purpose: whoever reads the log owns the instance.
        tracing::warn!(
            "No editor account yet. Create the first one at http://{local}/_/setup?token={token} (one-time link)"
        );
    }
    app.run_until(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM. The listeners are registered when this is called, not when the future is
/// first polled, so no signal between the two is lost.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = wait(interrupt) => {},
            _ = wait(term) => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

/// A background task that ends with the value holding it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
