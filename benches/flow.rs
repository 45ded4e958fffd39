//! A realistic ten-node flow against the same logic written by hand, both on a real Postgres:
//! a book quote that validates its input, reads books with their authors, sums them in a
//! script, picks a price tier, applies a coupon, inserts an order and answers with a templated
//! body. A third side runs the hand-written code on Sluice's own statements, to tell the
//! statements' cost from the interpreter's. Run with `cargo bench --bench flow`; see
//! bench/README.md ("A realistic flow against hand-written code").

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice::engine::outbound::{AllowList, Outbound};
use sluice::engine::{Live, Program, Request, Runtime, ScriptLimits, run};
use sluice::flow::node::TableCatalog;
use sluice::pg::EmbeddedPg;
use sluice::tables::def::{TableDef, Tables};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{Connection, PgConnection, PgPool};
use std::hint::black_box;
use std::str::FromStr;

/// The bench's own database on the cluster, dropped and created again by every run.
const DATABASE: &str = "sluice_bench_flow";
/// Connections of the pool all sides share; one request uses one at a time.
const POOL: u32 = 2;
/// The genres of `books`, in the enum and in the hand-written check alike.
const GENRES: [&str; 4] = ["fiction", "poetry", "history", "science"];
/// Nodes the benchmarked request walks through (the flow has 12; `none` and `small_price` are
/// other branches).
const NODES_RUN: usize = 10;

/// The flow: `check` (validate) → `books` (db.query, include author) → `summary` (script) →
/// `tier` (switch) → `bulk_price` (set) → `coupon` (if) → `welcome` (set) → `order`
/// (db.insert) → `lines` (set) → `reply` (respond). `small_price` and `none` are the other
/// cases of the switch.
fn flow() -> Value {
    json!({
        "format": "sluice.flow", "format_version": 1, "name": "quote",
        "endpoint": {"method": "POST", "path": "/quotes"},
        "entry": "check",
        "nodes": {
            "check": {"type": "validate", "as": "input", "value": {"$rhai": "request.body"},
                "schema": {
                    "type": "object", "additionalProperties": false,
                    "required": ["customer", "genre", "max_price", "quantity"],
                    "properties": {
                        "customer": {"type": "string", "minLength": 3, "maxLength": 200},
                        "genre": {"enum": GENRES},
                        "max_price": {"type": "integer", "minimum": 1, "maximum": 100000},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 20},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                        "coupon": {"type": "string", "maxLength": 20}
                    }
                },
                "next": {"ok": "books"}},
            "books": {"type": "db.query", "as": "books", "table": "books",
                "where": {"genre": {"$rhai": "input.genre"}},
                "filter": {"and": [
                    {"field": "price", "op": "le", "value": {"$rhai": "input.max_price"}},
                    {"field": "stock", "op": "gt", "value": 0}
                ]},
                "order_by": [{"column": "price"}],
                "limit": {"$rhai": "if \"limit\" in input { input.limit } else { 10 }"},
                "include": ["author"],
                "next": {"ok": "summary"}},
            "summary": {"type": "script", "as": "summary",
                "code": "let subtotal = 0;\nlet authors = [];\nfor b in books {\n    subtotal += b.price * input.quantity;\n    if type_of(b.author) == \"map\" && !(b.author.name in authors) {\n        authors.push(b.author.name);\n    }\n}\nlet count = books.len();\nlet tier = if count == 0 { \"none\" } else if count < 5 { \"small\" } else { \"bulk\" };\n#{ count: count, subtotal: subtotal, authors: authors, tier: tier }",
                "next": {"ok": "tier"}},
            "tier": {"type": "switch", "value": {"$rhai": "summary.tier"},
                "cases": {"none": "none", "small": "small", "bulk": "bulk"},
                "next": {"none": "none", "small": "small_price", "bulk": "bulk_price", "default": "none"}},
            "none": {"type": "respond", "status": 404,
                "body": {"error": "no_books", "message": "no book of this genre within the price"}},
            "small_price": {"type": "set", "as": "pricing",
                "value": {"label": "standard", "discount_pct": 0},
                "next": {"ok": "coupon"}},
            "bulk_price": {"type": "set", "as": "pricing",
                "value": {"label": "bulk", "discount_pct": 10},
                "next": {"ok": "coupon"}},
            "coupon": {"type": "if",
                "condition": {"$rhai": "\"coupon\" in input && input.coupon == \"WELCOME\""},
                "next": {"then": "welcome", "else": "order"}},
            "welcome": {"type": "set", "as": "pricing",
                "value": {"label": {"$rhai": "pricing.label + \"+welcome\""},
                          "discount_pct": {"$rhai": "pricing.discount_pct + 5"}},
                "next": {"ok": "order"}},
            "order": {"type": "db.insert", "as": "order", "table": "orders",
                "values": {
                    "customer": {"$rhai": "input.customer"},
                    "genre": {"$rhai": "input.genre"},
                    "items": {"$rhai": "summary.count * input.quantity"},
                    "subtotal": {"$rhai": "summary.subtotal"},
                    "total": {"$rhai": "summary.subtotal * (100 - pricing.discount_pct) / 100"},
                    "tier": {"$rhai": "pricing.label"}
                },
                "next": {"ok": "lines"}},
            "lines": {"type": "set", "as": "lines",
                "value": {"$rhai": "books.map(|b| #{ id: b.id, title: b.title, price: b.price, author: if type_of(b.author) == \"map\" { b.author.name } else { () } })"},
                "next": {"ok": "reply"}},
            "reply": {"type": "respond", "status": 201, "headers": {"Cache-Control": "no-store"},
                "body": {
                    "order": {"$rhai": "order.id"},
                    "customer": {"$rhai": "order.customer"},
                    "tier": {"$rhai": "order.tier"},
                    "items": {"$rhai": "order.items"},
                    "subtotal": {"$rhai": "order.subtotal"},
                    "total": {"$rhai": "order.total"},
                    "currency": "EUR",
                    "authors": {"$rhai": "summary.authors"},
                    "books": {"$rhai": "lines"}
                }}
        }
    })
}

