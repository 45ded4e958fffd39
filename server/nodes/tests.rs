//! Compiler checks, one scenario each, with the built-in node types. Documents are built from
//! a valid base and broken on purpose; the assertions name the codes and pointers a builder
//! would see. Then what plan analysis and the program builder make of compiled flows.

use super::compile;
use crate::engine::{Plan, Program};
use crate::flow::CompiledOp;
use crate::flow::diag::Diagnostic;
use crate::flow::generate::tests::accounts;
use crate::flow::generate::{crud, default_auth};
use crate::flow::plan::AuthLevel;
use crate::tables::IdType;
use crate::tables::TableDef;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn catalog() -> BTreeMap<String, TableDef> {
    let def: TableDef = serde_json::from_value(json!({
        "name": "todos",
        "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "done", "type": "boolean", "default": false}
        ]
    }))
    .expect("definition");
    BTreeMap::from([("todos".to_string(), def)])
}

fn create_flow() -> Value {
    json!({
        "format": "sluice.flow",
        "format_version": 1,
        "name": "create_todo",
        "endpoint": {"method": "POST", "path": "/todos"},
        "input": {"body": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}},
        "entry": "insert",
        "nodes": {
            "insert": {"type": "db.insert", "table": "todos", "as": "todo",
                       "values": {"title": {"$rhai": "request.body.title"}},
                       "next": {"ok": "check"}},
            "check": {"type": "if", "condition": {"$rhai": "todo.done"},
                      "next": {"then": "done", "else": "created"}},
            "done": {"type": "fail", "status": 409, "code": "todo.already_done", "message": "already done"},
            "created": {"type": "respond", "status": 201, "body": {"$rhai": "todo"}}
        }
    })
}

fn problems(doc: &Value) -> Vec<Diagnostic> {
    let cat = catalog();
    match compile(doc, Some(&cat)) {
        Ok(_) => Vec::new(),
        Err(d) => d,
    }
}

fn codes(doc: &Value) -> Vec<(&'static str, String)> {
    problems(doc)
        .into_iter()
        .map(|d| (d.code, d.pointer))
        .collect()
}

#[test]
fn a_valid_flow_compiles_to_a_plan() {
    let cat = catalog();
    let plan = compile(&create_flow(), Some(&cat)).expect("compiles");
    assert_eq!(plan.nodes.len(), 4);
    assert_eq!(plan.nodes[plan.entry].id, "insert");
    assert!(plan.writes());
    assert_eq!(
        plan.endpoint.as_ref().map(|e| e.route_key()),
        Some("POST /todos".to_string())
    );
}

#[test]
fn an_unknown_node_type_is_reported_with_its_pointer() {
    let mut doc = create_flow();
    doc["nodes"]["done"]["type"] = json!("db.explode");
    let found = problems(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, "flow.unknown_node_type");
    assert_eq!(found[0].pointer, "/nodes/done/type");
    assert_eq!(found[0].node.as_deref(), Some("done"));
}

#[test]
fn a_dangling_target_and_an_unknown_port_are_reported() {
    let mut doc = create_flow();
    doc["nodes"]["check"]["next"]["else"] = json!("nowhere");
    doc["nodes"]["created"]["next"] = json!({"ok": "done"});
    let found = codes(&doc);
    assert!(
        found.contains(&("flow.dangling_target", "/nodes/check/next/else".into())),
        "{found:?}"
    );
    assert!(
        found.contains(&("flow.unknown_port", "/nodes/created/next/ok".into())),
        "{found:?}"
    );
}

#[test]
fn an_unreachable_node_is_reported() {
    let mut doc = create_flow();
    doc["nodes"]["orphan"] = json!({"type": "respond", "body": 1});
    assert_eq!(
        codes(&doc),
        [("flow.unreachable_node", "/nodes/orphan".to_string())]
    );
}

#[test]
fn a_path_without_respond_or_fail_is_reported() {
    let mut doc = create_flow();
    doc["nodes"]["check"]["next"] = json!({"then": "done"});
    doc["nodes"].as_object_mut().map(|n| n.remove("created"));
    assert_eq!(
        codes(&doc),
        [("flow.missing_response", "/nodes/check/next".to_string())]
    );
}

