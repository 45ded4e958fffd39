//! Environment values and secrets that flows read (`env.NAME`, `secret("NAME")`).

use serde::Serialize;
use sqlx::{PgPool, Row};

/// One entry as the admin API shows it: secret values are never included.
#[derive(Debug, Clone, Serialize)]
pub struct EnvEntry {
    pub name: String,
    pub secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub updated_at: String,
}

/// Every entry with its value, for the runtime only.
pub async fn load(pool: &PgPool) -> Result<Vec<(String, String, bool)>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, value, secret FROM sluice.env ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("name")?,
                r.try_get("value")?,
                r.try_get("secret")?,
            ))
        })
        .collect()
}

pub async fn list(pool: &PgPool) -> Result<Vec<EnvEntry>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, CASE WHEN secret THEN NULL ELSE value END AS value, secret, to_jsonb(updated_at) #>> '{}' AS updated_at FROM sluice.env ORDER BY name")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(EnvEntry {
                name: r.try_get("name")?,
                secret: r.try_get("secret")?,
                value: r.try_get("value")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}

pub async fn put(pool: &PgPool, name: &str, value: &str, secret: bool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sluice.env (name, value, secret) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, secret = excluded.secret, updated_at = now()",
    )
    .bind(name)
    .bind(value)
    .bind(secret)
    .execute(pool)
    .await?;
    Ok(())
}

/// Returns whether an entry was deleted.
pub async fn delete(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM sluice.env WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}
