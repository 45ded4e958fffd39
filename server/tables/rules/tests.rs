use super::*;
use serde_json::json;

fn items() -> TableDef {
    serde_json::from_value(json!({
        "id": "t_000000000001",
        "name": "items",
        "fields": [
            {"id": "f_00000000000a", "name": "title", "type": "text"},
            {"id": "f_00000000000b", "name": "owner", "type": "integer"},
            {"id": "f_00000000000c", "name": "team", "type": "text"},
            {"id": "f_00000000000d", "name": "secret", "type": "password"},
            {"id": "f_00000000000e", "name": "public", "type": "boolean"}
        ]
    }))
    .expect("a valid definition")
}

fn members() -> TableDef {
    serde_json::from_value(json!({
        "id": "t_000000000002",
        "name": "members",
        "fields": [
            {"id": "f_00000000001a", "name": "team", "type": "text"},
            {"id": "f_00000000001b", "name": "member", "type": "integer"},
            {"id": "f_00000000001c", "name": "role", "type": "text"}
        ]
    }))
    .expect("a valid definition")
}

fn tables() -> Tables {
    [
        ("items".to_string(), items()),
        ("members".to_string(), members()),
    ]
    .into_iter()
    .collect()
}

/// The caller is a member of the row's team.
fn in_team() -> Value {
    json!({"exists": {"table": "members", "where": {"and": [
        {"field": "team", "op": "eq", "value": {"row": "team"}},
        {"field": "member", "op": "eq", "value": {"auth": "id"}}
    ]}}})
}

fn parse(doc: Value) -> Result<Condition, Vec<Problem>> {
    Condition::parse(&doc, &items(), &tables(), "/rules/list/where")
}

fn sql(c: &Condition) -> (String, Vec<RuleParam>) {
    let mut params = Params::default();
    let text = c.sql("t", &mut params, &|p| p);
    let st = params.statement(text);
    (st.text, st.slots)
}

#[test]
fn an_owner_rule_compiles_to_one_parameter_and_a_null_one_matches_nothing() {
    let c = parse(json!({"field": "owner", "op": "eq", "value": {"auth": "id"}})).expect("parses");
    let (text, params) = sql(&c);
    assert_eq!(text, r#"(t."owner" = $1::bigint)"#);
    assert_eq!(
        params,
        [RuleParam {
            source: Source::AuthId,
            bind: BindAs::Text
        }]
    );
    assert_eq!(
        bind_text(&params[0], Caller::auth(&json!({"id": 7}))),
        Some("7".into())
    );
    // An anonymous caller: NULL, so the condition matches nothing.
    assert_eq!(bind_text(&params[0], Caller::auth(&Value::Null)), None);
}

#[test]
fn groups_claims_and_literals_render_in_document_order() {
    let c = parse(json!({"or": [
        {"field": "owner", "op": "eq", "value": {"auth": "id"}},
        {"and": [
            {"field": "team", "op": "in", "value": ["a", "b"]},
            {"field": "title", "op": "starts_with", "value": {"auth": "claims.prefix"}},
            {"field": "public", "op": "is_null", "value": false}
        ]}
    ]}))
    .expect("parses");
    let (text, params) = sql(&c);
    assert_eq!(
        text,
        "((t.\"owner\" = $1::bigint) OR \
         ((t.\"team\" IN (SELECT value::text FROM jsonb_array_elements_text($2::jsonb))) \
         AND (t.\"title\" LIKE $3::text) AND t.\"public\" IS NOT NULL))"
    );
    assert_eq!(params.len(), 3);
    let auth = json!({"id": 1, "claims": {"prefix": "50%"}});
    assert_eq!(
        bind_text(&params[1], Caller::auth(&auth)),
        Some(r#"["a","b"]"#.into())
    );
    assert_eq!(
        bind_text(&params[2], Caller::auth(&auth)),
        Some(r"50\%%".into())
    );
    assert_eq!(
        bind_text(&params[2], Caller::auth(&json!({"id": 1}))),
        None,
        "a missing claim"
    );
}

#[test]
fn every_problem_is_reported_with_its_pointer() {
    let problems = parse(json!({"and": [
        {"field": "nope", "op": "eq", "value": 1},
        {"field": "secret", "op": "eq", "value": "x"},
        {"field": "owner", "op": "eq", "value": "not a number"},
        {"field": "owner", "op": "contains", "value": "1"},
        {"field": "owner", "op": "eq", "value": {"auth": "password"}},
        {"field": "owner", "op": "eq", "value": null}
    ]}))
    .expect_err("refused");
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/rules/list/where/and/0/field",
            "/rules/list/where/and/1/field",
            "/rules/list/where/and/2/value",
            "/rules/list/where/and/3/op",
            "/rules/list/where/and/4/value",
            "/rules/list/where/and/5/value",
        ]
    );
    assert!(
        problems[0].message.contains("no field `nope`"),
        "{problems:?}"
    );
}

