//! `/api/docs`: the OpenAPI document rendered as one self-contained HTML page. The page is
//! complete without JavaScript; a small script (filter, copy buttons) and the stylesheet are
//! embedded in the binary and inlined, and the Content-Security-Policy allows exactly those
//! two by their hashes: no other script, style, font, frame or connection.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

const CSS: &str = include_str!("assets/docs.css");
const JS: &str = include_str!("assets/docs.js");

/// The Content-Security-Policy of the page, computed once.
pub fn csp() -> &'static str {
    static CSP: LazyLock<String> = LazyLock::new(|| {
        let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s));
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(JS),
            hash(CSS)
        )
    });
    &CSP
}

/// Text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text with `code` spans (`like this`) set as `<code>`, everything escaped.
fn rich(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

/// Anchor-safe id.
fn anchor(prefix: &str, s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{prefix}-{clean}")
}

/// A short name for a schema's type: `integer`, `string (date-time)`, `array of todos`, ...
fn type_label(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_string();
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        return alts.iter().map(type_label).collect::<Vec<_>>().join(" | ");
    }
    let base = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if s.get("enum").is_some() => "enum".into(),
        _ => "any".into(),
    };
    if base == "array"
        && let Some(items) = s.get("items")
    {
        return format!("array of {}", type_label(items));
    }
    match s.get("format").and_then(Value::as_str) {
        Some(f) => format!("{base} ({f})"),
        None => base,
    }
}

/// The constraints of a schema in words: `1–100`, `max 200 chars`, `one of a, b`, ...
fn rules(s: &Value) -> String {
    let mut out = Vec::new();
    let num = |k: &str| s.get(k).filter(|v| v.is_number()).map(Value::to_string);
    match (num("minimum"), num("maximum")) {
        (Some(a), Some(b)) => out.push(format!("{a}–{b}")),
        (Some(a), None) => out.push(format!("≥ {a}")),
        (None, Some(b)) => out.push(format!("≤ {b}")),
        _ => {}
    }
    match (num("minLength"), num("maxLength")) {
        (Some(a), Some(b)) => out.push(format!("{a}–{b} chars")),
        (Some(a), None) => out.push(format!("at least {a} chars")),
        (None, Some(b)) => out.push(format!("at most {b} chars")),
        _ => {}
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        out.push(format!("matches {p}"));
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let v: Vec<String> = values.iter().map(Value::to_string).collect();
        out.push(format!("one of {}", v.join(", ")));
    }
    if let Some(d) = s.get("default") {
        out.push(format!("default {d}"));
    }
    out.join("; ")
}

/// A table of an object schema's properties, or its type and the schema's JSON.
fn schema_block(out: &mut String, s: &Value) {
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str("<table><tr><th>field</th><th>type</th><th>notes</th></tr>");
        for (name, p) in props {
            let req = if required.contains(&name.as_str()) {
                "<span class=\"req\">required</span>"
            } else {
                ""
            };
            let notes = [
                p.get("description")
                    .and_then(Value::as_str)
                    .map(rich)
                    .unwrap_or_default(),
                esc(&rules(p)),
            ]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
            let _ = write!(
                out,
                "<tr><td class=\"name\"><code>{}</code>{req}</td><td class=\"type\">{}</td><td class=\"rules\">{notes}</td></tr>",
                esc(name),
                type_link(p)
            );
        }
        out.push_str("</table>");
    } else {
        let _ = write!(out, "<p class=\"type\">{}</p>", type_link(s));
    }
}

/// The type label, linked to the schema section when it names a component.
fn type_link(s: &Value) -> String {
    let target = s
        .get("$ref")
        .or_else(|| s.get("items").and_then(|i| i.get("$ref")))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/components/schemas/"));
    match target {
        Some(name) => format!(
            "<a href=\"#{}\">{}</a>",
            esc(&anchor("schema", name)),
            esc(&type_label(s))
        ),
        None => esc(&type_label(s)),
    }
}