/// The request both sides answer: a bulk quote with a coupon (ten nodes on the flow's side).
fn request() -> Request {
    Request {
        params: Map::new(),
        query: Map::new(),
        body: json!({"customer": "ann@example.com", "genre": "poetry", "max_price": 2500,
                     "quantity": 2, "limit": 10, "coupon": "WELCOME"}),
        headers: [
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("user-agent", "bench/1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect(),
        auth: Value::Null,
    }
}

// ---- The same endpoint by hand: serde, sqlx, plain Rust. ----

/// The body, checked by serde and [`QuoteRequest::check`] as the flow's schema checks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteRequest {
    customer: String,
    genre: String,
    max_price: i64,
    quantity: i64,
    limit: Option<i64>,
    coupon: Option<String>,
}

impl QuoteRequest {
    fn check(&self) -> Result<(), &'static str> {
        let chars = self.customer.chars().count();
        if !(3..=200).contains(&chars) {
            return Err("customer");
        }
        if !GENRES.contains(&self.genre.as_str()) {
            return Err("genre");
        }
        if !(1..=100_000).contains(&self.max_price) {
            return Err("max_price");
        }
        if !(1..=20).contains(&self.quantity) {
            return Err("quantity");
        }
        if self.limit.is_some_and(|l| !(1..=50).contains(&l)) {
            return Err("limit");
        }
        if self.coupon.as_ref().is_some_and(|c| c.chars().count() > 20) {
            return Err("coupon");
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct BookRow {
    id: i64,
    title: String,
    price: i64,
    author_name: Option<String>,
}

/// What a hand-written handler answers: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

/// The body, parsed and checked; `Err` is the 400 answer.
fn parse(body: Value) -> Result<QuoteRequest, Answer> {
    let input: QuoteRequest = serde_json::from_value(body).map_err(|e| invalid(&e.to_string()))?;
    input.check().map_err(invalid)?;
    Ok(input)
}

/// The order row a quote inserts, computed from the books found.
struct Order {
    items: i64,
    subtotal: i64,
    total: i64,
    tier: String,
}

/// The script, the switch, the coupon and the total: `None` when no book matched (404).
fn price(input: &QuoteRequest, books: &[BookRow]) -> Option<Order> {
    let subtotal: i64 = books.iter().map(|b| b.price * input.quantity).sum();
    let (mut tier, mut discount_pct) = match books.len() {
        0 => return None,
        1..5 => ("standard".to_string(), 0),
        _ => ("bulk".to_string(), 10),
    };
    if input.coupon.as_deref() == Some("WELCOME") {
        tier.push_str("+welcome");
        discount_pct += 5;
    }
    Some(Order {
        items: books.len() as i64 * input.quantity,
        subtotal,
        total: subtotal * (100 - discount_pct) / 100,
        tier,
    })
}

fn not_found() -> Answer {
    Answer {
        status: 404,
        body: json!({"error": "no_books", "message": "no book of this genre within the price"}),
    }
}

/// The 201 answer: the order, the distinct authors in order of appearance, the book lines.
fn created(id: i64, input: QuoteRequest, order: Order, books: &[BookRow]) -> Answer {
    let mut authors: Vec<&str> = Vec::new();
    for name in books.iter().filter_map(|b| b.author_name.as_deref()) {
        if !authors.contains(&name) {
            authors.push(name);
        }
    }
    let lines: Vec<Value> = books
        .iter()
        .map(|b| json!({"id": b.id, "title": b.title, "price": b.price, "author": b.author_name}))
        .collect();
    Answer {
        status: 201,
        body: json!({
            "order": id, "customer": input.customer, "tier": order.tier, "items": order.items,
            "subtotal": order.subtotal, "total": order.total, "currency": "EUR",
            "authors": authors, "books": lines,
        }),
    }
}

/// The flow's logic as a Rust developer writes it: one transaction (the flow's read and its
/// write share one too), a join for the authors, typed binds and rows, `json!` for the answer.
async fn hand(pool: &PgPool, body: Value) -> Result<Answer, sqlx::Error> {
    let input = match parse(body) {
        Ok(input) => input,
        Err(answer) => return Ok(answer),
    };
    let mut tx = pool.begin().await?;
    let books: Vec<BookRow> = sqlx::query_as(
        "SELECT b.id, b.title, b.price, a.name AS author_name \
         FROM app.books b LEFT JOIN app.authors a ON a.id = b.author \
         WHERE b.genre = $1 AND b.price <= $2 AND b.stock > 0 \
         ORDER BY b.price, b.id LIMIT $3",
    )
    .bind(&input.genre)
    .bind(input.max_price)
    .bind(input.limit.unwrap_or(10))
    .fetch_all(&mut *tx)
    .await?;
    let Some(order) = price(&input, &books) else {
        return Ok(not_found());
    };
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO app.orders (customer, genre, items, subtotal, total, tier) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(&input.customer)
    .bind(&input.genre)
    .bind(order.items)
    .bind(order.subtotal)
    .bind(order.total)
    .bind(&order.tier)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(created(id, input, order, &books))
}

/// The statements Sluice prepares for the flow's `books` (`db.query` with `include`) and
/// `order` (`db.insert`) nodes, read from the compiled program as they run: rows and included
/// authors built as JSON in Postgres, every filter skippable by a NULL value, the results
/// capped.
struct SluiceSql {
    query: String,
    insert: String,
}

impl SluiceSql {
    fn of(program: &Program) -> SluiceSql {
        let text = |id: &str| {
            let at = program
                .plan
                .nodes
                .iter()
                .position(|n| n.id == id)
                .expect("the node is in the flow");
            program.sql[at]
                .as_ref()
                .expect("a database node has a statement")
                .text_capped(sluice::engine::run::DEFAULT_MAX_RESULT_BYTES)
                .into_owned()
        };
        SluiceSql {
            query: text("books"),
            insert: text("order"),
        }
    }
}

/// A row of the `books` statement's result ([`SluiceSql`]), as serde reads it.
#[derive(Deserialize)]
struct JsonBook {
    id: i64,
    title: String,
    price: i64,
    author: Option<JsonAuthor>,
}

#[derive(Deserialize)]
struct JsonAuthor {
    name: String,
}

/// [`hand`] on Sluice's own statements, with text binds as Sluice binds them: what is left
/// between this and the flow is the interpreter (nodes, Rhai, moving values in and out).
async fn hand_same_sql(pool: &PgPool, sql: &SluiceSql, body: Value) -> Result<Answer, sqlx::Error> {
    let input = match parse(body) {
        Ok(input) => input,
        Err(answer) => return Ok(answer),
    };
    let mut tx = pool.begin().await?;
    let (Json(rows),): (Json<Vec<JsonBook>>,) = sqlx::query_as(&sql.query)
        .bind(&input.genre)
        .bind(input.max_price.to_string())
        .bind("0")
        .bind(input.limit.unwrap_or(10).to_string())
        .bind("0")
        .fetch_one(&mut *tx)
        .await?;
    let books: Vec<BookRow> = rows
        .into_iter()
        .map(|b| BookRow {
            id: b.id,
            title: b.title,
            price: b.price,
            author_name: b.author.map(|a| a.name),
        })
        .collect();
    let Some(order) = price(&input, &books) else {
        return Ok(not_found());
    };
    let (Json(row),): (Json<Value>,) = sqlx::query_as(&sql.insert)
        .bind(&input.customer)
        .bind(&input.genre)
        .bind(order.items.to_string())
        .bind(order.subtotal.to_string())
        .bind(&order.tier)
        .bind(order.total.to_string())
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let id = row["id"].as_i64().unwrap_or_default();
    Ok(created(id, input, order, &books))
}

fn invalid(what: &str) -> Answer {
    Answer {
        status: 400,
        body: json!({"error": "input.invalid", "message": what}),
    }
}

// ---- The database: a private cluster (or `SLUICE_TEST_DATABASE_URL`), three tables. ----

/// The cluster the benchmark runs on: kept running until [`Cluster::stop`].
struct Cluster {
    admin_url: String,
    embedded: Option<EmbeddedPg>,
}

impl Cluster {
    /// `SLUICE_TEST_DATABASE_URL` (a role that may create databases) as the tests use it, else
    /// an embedded cluster under the target directory, created on the first run.
    async fn start() -> Cluster {
        if let Ok(url) = std::env::var("SLUICE_TEST_DATABASE_URL") {
            return Cluster {
                admin_url: url,
                embedded: None,
            };
        }
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("sluice-bench-pg");
        let pg = EmbeddedPg::start(&dir)
            .await
            .expect("the embedded Postgres starts");
        Cluster {
            admin_url: pg.database_url().to_string(),
            embedded: Some(pg),
        }
    }

    /// A pool on a fresh database, configured as the server configures its own, except that
    /// commits do not wait for the disk.
    async fn fresh_pool(&self) -> PgPool {
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .expect("connect to the cluster");
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{DATABASE}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{DATABASE}\""),
        ] {
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .expect("a fresh database");
        }
        let options = PgConnectOptions::from_str(&self.admin_url)
            .expect("a database URL")
            .database(DATABASE)
            .options([
                ("search_path", "sluice".to_string()),
                // Both sides commit one transaction per request; waiting for its WAL flush
                // would add the same disk latency to both and bury the difference measured.
                ("synchronous_commit", "off".to_string()),
                (
                    "sluice.max_result_bytes",
                    sluice::engine::run::DEFAULT_MAX_RESULT_BYTES.to_string(),
                ),
            ]);
        PgPoolOptions::new()
            .max_connections(POOL)
            .connect_with(options)
            .await
            .expect("the pool connects")
    }

    async fn stop(self) {
        let mut conn = PgConnection::connect(&self.admin_url)
            .await
            .expect("connect to the cluster");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{DATABASE}\" WITH (FORCE)"
        ))
        .execute(&mut conn)
        .await
        .expect("drop the database");
        drop(conn);
        if let Some(pg) = self.embedded {
            pg.stop().await.expect("the embedded Postgres stops");
        }
    }
}