#[test]
fn a_cycle_is_reported() {
    let mut doc = create_flow();
    doc["nodes"]["check"]["next"]["else"] = json!("insert");
    doc["nodes"].as_object_mut().map(|n| n.remove("created"));
    let found = codes(&doc);
    assert!(
        found.contains(&("flow.cycle", "/nodes/check/next/else".into())),
        "{found:?}"
    );
}

#[test]
fn a_rhai_syntax_error_carries_line_and_column() {
    let mut doc = create_flow();
    doc["nodes"]["check"]["condition"] = json!({"$rhai": "todo.done &&"});
    let found = problems(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, "flow.rhai_syntax");
    assert_eq!(found[0].pointer, "/nodes/check/condition/$rhai");
    assert_eq!(found[0].line, Some(1));
    assert!(found[0].column.is_some());
}

#[test]
fn a_variable_not_set_on_every_path_is_out_of_scope() {
    let mut doc = create_flow();
    // `todo` is bound by the insert's `ok` port; the entry itself cannot read it.
    doc["nodes"]["insert"]["values"]["title"] = json!({"$rhai": "todo.title"});
    let found = problems(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].pointer, "/nodes/insert/values/title/$rhai");
    assert!(found[0].message.contains("todo"), "{}", found[0].message);
}

#[test]
fn unknown_tables_and_columns_are_reported() {
    let mut doc = create_flow();
    doc["nodes"]["insert"]["values"]["colour"] = json!("red");
    let found = codes(&doc);
    assert_eq!(
        found,
        [(
            "flow.unknown_column",
            "/nodes/insert/values/colour".to_string()
        )]
    );
    doc["nodes"]["insert"]["table"] = json!("todoz");
    assert_eq!(
        codes(&doc),
        [("flow.unknown_table", "/nodes/insert/table".to_string())]
    );
}

#[test]
fn a_missing_required_column_is_reported() {
    let mut doc = create_flow();
    doc["nodes"]["insert"]["values"] = json!({"done": true});
    assert_eq!(
        codes(&doc),
        [("flow.missing_column", "/nodes/insert/values".to_string())]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut doc = create_flow();
    doc["nodes"]["done"]["type"] = json!("nope");
    doc["nodes"]["check"]["condition"] = json!({"$rhai": "todo.done +* 1"});
    doc["nodes"]["insert"]["table"] = json!("missing");
    doc["nodes"]["stray"] = json!({"type": "respond"});
    let found: Vec<_> = codes(&doc).into_iter().map(|(c, _)| c).collect();
    for code in [
        "flow.unknown_node_type",
        "flow.rhai_syntax",
        "flow.unknown_table",
        "flow.unreachable_node",
    ] {
        assert!(found.contains(&code), "{code} missing from {found:?}");
    }
}

#[test]
fn schema_violations_point_into_the_node() {
    let mut doc = create_flow();
    doc["nodes"]["created"]["status"] = json!("ok");
    doc["nodes"]["created"]["colour"] = json!("red");
    let found = codes(&doc);
    assert!(found.iter().all(|(c, _)| *c == "flow.schema"), "{found:?}");
    assert!(
        found.iter().any(|(_, p)| p == "/nodes/created/status"),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(_, p)| p == "/nodes/created"),
        "{found:?}"
    );
}

#[test]
fn a_wrong_format_stops_early_with_one_clear_problem() {
    let doc = json!({"format": "node-red", "format_version": 1, "name": "x", "entry": "a", "nodes": {"a": {"type": "respond"}}});
    assert_eq!(codes(&doc), [("flow.schema", "/format".to_string())]);
}

#[test]
fn offline_compile_checks_everything_but_tables() {
    let mut doc = create_flow();
    doc["nodes"]["insert"]["table"] = json!("not_in_any_catalog");
    assert!(compile(&doc, None).is_ok());
}

#[test]
fn endpoints_cannot_take_the_paths_of_the_api_documentation() {
    for path in ["/openapi.json", "/docs"] {
        for method in ["GET", "POST"] {
            let mut doc = create_flow();
            doc["endpoint"] = json!({"method": method, "path": path});
            assert_eq!(
                codes(&doc),
                [("flow.reserved_path", "/endpoint/path".to_string())],
                "{method} {path}"
            );
        }
    }
    // Only the exact paths are Sluice's; below and beside them is the builder's.
    for path in ["/docs/{id}", "/documents", "/openapi"] {
        let mut doc = create_flow();
        doc["endpoint"]["path"] = json!(path);
        let found = codes(&doc);
        assert!(
            !found.iter().any(|(c, _)| *c == "flow.reserved_path"),
            "{path}: {found:?}"
        );
    }
}

