//! The admin API's own OpenAPI 3.1 document, served at `/_/api/v1/openapi.json` without
//! authentication (the route list is no secret: docs/API.md publishes it too). A static file
//! (`admin_openapi.json`) kept honest by a test that walks the route definitions of
//! `admin::router()` and the routers it merges, so a route cannot be added, removed or given
//! another method without the document following.

use axum::http::header;
use axum::response::IntoResponse;

/// The document's bytes, as shipped.
pub const DOCUMENT: &str = include_str!("admin_openapi.json");

pub async fn serve() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DOCUMENT,
    )
}

#[cfg(test)]
mod tests {
    use super::DOCUMENT;
    use std::collections::BTreeSet;

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    /// The source of each module whose router the admin router merges.
    fn module_source(name: &str) -> &'static str {
        match name {
            "tables" => include_str!("tables.rs"),
            "rows" => include_str!("rows.rs"),
            "csv" => include_str!("csv.rs"),
            "env" => include_str!("env.rs"),
            "session" => include_str!("session.rs"),
            "api_tokens" => include_str!("api_tokens.rs"),
            "flow_versions" => include_str!("flow_versions.rs"),
            "token_keys" => include_str!("token_keys.rs"),
            "request_log" => include_str!("request_log.rs"),
            "groups" => include_str!("groups.rs"),
            "jobs" => include_str!("jobs.rs"),
            "sample" => include_str!("sample.rs"),
            "schedules" => include_str!("schedules.rs"),
            "project" => include_str!("project.rs"),
            "flow_tests" => include_str!("flow_tests.rs"),
            "user_sessions" => include_str!("user_sessions.rs"),
            other => panic!(
                "admin::router() merges `{other}`: add it here so its routes are checked against admin_openapi.json"
            ),
        }
    }

    /// The body of `pub fn router()` in a module's source.
    fn router_body(src: &str) -> &str {
        let start = src
            .find("pub fn router()")
            .expect("the module has `pub fn router()`");
        let rest = &src[start..];
        let end = rest.find("\n}\n").expect("the function ends");
        &rest[..end]
    }

    /// Text up to the `)` that closes the call whose `(` was just before `s`.
    fn call_args(s: &str) -> &str {
        let mut depth = 1;
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return &s[..i];
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// `(method, path)` of every `.route("path", method(..).method(..))` in a router body, and
    /// the modules it `.merge(super::<module>::router())`s.
    fn routes_of(body: &str, out: &mut BTreeSet<(String, String)>, merges: &mut Vec<String>) {
        for (at, _) in body.match_indices(".route(") {
            let args = call_args(&body[at + ".route(".len()..]);
            let path = args
                .split('"')
                .nth(1)
                .expect("a route's path is a string literal");
            let chain = &args[args.find(',').expect("a method router follows")..];
            let bytes = chain.as_bytes();
            for m in METHODS {
                for (i, _) in chain.match_indices(&format!("{m}(")) {
                    let before = if i == 0 { b' ' } else { bytes[i - 1] };
                    if !(before.is_ascii_alphanumeric() || before == b'_') {
                        out.insert((m.to_string(), path.to_string()));
                    }
                }
            }
        }
        for (at, _) in body.match_indices(".merge(super::") {
            let rest = &body[at + ".merge(super::".len()..];
            let name = &rest[..rest.find("::router()").expect("merges a router")];
            merges.push(name.to_string());
        }
    }

    fn routed() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut merges = Vec::new();
        routes_of(router_body(include_str!("admin.rs")), &mut out, &mut merges);
        assert!(merges.len() >= 10, "found the merged routers: {merges:?}");
        for m in merges {
            let mut nested = Vec::new();
            routes_of(router_body(module_source(&m)), &mut out, &mut nested);
            assert!(nested.is_empty(), "{m} merges further routers: {nested:?}");
        }
        out
    }

    fn documented() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                assert!(METHODS.contains(&method.as_str()), "{method} {path}");
                out.insert((method.clone(), path.clone()));
            }
        }
        out
    }

    #[test]
    fn the_admin_openapi_document_lists_exactly_the_admin_routes() {
        let routed = routed();
        let documented = documented();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "admin_openapi.json is out of step with admin::router():\n  routed, not documented: {missing:?}\n  documented, not routed: {extra:?}"
        );
        assert!(routed.contains(&("get".into(), "/openapi.json".into())));
        assert!(routed.len() > 50, "{routed:?}");
    }

    #[test]
    fn every_operation_has_an_error_response_and_unique_id() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                assert!(op["responses"]["default"].is_object(), "{method} {path}");
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_string()), "duplicate {id}");
                for p in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = p.trim_matches(|c| c == '{' || c == '}');
                    let declared = op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["name"] == name && x["in"] == "path");
                    assert!(declared, "{method} {path} declares {name}");
                }
            }
        }
    }
}