/// A curl command for an operation, with a placeholder host the script replaces.
fn curl(method: &str, path: &str, op: &Value) -> String {
    let mut cmd = String::from("curl");
    if method != "GET" {
        let _ = write!(cmd, " -X {method}");
    }
    let query: Vec<String> = op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .filter_map(|p| p["name"].as_str())
        .map(|n| format!("{n}=…"))
        .collect();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    let _ = write!(cmd, " 'http://HOST/api{path}{query}'");
    if op.get("security").is_some() {
        cmd.push_str(" \\\n  -H \"authorization: Bearer $TOKEN\"");
    }
    if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
        let skeleton = serde_json::to_string(&skeleton(body)).unwrap_or_default();
        let _ = write!(
            cmd,
            " \\\n  -H 'content-type: application/json' -d '{}'",
            skeleton.replace('\'', "'\\''")
        );
    }
    cmd
}

/// A body to start from: the required properties (all of them when none is required) with a
/// placeholder of their type.
fn skeleton(schema: &Value) -> Value {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Value::Object(Map::new());
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    props
        .iter()
        .filter(|(k, _)| required.is_empty() || required.contains(&k.as_str()))
        .map(|(k, p)| {
            let t = match p.get("type") {
                Some(Value::Array(ts)) => ts.first().and_then(Value::as_str).unwrap_or(""),
                Some(t) => t.as_str().unwrap_or(""),
                None => "",
            };
            let v = match t {
                "integer" | "number" => Value::from(0),
                "boolean" => Value::Bool(false),
                "array" => Value::Array(Vec::new()),
                "object" => Value::Object(Map::new()),
                "null" => Value::Null,
                _ => p
                    .get("enum")
                    .and_then(|e| e.get(0))
                    .cloned()
                    .unwrap_or_else(|| Value::String(String::new())),
            };
            (k.clone(), v)
        })
        .collect::<Map<_, _>>()
        .into()
}

fn operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
    let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
    let search = format!("{method} {path} {id} {summary}");
    let _ = write!(
        out,
        "<article class=\"op\" id=\"{}\" data-search=\"{}\"><div class=\"op-head\"><span class=\"m {}\">{}</span><code class=\"path\">/api{}</code>",
        esc(&anchor("op", id)),
        esc(&search),
        method.to_ascii_lowercase(),
        method,
        esc(path)
    );
    if op.get("security").is_some() {
        out.push_str("<span class=\"badge lock\">bearer token</span>");
    } else {
        out.push_str("<span class=\"badge\">public</span>");
    }
    let _ = write!(
        out,
        "<span class=\"opid\">{}</span></div><h3>{}</h3>",
        esc(id),
        rich(summary)
    );
    if let Some(d) = op.get("description").and_then(Value::as_str) {
        let _ = write!(out, "<p class=\"desc\">{}</p>", rich(d));
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array) {
        out.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>notes</th></tr>");
        for p in params {
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let location = p.get("in").and_then(Value::as_str).unwrap_or("");
            let schema = p.get("schema").cloned().unwrap_or(Value::Null);
            let req = if p.get("required") == Some(&Value::Bool(true)) {
                "<span class=\"req\">required</span>"
            } else {
                ""
            };
            let notes = [
                p.get("description")
                    .and_then(Value::as_str)
                    .map(rich)
                    .unwrap_or_default(),
                esc(&rules(&schema)),
            ]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
            let _ = write!(
                out,
                "<tr><td class=\"name\"><code>{}</code>{req}</td><td>{}</td><td class=\"type\">{}</td><td class=\"rules\">{notes}</td></tr>",
                esc(name),
                esc(location),
                type_link(&schema)
            );
        }
        out.push_str("</table>");
    }
    if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
        out.push_str("<h4>Request body <span class=\"ct\">application/json</span></h4>");
        schema_block(out, schema);
    }
    out.push_str("<h4>Responses</h4>");
    for (status, r) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let class = format!("s{}", status.chars().next().unwrap_or('5'));
        let description = r.get("description").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<div class=\"resp\"><span class=\"status {class}\">{}</span><span>{}</span>",
            esc(status),
            rich(description)
        );
        for (media, m) in r
            .get("content")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let _ = write!(out, "<span class=\"ct\">{}</span>", esc(media));
            if let Some(schema) = m.get("schema") {
                let _ = write!(out, "<span class=\"type\">{}</span>", type_link(schema));
                if schema.get("properties").is_some() {
                    out.push_str("<details><summary>fields</summary>");
                    schema_block(out, schema);
                    out.push_str("</details>");
                }
            }
            if let Some(example) = m.get("example") {
                let text = serde_json::to_string_pretty(example).unwrap_or_default();
                let _ = write!(
                    out,
                    "<details><summary>example</summary><pre>{}</pre></details>",
                    esc(&text)
                );
            }
        }
        out.push_str("</div>");
    }
    let _ = write!(
        out,
        "<h4>Try it</h4><div class=\"try\"><pre class=\"curl\">{}</pre><button class=\"copy\" type=\"button\">Copy</button></div></article>",
        esc(&curl(method, path, op))
    );
}

