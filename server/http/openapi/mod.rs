//! The OpenAPI 3.1 document of the published endpoints (`/api/openapi.json`) and the page that
//! renders it (`/api/docs`). Both are built once per route-table reload by [`ApiDocs::build`],
//! a pure function of the published plans, their documents and the table catalog, and served
//! as stored bytes.
//!
//! The generator knows nothing of how a route was published: the caller describes each
//! endpoint with an [`Operation`] (method, full path below `/api`, whether a bearer token is
//! required, its group), so API groups and auth settings only change what the caller fills in.

pub mod page;
pub mod schema;

use crate::engine::Plan;
use crate::flow::CompiledOp;
use crate::flow::node::ResponseFact;
use crate::flow::node::TableCatalog;
use crate::flow::plan::InputSchema;
use crate::flow::plan::{ContentType, Method};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schema::Vars;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// One published endpoint, as the generator needs it.
pub struct Operation<'a> {
    pub method: Method,
    /// The path below `/api` as it is served (an API group's base path included), with
    /// `{param}` segments.
    pub path: String,
    /// Whether a bearer token is needed (`endpoint.auth` other than `public`).
    pub requires_auth: bool,
    /// The section the endpoint is listed under; `None` takes the path's first literal segment.
    pub tag: Option<String>,
    pub plan: &'a Plan,
    /// The flow document `plan` was compiled from (its `description` and `respond` bodies).
    pub document: &'a Value,
}

/// The stored answers of `/api/openapi.json` and `/api/docs`.
#[derive(Clone)]
pub struct ApiDocs {
    pub json: Bytes,
    pub html: Bytes,
    /// `"<info.version>"`: changes exactly when the document does.
    pub etag: HeaderValue,
}

impl Default for ApiDocs {
    fn default() -> Self {
        ApiDocs::build(&[], &BTreeMap::new())
    }
}

impl ApiDocs {
    /// Renders the document and the page for these endpoints.
    pub fn build(ops: &[Operation<'_>], tables: &dyn TableCatalog) -> ApiDocs {
        let doc = document(ops, tables);
        let html = page::render(&doc);
        let mut json = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        json.push(b'\n');
        let version = doc["info"]["version"].as_str().unwrap_or_default();
        ApiDocs {
            json: Bytes::from(json),
            html: Bytes::from(html),
            etag: HeaderValue::from_str(&format!("\"{version}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
        }
    }
}

/// `GET /api/openapi.json`.
pub async fn serve_json(State(state): State<super::AppState>, headers: HeaderMap) -> Response {
    let docs = state.serving.load().routes.docs.clone();
    answer(&docs, &headers, "application/json", docs.json.clone())
}

/// `GET /api/docs`.
pub async fn serve_page(State(state): State<super::AppState>, headers: HeaderMap) -> Response {
    let docs = state.serving.load().routes.docs.clone();
    let mut resp = answer(
        &docs,
        &headers,
        "text/html; charset=utf-8",
        docs.html.clone(),
    );
    let h = resp.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(page::csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The stored bytes, or 304 when the client has them already.
fn answer(
    docs: &ApiDocs,
    headers: &HeaderMap,
    content_type: &'static str,
    body: Bytes,
) -> Response {
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == docs.etag || tag.trim() == "*");
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, docs.etag.clone());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The OpenAPI 3.1 document. Deterministic: paths, methods, tags and components come out
/// sorted, and `info.version` is a digest of the rest of the document.
pub fn document(ops: &[Operation<'_>], tables: &dyn TableCatalog) -> Value {
    // OpenAPI forbids two paths that differ only in parameter names (`/a/{x}`, `/a/{y}`),
    // which Sluice allows for different methods: all of them are listed under the smallest.
    let mut canonical: BTreeMap<String, &str> = BTreeMap::new();
    for op in ops {
        let slot = canonical.entry(shape(&op.path)).or_insert(&op.path);
        if op.path.as_str() < *slot {
            *slot = &op.path;
        }
    }
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut tags = BTreeSet::new();
    let mut used_tables = BTreeSet::new();
    let mut any_auth = false;
    for op in ops {
        let tag = op.tag.clone().unwrap_or_else(|| default_tag(&op.path));
        tags.insert(tag.clone());
        any_auth |= op.requires_auth;
        let listed = canonical.get(&shape(&op.path)).copied().unwrap_or(&op.path);
        let (operation, tables_used) = operation(op, listed, tag, tables);
        used_tables.extend(tables_used);
        paths.entry(listed).or_default().insert(
            op.method.as_str().to_ascii_lowercase(),
            Value::Object(operation),
        );
    }

    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    // Reference fields of a used table name other tables only by their id type, so the set is
    // closed after one pass.
    for t in &used_tables {
        if let Some(def) = tables.table(t) {
            schemas.insert(t.clone(), schema::row_schema(def, tables));
        } else {
            schemas.insert(t.clone(), json!({"type": "object"}));
        }
    }
    let mut components = json!({"schemas": schemas});
    if any_auth {
        components["securitySchemes"] = json!({
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A token issued by the app's own login flow (`auth.issue_token`), sent as `Authorization: Bearer <token>`."
            }
        });
    }
    let paths: Map<String, Value> = paths
        .into_iter()
        .map(|(p, m)| (p.to_string(), Value::Object(m)))
        .collect();
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice API",
            "description": "The endpoints published on this Sluice instance. Every error is JSON: `{\"error\": {\"code\", \"message\", \"details\"}}`; match on `code`.",
            "version": "",
        },
        "servers": [{"url": "/api"}],
        "tags": tags.into_iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        "paths": paths,
        "components": components,
    });
    let digest = Sha256::digest(doc.to_string().as_bytes());
    doc["info"]["version"] = Value::String(hex(&digest[..6]));
    doc
}

/// A path with its parameter names erased: `/a/{x}` → `/a/{}`.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The first literal segment of a path (`/todos/{id}` → `todos`), else `api`.
fn default_tag(path: &str) -> String {
    path.split('/')
        .find(|s| !s.is_empty() && !s.starts_with('{'))
        .unwrap_or("api")
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The error envelope every failure of Sluice and every `fail` node answers.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "Sluice's error envelope.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string", "description": "Stable `area.reason` code; match on it.", "examples": ["input.invalid"]},
                    "message": {"type": "string", "description": "For people; may change."},
                    "details": {"type": "array", "description": "Depends on the code: for `input.invalid`, one `{\"pointer\", \"message\"}` per problem."},
                    "request_id": {"type": "string", "description": "On 5xx answers: the id of the request in the server log."}
                }
            }
        }
    })
}