#[test]
fn path_parameters_must_match_the_declared_params() {
    let mut doc = create_flow();
    doc["input"]["params"] = json!({"type": "object", "properties": {"id": {"type": "integer"}}});
    assert_eq!(
        codes(&doc),
        [("flow.bad_path", "/input/params/properties/id".to_string())]
    );
}

#[test]
fn an_unknown_top_level_field_does_not_hide_other_problems() {
    let mut doc = create_flow();
    doc["colour"] = json!("red");
    doc["nodes"]["done"]["type"] = json!("nope");
    let found: Vec<_> = codes(&doc).into_iter().map(|(c, _)| c).collect();
    assert!(found.contains(&"flow.schema"), "{found:?}");
    assert!(found.contains(&"flow.unknown_node_type"), "{found:?}");
}

fn loop_flow() -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": "bulk",
        "endpoint": {"method": "POST", "path": "/bulk"},
        "entry": "prefix",
        "nodes": {
            "prefix": {"type": "set", "as": "prefix", "value": "todo: ", "next": {"ok": "each"}},
            "each": {"type": "for_each", "as": "made", "items": {"$rhai": "request.body.titles"}, "item": "title",
                     "body": {"entry": "insert", "nodes": {
                         "insert": {"type": "db.insert", "table": "todos", "as": "row",
                                    "values": {"title": {"$rhai": "prefix + title"}}, "next": {"ok": "keep"}},
                         "keep": {"type": "collect", "value": {"$rhai": "row.id + index"}}
                     }},
                     "next": {"ok": "kind"}},
            "kind": {"type": "switch", "value": {"$rhai": "made.len()"}, "cases": {"none": 0, "one": 1},
                     "next": {"none": "empty", "one": "reply", "default": "reply"}},
            "empty": {"type": "fail", "status": 422, "code": "bulk.empty", "message": "nothing to do"},
            "reply": {"type": "respond", "status": 201, "body": {"$rhai": "made"}}
        }
    })
}

#[test]
fn loops_switches_and_sets_compile_with_nested_scopes() {
    let cat = catalog();
    let plan = compile(&loop_flow(), Some(&cat)).expect("compiles");
    assert_eq!(plan.nodes.len(), 7, "body nodes join the flat list");
    assert!(
        plan.writes(),
        "a write inside a loop body makes the flow transactional"
    );
}

#[test]
fn a_body_cannot_respond_and_collect_cannot_leave_a_body() {
    let mut doc = loop_flow();
    doc["nodes"]["each"]["body"]["nodes"]["keep"] = json!({"type": "respond", "body": 1});
    doc["nodes"]["reply"] = json!({"type": "collect", "value": 1});
    let found = codes(&doc);
    assert!(
        found.contains(&(
            "flow.misplaced_node",
            "/nodes/each/body/nodes/keep/type".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&("flow.misplaced_node", "/nodes/reply/type".into())),
        "{found:?}"
    );
}

#[test]
fn names_set_inside_a_body_are_not_visible_after_the_loop() {
    let mut doc = loop_flow();
    doc["nodes"]["reply"]["body"] = json!({"$rhai": "row"});
    let found = problems(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].pointer, "/nodes/reply/body/$rhai");
}

#[test]
fn every_switch_case_must_be_wired_and_cases_must_differ() {
    let mut doc = loop_flow();
    doc["nodes"]["kind"]["next"] = json!({"none": "empty", "default": "reply"});
    assert_eq!(
        codes(&doc),
        [("flow.missing_response", "/nodes/kind/next".to_string())]
    );
    let mut doc = loop_flow();
    doc["nodes"]["kind"]["cases"]["also_none"] = json!(0);
    doc["nodes"]["kind"]["next"]["also_none"] = json!("empty");
    assert!(
        codes(&doc)
            .iter()
            .any(|(c, p)| *c == "flow.bad_config" && p.starts_with("/nodes/kind/cases/"))
    );
}

