//! The names the editor completes at each node ([`crate::flow::scope`]), computed by the
//! compiler with the built-in node types: which names are visible where, and what is known of
//! each (a row's columns, the declared body, a loop's item, an error).

use super::compile_with_scope;
use crate::flow::scope::{Scope, ScopeName};
use crate::tables::TableDef;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn catalog() -> BTreeMap<String, TableDef> {
    let def: TableDef = serde_json::from_value(json!({
        "name": "todos",
        "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "done", "type": "boolean", "default": false},
            {"name": "secret", "type": "password"}
        ]
    }))
    .expect("definition");
    BTreeMap::from([("todos".to_string(), def)])
}

fn scope(doc: &Value) -> Scope {
    let cat = catalog();
    compile_with_scope(doc, Some(&cat)).1
}

/// The names visible at `node`, built-ins included.
fn names(scope: &Scope, node: &str) -> Vec<String> {
    let Some(list) = scope.get(node) else {
        panic!(
            "no scope for {node}: {:?}",
            scope.keys().collect::<Vec<_>>()
        );
    };
    list.iter().map(|n| n.name.clone()).collect()
}

fn find<'s>(scope: &'s Scope, node: &str, name: &str) -> &'s ScopeName {
    scope[node]
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not visible at {node}"))
}

fn field_names(n: &ScopeName) -> Vec<&str> {
    n.fields.iter().map(|f| f.name.as_str()).collect()
}

fn flow(nodes: Value, entry: &str) -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": "t",
        "endpoint": {"method": "POST", "path": "/t"},
        "input": {"body": {"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}},
        "entry": entry,
        "nodes": nodes
    })
}

#[test]
fn a_name_bound_on_one_branch_only_is_not_visible_where_the_branches_join() {
    let doc = flow(
        json!({
            "check": {"type": "if", "condition": {"$rhai": "request.body.title == \"\""},
                      "next": {"then": "answer", "else": "reply"}},
            "answer": {"type": "script", "code": "42", "as": "answer", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": 1}
        }),
        "check",
    );
    let s = scope(&doc);
    assert_eq!(names(&s, "check"), ["request", "auth", "env"]);
    assert_eq!(names(&s, "answer"), ["request", "auth", "env"]);
    assert_eq!(names(&s, "reply"), ["request", "auth", "env"]);

    // Bound on both branches, by different nodes: visible, its origin no longer one node.
    let doc = flow(
        json!({
            "check": {"type": "if", "condition": {"$rhai": "true"}, "next": {"then": "a", "else": "b"}},
            "a": {"type": "script", "code": "1", "as": "answer", "next": {"ok": "reply"}},
            "b": {"type": "script", "code": "2", "as": "answer", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "answer"}}
        }),
        "check",
    );
    let s = scope(&doc);
    assert_eq!(names(&s, "reply"), ["request", "auth", "env", "answer"]);
    assert_eq!(find(&s, "reply", "answer").node, None);
}

#[test]
fn a_row_bound_by_a_database_node_has_its_tables_columns_without_passwords() {
    let doc = flow(
        json!({
            "insert": {"type": "db.insert", "table": "todos", "as": "todo",
                       "values": {"title": {"$rhai": "request.body.title"}}, "next": {"ok": "list"}},
            "list": {"type": "db.query", "table": "todos", "as": "todos", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "todo"}}
        }),
        "insert",
    );
    let s = scope(&doc);
    assert_eq!(names(&s, "insert"), ["request", "auth", "env"]);
    assert_eq!(names(&s, "list"), ["request", "auth", "env", "todo"]);
    let todo = find(&s, "reply", "todo");
    assert_eq!(
        (todo.kind, todo.table.as_deref(), todo.node.as_deref()),
        ("row", Some("todos"), Some("insert"))
    );
    assert_eq!(
        field_names(todo),
        ["id", "title", "done", "created_at", "updated_at"]
    );
    assert_eq!(todo.fields[2].ty.as_deref(), Some("boolean"));
    let todos = find(&s, "reply", "todos");
    assert_eq!(
        (todos.kind, todos.table.as_deref()),
        ("rows", Some("todos"))
    );

    // The request's body has the properties its input schema declares.
    let request = find(&s, "insert", "request");
    assert_eq!(field_names(request), ["params", "query", "body", "headers"]);
    let body = &request.fields[2];
    assert_eq!(
        (body.kind, field_names(body)),
        ("object", vec!["tags", "title"])
    );
    assert_eq!(body.fields[0].kind, "list");
}

#[test]
fn the_loop_item_and_index_are_visible_inside_a_for_each_body_only() {
    let doc = flow(
        json!({
            "list": {"type": "db.query", "table": "todos", "as": "todos", "next": {"ok": "each"}},
            "each": {"type": "for_each", "as": "made", "items": {"$rhai": "todos"}, "item": "todo",
                     "body": {"entry": "step", "nodes": {
                         "step": {"type": "script", "code": "todo.title", "as": "t", "next": {"ok": "keep"}},
                         "keep": {"type": "collect", "value": {"$rhai": "t + index"}}
                     }},
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "made"}}
        }),
        "list",
    );
    let s = scope(&doc);
    assert_eq!(
        names(&s, "each/body/nodes/step"),
        ["request", "auth", "env", "index", "todo", "todos"]
    );
    assert_eq!(
        names(&s, "each/body/nodes/keep"),
        ["request", "auth", "env", "index", "t", "todo", "todos"]
    );
    // The loop walks rows of `todos`, so its item is such a row.
    let item = find(&s, "each/body/nodes/step", "todo");
    assert_eq!(
        (item.kind, item.table.as_deref(), item.node.as_deref()),
        ("row", Some("todos"), Some("each"))
    );
    assert!(field_names(item).contains(&"title"));
    assert_eq!(find(&s, "each/body/nodes/step", "index").kind, "index");
    // Outside the body: the loop's result, not its item.
    assert_eq!(
        names(&s, "reply"),
        ["request", "auth", "env", "made", "todos"]
    );

    // A loop over anything else gives a plain item.
    let mut doc = doc;
    doc["nodes"]["each"]["items"] = json!({"$rhai": "request.body.tags"});
    let s = scope(&doc);
    assert_eq!(find(&s, "each/body/nodes/step", "todo").kind, "item");
}