/// Everything known about one status of one operation, merged from every node that can
/// answer it.
#[derive(Default)]
struct Answer {
    /// Media type → schemas of the nodes answering with it (`None`: not derivable).
    content: BTreeMap<&'static str, Vec<Option<Value>>>,
    examples: Vec<Value>,
    headers: BTreeSet<String>,
    codes: BTreeSet<String>,
    /// A fixed description overriding the status' reason phrase.
    note: Option<&'static str>,
    /// The `description`s of the nodes that answer this status, as the builder wrote them.
    described: BTreeSet<String>,
}

impl Answer {
    fn error(&mut self, code: &str) {
        self.codes.insert(code.to_string());
        self.content
            .entry("application/json")
            .or_default()
            .push(Some(json!({"$ref": "#/components/schemas/Error"})));
    }

    fn into_value(self, status: u16) -> Value {
        let reason = axum::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Response");
        let mut description = if self.described.is_empty() {
            self.note.unwrap_or(reason).to_string()
        } else {
            let parts: Vec<&str> = self.described.iter().map(String::as_str).collect();
            parts.join(" / ")
        };
        if !self.codes.is_empty() {
            let codes: Vec<String> = self.codes.iter().map(|c| format!("`{c}`")).collect();
            let sep = if description.ends_with('.') {
                " "
            } else {
                ". "
            };
            description.push_str(&format!("{sep}Error codes: {}.", codes.join(", ")));
        }
        let mut out = json!({"description": description});
        if !self.headers.is_empty() {
            out["headers"] = self
                .headers
                .iter()
                .map(|h| (h.clone(), json!({"schema": {"type": "string"}})))
                .collect::<Map<_, _>>()
                .into();
        }
        if status == 204 || status == 304 || self.content.is_empty() {
            return out;
        }
        let single_source = self.content.values().map(Vec::len).sum::<usize>() == 1;
        let mut content = Map::new();
        for (media, schemas) in self.content {
            let mut m = Map::new();
            if let Some(s) = merge(schemas) {
                m.insert("schema".into(), s);
            }
            if single_source && let [example] = self.examples.as_slice() {
                m.insert("example".into(), example.clone());
            }
            content.insert(media.to_string(), Value::Object(m));
        }
        out["content"] = Value::Object(content);
        out
    }
}

/// One schema for several nodes answering the same status: none if any is unknown, the one
/// if all agree, else `oneOf` the distinct ones.
fn merge(schemas: Vec<Option<Value>>) -> Option<Value> {
    let mut distinct: Vec<Value> = Vec::new();
    for s in schemas {
        let s = s?;
        if !distinct.contains(&s) {
            distinct.push(s);
        }
    }
    match distinct.len() {
        0 => None,
        1 => distinct.pop(),
        _ => Some(json!({"oneOf": distinct})),
    }
}