#[test]
fn a_call_to_an_unknown_function_is_reported_when_functions_are_known() {
    let doc = json!({
        "format": "sluice.flow", "format_version": 1, "name": "caller",
        "endpoint": {"method": "GET", "path": "/caller"}, "entry": "c",
        "nodes": {
            "c": {"type": "call", "flow": "pricing", "input": {"n": 1}, "as": "price", "next": {"ok": "r"}},
            "r": {"type": "respond", "body": {"$rhai": "price"}}
        }
    });
    assert!(
        compile(&doc, None).is_ok(),
        "offline, functions are not known"
    );
    let known = crate::flow::node::Catalog {
        tables: catalog(),
        functions: Default::default(),
        jobs: Default::default(),
    };
    let found: Vec<_> = compile(&doc, Some(&known))
        .expect_err("unknown")
        .into_iter()
        .map(|d| (d.code, d.pointer))
        .collect();
    assert_eq!(
        found,
        [("flow.unknown_function", "/nodes/c/flow".to_string())]
    );
}

/// A readable rendering of a plan: one line per node with its type, binding and wiring.
fn render(plan: &Plan) -> String {
    let mut out = format!(
        "entry: {}\non_error: {:?}\n",
        plan.nodes[plan.entry].id,
        plan.on_error.map(|i| &plan.nodes[i].id)
    );
    for (i, n) in plan.nodes.iter().enumerate() {
        let ports: Vec<String> =
            n.op.targets()
                .iter()
                .map(|(p, t)| format!("{p}->{}", plan.nodes[*t].id))
                .collect();
        let error = n
            .error
            .map(|e| format!(" error->{}", plan.nodes[e].id))
            .unwrap_or_default();
        let body = match n.op.body() {
            Some(body) => format!(" body->{}", plan.nodes[body].id),
            None => String::new(),
        };
        out.push_str(&format!(
            "{i}: {} {}{} [{}]{error}{body}\n",
            n.id,
            n.type_name,
            n.bind
                .as_ref()
                .map(|b| format!(" as {b}"))
                .unwrap_or_default(),
            ports.join(", ")
        ));
    }
    out
}

#[test]
fn compiled_plans_snapshot() {
    let cat = catalog();
    insta::assert_snapshot!(
        "create_flow_plan",
        render(&compile(&create_flow(), Some(&cat)).expect("compiles"))
    );
    let mut with_handler = loop_flow();
    with_handler["on_error"] = json!("empty");
    with_handler["nodes"]["prefix"]["next"]["error"] = json!("empty");
    insta::assert_snapshot!(
        "loop_flow_plan",
        render(&compile(&with_handler, Some(&cat)).expect("compiles"))
    );
}

#[test]
fn diagnostics_snapshot() {
    let mut doc = create_flow();
    doc["colour"] = json!("red");
    doc["nodes"]["done"]["type"] = json!("nope");
    doc["nodes"]["check"]["condition"] = json!({"$rhai": "todo.done +* 1"});
    doc["nodes"]["insert"]["values"]["colour"] = json!("red");
    doc["nodes"]["stray"] = json!({"type": "respond", "status": "ok"});
    doc["nodes"]["created"]["next"] = json!({"ok": "stray"});
    let lines: Vec<String> = problems(&doc).iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("diagnostics", lines.join("\n"));
}

/// `authors` and `todos` for the database node checks.
fn db_catalog() -> BTreeMap<String, TableDef> {
    [
        json!({"name": "authors", "fields": [
            {"name": "name", "type": "text", "required": true},
            {"name": "email", "type": "email", "unique": true},
            {"name": "handle", "type": "text"},
            {"name": "secret", "type": "password"}],
            "indexes": [{"fields": ["handle", "name"], "unique": true}, {"fields": ["name"]}]}),
        json!({"name": "todos", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "priority", "type": "integer"},
            {"name": "meta", "type": "json"},
            {"name": "author", "type": "reference", "table": "authors"}]}),
    ]
    .into_iter()
    .map(|d| {
        let def: TableDef = serde_json::from_value(d).expect("definition");
        (def.name.to_string(), def)
    })
    .collect()
}

/// A flow whose entry is `node` (binding `out`), then a respond.
fn node_flow(node: Value) -> Value {
    let mut node = node;
    node["as"] = json!("out");
    node["next"] = json!({"ok": "r"});
    json!({"format": "sluice.flow", "format_version": 1, "name": "t", "entry": "n",
           "nodes": {"n": node, "r": {"type": "respond", "body": {"$rhai": "out"}}}})
}

