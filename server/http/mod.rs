//! HTTP: the root router, shared state, the error envelope, the admin API, the generated-API
//! dispatcher and health probes. Nothing else depends on this module.

pub mod admin;
pub mod admin_openapi;
pub mod api_tokens;
pub mod capture;
pub mod cors;
pub mod csv;
pub mod enduser;
pub mod env;
pub mod error;
pub mod extract;
pub mod flow_tests;
pub mod flow_versions;
pub mod generated;
pub mod groups;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod project;
pub mod request_log;
pub mod routes;
pub mod rows;
pub mod sample;
pub mod schedules;
pub mod session;
pub mod tables;
pub mod token_keys;
pub mod ui;
pub mod user_sessions;

use crate::engine::Runtime;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use error::{ApiError, InternalDetail, REQUEST_ID};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What is served (`crate::serving`) with this layer's route table.
pub type Serving = crate::serving::Serving<routes::RouteTable>;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// What is served: routes, functions, token keys, environment values, API documents, as
    /// one value. Every change to any of them goes through it.
    pub serving: Arc<Serving>,
    pub runtime: Arc<Runtime>,
    /// Largest body of a generated-API request.
    pub max_body: usize,
    /// The editor's session cookie is `Secure` (HTTPS only) and named `__Host-sluice_session`.
    pub secure_cookies: bool,
    /// First-run setup: the one-time token and who may use it.
    pub setup: Arc<session::SetupGate>,
    /// Rate limits, the in-flight limit, metrics and the request log.
    pub ops: Arc<ops::Ops>,
}

impl From<crate::serving::ServeError> for ApiError {
    fn from(e: crate::serving::ServeError) -> ApiError {
        use crate::serving::ServeError;
        match e {
            ServeError::Db(e) => e.into(),
            ServeError::Catalog(e) => e.into(),
            ServeError::Table(e) => e.into(),
            ServeError::Auth(e) => e.into(),
            ServeError::Invalid(problems) => error::invalid_flow(problems),
        }
    }
}

impl<E: Into<ApiError>> From<crate::serving::Changed<E>> for ApiError {
    fn from(e: crate::serving::Changed<E>) -> ApiError {
        match e {
            crate::serving::Changed::Change(e) => e.into(),
            crate::serving::Changed::Reload(e) => e.into(),
        }
    }
}

/// The whole application, top to bottom.
pub fn router(state: AppState) -> Router {
    routers(state, false).0
}

/// The application as served: with `editor_apart`, the editor and admin API (`/_/`) form a
/// second router for their own listener and the first answers 404 under `/_/`.
pub fn routers(state: AppState, editor_apart: bool) -> (Router, Option<Router>) {
    // The editor's pages and admin API share the cookie session.
    let editor = Router::new()
        .nest("/_/api/v1", admin::router())
        .merge(ui::router())
        .route("/", get(|| async { Redirect::temporary("/_/") }))
        .layer(session::layer(&state));
    let api = Router::new()
        .route("/api/openapi.json", get(openapi::serve_json))
        .route("/api/docs", get(openapi::serve_page))
        .route("/api", any(generated::dispatch))
        .route("/api/{*path}", any(generated::dispatch))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(ops::metrics));
    if editor_apart {
        (finish(api, state.clone()), Some(finish(editor, state)))
    } else {
        (finish(api.merge(editor), state), None)
    }
}

/// The routes of a worker-only instance (`sluice worker`): health and metrics, no API and
/// no editor.
pub fn health_router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(ops::metrics));
    finish(routes, state)
}

/// The fallbacks and layers every served router has.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("internal.panic", "a handler panicked").into_response()
        }))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state, caller_context))
        .layer(middleware::from_fn(request_context))
}

/// Makes the client address and the server's login-failure table known to the code that
/// checks passwords ([`crate::auth::throttle`]).
async fn caller_context(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let caller = crate::auth::throttle::Caller {
        ip: Some(state.ops.client_ip(&req)),
        logins: state.ops.logins.clone(),
    };
    crate::auth::throttle::CALLER
        .scope(caller, next.run(req))
        .await
}

async fn not_found(req: Request) -> ApiError {
    let mut e = generated::route_not_found(req.method().as_str(), req.uri().path());
    if req.uri().path().starts_with("/_/") {
        e.code = "api.not_found".into();
    }
    e
}

pub(crate) async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "route.method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(|| {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        OsRng.next_u32()
    });
    format!(
        "{prefix:08x}-{:08x}",
        REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Gives each request an id (in the `x-request-id` header, in 5xx bodies and in the log) and
/// logs each failure once, with its internal detail.
async fn request_context(req: Request, next: Next) -> Response {
    let id = new_request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = Instant::now();
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    let status = resp.status();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(InternalDetail(detail)) = resp.extensions_mut().remove::<InternalDetail>() {
        tracing::error!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = ms, %detail, "request failed");
    } else if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = ms, "request failed");
    } else {
        tracing::debug!(request_id = %id, %method, path, status = status.as_u16(), duration_ms = ms, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