#[test]
fn nesting_and_size_are_bounded() {
    let mut doc = json!({"field": "owner", "op": "eq", "value": 1});
    for _ in 0..5 {
        doc = json!({"and": [doc]});
    }
    assert!(parse(doc).is_err());
    let many: Vec<Value> = (0..33)
        .map(|i| json!({"field": "owner", "op": "eq", "value": i}))
        .collect();
    assert!(parse(json!({"or": many})).is_err());
}

#[test]
fn in_memory_a_null_value_matches_nothing_even_for_ne() {
    let c = parse(json!({"field": "owner", "op": "ne", "value": {"auth": "id"}})).expect("parses");
    let row = |owner: Value| json!({"owner": owner}).as_object().cloned().expect("row");
    assert!(c.eval(&row(json!(2)), Caller::auth(&json!({"id": 1})), &NoRows));
    assert!(!c.eval(&row(json!(1)), Caller::auth(&json!({"id": 1})), &NoRows));
    assert!(
        c.eval(&row(Value::Null), Caller::auth(&json!({"id": 1})), &NoRows),
        "IS DISTINCT FROM"
    );
    assert!(
        !c.eval(&row(json!(2)), Caller::auth(&Value::Null), &NoRows),
        "anonymous: nothing"
    );
}

#[test]
fn columns_lists_what_a_rule_reads() {
    let c = parse(json!({"or": [
        {"field": "owner", "op": "eq", "value": {"auth": "id"}},
        {"field": "public", "op": "eq", "value": true}
    ]}))
    .expect("parses");
    let names: Vec<&str> = c.columns().iter().map(|i| i.as_str()).collect();
    assert_eq!(names, ["owner", "public"]);
}

#[test]
fn a_create_rule_sets_checked_columns_and_reports_every_problem() {
    let set = json!({"owner": {"auth": "id"}, "team": "a"});
    let rule = CreateRule::parse(
        set.as_object().expect("set"),
        Some(&json!({"field": "title", "op": "ne", "value": "x"})),
        &items(),
        &tables(),
        "/rules/create",
    )
    .expect("parses");
    let set: Vec<(&str, &Source)> = rule.set.iter().map(|(c, s)| (c.as_str(), s)).collect();
    assert_eq!(
        set,
        [
            ("owner", &Source::AuthId),
            ("team", &Source::Literal(json!("a")))
        ]
    );
    assert!(rule.check.is_some());

    let bad = json!({"nope": 1, "secret": "x", "owner": "not a number"});
    let problems = CreateRule::parse(
        bad.as_object().expect("set"),
        Some(&json!({"field": "missing", "op": "eq", "value": 1})),
        &items(),
        &tables(),
        "/rules/create",
    )
    .expect_err("refused");
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/rules/create/set/nope",
            "/rules/create/set/owner",
            "/rules/create/set/secret",
            "/rules/create/check/field"
        ]
    );
}

#[test]
fn an_exists_compiles_to_a_subquery_that_reads_the_checked_row() {
    let c = parse(in_team()).expect("parses");
    let (text, params) = sql(&c);
    assert_eq!(
        text,
        r#"EXISTS (SELECT 1 FROM "app"."members" AS x WHERE ((x."team" = t."team") AND (x."member" = $1::bigint)))"#
    );
    assert_eq!(
        params.len(),
        1,
        "the row's team is a column, not a parameter"
    );
    assert_eq!(params[0].source, Source::AuthId);
    let names: Vec<&str> = c.columns().iter().map(|i| i.as_str()).collect();
    assert_eq!(names, ["team"], "what the rule reads of the checked row");
    assert_eq!(c.tables().len(), 1);
}

#[test]
fn in_memory_an_exists_looks_through_the_given_rows() {
    let c = parse(in_team()).expect("parses");
    let member = |team: &str, user: i64| {
        json!({"team": team, "member": user})
            .as_object()
            .cloned()
            .expect("row")
    };
    let others: std::collections::HashMap<String, Vec<Map<String, Value>>> =
        [("members".to_string(), vec![member("a", 1), member("b", 2)])]
            .into_iter()
            .collect();
    let row = |team: Value| json!({"team": team}).as_object().cloned().expect("row");
    assert!(c.eval(&row(json!("a")), Caller::auth(&json!({"id": 1})), &others));
    assert!(!c.eval(&row(json!("b")), Caller::auth(&json!({"id": 1})), &others));
    assert!(
        !c.eval(&row(Value::Null), Caller::auth(&json!({"id": 1})), &others),
        "no team"
    );
    assert!(
        !c.eval(&row(json!("a")), Caller::auth(&Value::Null), &others),
        "anonymous"
    );
    assert!(!c.eval(&row(json!("a")), Caller::auth(&json!({"id": 1})), &NoRows));
}

