//! The editor's files under `/_/`: the page shell (a tera template from `ui/templates/`) and
//! the static ES modules and CSS (`ui/js/`, `ui/css/`). Release builds serve the copies
//! embedded by `build.rs`; debug builds read `ui/` from disk on every request, so editing
//! JavaScript needs no rebuild.
//!
//! Every response carries a strict Content-Security-Policy (scripts only from this origin, no
//! inline script or style attributes in markup) and an ETag; assets are revalidated
//! (`Cache-Control: no-cache`, 304 when unchanged) because ES modules import each other by
//! plain URLs that cannot carry a version.

use super::AppState;
use super::error::ApiError;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The policy of every editor page: nothing but this origin, no inline scripts, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_", get(|| async { Redirect::permanent("/_/") }))
        .route("/_/", get(shell))
        // The one-time link a fresh instance prints: `/_/setup?token=...`.
        .route("/_/setup", get(shell))
        .route("/_/{*path}", any(asset))
}

#[cfg(sluice_embed_ui)]
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ui_files.rs"));
}

/// The bytes of `ui/<rel>`, if the file exists.
fn file(rel: &str) -> Option<Cow<'static, [u8]>> {
    #[cfg(sluice_embed_ui)]
    {
        embedded::FILES
            .iter()
            .find(|(name, _)| *name == rel)
            .map(|(_, bytes)| Cow::Borrowed(*bytes))
    }
    #[cfg(not(sluice_embed_ui))]
    {
        // The checkout being run: `cargo run` and `cargo test` name it at run time. The path
        // compiled in is only a fallback, since Cargo may reuse a build made from another
        // checkout of the same code (a shared target dir) without recompiling.
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        std::fs::read(root.join("ui").join(rel))
            .ok()
            .map(Cow::Owned)
    }
}

/// Asset paths are plain relative names below `js/`, `css/` or `img/`: no `..`, no hidden
/// files, nothing else of `ui/` (the templates are not served as files).
fn servable(rel: &str) -> bool {
    let allowed_dir = ["js/", "css/", "img/"].iter().any(|d| rel.starts_with(d));
    allowed_dir
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Headers every editor response carries.
fn secure(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

async fn asset(method: Method, Path(rel): Path<String>, headers: HeaderMap) -> Response {
    // Unknown admin API paths land here too: the same 404 as before the editor existed.
    if rel.starts_with("api/") {
        return ApiError::not_found(&format!("/_/{rel}")).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "route.method_not_allowed",
            format!("{method} is not allowed on /_/{rel}"),
        )
        .into_response();
    }
    let found = if servable(&rel) { file(&rel) } else { None };
    let Some(bytes) = found else {
        return ApiError::not_found(&format!("editor file `{rel}`")).into_response();
    };
    let tag = etag(&bytes);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = bytes.into_owned().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&rel)),
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    secure(&mut resp);
    resp
}

/// Renders `templates/<name>` with `context`. Release builds parse the templates once.
fn render(name: &str, context: &serde_json::Value) -> Result<String, ApiError> {
    let ctx =
        // `Plain`: Tera would see serde_json's exact numbers as objects.
        tera::Context::from_serialize(&crate::tables::decimal::Plain(context))
            .map_err(|e| ApiError::internal("ui.template", e))?;
    #[cfg(sluice_embed_ui)]
    {
        static TERA: std::sync::LazyLock<Result<tera::Tera, String>> =
            std::sync::LazyLock::new(load_templates);
        let tera = TERA
            .as_ref()
            .map_err(|e| ApiError::internal("ui.template", e))?;
        tera.render(name, &ctx)
            .map_err(|e| ApiError::internal("ui.template", e))
    }
    #[cfg(not(sluice_embed_ui))]
    {
        let tera = load_templates().map_err(|e| ApiError::internal("ui.template", e))?;
        tera.render(name, &ctx)
            .map_err(|e| ApiError::internal("ui.template", e))
    }
}

fn load_templates() -> Result<tera::Tera, String> {
    let mut tera = tera::Tera::new();
    tera.autoescape_on([".html"]);
    let name = "index.html";
    let bytes = file(&format!("templates/{name}")).ok_or(format!("{name} is missing"))?;
    let text = String::from_utf8(bytes.into_owned()).map_err(|e| e.to_string())?;
    tera.add_raw_template(name, &text)
        .map_err(|e| e.to_string())?;
    Ok(tera)
}

/// The one page of the editor. It opens on the setup form while no account exists, on the
/// login form without a session, else on the app; the hash router takes it from there.
async fn shell(
    State(state): State<AppState>,
    session: tower_sessions::Session,
) -> Result<Response, ApiError> {
    let page = if crate::catalog::users::count(&state.db).await? == 0 {
        "setup"
    } else if super::session::session_user(&session).await?.is_some() {
        "app"
    } else {
        "login"
    };
    let html = render(
        "index.html",
        &serde_json::json!({"page": page, "version": env!("CARGO_PKG_VERSION")}),
    )?;
    let mut resp = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    secure(&mut resp);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_below_the_asset_folders_are_served() {
        assert!(servable("js/app.js"));
        assert!(servable("js/flows/index.js"));
        assert!(servable("css/app.css"));
        assert!(!servable("templates/index.html"));
        assert!(!servable("js/../templates/index.html"));
        assert!(!servable("js/.hidden.js"));
        assert!(!servable("js//app.js"));
        assert!(!servable("js/a b.js"));
        assert!(!servable("../Cargo.toml"));
    }

    #[test]
    fn scripts_and_styles_get_their_content_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("css/app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("img/x.svg"), "image/svg+xml");
        assert_eq!(content_type("js/noext"), "application/octet-stream");
    }
}