fn db_problems(node: Value) -> String {
    let cat = db_catalog();
    match compile(&node_flow(node), Some(&cat)) {
        Ok(_) => "compiles".into(),
        Err(d) => d
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn db_query_checks_every_name_operator_and_option() {
    insta::assert_snapshot!(db_problems(json!({"type": "db.query", "table": "todos",
        "where": {"nope": 1},
        "filter": {"or": [
            {"field": "meta", "op": "lt", "value": 1},
            {"field": "priority", "op": "contains", "value": "1"},
            {"field": "title", "op": "starts_with", "value": 5},
            {"field": "priority", "op": "is_null", "value": "yes"},
            {"field": "priority", "op": "in", "value": {"$rhai": "request.query.ids"}},
            {"field": "priority", "op": "eq", "value": null},
            {"field": "colour", "op": "eq", "value": "red"},
            {"and": [{"and": [{"and": [{"and": []}]}]}]}
        ]},
        "order_by": [{"column": "meta"}, {"column": "missing"}],
        "select": ["title", "gone"],
        "include": ["title", "author"],
        "cursor": {"$rhai": "request.query.cursor"},
        "offset": 5})));
}

#[test]
fn password_fields_cannot_be_filtered_sorted_or_selected() {
    insta::assert_snapshot!(db_problems(json!({"type": "db.query", "table": "authors",
        "where": {"secret": "x"},
        "filter": {"field": "secret", "op": "is_null", "value": true},
        "order_by": [{"column": "secret"}],
        "select": ["secret"]})));
}

#[test]
fn db_aggregate_checks_columns_functions_names_and_options() {
    // Sum of text, an unknown column, json grouping and json max, a name that collides with a
    // group column, count without a column, order keys that name nothing, a literal limit.
    insta::assert_snapshot!(db_problems(
        json!({"type": "db.aggregate", "table": "todos",
        "where": {"nope": 1},
        "filter": {"field": "meta", "op": "lt", "value": 1},
        "group_by": ["title", "meta", "gone"],
        "aggregates": {
            "total": {"fn": "sum", "column": "title"},
            "mean": {"fn": "avg", "column": "missing"},
            "title": {"fn": "count"},
            "top": {"fn": "max"},
            "biggest": {"fn": "max", "column": "meta"}
        },
        "order_by": [{"key": "total", "desc": true}, {"key": "nothing"}],
        "limit": 0})
    ));
    insta::assert_snapshot!(db_problems(
        json!({"type": "db.aggregate", "table": "authors",
        "group_by": ["secret"],
        "aggregates": {"n": {"fn": "count", "column": "secret"}, "last": {"fn": "max", "column": "secret"}},
        "order_by": [{"key": "n"}]})
    ));
    // The schema knows the functions.
    assert!(
        db_problems(json!({"type": "db.aggregate", "table": "todos",
            "aggregates": {"odd": {"fn": "median", "column": "priority"}}}))
        .starts_with("flow.schema at /nodes/n/aggregates/odd/fn")
    );
    // Order and limit need groups.
    assert_eq!(
        db_problems(json!({"type": "db.aggregate", "table": "todos",
            "aggregates": {"n": {"fn": "count"}}, "order_by": [{"key": "n"}], "limit": 5})),
        "flow.bad_option at /nodes/n/limit (node `n`): `limit` orders or limits groups; it needs `group_by`\n\
         flow.bad_option at /nodes/n/order_by (node `n`): `order_by` orders or limits groups; it needs `group_by`"
    );
    assert_eq!(
        db_problems(json!({"type": "db.aggregate", "table": "todos",
            "aggregates": {"n": {"fn": "count"}, "sum": {"fn": "sum", "column": "priority"},
                           "first": {"fn": "min", "column": "created_at"}}})),
        "compiles"
    );
}

#[test]
fn db_aggregate_outputs_are_typed_at_compile_time() {
    let cat = db_catalog();
    let shape = |node: Value| {
        let plan = compile(&node_flow(node), Some(&cat)).expect("compiles");
        let n = plan.nodes.iter().find(|n| n.id == "n").expect("node n");
        match n.op.output() {
            crate::flow::node::OutputShape::Fixed(Some(s)) => s,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        shape(
            json!({"type": "db.aggregate", "table": "todos", "aggregates": {
            "n": {"fn": "count"}, "sum": {"fn": "sum", "column": "priority"},
            "mean": {"fn": "avg", "column": "priority"}, "first": {"fn": "min", "column": "title"}}})
        ),
        json!({"type": "object", "properties": {
            "n": {"type": "integer"},
            "sum": {"type": ["integer", "null"]},
            "mean": {"type": ["number", "null"]},
            "first": {"type": ["string", "null"]}},
            "required": ["first", "mean", "n", "sum"]})
    );
    assert_eq!(
        shape(
            json!({"type": "db.aggregate", "table": "todos", "group_by": ["author"],
            "aggregates": {"n": {"fn": "count"}}})
        ),
        json!({"type": "array", "items": {"type": "object", "properties": {
            "author": {"type": ["integer", "null"], "format": "int64", "minimum": 1},
            "n": {"type": "integer"}},
            "required": ["author", "n"]}})
    );
}

#[test]
fn db_aggregate_follows_field_renames_but_keeps_its_own_names() {
    let rename = super::db_aggregate::TYPE
        .options
        .rename
        .expect("a rename step");
    let mut node = json!({"type": "db.aggregate", "table": "todos",
        "where": {"title": "x"},
        "filter": {"or": [{"field": "priority", "op": "gt", "value": 1}]},
        "group_by": ["title", "author"],
        "aggregates": {"priority": {"fn": "max", "column": "priority"}, "n": {"fn": "count"}},
        "order_by": [{"key": "priority"}, {"key": "title", "desc": true}]});
    rename(&mut node, &[("title", "name"), ("priority", "rank")]);
    assert_eq!(
        node,
        json!({"type": "db.aggregate", "table": "todos",
            "where": {"name": "x"},
            "filter": {"or": [{"field": "rank", "op": "gt", "value": 1}]},
            "group_by": ["name", "author"],
            "aggregates": {"priority": {"fn": "max", "column": "rank"}, "n": {"fn": "count"}},
            "order_by": [{"key": "priority"}, {"key": "name", "desc": true}]}),
        "an order key naming an aggregate stays"
    );
}

#[test]
fn a_filter_has_at_most_fifty_conditions() {
    let conds: Vec<Value> = (0..51)
        .map(|i| json!({"field": "priority", "op": "ne", "value": i}))
        .collect();
    let found =
        db_problems(json!({"type": "db.query", "table": "todos", "filter": {"and": conds}}));
    assert_eq!(
        found,
        "flow.bad_filter at /nodes/n/filter (node `n`): a filter has at most 50 conditions, this one has 51"
    );
}

#[test]
fn an_upsert_target_must_be_exactly_a_unique_key() {
    for (on, ok) in [
        (json!(["email"]), true),
        (json!(["name", "handle"]), true),
        (json!(["handle"]), false),
        (json!(["name"]), false),
        (json!(["email", "name"]), false),
    ] {
        let values = json!({"email": "a@b.co", "name": "n", "handle": "h"});
        let found = db_problems(
            json!({"type": "db.upsert", "table": "authors", "on": on, "values": values}),
        );
        assert_eq!(found == "compiles", ok, "{on}: {found}");
        if !ok {
            assert!(
                found.starts_with("flow.not_unique at /nodes/n/on"),
                "{found}"
            );
            assert!(found.contains("[email], [handle, name]"), "{found}");
        }
    }
    insta::assert_snapshot!(db_problems(json!({"type": "db.upsert", "table": "todos",
        "on": ["title", "nope"], "values": {"priority": 1, "created_at": "now"}})));
}

#[test]
fn db_sql_problems_carry_line_and_column() {
    let cases = [
        json!({"type": "db.sql", "sql": "select *\nfrom todos\nwhere title = :title and id = :id::bigint",
               "params": {"title": "x", "spare": 1}}),
        json!({"type": "db.sql", "sql": "select 'unterminated\nfrom todos"}),
        json!({"type": "db.sql", "sql": "vacuum app.todos"}),
        json!({"type": "db.sql", "sql": "select 1;\nselect 2"}),
        json!({"type": "db.sql", "sql": "select :x", "params": {"x": {"$rhai": "nope"}}}),
    ];
    let out: Vec<String> = cases.into_iter().map(db_problems).collect();
    insta::assert_snapshot!(out.join("\n\n"));
}

#[test]
fn the_new_database_nodes_compile_offline() {
    for node in [
        json!({"type": "db.query", "table": "anything", "filter": {"field": "x", "op": "contains", "value": "1"},
               "select": ["x"], "include": ["y"], "page": true, "count": true}),
        json!({"type": "db.upsert", "table": "anything", "on": ["x"], "values": {"x": 1}}),
        json!({"type": "db.sql", "sql": "select :a::int as a", "params": {"a": 1}}),
        json!({"type": "db.aggregate", "table": "anything", "group_by": ["x"],
               "aggregates": {"n": {"fn": "count"}, "s": {"fn": "sum", "column": "y"}},
               "order_by": [{"key": "s", "desc": true}], "limit": 5}),
    ] {
        let doc = node_flow(node.clone());
        assert!(
            compile(&doc, None).is_ok(),
            "{node}: {:?}",
            compile(&doc, None).err()
        );
    }
}

// What the program builder makes of compiled flows.

fn needs_transaction(nodes: serde_json::Value) -> bool {
    let def: TableDef = serde_json::from_value(json!({"name": "todos", "fields": [
        {"name": "title", "type": "text", "required": true}]}))
    .expect("definition");
    let cat = std::collections::BTreeMap::from([("todos".to_string(), def)]);
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "w",
        "entry": "w", "nodes": nodes});
    let plan = compile(&doc, Some(&cat)).expect("compiles");
    Program::build(plan, &cat)
        .expect("builds")
        .needs_transaction
}

#[test]
fn one_write_straight_into_a_plain_respond_runs_without_begin_and_commit() {
    let insert = json!({"type": "db.insert", "table": "todos", "as": "todo",
        "values": {"title": {"$rhai": "request.body.title"}}, "next": {"ok": "r"}});
    let plain = |body: serde_json::Value, status: u16| json!({"w": insert, "r": {"type": "respond", "status": status, "body": body}});
    assert!(!needs_transaction(plain(json!({"$rhai": "todo"}), 201)));
    assert!(!needs_transaction(plain(
        json!({"item": {"$rhai": "todo"}, "ok": true}),
        200
    )));
    // A body that can fail, or a status that rolls back, keeps the transaction.
    assert!(needs_transaction(plain(
        json!({"$rhai": "todo.id + 1"}),
        201
    )));
    assert!(needs_transaction(plain(json!({"$rhai": "todo"}), 409)));
    // So does anything between the write and the respond, or a second statement.
    assert!(needs_transaction(json!({
        "w": {"type": "db.insert", "table": "todos", "as": "todo", "values": {"title": "x"},
              "next": {"ok": "c"}},
        "c": {"type": "if", "condition": {"$rhai": "todo.id > 1"},
              "next": {"then": "r", "else": "r"}},
        "r": {"type": "respond", "body": {"$rhai": "todo"}}})));
    assert!(needs_transaction(json!({
        "w": {"type": "db.insert", "table": "todos", "as": "todo", "values": {"title": "x"},
              "next": {"ok": "g"}},
        "g": {"type": "db.get", "table": "todos", "as": "again", "id": {"$rhai": "todo.id"},
              "next": {"found": "r"}},
        "r": {"type": "respond", "body": {"$rhai": "again"}}})));
}

#[test]
fn a_query_list_is_collected_and_its_items_coerced() {
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "l", "entry": "r",
        "endpoint": {"method": "GET", "path": "/l"},
        "input": {"query": {"type": "object", "properties": {
            "n": {"type": "array", "items": {"type": "number"}}, "s": {"type": "string"}}}},
        "nodes": {"r": {"type": "respond", "body": null}}});
    let plan = compile(&doc, None).expect("compiles");
    let program = Program::build(plan, &Default::default()).expect("builds");
    assert!(program.query_is_list("n"));
    assert!(!program.query_is_list("s"));
    let mut query = Map::from_iter([
        ("n".to_string(), json!(["1", "2.5"])),
        ("s".to_string(), json!("x")),
    ]);
    program
        .check_input(&mut Map::new(), &mut query, &mut Value::Null)
        .expect("valid");
    assert_eq!(Value::Object(query), json!({"n": [1.0, 2.5], "s": "x"}));
    let mut one = Map::from_iter([("n".to_string(), json!("3"))]);
    program
        .check_input(&mut Map::new(), &mut one, &mut Value::Null)
        .expect("valid");
    assert_eq!(Value::Object(one), json!({"n": [3.0]}));
}