#[test]
fn error_is_visible_in_error_handlers_with_its_properties() {
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "t",
        "endpoint": {"method": "GET", "path": "/t/{id}"},
        "entry": "load", "on_error": "oops",
        "nodes": {
            "load": {"type": "db.get", "table": "todos", "as": "todo", "id": {"$rhai": "request.params.id"},
                     "next": {"found": "reply", "error": "failed"}},
            "reply": {"type": "respond", "body": {"$rhai": "todo"}},
            "failed": {"type": "respond", "status": 500, "body": {"$rhai": "error.message"}},
            "oops": {"type": "respond", "status": 500, "body": {"$rhai": "error.code"}}
        }
    });
    let s = scope(&doc);
    assert_eq!(names(&s, "reply"), ["request", "auth", "env", "todo"]);
    // Without a params schema, the path's parameters are known (as text).
    let params = &find(&s, "load", "request").fields[0];
    assert_eq!(
        (params.name.as_str(), field_names(params)),
        ("params", vec!["id"])
    );
    assert_eq!(names(&s, "failed"), ["request", "auth", "env", "error"]);
    assert_eq!(names(&s, "oops"), ["request", "auth", "env", "error"]);
    let error = find(&s, "oops", "error");
    assert_eq!(
        (error.kind, field_names(error)),
        (
            "error",
            vec!["code", "message", "status", "node", "rule", "details"]
        )
    );
}

#[test]
fn the_scope_is_there_when_the_node_being_written_does_not_compile() {
    let doc = flow(
        json!({
            "insert": {"type": "db.insert", "table": "todos", "as": "todo",
                       "values": {"title": {"$rhai": "request.body.title"}}, "next": {"ok": "calc"}},
            "calc": {"type": "script", "code": "let x = todo.;", "as": "x", "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "x"}}
        }),
        "insert",
    );
    let cat = catalog();
    let (compiled, s) = compile_with_scope(&doc, Some(&cat));
    let problems = compiled.expect_err("a syntax error");
    assert!(problems.iter().any(|d| d.code == "flow.rhai_syntax"));
    assert_eq!(find(&s, "calc", "todo").kind, "row");
    // A name bound by a node that did not compile is visible, its value unknown.
    assert_eq!(find(&s, "reply", "x").kind, "value");
}

#[test]
fn set_describes_the_keys_of_the_object_it_writes() {
    let doc = flow(
        json!({
            "pick": {"type": "set", "as": "page", "value": {"size": 20, "title": {"$rhai": "request.body.title"}},
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "page"}}
        }),
        "pick",
    );
    let s = scope(&doc);
    let page = find(&s, "reply", "page");
    assert_eq!(
        (page.kind, field_names(page)),
        ("object", vec!["size", "title"])
    );
    assert_eq!(
        (page.fields[0].kind, page.fields[1].kind),
        ("integer", "value")
    );
}

#[test]
fn env_gets_the_names_of_the_plain_environment_values() {
    let doc = flow(
        json!({"reply": {"type": "respond", "body": {"$rhai": "env.REGION"}}}),
        "reply",
    );
    let mut s = scope(&doc);
    assert!(find(&s, "reply", "env").fields.is_empty());
    crate::flow::scope::with_env(&mut s, &["REGION".to_string()]);
    let env = find(&s, "reply", "env");
    assert_eq!((env.kind, field_names(env)), ("env", vec!["REGION"]));
}

#[test]
fn a_validated_value_has_the_properties_its_schema_declares() {
    let doc = flow(
        json!({
            "check": {"type": "validate", "as": "input", "value": {"$rhai": "request.body"},
                      "schema": {"type": "object", "properties": {"email": {"type": "string"},
                                 "age": {"type": "integer"}}},
                      "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "input"}}
        }),
        "check",
    );
    let s = scope(&doc);
    let input = find(&s, "reply", "input");
    assert_eq!(
        (input.kind, field_names(input)),
        ("object", vec!["age", "email"])
    );
    assert_eq!(input.fields[0].kind, "integer");
}

#[test]
fn a_loop_item_shadows_an_outer_name_of_the_same_name() {
    let doc = flow(
        json!({
            "insert": {"type": "set", "as": "todo", "value": {"kept": true}, "next": {"ok": "list"}},
            "list": {"type": "db.query", "table": "todos", "as": "todos", "next": {"ok": "each"}},
            "each": {"type": "for_each", "as": "made", "items": {"$rhai": "todos"}, "item": "todo",
                     "body": {"entry": "keep", "nodes": {
                         "keep": {"type": "collect", "value": {"$rhai": "todo.title"}}
                     }},
                     "next": {"ok": "reply"}},
            "reply": {"type": "respond", "body": {"$rhai": "todo"}}
        }),
        "insert",
    );
    let s = scope(&doc);
    let inside = find(&s, "each/body/nodes/keep", "todo");
    assert_eq!((inside.kind, inside.node.as_deref()), ("row", Some("each")));
    let outside = find(&s, "reply", "todo");
    assert_eq!(
        (outside.kind, outside.node.as_deref()),
        ("object", Some("insert"))
    );
}
