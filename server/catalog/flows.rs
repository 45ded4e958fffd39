//! Flow documents (drafts) and their published versions.

use super::{CatalogError, violated_constraint};
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

/// A stored flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRecord {
    pub id: i64,
    pub name: String,
    pub rev: String,
    pub published_version: Option<i32>,
    pub document: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// A flow in a list: what a person needs to find it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowSummary {
    pub id: i64,
    pub name: String,
    pub rev: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub published_version: Option<i32>,
    pub updated_at: String,
}

const COLUMNS: &str = "id, name, rev, published_version, document, \
    to_jsonb(created_at) #>> '{}' AS created_at, to_jsonb(updated_at) #>> '{}' AS updated_at";

fn record(row: PgRow) -> Result<FlowRecord, sqlx::Error> {
    Ok(FlowRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        rev: row.try_get("rev")?,
        published_version: row.try_get("published_version")?,
        document: row.try_get::<sqlx::types::Json<Value>, _>("document")?.0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn name_taken(e: sqlx::Error, name: &str) -> CatalogError {
    if violated_constraint(&e) == Some("flows_name_key") {
        CatalogError::NameTaken(name.to_string())
    } else {
        CatalogError::Db(e)
    }
}

pub async fn insert(
    pool: &PgPool,
    name: &str,
    document: &Value,
    rev: &str,
) -> Result<FlowRecord, CatalogError> {
    let mut tx = pool.begin().await?;
    let record = insert_in(&mut tx, name, document, rev).await?;
    tx.commit().await?;
    Ok(record)
}

/// Inserts a draft inside the caller's transaction.
pub async fn insert_in(
    tx: &mut Transaction<'_, Postgres>,
    name: &str,
    document: &Value,
    rev: &str,
) -> Result<FlowRecord, CatalogError> {
    let sql = format!(
        "INSERT INTO sluice.flows (name, document, rev) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(name)
        .bind(sqlx::types::Json(document))
        .bind(rev)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| name_taken(e, name))?;
    Ok(record(row)?)
}

pub async fn get(pool: &PgPool, id: i64) -> Result<FlowRecord, CatalogError> {
    let sql = format!("SELECT {COLUMNS} FROM sluice.flows WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(CatalogError::NotFound)?;
    Ok(record(row)?)
}

pub async fn list(pool: &PgPool) -> Result<Vec<FlowSummary>, CatalogError> {
    let rows = sqlx::query(
        "SELECT id, name, rev, published_version, document #>> '{endpoint,method}' AS method, \
         document #>> '{endpoint,path}' AS path, to_jsonb(updated_at) #>> '{}' AS updated_at \
         FROM sluice.flows ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(FlowSummary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                rev: r.try_get("rev")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                published_version: r.try_get("published_version")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(CatalogError::Db)
}

/// Replaces the draft if its rev is still `expected`; a stale rev changes nothing.
pub async fn update(
    pool: &PgPool,
    id: i64,
    expected: &str,
    name: &str,
    document: &Value,
    rev: &str,
) -> Result<FlowRecord, CatalogError> {
    let sql = format!(
        "UPDATE sluice.flows SET name = $3, document = $4, rev = $5 WHERE id = $1 AND rev = $2 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(expected)
        .bind(name)
        .bind(sqlx::types::Json(document))
        .bind(rev)
        .fetch_optional(pool)
        .await
        .map_err(|e| name_taken(e, name))?;
    match row {
        Some(row) => Ok(record(row)?),
        None => {
            let current = get(pool, id).await?.rev;
            Err(CatalogError::Stale {
                expected: expected.to_string(),
                current,
            })
        }
    }
}

/// Replaces the draft of flow `id` whatever its rev, inside the caller's transaction (a table
/// change rewriting the flows that read a renamed field).
pub async fn replace_draft_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    document: &Value,
    rev: &str,
) -> Result<(), CatalogError> {
    sqlx::query("UPDATE sluice.flows SET document = $2, rev = $3 WHERE id = $1")
        .bind(id)
        .bind(sqlx::types::Json(document))
        .bind(rev)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn delete(pool: &PgPool, id: i64) -> Result<(), CatalogError> {
    let done = sqlx::query("DELETE FROM sluice.flows WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(CatalogError::NotFound);
    }
    Ok(())
}

/// Records the draft `document` (at `rev`) as the next published version and makes it live.
/// The rev check makes a publish of an outdated view fail instead of publishing something else.
pub async fn publish(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    expected_rev: &str,
    route_key: &str,
    user_id: i64,
) -> Result<i32, CatalogError> {
    let row = sqlx::query("SELECT rev, document FROM sluice.flows WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(CatalogError::NotFound)?;
    let current: String = row.try_get("rev")?;
    if current != expected_rev {
        return Err(CatalogError::Stale {
            expected: expected_rev.to_string(),
            current,
        });
    }
    let version: i32 = sqlx::query_scalar(
        "INSERT INTO sluice.flow_versions (flow_id, version, document, rev, published_by) \
         SELECT $1, coalesce(max(version), 0) + 1, f.document, f.rev, $2 \
         FROM sluice.flows f LEFT JOIN sluice.flow_versions v ON v.flow_id = f.id \
         WHERE f.id = $1 GROUP BY f.document, f.rev RETURNING version",
    )
    .bind(id)
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE sluice.flows SET published_version = $2, published_route = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(version)
    .bind(route_key)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if violated_constraint(&e) == Some("flows_published_route_key") {
            CatalogError::RouteTaken(route_key.to_string())
        } else {
            CatalogError::Db(e)
        }
    })?;
    Ok(version)
}

/// The published version of every published flow: `(flow id, document)`.
pub async fn published(pool: &PgPool) -> Result<Vec<(i64, Value)>, CatalogError> {
    let rows = sqlx::query(
        "SELECT f.id, v.document FROM sluice.flows f \
         JOIN sluice.flow_versions v ON v.flow_id = f.id AND v.version = f.published_version ORDER BY f.id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get::<sqlx::types::Json<Value>, _>("document")?.0,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(CatalogError::Db)
}
