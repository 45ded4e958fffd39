//! The generator on compiled plans, without a server: what each part of a flow becomes in the
//! document, and the page that renders it.

use super::*;
use crate::tables::TableDef;
use serde_json::json;

fn tables() -> BTreeMap<String, TableDef> {
    let todos: TableDef = serde_json::from_value(json!({
        "name": "todos",
        "description": "Things to do.",
        "fields": [
            {"name": "title", "type": "text", "required": true, "description": "What to do."},
            {"name": "done", "type": "boolean", "required": true, "default": false},
            {"name": "level", "type": "enum", "values": ["low", "high"]},
            {"name": "owner", "type": "reference", "table": "people"},
            {"name": "secret", "type": "password"}
        ]
    }))
    .expect("todos");
    let people: TableDef = serde_json::from_value(json!({
        "name": "people", "id_type": "uuid",
        "fields": [{"name": "name", "type": "text"}]
    }))
    .expect("people");
    BTreeMap::from([("todos".into(), todos), ("people".into(), people)])
}

fn flow(name: &str, method: &str, path: &str, extra: Value) -> Value {
    let mut doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": name,
        "endpoint": {"method": method, "path": path},
    });
    for (k, v) in extra.as_object().expect("object") {
        doc[k] = v.clone();
    }
    doc
}

fn get_todo() -> Value {
    flow(
        "get_todo",
        "GET",
        "/todos/{id}",
        json!({
            "description": "One todo by id.\nAnswers 404 when there is none.",
            "input": {"params": {"type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "description": "The todo's id."}}}},
            "entry": "load",
            "nodes": {
                "load": {"type": "db.get", "table": "todos", "as": "todo", "id": {"$rhai": "request.params.id"},
                         "next": {"found": "reply", "not_found": "missing"}},
                "missing": {"type": "fail", "status": 404, "code": "todo.not_found", "message": "no such todo",
                            "description": "There is no todo with this id."},
                "reply": {"type": "respond", "body": {"$rhai": "todo"}, "headers": {"cache-control": "no-store"}}
            }
        }),
    )
}

fn search_todos() -> Value {
    flow(
        "search_todos",
        "GET",
        "/todos",
        json!({
            "input": {"query": {"type": "object", "required": ["q"], "properties": {
                "q": {"type": "string"}, "limit": {"type": "integer", "maximum": 100}}}},
            "entry": "load",
            "nodes": {
                "load": {"type": "db.query", "table": "todos", "as": "rows", "next": {"ok": "reply"}},
                "reply": {"type": "respond", "body": {"items": {"$rhai": "rows"}, "count": {"$rhai": "rows.len()"}, "v": 1}}
            }
        }),
    )
}

fn create_todo() -> Value {
    flow(
        "create_todo",
        "POST",
        "/todos",
        json!({
            "input": {"body": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}},
            "entry": "insert",
            "nodes": {
                "insert": {"type": "db.insert", "table": "todos", "as": "todo",
                           "values": {"title": {"$rhai": "request.body.title"}}, "next": {"ok": "reply"}},
                "reply": {"type": "respond", "status": 201, "body": {"$rhai": "todo"}}
            }
        }),
    )
}

fn hello() -> Value {
    flow(
        "hello",
        "GET",
        "/hello",
        json!({
            "entry": "pick",
            "nodes": {
                "pick": {"type": "if", "condition": {"$rhai": "\"html\" in request.query"},
                         "next": {"then": "page", "else": "text"}},
                "page": {"type": "respond", "content_type": "html", "body": "<b>hi</b>"},
                "text": {"type": "respond", "body": {"greeting": "hi", "tags": ["a", "b"]}}
            }
        }),
    )
}

fn build(docs: &[(Value, bool)]) -> Value {
    let tables = tables();
    let plans: Vec<Plan> = docs
        .iter()
        .map(|(d, _)| crate::nodes::compile(d, Some(&tables)).expect("the flow compiles"))
        .collect();
    let ops: Vec<Operation<'_>> = plans
        .iter()
        .zip(docs)
        .map(|(p, (d, auth))| {
            let ep = p.endpoint.as_ref().expect("endpoint");
            Operation {
                method: ep.method,
                path: ep.path.clone(),
                requires_auth: *auth,
                tag: None,
                plan: p,
                document: d,
            }
        })
        .collect();
    document(&ops, &tables)
}

#[test]
fn paths_and_methods_are_sorted_whatever_the_publishing_order() {
    let a = build(&[
        (get_todo(), false),
        (create_todo(), false),
        (hello(), false),
    ]);
    let b = build(&[
        (hello(), false),
        (create_todo(), false),
        (get_todo(), false),
    ]);
    assert_eq!(a, b);
    let paths: Vec<&String> = a["paths"].as_object().expect("paths").keys().collect();
    assert_eq!(paths, ["/hello", "/todos", "/todos/{id}"]);
    assert_eq!(a["openapi"], "3.1.0");
    assert_eq!(a["servers"], json!([{"url": "/api"}]));
    let tags: Vec<&str> = a["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tags, ["hello", "todos"]);
}

#[test]
fn the_version_changes_with_what_is_published() {
    let one = build(&[(get_todo(), false)]);
    let two = build(&[(get_todo(), false), (hello(), false)]);
    let mut changed = get_todo();
    changed["description"] = json!("Changed.");
    let three = build(&[(changed, false)]);
    let v = |d: &Value| d["info"]["version"].as_str().expect("version").to_string();
    assert_eq!(v(&one), v(&build(&[(get_todo(), false)])));
    assert_ne!(v(&one), v(&two));
    assert_ne!(v(&one), v(&three));
}

#[test]
fn an_operation_carries_its_flow_name_summary_and_parameters() {
    let doc = build(&[(get_todo(), false), (search_todos(), false)]);
    let get = &doc["paths"]["/todos/{id}"]["get"];
    assert_eq!(get["operationId"], "get_todo");
    assert_eq!(get["summary"], "One todo by id.");
    assert_eq!(
        get["description"],
        "One todo by id.\nAnswers 404 when there is none."
    );
    assert_eq!(get["tags"], json!(["todos"]));
    assert_eq!(
        get["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "description": "The todo's id.",
                "schema": {"type": "integer", "format": "int64", "minimum": 1, "description": "The todo's id."}}])
    );
    assert!(get.get("requestBody").is_none());
    assert!(get.get("security").is_none());

    let search = &doc["paths"]["/todos"]["get"];
    assert_eq!(search["summary"], "search todos");
    assert_eq!(
        search["parameters"],
        json!([
            {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "format": "int64", "maximum": 100}},
            {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}}
        ])
    );
}