#[test]
fn database_nodes_get_quoted_parameterised_sql() {
    let def: TableDef = serde_json::from_value(json!({"name": "todos", "fields": [
        {"name": "title", "type": "text", "required": true},
        {"name": "done", "type": "boolean"}]}))
    .expect("definition");
    let cat = std::collections::BTreeMap::from([("todos".to_string(), def)]);
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "q", "entry": "q",
        "nodes": {"q": {"type": "db.query", "table": "todos", "as": "rows",
                        "where": {"done": {"$rhai": "request.query.done"}},
                        "order_by": [{"column": "title", "desc": true}], "next": {"ok": "r"}},
                  "r": {"type": "respond", "body": {"$rhai": "rows"}}}});
    let plan = compile(&doc, Some(&cat)).expect("compiles");
    let program = Program::build(plan, &cat).expect("builds");
    let q = program
        .plan
        .nodes
        .iter()
        .position(|n| n.id == "q")
        .expect("node q");
    assert_eq!(
        program.sql[q].as_ref().map(|p| p.text.as_str()),
        Some(
            "SELECT r FROM (SELECT coalesce(json_agg(to_json(s.*) ORDER BY s.\"title\" DESC, s.\"id\"), '[]'::json) FROM (SELECT * FROM \"app\".\"todos\" AS t WHERE t.\"done\" = $1::boolean ORDER BY t.\"title\" DESC, t.\"id\" LIMIT $2::bigint OFFSET $3::bigint) AS s) AS sluice_result(r) WHERE pg_column_size(r) <= coalesce(current_setting('sluice.max_result_bytes', true)::bigint, 9223372036854775807)"
        )
    );
}