#[test]
fn an_exists_is_checked_against_both_tables() {
    let problems = |doc: Value| -> Vec<String> {
        parse(doc)
            .expect_err("refused")
            .into_iter()
            .map(|p| format!("{} {}", p.pointer, p.message))
            .collect()
    };
    let found = problems(json!({"exists": {"table": "nope", "where": {"and": []}}}));
    assert_eq!(
        found,
        ["/rules/list/where/exists/table no table named `nope`"]
    );
    let found = problems(json!({"exists": {"table": "members", "where":
        {"field": "member", "op": "eq", "value": {"row": "title"}}}}));
    assert!(found[0].contains("cannot be compared"), "{found:?}");
    let found = problems(json!({"exists": {"table": "members", "where":
        {"field": "team", "op": "eq", "value": {"row": "missing"}}}}));
    assert_eq!(
        found,
        ["/rules/list/where/exists/where/value table `items` has no field `missing`"]
    );
    let found = problems(json!({"exists": {"table": "members", "where":
        {"field": "team", "op": "contains", "value": {"row": "team"}}}}));
    assert!(found[0].contains("eq, ne"), "{found:?}");
    let found = problems(json!({"field": "team", "op": "eq", "value": {"row": "team"}}));
    assert!(found[0].contains("only inside an exists"), "{found:?}");
    let nested = json!({"exists": {"table": "members", "where": in_team()}});
    let found = problems(nested);
    assert!(found[0].contains("inside another exists"), "{found:?}");
    let found = problems(json!({"exists": {"table": "members"}, "field": "x"}));
    assert!(found[0].contains("only the key"), "{found:?}");
}

#[test]
fn only_update_and_create_rules_have_a_check() {
    let mut def = items();
    def.rules = Some(
        serde_json::from_value(json!({
            "update": {"where": {"field": "owner", "op": "eq", "value": {"auth": "id"}},
                       "check": {"field": "owner", "op": "eq", "value": {"auth": "id"}}},
            "list": {"where": {"and": []}, "check": {"and": []}}
        }))
        .expect("rules"),
    );
    let found: Vec<String> = check(&def, &tables())
        .into_iter()
        .map(|p| p.pointer)
        .collect();
    assert_eq!(found, ["/rules/list/check"]);
    assert!(update_check(&def, &tables()).is_some());
}

#[test]
fn a_table_change_that_breaks_another_tables_exists_is_found() {
    let mut def = items();
    def.rules = Some(serde_json::from_value(json!({"list": {"where": in_team()}})).expect("rules"));
    let mut all = tables();
    all.insert("items".into(), def);
    assert!(broken(&all).is_empty());
    all.remove("members");
    let found = broken(&all);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "items");
}

#[test]
fn only_ne_needs_a_guard_against_a_null_value() {
    // `t.owner IS DISTINCT FROM NULL` would be true for every owner: the guard makes it false.
    let c = parse(json!({"field": "owner", "op": "ne", "value": {"auth": "id"}})).expect("parses");
    assert_eq!(
        sql(&c).0,
        r#"($1::bigint IS NOT NULL AND t."owner" IS DISTINCT FROM $1::bigint)"#
    );
}

#[test]
fn a_request_value_is_read_converted_to_the_fields_type_or_matches_nothing() {
    let c = parse(json!({"and": [
        {"field": "owner", "op": "eq", "value": {"request": "params.owner"}},
        {"field": "team", "op": "eq", "value": {"request": "headers.X-Team"}}
    ]}))
    .expect("parses");
    let (text, params) = sql(&c);
    assert_eq!(
        text,
        r#"((t."owner" = $1::bigint) AND (t."team" = $2::text))"#
    );
    let request = json!({"params": {"owner": "7"}, "headers": {"x-team": "red"}});
    let caller = Caller {
        auth: &Value::Null,
        request: &request,
    };
    assert_eq!(bind_text(&params[0], caller), Some("7".into()));
    assert_eq!(bind_text(&params[1], caller), Some("red".into()));
    let row = json!({"owner": 7, "team": "red"})
        .as_object()
        .cloned()
        .expect("row");
    assert!(c.eval(&row, caller, &NoRows));
    // Not a number, or missing: null, so the condition matches nothing.
    let odd = json!({"params": {"owner": "7 or 1=1"}, "headers": {"x-team": "red"}});
    let odd = Caller {
        auth: &Value::Null,
        request: &odd,
    };
    assert_eq!(bind_text(&params[0], odd), None);
    assert!(!c.eval(&row, odd, &NoRows));
    assert_eq!(bind_text(&params[1], Caller::auth(&Value::Null)), None);
}

#[test]
fn request_values_are_checked_when_saved() {
    let problem = |doc: Value| -> String {
        parse(doc)
            .expect_err("refused")
            .into_iter()
            .map(|p| format!("{} {}", p.pointer, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let found = problem(
        json!({"field": "team", "op": "eq", "value": {"request": "headers.Authorization"}}),
    );
    assert!(found.contains("not readable by rules"), "{found}");
    let found = problem(json!({"field": "team", "op": "in", "value": {"request": "query.team"}}));
    assert!(found.contains("does not take a request value"), "{found}");
    let found =
        problem(json!({"field": "public", "op": "eq", "value": {"request": "query.public"}}));
    assert!(found.contains("compares with text"), "{found}");
    let found = problem(json!({"field": "team", "op": "eq", "value": {"request": "body.team"}}));
    assert!(found.contains("expected {\"request\""), "{found}");
}