/// The whole page for an OpenAPI document made by [`super::document`].
pub fn render(doc: &Value) -> String {
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API");
    let version = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    // Tag → [(method, path, operation)], in path order within each tag.
    let mut by_tag: BTreeMap<String, Vec<(String, &str, &Value)>> = BTreeMap::new();
    let empty = Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let tag = op
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("api")
                .to_string();
            by_tag
                .entry(tag)
                .or_default()
                .push((method.to_ascii_uppercase(), path.as_str(), op));
        }
    }

    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t} · reference</title><style>{CSS}</style></head><body>\
         <header class=\"top\"><div class=\"brand\">{t}<span>reference</span></div><div class=\"meta\">OpenAPI 3.1 · version <code>{v}</code> · <a href=\"/api/openapi.json\">openapi.json</a></div></header>\
         <div class=\"layout\"><nav class=\"side\"><input id=\"filter\" type=\"search\" placeholder=\"Filter endpoints ( / )\" aria-label=\"Filter endpoints\">",
        t = esc(title),
        v = esc(version)
    );
    for (tag, ops) in &by_tag {
        let _ = write!(out, "<h3>{}</h3><ul>", esc(tag));
        for (method, path, op) in ops {
            let id = op.get("operationId").and_then(Value::as_str).unwrap_or("");
            let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
            let _ = write!(
                out,
                "<li data-search=\"{}\"><a href=\"#{}\"><span class=\"m {}\">{}</span>{}</a></li>",
                esc(&format!("{method} {path} {id} {summary}")),
                esc(&anchor("op", id)),
                method.to_ascii_lowercase(),
                method,
                esc(path)
            );
        }
        out.push_str("</ul>");
    }
    if doc.pointer("/components/schemas").is_some() {
        out.push_str("<h3>Schemas</h3><ul>");
        for name in doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            let _ = write!(
                out,
                "<li data-search=\"{n}\"><a href=\"#{}\">{n}</a></li>",
                esc(&anchor("schema", name)),
                n = esc(name)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</nav><main><section class=\"intro\">");
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    if let Some(d) = doc.pointer("/info/description").and_then(Value::as_str) {
        let _ = write!(out, "<p>{}</p>", rich(d));
    }
    out.push_str("<p>Base URL: <code>/api</code>. Send and receive JSON. Endpoints marked <span class=\"badge lock\">bearer token</span> need <code>Authorization: Bearer &lt;token&gt;</code>.</p></section>");
    if by_tag.is_empty() {
        out.push_str("<p class=\"empty\">No endpoints are published yet. Publish a flow and it appears here at once.</p>");
    }
    for (tag, ops) in &by_tag {
        let _ = write!(
            out,
            "<section class=\"tag\" id=\"{}\"><h2>{}</h2>",
            esc(&anchor("tag", tag)),
            esc(tag)
        );
        for (method, path, op) in ops {
            operation(&mut out, method, path, op);
        }
        out.push_str("</section>");
    }
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        out.push_str("<section class=\"schemas\"><h2>Schemas</h2>");
        for (name, s) in schemas {
            let _ = write!(
                out,
                "<article class=\"op\" id=\"{}\"><h3><code>{}</code></h3>",
                esc(&anchor("schema", name)),
                esc(name)
            );
            if let Some(d) = s.get("description").and_then(Value::as_str) {
                let _ = write!(out, "<p class=\"desc\">{}</p>", rich(d));
            }
            schema_block(&mut out, s);
            if let Some(inner) = s.pointer("/properties/error")
                && inner.get("properties").is_some()
            {
                out.push_str("<h4><code>error</code></h4>");
                schema_block(&mut out, inner);
            }
            out.push_str("</article>");
        }
        out.push_str("</section>");
    }
    let _ = writeln!(out, "</main></div><script>{JS}</script></body></html>");
    out
}
