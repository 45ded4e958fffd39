//! The statements database nodes prepare, as snapshots: what reviewers read to see that every
//! name is quoted, every value a parameter, and each node one statement.

use crate::engine::Program;
use crate::engine::sql::{Prepared, statement_sql};
use crate::flow::plan::Statement;
use crate::flow::sqlscan;
use crate::tables::TableDef;
use crate::tables::def::Tables;
use serde_json::{Value, json};

fn catalog() -> Tables {
    let defs = [
        json!({"name": "authors", "fields": [
            {"name": "name", "type": "text", "required": true},
            {"name": "email", "type": "email", "unique": true},
            {"name": "secret", "type": "password"}]}),
        json!({"name": "todos", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "done", "type": "boolean", "required": true, "default": false},
            {"name": "priority", "type": "integer"},
            {"name": "level", "type": "enum", "values": ["low", "high"]},
            {"name": "meta", "type": "json"},
            {"name": "author", "type": "reference", "table": "authors"},
            {"name": "reviewer", "type": "reference", "table": "authors"}]}),
        json!({"name": "stock", "fields": [
            {"name": "shop", "type": "text", "required": true},
            {"name": "sku", "type": "text", "required": true},
            {"name": "qty", "type": "integer"}],
            "indexes": [{"fields": ["sku", "shop"], "unique": true}]}),
    ];
    defs.into_iter()
        .map(|d| {
            let def: TableDef = serde_json::from_value(d).expect("definition");
            (def.name.to_string(), def)
        })
        .collect()
}

/// The prepared statement of a flow's node `n`.
fn prepared(node: Value) -> Prepared {
    let mut node = node;
    node["as"] = json!("out");
    node["next"] = json!({"ok": "r"});
    let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "t", "entry": "n",
        "nodes": {"n": node, "r": {"type": "respond", "body": {"$rhai": "out"}}}});
    let cat = catalog();
    let plan = match crate::nodes::compile(&doc, Some(&cat)) {
        Ok(p) => p,
        Err(d) => panic!("does not compile: {d:?}"),
    };
    let program = Program::build(plan, &cat).expect("builds");
    let n = program
        .plan
        .nodes
        .iter()
        .position(|n| n.id == "n")
        .expect("node n");
    program.sql[n].clone().expect("a database node")
}

fn render(p: &Prepared) -> String {
    let mut out = format!("{}\n", p.text);
    for (i, s) in p.slots.iter().enumerate() {
        out.push_str(&format!("${} <- {s:?}\n", i + 1));
    }
    if !p.kinds.is_empty() {
        out.push_str(&format!("kinds: {:?}\n", p.kinds));
    }
    if let Some(c) = &p.cursor {
        out.push_str(&format!("cursor: {c:?}\n"));
    }
    out
}

#[test]
fn a_nested_filter_with_every_operator_is_one_static_statement() {
    let p = prepared(json!({"type": "db.query", "table": "todos",
        "where": {"done": false},
        "filter": {"and": [
            {"field": "title", "op": "contains", "value": {"$rhai": "request.query.q"}},
            {"or": [
                {"field": "priority", "op": "ge", "value": 2},
                {"field": "priority", "op": "is_null", "value": true},
                {"and": [
                    {"field": "level", "op": "in", "value": ["high"]},
                    {"field": "meta", "op": "in", "value": [{"a": 1}]}
                ]},
                {"and": []}
            ]},
            {"field": "title", "op": "starts_with", "value": "x"},
            {"field": "meta", "op": "eq", "value": {"a": 1}},
            {"field": "id", "op": "ne", "value": 3},
            {"or": []}
        ]},
        "order_by": [{"column": "priority", "desc": true}]}));
    insta::assert_snapshot!(render(&p));
}

#[test]
fn select_and_include_read_referenced_rows_in_the_same_statement() {
    let p = prepared(json!({"type": "db.query", "table": "todos",
        "select": ["id", "title", "author"], "include": ["author", "reviewer"]}));
    assert!(!p.text.contains(';'));
    insta::assert_snapshot!(render(&p));
}

#[test]
fn include_without_select_keeps_every_column() {
    let p = prepared(json!({"type": "db.query", "table": "todos", "include": ["author"]}));
    insta::assert_snapshot!(render(&p));
}

#[test]
fn a_page_over_nullable_keys_in_mixed_directions_expands_the_cursor_condition() {
    let p = prepared(
        json!({"type": "db.query", "table": "todos", "page": true, "count": true,
        "filter": {"field": "done", "op": "eq", "value": {"$rhai": "request.query.done"}},
        "order_by": [{"column": "priority", "desc": true}, {"column": "title"}],
        "cursor": {"$rhai": "request.query.cursor"}}),
    );
    insta::assert_snapshot!(render(&p));
}

