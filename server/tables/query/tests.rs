//! The statements of the table-query layer, as snapshots: what reviewers read to see that every
//! name is quoted, every value a parameter, and that a statement built once for per-request
//! values (a node's) and one built for known values (the data API's) mean the same.

use super::*;
use serde_json::json;
use std::fmt::Write as _;

fn todos() -> TableDef {
    serde_json::from_value(json!({
        "id": "t_000000000001",
        "name": "todos",
        "fields": [
            {"id": "f_00000000000a", "name": "title", "type": "text", "required": true},
            {"id": "f_00000000000b", "name": "done", "type": "boolean", "required": true, "default": false},
            {"id": "f_00000000000c", "name": "priority", "type": "integer"},
            {"id": "f_00000000000d", "name": "secret", "type": "password"},
            {"id": "f_00000000000e", "name": "meta", "type": "json"},
            {"id": "f_00000000000f", "name": "owner", "type": "reference", "table": "people"}
        ]
    }))
    .expect("a valid definition")
}

fn tables() -> Tables {
    let people: TableDef = serde_json::from_value(json!({
        "id": "t_000000000002", "name": "people", "id_type": "uuid",
        "fields": [{"id": "f_000000000010", "name": "pin", "type": "password"}]
    }))
    .expect("people");
    [
        ("todos".to_string(), todos()),
        ("people".to_string(), people),
    ]
    .into_iter()
    .collect()
}

/// A value known while building, as the data API binds it.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    Text(&'static str),
    Flag(bool),
}

impl Slot for Known {
    fn known_flag(&self) -> Option<bool> {
        match self {
            Known::Flag(b) => Some(*b),
            Known::Text(_) => None,
        }
    }
}