#[test]
fn an_undeclared_path_parameter_is_a_required_string() {
    let mut doc = get_todo();
    doc.as_object_mut().expect("object").remove("input");
    let out = build(&[(doc, false)]);
    assert_eq!(
        out["paths"]["/todos/{id}"]["get"]["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}])
    );
}

#[test]
fn the_body_schema_becomes_a_required_json_request_body() {
    let doc = build(&[(create_todo(), false)]);
    assert_eq!(
        doc["paths"]["/todos"]["post"]["requestBody"],
        json!({"required": true, "content": {"application/json": {"schema":
            {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}}}})
    );
}

#[test]
fn rows_of_database_nodes_become_table_schemas() {
    let doc = build(&[
        (get_todo(), false),
        (create_todo(), false),
        (search_todos(), false),
    ]);
    let ok = &doc["paths"]["/todos/{id}"]["get"]["responses"]["200"];
    assert_eq!(
        ok["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/todos"})
    );
    assert_eq!(
        ok["headers"],
        json!({"cache-control": {"schema": {"type": "string"}}})
    );
    let created = &doc["paths"]["/todos"]["post"]["responses"]["201"];
    assert_eq!(created["description"], "Created");
    assert_eq!(
        created["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/todos"})
    );
    let listed =
        &doc["paths"]["/todos"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        listed,
        &json!({"type": "object", "required": ["count", "items", "v"], "properties": {
            "count": {},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/todos"}},
            "v": {"type": "integer"}}})
    );
    let row = &doc["components"]["schemas"]["todos"];
    assert_eq!(
        row,
        &json!({
            "type": "object",
            "description": "Things to do.",
            "properties": {
                "id": {"type": "integer", "format": "int64", "minimum": 1},
                "title": {"type": "string", "description": "What to do."},
                "done": {"type": "boolean"},
                "level": {"type": ["string", "null"], "enum": ["low", "high", null]},
                "owner": {"type": ["string", "null"], "format": "uuid"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"}
            },
            "required": ["created_at", "done", "id", "level", "owner", "title", "updated_at"]
        }),
        "password fields never appear; references take the id type of their table"
    );
    assert!(
        doc["components"]["schemas"].get("people").is_none(),
        "only tables that responses name are components"
    );
}

