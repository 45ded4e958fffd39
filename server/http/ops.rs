//! Operations around generated endpoints: admission (rate limits, the in-flight limit), and
//! what each answered request leaves behind (metrics, the request log). The dispatcher calls
//! [`Ops::admit`] before a flow runs and [`Ops::record`] after; the route table asks
//! [`Ops::route_ops`] once per endpoint when it is built.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::limits::{self, Client, Limiter, Scope};
use super::metrics::{EndpointMetrics, Metrics, PoolUse};
use crate::catalog::request_log::{Entry, RequestLog};
use crate::config::{OpsConfig, Secret};
use crate::engine::Plan;
use crate::flow::plan::RateLimit;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a client refused for load is asked to wait.
const BUSY_RETRY_SECS: u64 = 1;

/// Limits, counters and the request log of this instance.
pub struct Ops {
    limiter: Limiter,
    server_scope: Option<Scope>,
    trusted_proxies: Vec<IpNet>,
    in_flight: Option<(Arc<Semaphore>, usize)>,
    metrics_token: Option<Secret>,
    /// The server listens on a non-loopback address: `/metrics` needs a token.
    metrics_need_token: bool,
    pub metrics: Metrics,
    pub request_log: RequestLog,
    /// Failed logins of this server, throttled per address and account.
    pub logins: Arc<crate::auth::throttle::Logins>,
}

/// What one endpoint needs at request time, resolved when the route table is built.
pub struct RouteOps {
    metrics: Arc<EndpointMetrics>,
    /// The scopes whose rate limits apply: server, group, endpoint (those with rules).
    scopes: Vec<Scope>,
}