/// A value evaluated per request, as a node binds it: `null` skips its condition.
#[derive(Debug, Clone, PartialEq)]
struct Late(&'static str);

impl Slot for Late {
    fn may_skip(&self) -> bool {
        true
    }

    fn json_list(&self) -> bool {
        true
    }
}

fn cond<S>(column: &str, op: FilterOp, value: S) -> Filter<S> {
    let def = todos();
    let col = super::column(&def, &tables(), column).expect("a column");
    Filter::Cond(Cond {
        column: col.ident,
        cast: col.cast,
        op,
        value,
    })
}

/// The statement text, then each `$n` with its slot.
fn show<S: std::fmt::Debug>(st: &Statement<S>) -> String {
    let mut out = st.text.clone();
    for (i, s) in st.slots.iter().enumerate() {
        let _ = write!(out, "\n${} = {s:?}", i + 1);
    }
    out
}

fn filtered<S: Slot + Clone>(f: &Filter<S>) -> Statement<S> {
    let mut params = Params::default();
    let text = render_filter(f, &mut params);
    params.statement(text)
}

#[test]
fn every_operator_with_known_values() {
    let f = Filter::And(vec![
        cond("title", FilterOp::Eq, Known::Text("a")),
        cond("priority", FilterOp::Ne, Known::Text("1")),
        cond("priority", FilterOp::Lt, Known::Text("2")),
        cond("priority", FilterOp::Le, Known::Text("3")),
        Filter::Or(vec![
            cond("priority", FilterOp::Gt, Known::Text("4")),
            cond("priority", FilterOp::Ge, Known::Text("5")),
            cond("id", FilterOp::In, Known::Text("[6, 7]")),
        ]),
        cond("title", FilterOp::Contains, Known::Text("%x%")),
        cond("title", FilterOp::StartsWith, Known::Text("x%")),
        cond("priority", FilterOp::IsNull, Known::Flag(true)),
        cond("meta", FilterOp::IsNull, Known::Flag(false)),
        Filter::Or(vec![]),
    ]);
    insta::assert_snapshot!(show(&filtered(&f)));
}

#[test]
fn per_request_values_skip_their_condition_when_null() {
    let f = Filter::And(vec![
        cond("title", FilterOp::Contains, Late("request.query.q")),
        Filter::Or(vec![
            cond("priority", FilterOp::Ge, Late("request.query.min")),
            cond("done", FilterOp::IsNull, Late("request.query.open")),
        ]),
        Filter::And(vec![]),
    ]);
    insta::assert_snapshot!(show(&filtered(&f)));
    // A lone condition is made neutral at the top too.
    let one = cond("id", FilterOp::In, Late("request.body.ids"));
    insta::assert_snapshot!(show(&filtered(&one)));
}

#[test]
fn a_page_with_filter_cursor_and_offset() {
    let def = todos();
    let sort = Sort {
        keys: vec![OrderKey {
            column: super::column(&def, &tables(), "priority").expect("column"),
            desc: true,
        }],
    };
    let f = cond("title", FilterOp::Contains, Known::Text("%x%"));
    let st = select(Select {
        def: &def,
        filter: Some(&f),
        sort: &sort,
        after: Some((vec![Some(Known::Text("5"))], Known::Text("42"))),
        limit: Known::Text("11"),
        offset: None,
    });
    insta::assert_snapshot!(show(&st));
    let id = Sort {
        keys: vec![OrderKey {
            column: super::column(&def, &tables(), "id").expect("column"),
            desc: false,
        }],
    };
    let st = select(Select {
        def: &def,
        filter: None,
        sort: &id,
        after: None,
        limit: Known::Text("51"),
        offset: Some(Known::Text("20")),
    });
    insta::assert_snapshot!(show(&st));
    insta::assert_snapshot!(show(&count(&def, Some(&f))));
}

#[test]
fn writes_by_id() {
    let def = todos();
    let ts = tables();
    let w = |c: &str, v: &'static str| {
        let ident = Ident::parse(c).expect("ident");
        Write::new(&def, &ts, ident, Late(v)).expect("a field")
    };
    let patch = |c: &str| Patch {
        write: w(c, "patch value"),
        given: Late("patch names it"),
    };
    let on = [Ident::parse("title").expect("ident")];
    let mut out = String::new();
    for st in [
        insert(
            &def,
            vec![w("title", "a"), w("priority", "b"), w("meta", "c")],
            Returning::Row,
            None,
        ),
        insert(&def, vec![], Returning::CappedRow, None),
        insert(
            &def,
            vec![w("title", "a")],
            Returning::CappedRow,
            Some(&|p: &mut Params<Late>| format!("t.\"owner\" = {}", p.add(Late("check"), "uuid"))),
        ),
        get(&def, Late("id"), None),
        get(
            &def,
            Late("id"),
            Some(&|p: &mut Params<Late>| format!("t.\"owner\" = {}", p.add(Late("rule"), "uuid"))),
        ),
        update(
            &def,
            Late("id"),
            vec![w("done", "d"), w("secret", "hash")],
            vec![],
            Returning::Row,
            None,
            None,
        ),
        update(
            &def,
            Late("id"),
            vec![w("done", "d")],
            vec![patch("title"), patch("meta")],
            Returning::CappedRow,
            None,
            None,
        ),
        update(
            &def,
            Late("id"),
            vec![w("done", "d")],
            vec![],
            Returning::CappedRow,
            Some(&|p: &mut Params<Late>| format!("t.\"owner\" = {}", p.add(Late("rule"), "uuid"))),
            Some(&|p: &mut Params<Late>| {
                format!("t.\"done\" = {}", p.add(Late("check"), "boolean"))
            }),
        ),
        update(
            &def,
            Late("id"),
            vec![],
            vec![],
            Returning::Nothing,
            None,
            None,
        ),
        upsert(&def, vec![w("title", "a"), w("priority", "b")], &on),
        upsert(&def, vec![w("title", "a")], &on),
        delete(&def, Late("id"), Returning::Nothing, None),
        delete(&def, Late("id"), Returning::CappedRow, None),
        delete_many(&def, Late("ids")),
    ] {
        out.push_str(&show(&st));
        out.push_str("\n\n");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn a_node_query_as_one_json_value() {
    let def = todos();
    let ts = tables();
    let col = |n: &str| super::column(&def, &ts, n).expect("column");
    let f = Filter::Or(vec![
        cond("priority", FilterOp::In, Late("request.query.p")),
        cond("title", FilterOp::StartsWith, Late("request.query.t")),
    ]);
    let order = [OrderKey {
        column: col("priority"),
        desc: true,
    }];
    let base = JsonSelect {
        def: &def,
        tables: &ts,
        equal: vec![(col("done"), Late("request.query.done"))],
        filter: Some(&f),
        columns: &[],
        include: &[],
        order: &order,
        limit: Late("limit"),
        offset: Late("offset"),
        paging: None,
        guard: None,
        include_guard: None,
    };
    insta::assert_snapshot!(show(&select_json(base.clone()).expect("builds")));
    let paged = JsonSelect {
        equal: vec![],
        paging: Some(Paging {
            after: Some(vec![Late("cursor key 0"), Late("cursor key 1")]),
            count: true,
        }),
        ..base.clone()
    };
    insta::assert_snapshot!(show(&select_json(paged.clone()).expect("builds")));
    // A rule's guard: its parameter comes after every other one, the cursor's included, and
    // it narrows the count too.
    let rule = |p: &mut Params<Late>| format!("t.\"owner\" = {}", p.add(Late("rule"), "uuid"));
    let guarded = JsonSelect {
        guard: Some(&rule),
        ..paged
    };
    insta::assert_snapshot!(show(&select_json(guarded).expect("builds")));
    let owner = [Include::One {
        field: Ident::parse("owner").expect("ident"),
        include: vec![],
    }];
    let title = [
        Ident::parse("title").expect("ident"),
        Ident::parse("owner").expect("ident"),
    ];
    let shaped = JsonSelect {
        equal: vec![],
        filter: None,
        columns: &title,
        include: &owner,
        order: &[],
        ..base.clone()
    };
    insta::assert_snapshot!(show(&select_json(shaped.clone()).expect("builds")));
    // An included table's rule: over the include's alias, its parameters after the guard's.
    let viewable = |table: &str, action: &str, alias: &str, p: &mut Params<Late>| {
        assert_eq!(action, "view");
        (table == "people")
            .then(|| format!("{alias}.\"id\" = {}", p.add(Late("view rule"), "bigint")))
    };
    let included = JsonSelect {
        guard: Some(&rule),
        include_guard: Some(&viewable),
        ..shaped
    };
    insta::assert_snapshot!(show(&select_json(included).expect("builds")));
    let bad = [Include::One {
        field: Ident::parse("title").expect("ident"),
        include: vec![],
    }];
    let e = select_json(JsonSelect {
        include: &bad,
        ..base
    })
    .expect_err("title is no reference");
    assert_eq!(
        e.to_string(),
        "`todos.title` is not a reference of an existing table"
    );
}

#[test]
fn operators_round_trip_their_names_and_patterns_match_literally() {
    for (name, op) in FilterOp::ALL {
        assert_eq!(FilterOp::parse(name), Some(op));
        assert_eq!(op.name(), name);
    }
    assert_eq!(FilterOp::parse("like"), None);
    assert_eq!(like_pattern(FilterOp::Contains, r"5%_\"), r"%5\%\_\\%");
    assert_eq!(like_pattern(FilterOp::StartsWith, "ab"), "ab%");
    let c = Cursor {
        sort: "-title".into(),
        keys: vec![Some("it's \"quoted\"".into()), None],
        id: "12".into(),
    };
    assert_eq!(Cursor::decode(&c.encode()), Some(c));
    assert_eq!(Cursor::decode("zz"), None);
}

#[test]
fn keyset_cursors_carry_their_query() {
    let def = todos();
    let order = [OrderKey {
        column: super::column(&def, &tables(), "priority").expect("column"),
        desc: true,
    }];
    let fp = fingerprint(&def, &order);
    assert_eq!(fp, "todos:priority desc,id");
    let k = Keyset {
        fingerprint: fp.clone(),
        keys: vec![None, Some("7".into())],
    };
    let text = k.encode();
    // The encoding node cursors have always had: hex of `[fingerprint, key…]`.
    assert_eq!(
        decode_cursor::<serde_json::Value>(&text),
        Some(json!(["todos:priority desc,id", null, "7"]))
    );
    assert_eq!(Keyset::decode(&text, &fp, 2), Ok(k));
    assert_eq!(
        Keyset::decode(&text, "todos:id", 1),
        Err(BadKeyset::OtherQuery)
    );
    assert_eq!(Keyset::decode(&text, &fp, 3), Err(BadKeyset::Foreign));
    assert_eq!(Keyset::decode("7a", &fp, 2), Err(BadKeyset::Foreign));
    let no_id = encode_cursor(&json!([fp, "1", null]));
    assert_eq!(Keyset::decode(&no_id, &fp, 2), Err(BadKeyset::Foreign));
}

/// `todos` of a person, each with comments that reference the todo and, nested, the comment's
/// author: one statement, each level a correlated subquery on its key, the rules of the
/// included tables over their own aliases, their parameters in include order.
#[test]
fn includes_nest_and_follow_references_both_ways_in_one_statement() {
    let mut ts = tables();
    let comments: TableDef = serde_json::from_value(json!({
        "id": "t_000000000003", "name": "comments",
        "fields": [
            {"id": "f_000000000020", "name": "body", "type": "text"},
            {"id": "f_000000000021", "name": "todo", "type": "reference", "table": "todos"},
            {"id": "f_000000000022", "name": "author", "type": "reference", "table": "people"}
        ]
    }))
    .expect("comments");
    ts.insert("comments".to_string(), comments);
    let ident = |n: &str| Ident::parse(n).expect("ident");
    let include = [
        Include::One {
            field: ident("owner"),
            include: vec![],
        },
        Include::Many {
            name: ident("comments"),
            table: ident("comments"),
            by: ident("todo"),
            order: vec![(ident("body"), true)],
            limit: 5,
            include: vec![Include::One {
                field: ident("author"),
                include: vec![],
            }],
        },
    ];
    let seen = std::cell::RefCell::new(Vec::new());
    let rules = |table: &str, action: &str, alias: &str, p: &mut Params<Late>| {
        seen.borrow_mut().push(format!("{table}.{action}"));
        (table != "todos").then(|| {
            format!(
                "{alias}.\"id\" IS NOT NULL AND {} IS NOT NULL",
                p.add(Late("rule"), "text")
            )
        })
    };
    let def = todos();
    let st = get_with(&def, &ts, Late("id"), None, &include, Some(&rules)).expect("builds");
    insta::assert_snapshot!(show(&st));
    assert_eq!(
        *seen.borrow(),
        ["people.view", "comments.list", "people.view"]
    );
    let bad = [Include::Many {
        name: ident("notes"),
        table: ident("comments"),
        by: ident("author"),
        order: vec![],
        limit: 5,
        include: vec![],
    }];
    let e = get_with(&def, &ts, Late("id"), None, &bad, None).expect_err("author points at people");
    assert_eq!(
        e.to_string(),
        "`comments.author` is not a reference of an existing table"
    );
}

#[test]
fn aggregates_as_one_object_or_grouped_rows() {
    let mut def = todos();
    def.fields.push(
        serde_json::from_value(json!({"id": "f_000000000011", "name": "price", "type": "decimal"}))
            .expect("field"),
    );
    let mut ts = tables();
    ts.insert("todos".into(), def.clone());
    let col = |n: &str| super::column(&def, &ts, n).expect("column");
    let agg = |name: &str, func: AggFn, column: Option<&str>| Aggregate {
        name: Ident::parse(name).expect("ident"),
        func,
        column: column.map(col),
    };
    let all = [
        agg("n", AggFn::Count, None),
        agg("with_priority", AggFn::Count, Some("priority")),
        agg("total", AggFn::Sum, Some("priority")),
        agg("mean_price", AggFn::Avg, Some("price")),
        agg("first", AggFn::Min, Some("title")),
        agg("all_done", AggFn::Min, Some("done")),
        agg("any_done", AggFn::Max, Some("done")),
        agg("last_owner", AggFn::Max, Some("owner")),
    ];
    let f = cond("title", FilterOp::Contains, Late("request.query.q"));
    let rule = |p: &mut Params<Late>| format!("t.\"owner\" = {}", p.add(Late("rule"), "uuid"));
    let base = AggregateQuery {
        def: &def,
        equal: vec![(col("done"), Late("request.query.done"))],
        filter: Some(&f),
        group_by: &[],
        aggregates: &all,
        order: &[],
        limit: None,
        guard: Some(&rule),
    };
    insta::assert_snapshot!(show(&aggregate(base.clone()).expect("builds")));
    // Grouped: the order's keys, then the group columns not among them; the limit before
    // the rule's parameters.
    let groups = [col("done"), col("owner")];
    let counted = [
        agg("n", AggFn::Count, None),
        agg("top", AggFn::Max, Some("priority")),
    ];
    let order = [
        AggOrder {
            key: AggKey::Aggregate(1),
            desc: true,
        },
        AggOrder {
            key: AggKey::Group(1),
            desc: false,
        },
    ];
    let grouped = AggregateQuery {
        equal: vec![],
        group_by: &groups,
        aggregates: &counted,
        order: &order,
        limit: Some(Late("limit")),
        ..base.clone()
    };
    insta::assert_snapshot!(show(&aggregate(grouped.clone()).expect("builds")));
    // What the builder refuses: a function that does not fit, order or limit without groups.
    let sum_text = [agg("t", AggFn::Sum, Some("title"))];
    for (q, why) in [
        (
            AggregateQuery {
                aggregates: &sum_text,
                ..base.clone()
            },
            "`t`: sum needs an integer or decimal column; `title` is text",
        ),
        (
            AggregateQuery {
                limit: Some(Late("limit")),
                ..base.clone()
            },
            "order and limit need group columns",
        ),
        (
            AggregateQuery {
                aggregates: &[],
                ..base.clone()
            },
            "nothing to aggregate",
        ),
    ] {
        assert_eq!(aggregate(q).expect_err(why).to_string(), why);
    }
}

#[test]
fn aggregate_functions_fit_their_column_types() {
    use crate::tables::FieldType as T;
    for (f, ok, bad) in [
        (
            AggFn::Count,
            vec![T::Text, T::Json, T::Uuid],
            vec![T::Password],
        ),
        (
            AggFn::Sum,
            vec![T::Integer, T::Decimal],
            vec![T::Text, T::Boolean, T::Timestamp, T::Password],
        ),
        (
            AggFn::Avg,
            vec![T::Integer, T::Decimal],
            vec![T::Date, T::Json],
        ),
        (
            AggFn::Min,
            vec![T::Text, T::Date, T::Boolean, T::Uuid, T::Reference],
            vec![T::Json, T::Password],
        ),
    ] {
        assert_eq!(AggFn::parse(f.name()), Some(f));
        ok.iter().for_each(|t| assert!(f.fits(*t), "{f:?} {t:?}"));
        bad.iter().for_each(|t| assert!(!f.fits(*t), "{f:?} {t:?}"));
    }
    assert_eq!(AggFn::parse("median"), None);
}
