//! The hand-written server of the HTTP benchmark (`bench/http.sh`): the yardstick Sluice is
//! measured against, written the way people write an axum 0.8 + sqlx service. It selects
//! columns into a `#[derive(sqlx::FromRow)]` struct and serializes it with serde (`Json(row)`);
//! the list is a `Vec` of the same struct in `{"items": [...]}`; `POST` takes a typed
//! `Deserialize` body and answers the row of `INSERT ... RETURNING`. No JSON is built in
//! Postgres.
//!
//! Its answers are the same JSON values as Sluice's generated endpoints for table `items`
//! (`bench/http.sh` checks that): `price` (`numeric`) is read as text and written as a JSON
//! number without passing through a float (serde_json's `RawValue`), timestamps as RFC 3339
//! (the `time` crate, which sqlx already uses), errors in Sluice's envelope.
//!
//! Not part of Sluice: it exists only as the yardstick. Settings from the environment:
//! `DATABASE_URL` (required), `BENCH_ADDR` (default `127.0.0.1:8081`), `BENCH_POOL` (default
//! 16, Sluice's default `SLUICE_DB_MAX_CONNECTIONS`).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Number, json};
use sqlx::postgres::{PgPoolOptions, PgValueRef};
use sqlx::types::time::OffsetDateTime;
use sqlx::{PgPool, Postgres};
use std::time::Duration;

/// One row of `app.items`, as the handlers answer it.
#[derive(Serialize, sqlx::FromRow)]
struct Item {
    id: i64,
    title: String,
    qty: i64,
    price: Option<Price>,
    active: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// A `numeric` read as its text (`price::text` in the statements) and written into JSON as that
/// number, digits unchanged: a decimal must not become a float on the way.
#[derive(Serialize)]
#[serde(transparent)]
struct Price(Box<RawValue>);

impl sqlx::Type<Postgres> for Price {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for Price {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<Postgres>>::decode(value)?;
        Ok(Price(RawValue::from_string(text)?))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set")?;
    let addr = std::env::var("BENCH_ADDR").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let pool_size: u32 = match std::env::var("BENCH_POOL") {
        Ok(v) => v.parse()?,
        Err(_) => 16,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let db = PgPoolOptions::new()
                .max_connections(pool_size)
                .acquire_timeout(Duration::from_secs(5))
                .connect(&url)
                .await?;
            let app = Router::new()
                .route("/api/items", get(list_items).post(create_item))
                .route("/api/items/{id}", get(get_item))
                .fallback(|| async { error(StatusCode::NOT_FOUND, "route.not_found", "no route") })
                .with_state(db);
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            eprintln!("bench_baseline listening on http://{addr}");
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            Ok(())
        })
}

/// Sluice's error envelope.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (status, Json(body)).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "input.invalid", message)
}

fn internal(e: sqlx::Error) -> Response {
    eprintln!("database error: {e}");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal.error",
        "internal error",
    )
}

async fn get_item(State(db): State<PgPool>, Path(id): Path<i64>) -> Response {
    let row = sqlx::query_as::<_, Item>(
        "SELECT id, title, qty, price::text AS price, active, created_at, updated_at \
         FROM app.items WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db)
    .await;
    match row {
        Ok(Some(item)) => Json(item).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "db.not_found", "no such item"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Item>,
}

async fn list_items(
    State(db): State<PgPool>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return invalid("bad query string");
    };
    let limit = q.limit.unwrap_or(20);
    let offset = q.offset.unwrap_or(0);
    if !(1..=100).contains(&limit) || offset < 0 {
        return invalid("limit must be 1 to 100, offset at least 0");
    }
    let rows = sqlx::query_as::<_, Item>(
        "SELECT id, title, qty, price::text AS price, active, created_at, updated_at \
         FROM app.items ORDER BY id LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(&db)
    .await;
    match rows {
        Ok(items) => Json(Page { items }).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    title: String,
    #[serde(default)]
    qty: i64,
    price: Option<Number>,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

async fn create_item(
    State(db): State<PgPool>,
    body: Result<Json<NewItem>, JsonRejection>,
) -> Response {
    let item = match body {
        Ok(Json(item)) => item,
        Err(e) => return invalid(e.body_text()),
    };
    let row = sqlx::query_as::<_, Item>(
        "INSERT INTO app.items (title, qty, price, active) VALUES ($1, $2, $3::numeric, $4) \
         RETURNING id, title, qty, price::text AS price, active, created_at, updated_at",
    )
    .bind(item.title)
    .bind(item.qty)
    .bind(item.price.map(|p| p.to_string()))
    .bind(item.active)
    .fetch_one(&db)
    .await;
    match row {
        Ok(item) => (StatusCode::CREATED, Json(item)).into_response(),
        Err(e) => internal(e),
    }
}
