//! What is served, as ONE immutable value behind one atomic swap: the routes (built by the
//! layer above, with the API documents), the published functions, the token keys, the
//! environment values and the catalog generation they were read at ([`Served`]). A request
//! loads it once and keeps that snapshot to its end, so it never mixes two generations.
//!
//! `load` (build a [`Served`] from the catalog and swap it in), `publish` and `unpublish` are
//! written here once; every other change to what is served goes through
//! [`Serving::change`], which runs the change and the reload as one call, so no caller can
//! forget the reload. The instance follower ([`follow`]) reloads when another instance moved
//! the catalog's generation.
//!
//! Sits between `engine`/`catalog`/`tables` and `http`: it knows sqlx, not axum. The engine does
//! not know this module; it gets the [`Live`] part of a snapshot per run. The routes are a type
//! of the layer above ([`Routes`]), so this module needs nothing of `http`.

pub mod follow;
pub mod warm;

use crate::auth::key_seal::KeySealer;
use crate::catalog::groups::GroupRecord;
use crate::catalog::{CatalogError, flows};
use crate::engine::Plan;
use crate::engine::{Live, Program};
use crate::flow::Diagnostic;
use crate::tables::def::Tables;
use crate::tables::store::TableError;
use arc_swap::ArcSwap;
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Notify;

/// The routes of one generation, as the layer above serves them (the HTTP route table and the
/// API documents), built from the published endpoints of the catalog.
pub trait Routes: Default + Send + Sync + Sized + 'static {
    /// What building needs besides the catalog (the HTTP layer's metrics and rate limits).
    type Builder: Send + Sync + 'static;

    /// Builds the routes of one generation and says how many endpoints they serve. An
    /// endpoint that cannot be placed is logged and left out; the others are still served.
    fn build(builder: &Self::Builder, catalog: &Catalog<'_>) -> (Self, usize);
}

/// What the catalog publishes at one generation, for [`Routes::build`].
pub struct Catalog<'a> {
    pub tables: &'a Tables,
    /// Every API group, enabled or not.
    pub groups: &'a [GroupRecord],
    /// The published endpoints (flows with an endpoint) that compile.
    pub endpoints: &'a [Endpoint],
}

/// A published endpoint flow, compiled.
pub struct Endpoint {
    pub flow_id: i64,
    pub program: Arc<Program>,
    /// The published document (for the API documents).
    pub document: Value,
}

/// Everything served at one generation. Immutable; replaced as a whole.
pub struct Served<R> {
    /// What a run needs: functions, token keys, environment values.
    pub live: Live,
    /// The routes and API documents (see [`Routes`]).
    pub routes: Arc<R>,
    /// The catalog generation this was read at (at least).
    pub generation: i64,
}

impl<R: Routes> Default for Served<R> {
    fn default() -> Self {
        Served {
            live: Live::default(),
            routes: Arc::default(),
            generation: 0,
        }
    }
}

/// Why what is served could not be changed or reloaded.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    /// The flow does not compile against the current tables and functions.
    #[error("the flow has {} problem(s)", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// A change made through [`Serving::change`] failed, or it succeeded and the reload after it
/// failed.
#[derive(Debug)]
pub enum Changed<E> {
    Change(E),
    Reload(ServeError),
}

/// A publish that went through: the flow's plan, its new version and where it is served.
pub struct Publication {
    pub plan: Plan,
    pub version: i32,
    /// The draft was the live version already: nothing was added (`flows::publish`).
    pub unchanged: bool,
    /// `METHOD <base path><path>` or `function <name>`.
    pub route_key: String,
    /// The base path of the endpoint's group (empty for a function).
    pub base_path: String,
}

/// The one value served, and how it changes.
pub struct Serving<R: Routes> {
    db: PgPool,
    /// What flows run against: its lanes are given back to their pools and warmed there.
    runtime: Arc<crate::engine::Runtime>,
    /// Seals and opens the stored token keys (`SLUICE_KEY_ENCRYPTION_KEY`), if configured.
    key_sealer: Option<KeySealer>,
    builder: R::Builder,
    current: ArcSwap<Served<R>>,
    /// Serializes reloads, so two of them cannot swap in each other's older view.
    reload_lock: tokio::sync::Mutex<()>,
    /// Wakes the follower's reloader ([`follow`]).
    wake: Notify,
    /// Whether a load has run (the first one opens the start connections, [`warm`]).
    loaded: std::sync::atomic::AtomicBool,
}

