//! Access rules: for random rules, rows and callers, the SQL a rule compiles to and
//! its in-memory predicate pick the same rows, on real Postgres. Rules include the relational
//! form (`exists` over a `members` table, comparing with the checked row) and values of the
//! request (a path parameter, a header), which may be missing or not convert.

mod common;

use serde_json::{Map, Value, json};
use sluice::tables::query::Params;
use sluice::tables::rules::{self, Condition, RuleParam};
use std::collections::HashMap;

/// A small deterministic generator (xorshift64*), so a failure replays with its seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: [&str; 5] = ["alpha", "beta", "al", "Gamma", "a_b"];

fn value_for(g: &mut Gen, field: &str, op: &str) -> Value {
    match (field, op) {
        (_, "is_null") => json!(g.below(2) == 0),
        ("owner", "in") => json!([g.below(4), g.below(4)]),
        ("team", "in") => json!([g.pick(&WORDS), g.pick(&WORDS)]),
        ("owner", _) => match g.below(4) {
            0 => json!({"auth": "id"}),
            1 => json!({"request": "params.owner"}),
            _ => json!(g.below(4)),
        },
        (_, _) => match g.below(4) {
            0 => json!({"auth": "claims.team"}),
            1 => json!({"request": "headers.X-Team"}),
            _ => json!(g.pick(&WORDS)),
        },
    }
}

/// A condition on `members` inside an exists: its team or member compared with the checked
/// row's team or owner, the caller's id, or a literal.
fn member_condition(g: &mut Gen, depth: u32) -> Value {
    if depth < 1 && g.below(3) == 0 {
        let items: Vec<Value> = (0..1 + g.below(3))
            .map(|_| member_condition(g, depth + 1))
            .collect();
        return if g.below(2) == 0 {
            json!({"and": items})
        } else {
            json!({"or": items})
        };
    }
    let (field, row) = *g.pick(&[("team", "team"), ("member", "owner")]);
    let op = *g.pick(&["eq", "eq", "ne", "lt", "ge"]);
    let value = match (g.below(3), field) {
        (0 | 1, _) => json!({"row": row}),
        (_, "member") => json!({"auth": "id"}),
        _ => json!(g.pick(&WORDS)),
    };
    json!({"field": field, "op": op, "value": value})
}

fn condition(g: &mut Gen, depth: u32) -> Value {
    if g.below(6) == 0 {
        return json!({"exists": {"table": "members", "where": member_condition(g, 0)}});
    }
    if depth < 2 && g.below(3) == 0 {
        let items: Vec<Value> = (0..1 + g.below(3))
            .map(|_| condition(g, depth + 1))
            .collect();
        return if g.below(2) == 0 {
            json!({"and": items})
        } else {
            json!({"or": items})
        };
    }
    let field = *g.pick(&["owner", "team"]);
    let ops: &[&str] = if field == "owner" {
        &["eq", "ne", "lt", "le", "gt", "ge", "in", "is_null"]
    } else {
        &["eq", "ne", "in", "contains", "starts_with", "is_null"]
    };
    let op = *g.pick(ops);
    json!({"field": field, "op": op, "value": value_for(g, field, op)})
}

fn caller(g: &mut Gen) -> Value {
    match g.below(4) {
        0 => Value::Null,
        1 => json!({"id": g.below(4), "claims": {}}),
        _ => json!({"id": g.below(4), "claims": {"team": g.pick(&WORDS)}}),
    }
}

/// The request as a flow sees it: a path parameter that is a number, not one, or missing, and
/// a header that may be missing.
fn request(g: &mut Gen) -> Value {
    let owner = match g.below(4) {
        0 => json!({}),
        1 => json!({"owner": "not a number"}),
        _ => json!({"owner": g.below(4).to_string()}),
    };
    let headers = match g.below(3) {
        0 => json!({}),
        _ => json!({"x-team": g.pick(&WORDS)}),
    };
    json!({"params": owner, "query": {}, "headers": headers, "body": null})
}

#[tokio::test]
async fn sql_and_memory_agree_on_random_rules_rows_and_callers() {
    let app = common::spawn_app().await;
    app.create_table(&json!({"name": "members", "fields": [
        {"name": "team", "type": "text"},
        {"name": "member", "type": "integer"}
    ]}))
    .await;
    sqlx::query(
        "INSERT INTO app.members (team, member) SELECT t, u FROM \
         unnest(ARRAY['alpha', 'beta', 'Gamma', NULL, 'al']::text[], \
                ARRAY[1, 2, 1, 3, NULL]::bigint[]) AS x(t, u)",
    )
    .execute(&app.db)
    .await
    .expect("members");
    let members: Vec<Value> = sqlx::query_scalar("SELECT to_jsonb(m) FROM app.members m")
        .fetch_all(&app.db)
        .await
        .expect("members");
    let others: HashMap<String, Vec<Map<String, Value>>> = [(
        "members".to_string(),
        members
            .into_iter()
            .map(|m| m.as_object().cloned().expect("a row object"))
            .collect(),
    )]
    .into_iter()
    .collect();
    app.create_table(&json!({"name": "things", "fields": [
        {"name": "owner", "type": "integer"},
        {"name": "team", "type": "text"}
    ]}))
    .await;
    sqlx::query(
        "INSERT INTO app.things (owner, team) SELECT o, t FROM \
         unnest(ARRAY[0, 1, 2, 3, NULL, 1, 2]::bigint[], \
                ARRAY['alpha', 'beta', NULL, 'Gamma', 'al', 'a_b', 'ALPHA']::text[]) AS x(o, t)",
    )
    .execute(&app.db)
    .await
    .expect("rows");
    let tables = sluice::tables::store::all(&app.db).await.expect("tables");
    let def = tables.get("things").expect("things");
    let rows: Vec<(i64, Value)> =
        sqlx::query_as("SELECT id, to_jsonb(t) FROM app.things t ORDER BY id")
            .fetch_all(&app.db)
            .await
            .expect("rows");

    let mut g = Gen(0x5eed_2026_1204);
    for case in 0..300 {
        let doc = condition(&mut g, 0);
        let rule = Condition::parse(&doc, def, &tables, "/rule")
            .unwrap_or_else(|p| panic!("case {case}: {doc} does not parse: {p:?}"));
        let auth = caller(&mut g);
        let req = request(&mut g);
        let caller = rules::Caller {
            auth: &auth,
            request: &req,
        };
        let mut params: Params<RuleParam> = Params::default();
        let text = rule.sql("t", &mut params, &|p| p);
        let st = params.statement(format!(
            "SELECT id FROM app.things t WHERE {text} ORDER BY id"
        ));
        let mut q = sqlx::query_scalar::<_, i64>(&st.text);
        for p in &st.slots {
            q = q.bind(rules::bind_text(p, caller));
        }
        let by_sql: Vec<i64> = q
            .fetch_all(&app.db)
            .await
            .unwrap_or_else(|e| panic!("case {case}: {} fails: {e}", st.text));
        let by_memory: Vec<i64> = rows
            .iter()
            .filter(|(_, row)| {
                let row: &Map<String, Value> = row.as_object().expect("a row object");
                rule.eval(row, caller, &others)
            })
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            by_sql, by_memory,
            "case {case}: rule {doc} for caller {auth}, request {req}"
        );
    }
}