/// One operation, listed under `listed` (its own path or one of the same shape).
fn operation(
    op: &Operation<'_>,
    listed: &str,
    tag: String,
    tables: &dyn TableCatalog,
) -> (Map<String, Value>, BTreeSet<String>) {
    let plan = op.plan;
    let mut out = Map::new();
    out.insert("operationId".into(), Value::String(plan.name.clone()));
    out.insert("tags".into(), json!([tag]));
    let description = op
        .document
        .get("description")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty());
    match description {
        Some(d) => {
            let (first, rest) = d.split_once('\n').unwrap_or((d, ""));
            out.insert("summary".into(), Value::String(first.trim().to_string()));
            if !rest.trim().is_empty() {
                out.insert("description".into(), Value::String(d.to_string()));
            }
        }
        None => {
            out.insert("summary".into(), Value::String(plan.name.replace('_', " ")));
        }
    }
    let params = parameters(op, listed);
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    if let Some(body) = &plan.input.body {
        out.insert(
            "requestBody".into(),
            json!({"required": true, "content": {"application/json": {
                "schema": schema::documented_input(body.schema.clone())}}}),
        );
    }
    if op.requires_auth {
        out.insert("security".into(), json!([{"bearer": []}]));
    }
    // Tokens of another audience than the default are what a client must send
    // (`endpoint.audience`): say which.
    if let Some(audience) = plan.endpoint.as_ref().and_then(|e| e.audience.as_ref()) {
        out.insert("x-sluice-audience".into(), Value::String(audience.clone()));
    }
    // An endpoint whose pages run with the server's own origin says so (`endpoint.sandbox`).
    if plan.endpoint.as_ref().is_some_and(|e| !e.sandbox) {
        out.insert("x-sluice-sandbox".into(), Value::Bool(false));
    }
    // Nodes that ignore their table's access rules (`rules.bypass`), by id; their reasons are
    // for the builders (editor, `sluice validate --rules-report`), not for API clients.
    let bypassing: Vec<Value> = plan
        .nodes
        .iter()
        .filter(|n| n.bypass.is_some())
        .map(|n| Value::String(n.id.clone()))
        .collect();
    if !bypassing.is_empty() {
        out.insert("x-sluice-rules-bypass".into(), Value::Array(bypassing));
    }
    let (responses, used) = responses(op, tables);
    out.insert("responses".into(), responses);
    (out, used)
}

/// Path parameters in path order (always required), named as in `listed`, then the query
/// properties by name.
fn parameters<'a>(op: &'a Operation<'_>, listed: &'a str) -> Vec<Value> {
    let input = &op.plan.input;
    let props = |s: &Option<InputSchema>| {
        s.as_ref()
            .and_then(|s| s.schema.get("properties"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let path_props = props(&input.params);
    let mut out = Vec::new();
    let param = |seg: &'a str| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
    for (own, shown) in op.path.split('/').zip(listed.split('/')) {
        let (Some(own), Some(shown)) = (param(own), param(shown)) else {
            continue;
        };
        let schema = path_props
            .get(own)
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}));
        out.push(parameter(shown, "path", true, schema));
    }
    let query_required: BTreeSet<&str> = input
        .query
        .as_ref()
        .and_then(|q| q.schema.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, schema) in props(&input.query) {
        let required = query_required.contains(name.as_str());
        out.push(parameter(&name, "query", required, schema));
    }
    out
}

fn parameter(name: &str, location: &str, required: bool, schema: Value) -> Value {
    let schema = schema::documented_input(schema);
    let mut p = json!({"name": name, "in": location, "required": required, "schema": schema});
    if let Some(d) = schema_description(&p["schema"]) {
        p["description"] = Value::String(d);
    }
    p
}

/// Whether an access rule can refuse a write of the flow with 403 `rule.denied`: an insert into
/// a table with a `create` rule, or an update of one whose `update` rule checks the changed row
/// or limits the fields, in a flow rules apply to, by a node that does not bypass them.
fn refused_by_rules(plan: &Plan, tables: &dyn TableCatalog) -> bool {
    plan.rules_apply()
        && plan.nodes.iter().filter(|n| n.bypass.is_none()).any(|n| {
            let Some(rules) =
                n.op.table_write()
                    .and_then(|w| tables.table(w.table))
                    .and_then(|d| d.rules.as_ref())
            else {
                return false;
            };
            match n.type_name {
                "db.insert" => rules.create.is_some(),
                "db.update" => rules
                    .update
                    .as_ref()
                    .is_some_and(|u| u.check.is_some() || u.columns.is_some()),
                _ => false,
            }
        })
}

