//! The live route table of published flows: compiled programs in a matchit router per method,
//! swapped atomically so publishing never restarts the server or disturbs in-flight requests
//! (they keep the table they started with).

use super::AppState;
use super::openapi::{self, ApiDocs};
use super::ops::RouteOps;
use crate::engine::Program;
use crate::flow::Method;
use std::collections::HashMap;
use std::sync::Arc;

/// Published endpoints by method and path.
#[derive(Default)]
pub struct RouteTable {
    methods: HashMap<Method, matchit::Router<Arc<Route>>>,
    /// `/api/openapi.json` and `/api/docs` for exactly these endpoints, built with the table.
    pub docs: Arc<ApiDocs>,
}

/// One served endpoint: its program, and its metrics slot and rate limits.
pub struct Route {
    pub program: Arc<Program>,
    pub ops: RouteOps,
}

/// Result of looking up a request.
pub enum Lookup {
    Found(Arc<Route>, Vec<(String, String)>),
    /// The path exists for other methods.
    MethodNotAllowed(Vec<Method>),
    NotFound,
}

impl RouteTable {
    pub fn insert(&mut self, program: Arc<Program>, ops: RouteOps) -> Result<(), String> {
        let Some(ep) = program.plan.endpoint.clone() else {
            return Err(format!("flow `{}` has no endpoint", program.plan.name));
        };
        self.methods
            .entry(ep.method)
            .or_default()
            .insert(ep.path.clone(), Arc::new(Route { program, ops }))
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

/// Rebuilds the route table and the function registry from the published versions in the
/// catalog and swaps them in, and reloads the token key ring. Serialized, so two publishes cannot swap in each other's older
/// view.
pub async fn reload(state: &AppState) -> Result<usize, super::error::ApiError> {
    let _guard = state.reload_lock.lock().await;
    // Token keys first: a rotation reloads through here, on every instance.
    let ring = crate::auth::key_ring(&state.db).await?;
    state.runtime.token_keys.store(Arc::new(ring));
    let tables = crate::tables::store::all(&state.db).await?;
    let published = crate::catalog::flows::published(&state.db).await?;
    let mut table = RouteTable::default();
    let mut functions = std::collections::HashMap::new();
    let mut served = 0;
    let mut endpoints = Vec::new();
    for (id, doc) in published {
        let program = crate::flow::compile(&doc, Some(&tables))
            .map_err(|d| {
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .and_then(|plan| Program::build(plan, &tables).map_err(|e| e.to_string()));
        let placed = program.and_then(|p| {
            let p = Arc::new(p);
            if p.plan.endpoint.is_some() {
                let ops = state.ops.route_ops(&p.plan, None);
                table.insert(p.clone(), ops)?;
                endpoints.push((p, doc));
            } else {
                functions.insert(p.plan.name.clone(), p);
            }
            Ok(())
        });
        match placed {
            Ok(()) => served += 1,
            Err(problem) => {
                tracing::error!(flow.id = id, %problem, "a published flow no longer compiles; it is not served")
            }
        }
    }
    let operations: Vec<openapi::Operation<'_>> = endpoints
        .iter()
        .filter_map(|(p, doc)| {
            let ep = p.plan.endpoint.as_ref()?;
            Some(openapi::Operation {
                method: ep.method,
                path: ep.path.clone(),
                requires_auth: ep.auth != crate::flow::plan::AuthLevel::Public,
                tag: None,
                plan: &p.plan,
                document: doc,
            })
        })
        .collect();
    table.docs = Arc::new(ApiDocs::build(&operations, &tables));
    state.runtime.functions.store(Arc::new(functions));
    state.routes.store(Arc::new(table));
    Ok(served)
}