impl<R: Routes> Serving<R> {
    /// Serves nothing until the first [`Serving::reload`]. Reads the catalog through the
    /// runtime's pool.
    pub fn new(
        runtime: Arc<crate::engine::Runtime>,
        key_sealer: Option<KeySealer>,
        builder: R::Builder,
    ) -> Serving<R> {
        Serving {
            db: runtime.db.clone(),
            runtime,
            key_sealer,
            builder,
            current: ArcSwap::from_pointee(Served::default()),
            reload_lock: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            loaded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// What flows run against.
    pub fn runtime(&self) -> &Arc<crate::engine::Runtime> {
        &self.runtime
    }

    /// The snapshot served now. A request takes it once and uses it to its end.
    pub fn load(&self) -> Arc<Served<R>> {
        self.current.load_full()
    }

    /// The catalog generation served.
    pub fn generation(&self) -> i64 {
        self.current.load().generation
    }

    /// The sealer of the stored token keys, for the code that rotates them.
    pub fn key_sealer(&self) -> Option<&KeySealer> {
        self.key_sealer.as_ref()
    }

    /// Builds what is served from the catalog (published versions, API groups, token keys,
    /// environment values) and swaps it in; returns how many flows are served. Endpoints of a
    /// disabled group are not served (they answer 404); a published flow that no longer
    /// compiles is logged and not served.
    pub async fn reload(&self) -> Result<usize, ServeError> {
        let _guard = self.reload_lock.lock().await;
        // Read first: what is loaded below is at least this new, so a later check that sees
        // the same generation has nothing to do.
        let generation = crate::catalog::groups::generation(&self.db).await?;
        let token_keys = crate::auth::key_ring(&self.db, self.key_sealer.as_ref()).await?;
        let env = crate::engine::env::Env::from_entries(crate::catalog::env::load(&self.db).await?);
        let tables = crate::tables::store::all(&self.db).await?;
        let groups = crate::catalog::groups::all(&self.db).await?;
        let mut functions = HashMap::new();
        let mut triggered = HashMap::new();
        let mut endpoints = Vec::new();
        for (flow_id, document) in flows::published(&self.db).await? {
            let program = crate::nodes::compile(&document, Some(&tables))
                .map_err(|d| {
                    d.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .and_then(|plan| Program::build(plan, &tables).map_err(|e| e.to_string()));
            match program {
                Ok(p) if p.plan.endpoint.is_some() => endpoints.push(Endpoint {
                    flow_id,
                    program: Arc::new(p),
                    document,
                }),
                Ok(p) if p.plan.trigger.is_some() => {
                    triggered.insert(p.plan.name.clone(), Arc::new(p));
                }
                Ok(p) => {
                    functions.insert(p.plan.name.clone(), Arc::new(p));
                }
                Err(problem) => {
                    tracing::error!(flow.id = flow_id, %problem, "a published flow no longer compiles; it is not served")
                }
            }
        }
        // Prepared on the idle connections before the swap, so the first request of a new
        // generation finds its statements ready; the first load (before the server answers
        // ready) also opens the start connections.
        let statements = warm::statements(
            endpoints
                .iter()
                .map(|e| e.program.as_ref())
                .chain(functions.values().map(Arc::as_ref))
                .chain(triggered.values().map(Arc::as_ref)),
            self.runtime.max_result_bytes,
        );
        let first = !self.loaded.swap(true, std::sync::atomic::Ordering::AcqRel);
        if !self.runtime.pooled {
            let open = if first { warm::START_CONNECTIONS } else { 0 };
            for lane in std::iter::once(&self.runtime.lane).chain(&self.runtime.read) {
                warm::warm(lane, &statements, open).await;
            }
        }
        let catalog = Catalog {
            tables: &tables,
            groups: &groups,
            endpoints: &endpoints,
        };
        let (routes, endpoints_served) = R::build(&self.builder, &catalog);
        let served = endpoints_served + functions.len() + triggered.len();
        self.current.store(Arc::new(Served {
            live: Live {
                functions: Arc::new(functions),
                triggered: Arc::new(triggered),
                token_keys: Arc::new(token_keys),
                env: Arc::new(env),
                replay: None,
            },
            routes: Arc::new(routes),
            generation,
        }));
        Ok(served)
    }

    /// Reloads if the catalog's generation is ahead of the one served (another instance, or a
    /// change that did not reload here, moved it); returns whether it did.
    pub async fn reload_if_moved(&self) -> Result<bool, ServeError> {
        let current = crate::catalog::groups::generation(&self.db).await?;
        if current <= self.generation() {
            return Ok(false);
        }
        let served = self.reload().await?;
        tracing::info!(
            generation = current,
            endpoints = served,
            "reloaded after a change in the catalog"
        );
        Ok(true)
    }

    /// Reloads the token keys alone (a token signed by a key this instance has not heard of
    /// yet): the snapshot is replaced by the same one with the new key ring. Returns whether
    /// the ring was reloaded.
    pub async fn refresh_keys(&self) -> bool {
        let _guard = self.reload_lock.lock().await;
        match crate::auth::key_ring(&self.db, self.key_sealer.as_ref()).await {
            Ok(ring) => {
                let now = self.current.load();
                self.current.store(Arc::new(Served {
                    live: Live {
                        token_keys: Arc::new(ring),
                        ..now.live.clone()
                    },
                    routes: now.routes.clone(),
                    generation: now.generation,
                }));
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload the token key ring");
                false
            }
        }
    }

    /// Runs `change` (anything that changes what is served: an environment value, a group, a
    /// table, a token key, a flow's deletion) and, when it succeeds, reloads. One call, so the
    /// reload cannot be forgotten.
    pub async fn change<T, E>(
        &self,
        change: impl Future<Output = Result<T, E>>,
    ) -> Result<T, Changed<E>> {
        let out = change.await.map_err(Changed::Change)?;
        self.reload().await.map_err(Changed::Reload)?;
        Ok(out)
    }

    /// Compiles a document against the current tables and the published functions.
    pub async fn compile(&self, doc: &Value) -> Result<Plan, ServeError> {
        let catalog = self.catalog().await?;
        crate::nodes::compile(doc, Some(&catalog)).map_err(ServeError::Invalid)
    }

    /// What [`Self::compile`] checks a document against: the current tables and the published
    /// functions.
    pub async fn catalog(&self) -> Result<crate::flow::node::Catalog, ServeError> {
        let served = self.current.load();
        Ok(crate::flow::node::Catalog {
            tables: crate::tables::store::all(&self.db).await?,
            functions: served.live.functions.keys().cloned().collect(),
            jobs: job_flows(&served.live),
        })
    }

    /// Publishes the draft of flow `id` (at rev `expected`, or whatever rev it has) as its next
    /// version, with an optional note, and serves it.
    pub async fn publish(
        &self,
        id: i64,
        expected: Option<String>,
        user_id: i64,
        note: Option<&str>,
    ) -> Result<Publication, ServeError> {
        let record = flows::get(&self.db, id).await?;
        let plan = self.compile(&record.document).await?;
        let expected = expected.unwrap_or(record.rev);
        let mut tx = self.db.begin().await?;
        let (published, route_key, base_path) =
            publish_in(&mut tx, id, &expected, &plan, user_id, note).await?;
        tx.commit().await?;
        let version = published.version;
        if !published.unchanged {
            self.reload().await?;
        }
        tracing::info!(flow.id = id, flow.name = %plan.name, version, unchanged = published.unchanged, route = %route_key, "published");
        Ok(Publication {
            plan,
            version,
            unchanged: published.unchanged,
            route_key,
            base_path,
        })
    }

    /// Takes flow `id` off the air: its route (or function) disappears at once; the draft and
    /// the version history stay. Returns the version that was published, if one was.
    pub async fn unpublish(&self, id: i64) -> Result<Option<i32>, ServeError> {
        let was = crate::catalog::flow_versions::unpublish(&self.db, id).await?;
        self.reload().await?;
        tracing::info!(flow.id = id, version = was, "unpublished");
        Ok(was)
    }
}

/// The names of the published flows with a `job` trigger (`job.enqueue`'s targets).
pub fn job_flows(live: &Live) -> std::collections::BTreeSet<String> {
    live.triggered
        .iter()
        .filter(|(_, p)| matches!(p.plan.trigger, Some(crate::flow::trigger::Trigger::Job)))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Publishes the draft of flow `id` at rev `expected` (compiled to `plan`) as its next version,
/// inside the caller's transaction: the flow's route key is taken (a function is published
/// under its name, for `call` nodes) and the version recorded. The catalog's triggers move the
/// serving generation and notify the instances on commit; the caller reloads after committing
/// (or leaves it to [`Serving::change`]). Returns what was published, route key and base path.
pub(crate) async fn publish_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    expected: &str,
    plan: &Plan,
    user_id: i64,
    note: Option<&str>,
) -> Result<(flows::Published, String, String), CatalogError> {
    let (route_key, base_path) = crate::catalog::groups::published_route(tx, plan).await?;
    let published = flows::publish(tx, id, expected, &route_key, user_id, note).await?;
    Ok((published, route_key, base_path))
}

/// Replaces the draft of published flow `id` by `doc` and publishes it, inside the caller's
/// transaction (a table change rewriting the flows that read a renamed field). A document
/// that does not compile on its own keeps an empty route key until it is published again.
pub(crate) async fn republish_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    doc: &Value,
    user_id: i64,
) -> Result<(), CatalogError> {
    let rev = crate::flow::canonical::rev(doc);
    flows::replace_draft_in(tx, id, doc, &rev).await?;
    match crate::nodes::compile(doc, None) {
        Ok(plan) => {
            publish_in(tx, id, &rev, &plan, user_id, None).await?;
        }
        Err(_) => {
            flows::publish(tx, id, &rev, "", user_id, None).await?;
        }
    }
    Ok(())
}
