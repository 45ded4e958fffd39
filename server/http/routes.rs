//! The live route table of published flows: compiled programs in a matchit router per method,
//! swapped atomically so publishing never restarts the server or disturbs in-flight requests
//! (they keep the table they started with).

use super::AppState;
use super::cors::Cors;
use super::openapi::{self, ApiDocs};
use super::ops::RouteOps;
use crate::catalog::groups::{GroupRecord, RateLimit};
use crate::engine::Program;
use crate::flow::Method;
use std::collections::HashMap;
use std::sync::Arc;

/// An enabled API group as the dispatcher needs it, compiled once per reload.
#[derive(Debug)]
pub struct ServedGroup {
    pub name: String,
    pub base_path: String,
    pub cors: Option<Cors>,
    /// The group's limits, for the rate limiter.
    pub rate_limit: Option<RateLimit>,
}

impl ServedGroup {
    pub fn compile(g: &GroupRecord) -> ServedGroup {
        ServedGroup {
            name: g.def.name.clone(),
            base_path: g.def.base_path.clone(),
            cors: g.def.cors.as_ref().map(Cors::compile),
            rate_limit: g.def.rate_limit,
        }
    }
}

/// A served endpoint: its program, its group, and its metrics slot and rate limits.
pub struct Route {
    pub program: Arc<Program>,
    pub group: Arc<ServedGroup>,
    pub ops: RouteOps,
}

/// Published endpoints by method and full path below `/api` (group base path + endpoint path).
#[derive(Default)]
pub struct RouteTable {
    methods: HashMap<Method, matchit::Router<Arc<Route>>>,
    /// `/api/openapi.json` and `/api/docs` for exactly these endpoints, built with the table.
    pub docs: Arc<ApiDocs>,
}

/// Result of looking up a request.
pub enum Lookup {
    Found(Arc<Route>, Vec<(String, String)>),
    /// The path exists for other methods.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

impl RouteTable {
    /// Serves `program` at `/api` + the group's base path + the endpoint's path.
    pub fn insert(
        &mut self,
        program: Arc<Program>,
        group: Arc<ServedGroup>,
        ops: RouteOps,
    ) -> Result<(), String> {
        let Some(ep) = program.plan.endpoint.clone() else {
            return Err(format!("flow `{}` has no endpoint", program.plan.name));
        };
        let path = format!("{}{}", group.base_path, ep.path);
        let route = Route {
            program,
            group,
            ops,
        };
        self.methods
            .entry(ep.method)
            .or_default()
            .insert(path, Arc::new(route))
            .map_err(|e| e.to_string())
    }

    pub fn find(&self, method: Option<Method>, path: &str) -> Lookup {
        if let Some(router) = method.and_then(|m| self.methods.get(&m))
            && let Ok(m) = router.at(path)
        {
            let params = m
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            return Lookup::Found(m.value.clone(), params);
        }
        let mut allowed: Vec<Method> = self
            .methods
            .iter()
            .filter(|(_, r)| r.at(path).is_ok())
            .map(|(m, _)| *m)
            .collect();
        if allowed.is_empty() {
            return Lookup::NotFound;
        }
        allowed.sort_by_key(|m| m.as_str());
        Lookup::MethodNotAllowed(allowed)
    }
}

/// Rebuilds the route table and the function registry from the published versions and the API
/// groups in the catalog and swaps them in. Serialized, so two publishes cannot swap in each
/// other's older view. Endpoints of a disabled group are not served (they answer 404).
pub async fn reload(state: &AppState) -> Result<usize, super::error::ApiError> {
    let _guard = state.reload_lock.lock().await;
    // Read first: what is loaded below is at least this new, so a later check that sees the
    // same generation has nothing to do.
    let generation = crate::catalog::groups::generation(&state.db).await?;
    // Token keys first: a rotation reloads through here, on every instance.
    let ring = crate::auth::key_ring(&state.db, state.runtime.key_sealer.as_ref()).await?;
    state.runtime.token_keys.store(Arc::new(ring));
    let tables = crate::tables::store::all(&state.db).await?;
    let groups: HashMap<String, GroupRecord> = crate::catalog::groups::all(&state.db)
        .await?
        .into_iter()
        .map(|g| (g.def.name.clone(), g))
        .collect();
    let served_groups: HashMap<&str, Arc<ServedGroup>> = groups
        .values()
        .filter(|g| g.def.enabled)
        .map(|g| (g.def.name.as_str(), Arc::new(ServedGroup::compile(g))))
        .collect();
    let published = crate::catalog::flows::published(&state.db).await?;
    let mut table = RouteTable::default();
    let mut functions = std::collections::HashMap::new();
    let mut served = 0;
    let mut endpoints = Vec::new();
    for (id, doc) in published {
        let program = crate::nodes::compile(&doc, Some(&tables))
            .map_err(|d| {
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .and_then(|plan| Program::build(plan, &tables).map_err(|e| e.to_string()));
        let placed = program.and_then(|p| match &p.plan.endpoint {
            Some(ep) => match served_groups.get(ep.group_name()) {
                Some(group) => {
                    let limits = group.rate_limit.map(|r| (group.name.as_str(), r));
                    let ops = state.ops.route_ops(&p.plan, limits);
                    let p = Arc::new(p);
                    table.insert(p.clone(), group.clone(), ops)?;
                    endpoints.push((p, group.clone(), doc));
                    Ok(true)
                }
                None if groups.contains_key(ep.group_name()) => Ok(false),
                None => Err(format!(
                    "its API group `{}` does not exist",
                    ep.group_name()
                )),
            },
            None => {
                functions.insert(p.plan.name.clone(), Arc::new(p));
                Ok(true)
            }
        });
        match placed {
            Ok(true) => served += 1,
            Ok(false) => {}
            Err(problem) => {
                tracing::error!(flow.id = id, %problem, "a published flow no longer compiles; it is not served")
            }
        }
    }
    let operations: Vec<openapi::Operation<'_>> = endpoints
        .iter()
        .filter_map(|(p, group, doc)| {
            let ep = p.plan.endpoint.as_ref()?;
            Some(openapi::Operation {
                method: ep.method,
                path: format!("{}{}", group.base_path, ep.path),
                requires_auth: ep.auth != crate::flow::plan::AuthLevel::Public,
                tag: ep.group.is_some().then(|| group.name.clone()),
                plan: &p.plan,
                document: doc,
            })
        })
        .collect();
    table.docs = Arc::new(ApiDocs::build(&operations, &tables));
    state.runtime.functions.store(Arc::new(functions));
    state.routes.store(Arc::new(table));
    state.serving.loaded(generation);
    Ok(served)
}