#[test]
fn a_page_over_required_ascending_keys_uses_a_row_comparison() {
    let p = prepared(json!({"type": "db.query", "table": "todos", "page": true,
        "order_by": [{"column": "title"}, {"column": "created_at"}],
        "cursor": {"$rhai": "request.query.cursor"}}));
    assert!(
        p.text
            .contains("(t.\"title\", t.\"created_at\", t.\"id\") > ($")
    );
    insta::assert_snapshot!(render(&p));
}

#[test]
fn upserts_name_their_conflict_target_and_report_inserts() {
    let one = prepared(
        json!({"type": "db.upsert", "table": "authors", "on": ["email"],
        "values": {"email": "a@b.co", "name": "A", "secret": "pw"}}),
    );
    let two = prepared(
        json!({"type": "db.upsert", "table": "stock", "on": ["shop", "sku"],
        "values": {"shop": "s", "sku": "k"}}),
    );
    insta::assert_snapshot!(format!("{}\n{}", render(&one), render(&two)));
}

#[test]
fn db_sql_statements_are_wrapped_by_their_shape() {
    let mut out = String::new();
    for sql in [
        "select id, title from todos where done = :done::boolean",
        "(select 1 as a) union all (select 2)",
        "insert into todos (title) values (:t) returning id",
        "delete from todos where id = :id::bigint",
        "with old as (select id from todos where done) select * from old",
        "WITH gone AS (delete from todos where done returning id) UPDATE stock SET qty = 0 RETURNING sku",
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < 3) delete from todos where id in (select i from n)",
    ] {
        let scanned = sqlscan::scan(sql).expect("scans");
        let st = Statement {
            text: scanned.text,
            shape: scanned.shape,
            names: scanned.params,
        };
        out.push_str(&format!("{sql}\n=> {}\n\n", statement_sql(&st)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn a_db_sql_node_prepares_its_wrapped_statement_once() {
    let p = prepared(json!({"type": "db.sql",
        "sql": "select * from todos where title = :t -- :ignored\n and id > :min::bigint",
        "params": {"t": {"$rhai": "request.query.t"}, "min": 0}}));
    assert_eq!(
        p.text,
        "SELECT r FROM (SELECT coalesce(jsonb_agg(to_jsonb(q.*)), '[]'::jsonb) FROM (select * from todos where title = $1  \n and id > $2::bigint) AS q) AS sluice_result(r) \
         WHERE pg_column_size(r) <= coalesce(current_setting('sluice.max_result_bytes', true)::bigint, 9223372036854775807)"
    );
}

#[test]
fn every_writing_node_makes_its_flow_transactional() {
    let cat = catalog();
    for node in [
        json!({"type": "db.insert", "table": "stock", "values": {"shop": "s", "sku": "k"}}),
        json!({"type": "db.update", "table": "stock", "id": 1, "values": {"qty": 1}}),
        json!({"type": "db.delete", "table": "stock", "id": 1}),
        json!({"type": "db.upsert", "table": "stock", "on": ["sku", "shop"], "values": {"shop": "s", "sku": "k"}}),
        json!({"type": "db.sql", "sql": "select 1 as one"}),
        json!({"type": "db.query", "table": "stock"}),
    ] {
        let ty = node["type"].clone();
        let mut n = node;
        n["next"] = json!({"ok": "r"});
        let doc = json!({"format": "sluice.flow", "format_version": 1, "name": "t", "entry": "n",
            "nodes": {"n": n, "r": {"type": "respond"}}});
        let plan = crate::nodes::compile(&doc, Some(&cat)).expect("compiles");
        assert_eq!(plan.writes(), ty != "db.query", "{ty}");
        // A database node: it prepares a statement.
        assert!(matches!(
            plan.nodes
                .iter()
                .find(|n| n.id == "n")
                .map(|n| n.op.prepare(&cat)),
            Some(Ok(Some(_)))
        ));
    }
}

#[test]
fn an_aggregate_is_one_statement_with_its_filters_limit_and_groups() {
    let p = prepared(json!({"type": "db.aggregate", "table": "todos",
        "where": {"done": false},
        "filter": {"field": "title", "op": "contains", "value": {"$rhai": "request.query.q"}},
        "group_by": ["level"],
        "aggregates": {"n": {"fn": "count"}, "top": {"fn": "max", "column": "priority"},
                       "mean": {"fn": "avg", "column": "priority"}},
        "order_by": [{"key": "mean", "desc": true}],
        "limit": {"$rhai": "request.query.limit"}}));
    insta::assert_snapshot!(render(&p));
    let p = prepared(json!({"type": "db.aggregate", "table": "todos",
        "aggregates": {"n": {"fn": "count"}}}));
    assert!(p.slots.is_empty(), "{:?}", p.slots);
    assert!(
        p.text
            .starts_with("SELECT r FROM (SELECT json_build_object('n', count(*)) FROM")
    );
}