/// Migrates the catalog, creates `authors`, `books` and `orders` through the table store
/// and seeds 60 authors and 480 books (120 per genre). Returns the tables' definitions.
async fn prepare(pool: &PgPool) -> Tables {
    sluice::catalog::migrate(pool).await.expect("migrations");
    sluice::catalog::users::create(pool, "bench@example.com", "unused")
        .await
        .expect("a user");
    let (user_id,): (i64,) = sqlx::query_as("SELECT id FROM sluice.users WHERE email = $1")
        .bind("bench@example.com")
        .fetch_one(pool)
        .await
        .expect("the user's id");
    let defs = [
        json!({"name": "authors", "fields": [
            {"name": "name", "type": "text", "required": true},
            {"name": "country", "type": "text"}
        ]}),
        json!({"name": "books", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "genre", "type": "enum", "values": GENRES, "required": true, "indexed": true},
            {"name": "price", "type": "integer", "required": true},
            {"name": "stock", "type": "integer", "required": true, "default": 0},
            {"name": "author", "type": "reference", "table": "authors", "indexed": true}
        ]}),
        json!({"name": "orders", "fields": [
            {"name": "customer", "type": "email", "required": true},
            {"name": "genre", "type": "text", "required": true},
            {"name": "items", "type": "integer", "required": true},
            {"name": "subtotal", "type": "integer", "required": true},
            {"name": "total", "type": "integer", "required": true},
            {"name": "tier", "type": "text", "required": true}
        ]}),
    ];
    for def in defs {
        let def: TableDef = serde_json::from_value(def).expect("a table definition");
        sluice::tables::store::create(pool, def, user_id)
            .await
            .expect("the table is created");
    }
    sqlx::query(
        "INSERT INTO app.authors (name, country) \
         SELECT 'Author ' || i, (ARRAY['FR', 'DE', 'IT', 'ES'])[1 + i % 4] \
         FROM generate_series(1, 60) AS i",
    )
    .execute(pool)
    .await
    .expect("authors");
    // Prices spread over 5.00–49.95, a tenth out of stock, authors spread across genres.
    sqlx::query(
        "INSERT INTO app.books (title, genre, price, stock, author) \
         SELECT 'Book ' || i, ($1::text[])[1 + i % 4], 500 + (i * 37) % 4500, \
                CASE WHEN i % 10 = 0 THEN 0 ELSE 1 + i % 7 END, 1 + (i * 7) % 60 \
         FROM generate_series(1, 480) AS i",
    )
    .bind(GENRES.as_slice())
    .execute(pool)
    .await
    .expect("books");
    sqlx::query("ANALYZE app.authors, app.books")
        .execute(pool)
        .await
        .expect("analyze");
    sluice::tables::store::all(pool).await.expect("the tables")
}

