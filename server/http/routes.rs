//! The route table of published flows: compiled programs in a matchit router per method, with
//! the API documents of exactly those endpoints. It is the HTTP part of what is served
//! (`crate::serving`), built on every reload and swapped with the rest, so publishing never
//! restarts the server or disturbs in-flight requests (they keep the snapshot they started
//! with). It stays in `http` because its groups carry CORS rules and rate-limit slots of this
//! layer.

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

/// The HTTP layer's part of what is served: built by the serving layer on every reload, from
/// the published endpoints and the API groups. Endpoints of a disabled group are not placed
/// (they answer 404).
impl crate::serving::Routes for RouteTable {
    type Builder = Arc<super::ops::Ops>;

    fn build(
        ops: &Arc<super::ops::Ops>,
        catalog: &crate::serving::Catalog<'_>,
    ) -> (RouteTable, usize) {
        let groups: HashMap<&str, &GroupRecord> = catalog
            .groups
            .iter()
            .map(|g| (g.def.name.as_str(), g))
            .collect();
        let served_groups: HashMap<&str, Arc<ServedGroup>> = catalog
            .groups
            .iter()
            .filter(|g| g.def.enabled)
            .map(|g| (g.def.name.as_str(), Arc::new(ServedGroup::compile(g))))
            .collect();
        let mut table = RouteTable::default();
        let mut placed = Vec::new();
        for e in catalog.endpoints {
            let p = &e.program;
            let Some(ep) = &p.plan.endpoint else { continue };
            let outcome = match served_groups.get(ep.group_name()) {
                Some(group) => {
                    let limits = group.rate_limit.map(|r| (group.name.as_str(), r));
                    let route_ops = ops.route_ops(&p.plan, limits);
                    table
                        .insert(p.clone(), group.clone(), route_ops)
                        .map(|()| placed.push((p, group.clone(), &e.document)))
                }
                None if groups.contains_key(ep.group_name()) => Ok(()),
                None => Err(format!(
                    "its API group `{}` does not exist",
                    ep.group_name()
                )),
            };
            if let Err(problem) = outcome {
                tracing::error!(flow.id = e.flow_id, %problem, "a published flow no longer compiles; it is not served");
            }
        }
        let operations: Vec<openapi::Operation<'_>> = placed
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
        table.docs = Arc::new(ApiDocs::build(&operations, catalog.tables));
        let served = placed.len();
        (table, served)
    }
}
