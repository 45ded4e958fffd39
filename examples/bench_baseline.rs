//! The hand-written server of the HTTP benchmark (`bench/http.sh`): axum + sqlx doing, for
//! the three benchmark endpoints, what the flows in `bench/http/flows/` do, written the way a
//! careful person would write it by hand. Same statements as Sluice sends (so Postgres does the
//! same work and the JSON is built the same way, by `to_jsonb`), same input checks, same JSON
//! shapes and error envelope, same pool size, same tokio runtime (multi-threaded, one worker
//! per core).
//!
//! Not part of Sluice: it exists only as the yardstick. Settings from the environment:
//! `DATABASE_URL` (required), `BENCH_ADDR` (default `127.0.0.1:8081`), `BENCH_POOL` (default
//! 16, Sluice's default `SLUICE_DB_MAX_CONNECTIONS`).

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Number, Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json;
use std::time::Duration;

/// The statements Sluice prepares for `db.get`, `db.query` (no filter, default order) and
/// `db.insert` on table `items` (see `server/engine/sql.rs`).
const GET_ITEM: &str = r#"SELECT to_jsonb(t) FROM "app"."items" AS t WHERE t."id" = $1::bigint"#;
const LIST_ITEMS: &str = r#"SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s."id"), '[]'::jsonb) FROM (SELECT * FROM "app"."items" AS t ORDER BY t."id" LIMIT $1::bigint OFFSET $2::bigint) AS s"#;
const CREATE_ITEM: &str = r#"INSERT INTO "app"."items" AS t ("active", "price", "qty", "title") VALUES ($1::boolean, $2::numeric, $3::bigint, $4::text) RETURNING to_jsonb(t)"#;

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
    (status, axum::Json(body)).into_response()
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

async fn get_item(State(db): State<PgPool>, Path(id): Path<String>) -> Response {
    let id = match id.parse::<i64>() {
        Ok(id) if id >= 1 => id,
        _ => return invalid("/params/id: must be an integer of at least 1"),
    };
    match sqlx::query_scalar::<_, Json<Value>>(GET_ITEM)
        .bind(id)
        .fetch_optional(&db)
        .await
    {
        Ok(Some(Json(row))) => axum::Json(row).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "item.not_found", "no such item"),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list_items(
    State(db): State<PgPool>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let limit = match query {
        Ok(Query(ListQuery { limit: None })) => 20,
        Ok(Query(ListQuery { limit: Some(n) })) if (1..=100).contains(&n) => n,
        Ok(_) => return invalid("/query/limit: must be between 1 and 100"),
        Err(e) => return invalid(format!("/query: {e}")),
    };
    match sqlx::query_scalar::<_, Json<Value>>(LIST_ITEMS)
        .bind(limit)
        .bind(0_i64)
        .fetch_one(&db)
        .await
    {
        Ok(Json(items)) => axum::Json(json!({ "items": items })).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    title: String,
    qty: i64,
    price: Number,
    active: bool,
}

async fn create_item(
    State(db): State<PgPool>,
    body: Result<axum::Json<NewItem>, JsonRejection>,
) -> Response {
    let item = match body {
        Ok(axum::Json(item)) => item,
        Err(e) => return invalid(format!("/body: {e}")),
    };
    let title_len = item.title.chars().count();
    if !(1..=200).contains(&title_len) {
        return invalid("/body/title: must be 1 to 200 characters");
    }
    if item.qty < 0 {
        return invalid("/body/qty: must be at least 0");
    }
    if item.price.as_f64().is_none_or(|p| p < 0.0) {
        return invalid("/body/price: must be at least 0");
    }
    match sqlx::query_scalar::<_, Json<Value>>(CREATE_ITEM)
        .bind(item.active)
        .bind(item.price.to_string())
        .bind(item.qty)
        .bind(item.title)
        .fetch_one(&db)
        .await
    {
        Ok(Json(row)) => (StatusCode::CREATED, axum::Json(row)).into_response(),
        Err(e) => internal(e),
    }
}