/// Both sides must give the same answer (apart from the new order's id) before they are timed.
fn same_answers(flow: &Value, hand: &Value) {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("order");
        }
        v
    };
    assert_eq!(
        strip(flow),
        strip(hand),
        "the flow and the hand-written code disagree"
    );
    assert_eq!(
        flow["books"].as_array().map(Vec::len),
        Some(10),
        "ten books: {flow}"
    );
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = rt.block_on(Cluster::start());
    let pool = rt.block_on(cluster.fresh_pool());
    let tables = rt.block_on(prepare(&pool));
    let plan = sluice::nodes::compile(&flow(), Some(&tables as &dyn TableCatalog))
        .expect("the flow compiles");
    let program = Program::build(plan, &tables).expect("the flow builds");
    let sluice_sql = SluiceSql::of(&program);
    let outbound = Outbound::new(AllowList::new(Vec::new(), Vec::new())).expect("an http client");
    let engine = Runtime::new(pool.clone(), ScriptLimits::default(), outbound);
    let live = Live::default();

    let by_flow = rt
        .block_on(run(&program, &engine, &live, request()))
        .expect("the flow answers");
    let by_hand = rt
        .block_on(hand(&pool, request().body))
        .expect("the hand-written code answers");
    let by_hand_same_sql = rt
        .block_on(hand_same_sql(&pool, &sluice_sql, request().body))
        .expect("the hand-written code on Sluice's statements answers");
    assert_eq!(
        (by_flow.status, by_hand.status, by_hand_same_sql.status),
        (201, 201, 201),
        "{by_flow:?}"
    );
    same_answers(&by_flow.body, &by_hand.body);
    same_answers(&by_flow.body, &by_hand_same_sql.body);

    let mut group = c.benchmark_group(format!("quote_{NODES_RUN}_nodes"));
    group.bench_function("flow", |b| {
        b.iter_batched(
            request,
            |req| black_box(rt.block_on(run(&program, &engine, &live, req))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("hand_written", |b| {
        b.iter_batched(
            || request().body,
            |body| black_box(rt.block_on(hand(&pool, body))),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("hand_written_same_sql", |b| {
        b.iter_batched(
            || request().body,
            |body| black_box(rt.block_on(hand_same_sql(&pool, &sluice_sql, body))),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // The engine's lane gives its connections back to the pool, which needs the runtime.
    rt.block_on(async move { drop(engine) });
    rt.block_on(pool.close());
    rt.block_on(cluster.stop());
}

criterion_group!(benches, bench);
criterion_main!(benches);