// Flows generated for a table compile with the node types.

#[test]
fn generated_flows_compile_against_their_table() {
    let def: TableDef =
        serde_json::from_value(json!({"id": "t_000000000001", "name": "books", "fields": [
            {"id": "f_000000000001", "name": "title", "type": "text", "required": true},
            {"id": "f_000000000002", "name": "pages", "type": "integer", "default": 100},
            {"id": "f_000000000003", "name": "tags", "type": "json", "default": {"a": [1, "x\"y"]}},
            {"id": "f_000000000004", "name": "kind", "type": "enum", "values": ["novel", "essay"]},
            {"id": "f_000000000005", "name": "added", "type": "timestamp", "default": "now()"}
        ]}))
        .expect("definition");
    let tables = BTreeMap::from([("books".to_string(), def.clone())]);
    for auth in [AuthLevel::Public, AuthLevel::User, AuthLevel::Admin] {
        let docs = crud(&def, "/books", auth, |_| IdType::Bigint).expect("generated");
        assert_eq!(docs.len(), 5);
        for doc in &docs {
            match crate::nodes::compile(doc, Some(&tables)) {
                Ok(plan) => assert_eq!(plan.endpoint.map(|e| e.auth), Some(auth)),
                Err(d) => panic!("{} does not compile: {d:?}", doc["name"]),
            }
        }
    }
    assert_eq!(default_auth(&def), AuthLevel::User);
}

#[test]
fn password_fields_are_writable_only_by_admin_endpoints() {
    let def = accounts();
    assert_eq!(default_auth(&def), AuthLevel::Admin);
    let tables = BTreeMap::from([("accounts".to_string(), def.clone())]);
    for (auth, writable) in [
        (AuthLevel::Public, false),
        (AuthLevel::User, false),
        (AuthLevel::Admin, true),
    ] {
        let docs = crud(&def, "/accounts", auth, |_| IdType::Bigint).expect("generated");
        for doc in &docs[2..4] {
            let schema = &doc["input"]["body"]["properties"];
            assert_eq!(
                schema.get("secret").is_some(),
                writable,
                "{auth:?} {schema}"
            );
            assert_eq!(doc["input"]["body"]["additionalProperties"], json!(false));
            let values = &doc["nodes"]["insert"]["values"];
            if !values.is_null() {
                assert_eq!(values.get("secret").is_some(), writable, "{auth:?}");
            }
            crate::nodes::compile(doc, Some(&tables)).expect("compiles");
        }
    }
}