fn schema_description(s: &Value) -> Option<String> {
    s.get("description")?.as_str().map(str::to_string)
}

/// Responses from the plan: every `respond` (status, content type, headers, a schema when the
/// body's shape is known), every `fail` and unwired fallible port (the error envelope with its
/// code), input errors (400), a missing token (401), writes an access rule can refuse (403)
/// and internal errors (500).
fn responses(op: &Operation<'_>, tables: &dyn TableCatalog) -> (Value, BTreeSet<String>) {
    let plan = op.plan;
    let mut vars = Vars::new(plan, op.document, tables);
    let mut by_status: BTreeMap<u16, Answer> = BTreeMap::new();
    if refused_by_rules(plan, tables) {
        by_status.entry(403).or_default().error("rule.denied");
    }
    for node in &plan.nodes {
        // Respond and fail nodes of the top level may carry a description (bodies of loops
        // are not looked into).
        let described = op
            .document
            .get("nodes")
            .and_then(|n| n.get(&node.id))
            .and_then(|n| n.get("description"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|d| !d.is_empty());
        let facts = node.op.responses();
        for fact in &facts {
            if let (
                ResponseFact::Respond { status, .. } | ResponseFact::Fail { status, .. },
                Some(d),
            ) = (fact, described)
            {
                by_status
                    .entry(*status)
                    .or_default()
                    .described
                    .insert(d.to_string());
            }
        }
        for fact in facts {
            match fact {
                ResponseFact::Respond {
                    status,
                    headers,
                    content_type,
                } => {
                    let a = by_status.entry(status).or_default();
                    let raw = op
                        .document
                        .get("nodes")
                        .and_then(|n| n.get(&node.id))
                        .and_then(|n| n.get("body"));
                    // A schema the builder declared wins over the one read from the body.
                    let declared = op
                        .document
                        .get("nodes")
                        .and_then(|n| n.get(&node.id))
                        .and_then(|n| n.get("schema"))
                        .cloned();
                    let (media, schema) = match content_type {
                        ContentType::Json => (
                            "application/json",
                            declared.or_else(|| raw.and_then(|b| vars.body(b))),
                        ),
                        ContentType::Text => ("text/plain", Some(json!({"type": "string"}))),
                        ContentType::Html => ("text/html", Some(json!({"type": "string"}))),
                    };
                    // The document is public: what an endpoint behind a token answers is not
                    // shown as an example, only its shape.
                    if content_type == ContentType::Json
                        && !op.requires_auth
                        && let Some(b) = raw
                        && !contains_expression(b)
                    {
                        a.examples.push(b.clone());
                    }
                    a.content.entry(media).or_default().push(schema);
                    for h in headers {
                        if !h.eq_ignore_ascii_case("content-type") {
                            a.headers.insert(h.to_ascii_lowercase());
                        }
                    }
                }
                ResponseFact::Fail { status, code } => {
                    by_status.entry(status).or_default().error(&code)
                }
                ResponseFact::Error { status, code } => {
                    by_status.entry(status).or_default().error(code)
                }
            }
        }
    }
    let bad = by_status.entry(400).or_default();
    bad.error("request.invalid_json");
    bad.error("request.invalid_query");
    let input = &plan.input;
    if input.params.is_some() || input.query.is_some() || input.body.is_some() {
        bad.error("input.invalid");
    }
    if op.requires_auth {
        let a = by_status.entry(401).or_default();
        a.note = Some("Missing, malformed or expired bearer token");
        for code in [
            "auth.token_missing",
            "auth.token_expired",
            "auth.token_invalid",
        ] {
            a.error(code);
        }
    }
    if plan
        .endpoint
        .as_ref()
        .is_some_and(|e| e.auth == crate::flow::plan::AuthLevel::Admin)
    {
        let f = by_status.entry(403).or_default();
        f.note = Some("The token is valid but its `role` claim is not `admin`");
        f.error("auth.forbidden");
    }
    if plan.rate_limit.is_some() {
        let r = by_status.entry(429).or_default();
        r.note = Some("Over the endpoint's rate limit; `Retry-After` says when to try again");
        r.error("rate_limit.exceeded");
    }
    let internal = by_status.entry(500).or_default();
    internal.note = Some("Internal error; the body carries a `request_id` found in the server log");
    internal
        .content
        .entry("application/json")
        .or_default()
        .push(Some(json!({"$ref": "#/components/schemas/Error"})));
    let out: Map<String, Value> = by_status
        .into_iter()
        .map(|(s, a)| (s.to_string(), a.into_value(s)))
        .collect();
    (Value::Object(out), vars.used_tables)
}

fn contains_expression(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$rhai") || m.values().any(contains_expression),
        Value::Array(items) => items.iter().any(contains_expression),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
