//! Published versions of a flow as history: listing them, reading one, and taking a flow off
//! the air (unpublish). Publishing itself lives in `flows::publish`.

use super::CatalogError;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Row};

/// One published version, without its document.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSummary {
    pub version: i32,
    pub rev: String,
    /// Email of the editor who published it; `None` if that account was deleted.
    pub published_by: Option<String>,
    pub published_at: String,
    /// What changed, as the publisher wrote it; `None` when no note was given.
    pub note: Option<String>,
}

/// One published version with its document.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    #[serde(flatten)]
    pub summary: VersionSummary,
    pub document: Value,
}

const SELECT: &str = "SELECT v.version, v.rev, u.email AS published_by, \
    to_jsonb(v.published_at) #>> '{}' AS published_at, v.note";

fn summary(row: &sqlx::postgres::PgRow) -> Result<VersionSummary, sqlx::Error> {
    Ok(VersionSummary {
        version: row.try_get("version")?,
        rev: row.try_get("rev")?,
        published_by: row.try_get("published_by")?,
        published_at: row.try_get("published_at")?,
        note: row.try_get("note")?,
    })
}

async fn ensure_flow(pool: &PgPool, flow_id: i64) -> Result<(), CatalogError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sluice.flows WHERE id = $1)")
            .bind(flow_id)
            .fetch_one(pool)
            .await?;
    if exists {
        Ok(())
    } else {
        Err(CatalogError::NotFound)
    }
}

/// Every published version of a flow, newest first. `NotFound` if the flow does not exist.
pub async fn list(pool: &PgPool, flow_id: i64) -> Result<Vec<VersionSummary>, CatalogError> {
    ensure_flow(pool, flow_id).await?;
    let sql = format!(
        "{SELECT} FROM sluice.flow_versions v LEFT JOIN sluice.users u ON u.id = v.published_by \
         WHERE v.flow_id = $1 ORDER BY v.version DESC"
    );
    let rows = sqlx::query(&sql).bind(flow_id).fetch_all(pool).await?;
    rows.iter()
        .map(summary)
        .collect::<Result<_, _>>()
        .map_err(CatalogError::Db)
}

/// One published version of a flow; `NotFound` if the flow or the version does not exist.
pub async fn get(pool: &PgPool, flow_id: i64, version: i32) -> Result<VersionRecord, CatalogError> {
    let sql = format!(
        "{SELECT}, v.document FROM sluice.flow_versions v \
         LEFT JOIN sluice.users u ON u.id = v.published_by WHERE v.flow_id = $1 AND v.version = $2"
    );
    let row = sqlx::query(&sql)
        .bind(flow_id)
        .bind(version)
        .fetch_optional(pool)
        .await?
        .ok_or(CatalogError::NotFound)?;
    Ok(VersionRecord {
        summary: summary(&row)?,
        document: row.try_get::<sqlx::types::Json<Value>, _>("document")?.0,
    })
}

/// Stops serving a flow: it keeps its draft and its version history but has no published
/// version. Returns the version that was live, `None` if it was not published.
pub async fn unpublish(pool: &PgPool, flow_id: i64) -> Result<Option<i32>, CatalogError> {
    let row = sqlx::query(
        "UPDATE sluice.flows f SET published_version = NULL, published_route = NULL \
         FROM (SELECT id, published_version AS was FROM sluice.flows WHERE id = $1 FOR UPDATE) old \
         WHERE f.id = old.id RETURNING old.was",
    )
    .bind(flow_id)
    .fetch_optional(pool)
    .await?
    .ok_or(CatalogError::NotFound)?;
    Ok(row.try_get("was")?)
}