#[test]
fn errors_list_their_codes_and_use_the_envelope() {
    let doc = build(&[(get_todo(), false), (create_todo(), false)]);
    let get = &doc["paths"]["/todos/{id}"]["get"]["responses"];
    let envelope = json!({"$ref": "#/components/schemas/Error"});
    assert_eq!(
        get["404"],
        json!({"description": "There is no todo with this id. Error codes: `todo.not_found`.",
               "content": {"application/json": {"schema": envelope}}})
    );
    assert_eq!(
        get["400"]["description"],
        "Bad Request. Error codes: `input.invalid`, `request.invalid_json`, `request.invalid_query`."
    );
    assert_eq!(
        get["500"]["content"]["application/json"]["schema"],
        envelope
    );
    assert!(get.get("409").is_none(), "db.get cannot conflict");
    let post = &doc["paths"]["/todos"]["post"]["responses"];
    assert_eq!(
        post["409"]["description"],
        "Conflict. Error codes: `db.conflict`."
    );
    assert!(doc["components"]["schemas"]["Error"]["properties"]["error"].is_object());
}

#[test]
fn literal_bodies_give_examples_and_each_content_type_its_entry() {
    let doc = build(&[(hello(), false)]);
    let ok = &doc["paths"]["/hello"]["get"]["responses"]["200"];
    assert_eq!(
        ok["content"],
        json!({
            "application/json": {"schema": {"type": "object", "required": ["greeting", "tags"], "properties": {
                "greeting": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}},
            "text/html": {"schema": {"type": "string"}}
        }),
        "two nodes answer 200, so no single example"
    );
    let one = build(&[
        (create_todo(), false),
        (
            flow(
                "ping",
                "GET",
                "/ping",
                json!({"entry": "r", "nodes": {"r": {"type": "respond", "body": {"ok": true}}}}),
            ),
            false,
        ),
    ]);
    assert_eq!(
        one["paths"]["/ping"]["get"]["responses"]["200"]["content"]["application/json"]["example"],
        json!({"ok": true})
    );
    let ping = flow(
        "ping",
        "GET",
        "/ping",
        json!({"entry": "r", "nodes": {"r": {"type": "respond", "body": {"ok": true}}}}),
    );
    let behind_token = build(&[(ping, true)]);
    let media =
        &behind_token["paths"]["/ping"]["get"]["responses"]["200"]["content"]["application/json"];
    assert!(
        media.get("example").is_none(),
        "no literal answers of endpoints behind a token"
    );
    assert!(media.get("schema").is_some());
}

#[test]
fn an_unknown_body_has_a_content_type_but_no_schema() {
    let doc = flow(
        "calc",
        "GET",
        "/calc",
        json!({"entry": "r", "nodes": {"r": {"type": "respond", "body": {"$rhai": "40 + 2"}}}}),
    );
    let out = build(&[(doc, false)]);
    assert_eq!(
        out["paths"]["/calc"]["get"]["responses"]["200"]["content"],
        json!({"application/json": {}})
    );
}

#[test]
fn a_no_content_answer_has_no_content() {
    let doc = flow(
        "gone",
        "DELETE",
        "/things/{id}",
        json!({"entry": "r", "nodes": {"r": {"type": "respond", "status": 204, "body": null}}}),
    );
    let out = build(&[(doc, false)]);
    assert_eq!(
        out["paths"]["/things/{id}"]["delete"]["responses"]["204"],
        json!({"description": "No Content"})
    );
}

#[test]
fn endpoints_that_need_a_token_carry_the_bearer_scheme() {
    let doc = build(&[(get_todo(), true), (hello(), false)]);
    assert_eq!(
        doc["paths"]["/todos/{id}"]["get"]["security"],
        json!([{"bearer": []}])
    );
    assert!(
        doc["paths"]["/todos/{id}"]["get"]["responses"]["401"]["description"]
            .as_str()
            .is_some()
    );
    assert!(doc["paths"]["/hello"]["get"].get("security").is_none());
    assert!(
        doc["paths"]["/hello"]["get"]["responses"]
            .get("401")
            .is_none()
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let public = build(&[(hello(), false)]);
    assert!(public["components"].get("securitySchemes").is_none());
}

#[test]
fn a_given_tag_wins_over_the_path() {
    let tables = tables();
    let doc = hello();
    let plan = crate::nodes::compile(&doc, Some(&tables)).expect("compiles");
    let op = Operation {
        method: Method::GET,
        path: "/v2/hello".into(),
        requires_auth: false,
        tag: Some("greetings".into()),
        plan: &plan,
        document: &doc,
    };
    let out = document(&[op], &tables);
    assert_eq!(
        out["paths"]["/v2/hello"]["get"]["tags"],
        json!(["greetings"])
    );
    assert_eq!(out["tags"], json!([{"name": "greetings"}]));
}

#[test]
fn the_page_names_every_endpoint_and_escapes_what_builders_wrote() {
    let mut evil = hello();
    evil["description"] = json!("<script>alert(1)</script> says `hi`");
    let doc = build(&[(get_todo(), true), (evil, false), (create_todo(), false)]);
    let html = page::render(&doc);
    assert!(html.contains("/api/todos/{id}"));
    assert!(html.contains("/api/hello"));
    assert!(html.contains("get_todo"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; says <code>hi</code>"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the embedded script"
    );
    assert!(html.contains("bearer token"));
    assert!(html.contains("-H &quot;authorization: Bearer $TOKEN&quot;"));
    assert!(
        html.contains("-d &#39;{&quot;title&quot;:&quot;&quot;}&#39;"),
        "the curl line starts from the required body fields"
    );
}

#[test]
fn the_page_allows_only_its_own_script_and_style() {
    let csp = page::csp();
    assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
    assert!(!csp.contains("unsafe-inline"));
    assert!(!csp.contains("http"));
}

#[test]
fn nothing_published_is_still_a_valid_document_and_page() {
    let docs = ApiDocs::default();
    let doc: Value = serde_json::from_slice(&docs.json).expect("json");
    assert_eq!(doc["paths"], json!({}));
    let html = String::from_utf8(docs.html.to_vec()).expect("utf-8");
    assert!(html.contains("No endpoints are published yet"));
}

#[test]
fn paths_that_differ_only_in_parameter_names_are_listed_once() {
    let read = flow(
        "read_thing",
        "GET",
        "/things/{thing}",
        json!({"input": {"params": {"type": "object", "properties": {"thing": {"type": "integer"}}}},
               "entry": "r", "nodes": {"r": {"type": "respond", "body": null}}}),
    );
    let write = flow(
        "write_thing",
        "PUT",
        "/things/{id}",
        json!({"input": {"params": {"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}}},
               "entry": "r", "nodes": {"r": {"type": "respond", "body": null}}}),
    );
    let doc = build(&[(read, false), (write, false)]);
    let paths: Vec<&String> = doc["paths"].as_object().expect("paths").keys().collect();
    assert_eq!(paths, ["/things/{id}"]);
    let item = &doc["paths"]["/things/{id}"];
    assert_eq!(
        item["get"]["parameters"],
        json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}]),
        "the name follows the listed path, the schema stays the flow's own"
    );
    assert_eq!(
        item["put"]["parameters"][0]["schema"],
        json!({"type": "string", "format": "uuid"})
    );
}

#[test]
fn upserts_tokens_and_deletions_have_their_own_shapes() {
    let doc = flow(
        "sync",
        "POST",
        "/sync",
        json!({
            "entry": "up",
            "nodes": {
                "up": {"type": "db.upsert", "table": "people", "as": "saved", "on": ["name"],
                       "values": {"name": "x"}, "next": {"ok": "gone"}},
                "gone": {"type": "db.delete", "table": "todos", "as": "old", "id": 1, "next": {"ok": "tok"}},
                "tok": {"type": "auth.issue_token", "as": "session", "sub": "1", "next": {"ok": "r"}},
                "r": {"type": "respond", "body": {"saved": {"$rhai": "saved"}, "old": {"$rhai": "old"},
                                                  "session": {"$rhai": "session"}}}
            }
        }),
    );
    let mut tables = tables();
    let people = tables.get_mut("people").expect("people");
    people.fields[0].unique = true;
    let plan = crate::nodes::compile(&doc, Some(&tables)).expect("compiles");
    let op = Operation {
        method: Method::POST,
        path: "/sync".into(),
        requires_auth: false,
        tag: None,
        plan: &plan,
        document: &doc,
    };
    let out = document(&[op], &tables);
    let props = &out["paths"]["/sync"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        ["properties"];
    assert_eq!(
        props["saved"],
        json!({"type": "object", "required": ["inserted", "row"], "properties": {
            "row": {"$ref": "#/components/schemas/people"}, "inserted": {"type": "boolean"}}})
    );
    assert_eq!(props["old"], json!({"$ref": "#/components/schemas/todos"}));
    assert_eq!(
        props["session"]["properties"]["token"],
        json!({"type": "string"})
    );
    let schemas: Vec<&String> = out["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
        .collect();
    assert_eq!(schemas, ["Error", "people", "todos"]);
}

#[test]
fn declared_inputs_echoed_back_keep_their_schema() {
    let doc = flow(
        "echo",
        "POST",
        "/echo/{id}",
        json!({
            "input": {
                "params": {"type": "object", "properties": {"id": {"type": "integer"}}},
                "body": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "maxLength": 9}, "note": {"type": "string"}}}
            },
            "entry": "r",
            "nodes": {"r": {"type": "respond", "body": {
                "id": {"$rhai": "request.params.id"},
                "name": {"$rhai": "request.body.name"},
                "note": {"$rhai": "request.body.note"},
                "all": {"$rhai": "request.body"}
            }}}
        }),
    );
    let out = build(&[(doc, false)]);
    let props = &out["paths"]["/echo/{id}"]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"]["properties"];
    assert_eq!(props["id"], json!({"type": "integer"}));
    assert_eq!(props["name"], json!({"type": "string", "maxLength": 9}));
    assert_eq!(
        props["note"],
        json!({"type": "string"}),
        "reading a missing property fails the run, so an answer has it"
    );
    assert_eq!(props["all"]["required"], json!(["name"]));
}

#[test]
fn set_values_and_validated_values_are_followed() {
    let doc = flow(
        "summary",
        "POST",
        "/summary",
        json!({
            "entry": "check",
            "nodes": {
                "check": {"type": "validate", "as": "input", "value": {"$rhai": "request.body"},
                          "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
                          "next": {"ok": "load"}},
                "load": {"type": "db.query", "table": "todos", "as": "rows", "next": {"ok": "shape"}},
                "shape": {"type": "set", "as": "out", "value": {"input": {"$rhai": "input"},
                          "rows": {"$rhai": "rows"}, "total": {"$rhai": "rows.len()"}},
                          "next": {"ok": "wrap"}},
                "wrap": {"type": "set", "as": "wrapped", "value": {"data": {"$rhai": "out"}},
                         "next": {"ok": "r"}},
                "r": {"type": "respond", "body": {"$rhai": "wrapped"}}
            }
        }),
    );
    let out = build(&[(doc, false)]);
    let schema = &out["paths"]["/summary"]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    let data = &schema["properties"]["data"]["properties"];
    assert_eq!(
        data["input"],
        json!({"type": "object", "properties": {"n": {"type": "integer"}}})
    );
    assert_eq!(
        data["rows"],
        json!({"type": "array", "items": {"$ref": "#/components/schemas/todos"}})
    );
    assert_eq!(data["total"], json!({}));
    assert!(
        out["components"]["schemas"]["todos"].is_object(),
        "a row reached through a set is still a component"
    );
}
