//! CORS of an API group, compiled once per route reload from the group's [`CorsDef`]: answers
//! preflights and adds `Access-Control-*` headers to actual responses. Nothing here is
//! per-request work beyond set lookups and header copies.

use crate::catalog::groups::CorsDef;
use axum::http::{HeaderMap, HeaderValue, header};
use std::collections::HashSet;

/// The compiled CORS rules of one group.
#[derive(Debug)]
pub struct Cors {
    any_origin: bool,
    /// Lowercase exact origins.
    origins: HashSet<String>,
    methods: HashSet<String>,
    any_header: bool,
    /// Lowercase header names.
    headers: HashSet<String>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

impl Cors {
    /// Compiles a validated definition.
    pub fn compile(def: &CorsDef) -> Cors {
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect();
        Cors {
            any_origin: def.allowed_origins.iter().any(|o| o == "*"),
            origins: lower(&def.allowed_origins),
            methods: def.allowed_methods.iter().cloned().collect(),
            any_header: def.allowed_headers.iter().any(|h| h == "*"),
            headers: lower(&def.allowed_headers),
            expose: (!def.expose_headers.is_empty())
                .then(|| HeaderValue::from_str(&def.expose_headers.join(", ")).ok())
                .flatten(),
            credentials: def.allow_credentials,
            max_age: HeaderValue::from(def.max_age_secs),
        }
    }

    fn allows_origin(&self, origin: &str) -> bool {
        self.any_origin || self.origins.contains(&origin.to_ascii_lowercase())
    }

    /// The `Access-Control-Allow-Origin` value for an allowed origin: `*` when any origin is
    /// allowed without credentials, else the origin itself.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// Answers a preflight: the headers to send when the origin, the method and every requested
    /// header are allowed; `None` when not (the answer then carries no CORS headers and the
    /// browser refuses the actual request).
    pub fn preflight(
        &self,
        origin: &HeaderValue,
        method: &str,
        request_headers: Option<&HeaderValue>,
    ) -> Option<HeaderMap> {
        let origin_text = origin.to_str().ok()?;
        if !self.allows_origin(origin_text) || !self.methods.contains(method) {
            return None;
        }
        let requested = match request_headers {
            Some(v) => v.to_str().ok()?,
            None => "",
        };
        let all_allowed = requested
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .all(|h| self.any_header || self.headers.contains(&h.to_ascii_lowercase()));
        if !all_allowed {
            return None;
        }
        let mut out = HeaderMap::new();
        out.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_str(method).ok()?,
        );
        if let Some(h) = request_headers.filter(|_| !requested.trim().is_empty()) {
            // Echoing the requested list works with credentials too, where `*` would not.
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        Some(out)
    }

    /// `Vary` of a preflight answer of a group with CORS rules, allowed or not.
    pub fn preflight_vary() -> HeaderValue {
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        )
    }

    /// Adds the headers of an actual (not preflight) response: always `Vary: Origin`, and
    /// `Access-Control-Allow-Origin` (with credentials and exposed headers) for an allowed origin.
    pub fn decorate(&self, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(|o| self.allows_origin(o)))
        else {
            return;
        };
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(expose) = &self.expose {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cors(v: serde_json::Value) -> Cors {
        Cors::compile(&serde_json::from_value(v).expect("a CORS definition"))
    }

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn an_allowed_preflight_echoes_origin_method_and_headers() {
        let c = cors(
            json!({"allowed_origins": ["https://app.example.com"], "allow_credentials": true}),
        );
        let h = c
            .preflight(
                &hv("https://app.example.com"),
                "POST",
                Some(&hv("Content-Type, Authorization")),
            )
            .expect("allowed");
        assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(
            h["access-control-allow-headers"],
            "Content-Type, Authorization"
        );
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-max-age"], "600");
    }

    #[test]
    fn a_preflight_from_another_origin_or_with_other_headers_is_not_allowed() {
        let c = cors(
            json!({"allowed_origins": ["https://app.example.com"], "allowed_methods": ["GET"]}),
        );
        assert!(
            c.preflight(&hv("https://evil.example"), "GET", None)
                .is_none()
        );
        assert!(
            c.preflight(&hv("https://app.example.com"), "DELETE", None)
                .is_none()
        );
        assert!(
            c.preflight(&hv("https://app.example.com"), "GET", Some(&hv("x-secret")))
                .is_none()
        );
    }

    #[test]
    fn any_origin_without_credentials_answers_a_star() {
        let c = cors(json!({"allowed_origins": ["*"], "allowed_headers": ["*"]}));
        let h = c
            .preflight(&hv("https://a.example"), "PUT", Some(&hv("x-anything")))
            .expect("allowed");
        assert_eq!(h["access-control-allow-origin"], "*");
        let mut actual = HeaderMap::new();
        c.decorate(Some(&hv("https://b.example")), &mut actual);
        assert_eq!(actual["access-control-allow-origin"], "*");
        assert_eq!(actual["vary"], "Origin");
    }

    #[test]
    fn an_actual_response_to_a_foreign_origin_only_varies() {
        let c = cors(
            json!({"allowed_origins": ["https://app.example.com"], "expose_headers": ["x-total"]}),
        );
        let mut h = HeaderMap::new();
        c.decorate(Some(&hv("https://evil.example")), &mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        c.decorate(Some(&hv("https://APP.example.com")), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://APP.example.com");
        assert_eq!(h["access-control-expose-headers"], "x-total");
    }
}