/// A request admitted to run; holds its in-flight slot until dropped.
pub struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Ops {
    /// Builds the limits and starts the request-log writer. `public`: the server listens on a
    /// non-loopback address.
    pub fn start(config: &OpsConfig, db: PgPool, public: bool) -> Ops {
        let server_scope =
            Some(Scope::new("server", "", config.rate_limit)).filter(|s| !s.is_empty());
        Ops {
            limiter: Limiter::new(config.rate_limit_max_keys),
            server_scope,
            trusted_proxies: config.trusted_proxies.clone(),
            in_flight: (config.max_in_flight > 0).then(|| {
                (
                    Arc::new(Semaphore::new(config.max_in_flight)),
                    config.max_in_flight,
                )
            }),
            metrics_token: config.metrics_token.clone(),
            metrics_need_token: public,
            metrics: Metrics::default(),
            request_log: RequestLog::start(db, config.request_log),
            logins: Arc::default(),
        }
    }

    /// The per-endpoint part of a route: its metrics slot and its rate-limit scopes. `group`
    /// is the API group's slug and `rate_limit`, when the endpoint belongs to one.
    pub fn route_ops(&self, plan: &Plan, group: Option<(&str, RateLimit)>) -> RouteOps {
        let method = plan.endpoint.as_ref().map_or("", |e| e.method.as_str());
        let scopes = self
            .server_scope
            .iter()
            .cloned()
            .chain(group.map(|(slug, rules)| Scope::new("group", slug, rules)))
            .chain(
                plan.rate_limit
                    .map(|r| Scope::new("endpoint", &plan.name, r)),
            )
            .filter(|s| !s.is_empty())
            .collect();
        RouteOps {
            metrics: self.metrics.endpoint(&plan.name, method),
            scopes,
        }
    }

    /// Checks the route's rate limits: 429 when one is exceeded. Called before the body is
    /// read; [`Ops::admit`] after.
    pub fn limit(&self, route: &RouteOps, req: &Request) -> Result<(), Refusal> {
        if !route.scopes.is_empty() {
            let headers = req.headers();
            let client = Client {
                ip: self.client_ip(req),
                token: limits::needs_token(&route.scopes)
                    .then(|| limits::token_key(header_str(headers, "authorization")))
                    .flatten(),
            };
            if let Err(wait) = self.limiter.check(&route.scopes, &client) {
                route.metrics.rate_limited();
                return Err(Refusal::RateLimited {
                    retry_after_secs: limits::retry_after_secs(wait),
                });
            }
        }
        Ok(())
    }

    /// The client address of a request: the peer, or what trusted proxies forwarded.
    pub fn client_ip(&self, req: &Request) -> std::net::IpAddr {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        // Read only for trusted proxies; several header lines count as one list, in order.
        let forwarded = (!self.trusted_proxies.is_empty())
            .then(|| {
                let lines: Vec<&str> = req
                    .headers()
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                (!lines.is_empty()).then(|| lines.join(","))
            })
            .flatten();
        limits::client_ip(peer, forwarded.as_deref(), &self.trusted_proxies)
    }

    /// Lets a request whose body has fully arrived run, or answers 503 (too many in flight).
    /// A client that stalls its body therefore never holds a slot.
    pub fn admit(&self) -> Result<Admitted, Refusal> {
        let permit = match &self.in_flight {
            None => None,
            Some((sem, _)) => match sem.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    self.metrics
                        .busy
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(Refusal::Busy);
                }
            },
        };
        Ok(Admitted { _permit: permit })
    }

    /// Counts an answered request and queues it for the request log. `path` is the part
    /// after `/api`; `started` is when the request was routed.
    pub fn record(&self, route: &RouteOps, path: &str, resp: &Response, started: Instant) {
        let took = started.elapsed();
        let status = resp.status().as_u16();
        let code = resp.extensions().get::<ErrorCode>().map(|c| c.0.as_str());
        route.metrics.observe(status, took, code);
        if self.request_log.keeps(status) {
            self.request_log.push(Entry {
                at: SystemTime::now() - took,
                flow: route.metrics.flow().to_string(),
                method: route.metrics.method(),
                path: format!("/api{path}"),
                status,
                duration_ms: took.as_secs_f64() * 1000.0,
                error_code: code.map(str::to_string),
                request_id: super::error::REQUEST_ID
                    .try_with(Clone::clone)
                    .unwrap_or_default(),
                request: resp
                    .extensions()
                    .get::<super::capture::Captured>()
                    .map(|c| c.0.clone()),
            });
        }
    }

    /// Writes the queued request log and stops its writer.
    pub async fn shutdown(&self) {
        self.request_log.shutdown(Duration::from_secs(5)).await;
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 429: a rate limit of one of the route's scopes.
    RateLimited { retry_after_secs: u64 },
    /// 503: the in-flight limit.
    Busy,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (error, secs) = match self {
            Refusal::RateLimited { retry_after_secs } => (
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit.exceeded",
                    format!("too many requests; retry in {retry_after_secs} s"),
                ),
                retry_after_secs,
            ),
            Refusal::Busy => (
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server.busy",
                    "too many requests in flight; retry shortly",
                ),
                BUSY_RETRY_SECS,
            ),
        };
        let mut resp = error.into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        resp
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `GET /metrics`: behind `SLUICE_METRICS_TOKEN` when it is set; without it, open on a
/// loopback address and refused (403 `metrics.token_required`) on any other.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ops = &state.ops;
    if ops.metrics_token.is_none() && ops.metrics_need_token {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics.token_required",
            "the server listens on a non-loopback address: set SLUICE_METRICS_TOKEN to read metrics",
        )
        .into_response();
    }
    if let Some(expected) = &ops.metrics_token {
        let given = header_str(&headers, "authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
            return ApiError::unauthorized().into_response();
        }
    }
    let pool = PoolUse {
        size: state.db.size(),
        idle: state.db.num_idle(),
        max: state.db.options().get_max_connections(),
    };
    let in_flight = ops
        .in_flight
        .as_ref()
        .map(|(sem, max)| (max.saturating_sub(sem.available_permits()), *max));
    let mut text = ops.metrics.render(&pool, &ops.request_log.stats, in_flight);
    match crate::queue::admin::stats(&state.db).await {
        Ok(s) => super::metrics::render_jobs(&mut text, &s),
        Err(e) => tracing::warn!(error = %e, "cannot read the job queue's numbers for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, y) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison_needs_the_whole_token() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
    }
}
