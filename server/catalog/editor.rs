//! What the editor keeps besides accounts: the first account created by the setup page (only
//! while none exists), admin API tokens (only their SHA-256 hash), and the sweep of expired
//! cookie sessions. Knows sqlx, not axum.

use sqlx::{PgPool, Row};

/// Creates the first account, unless any account exists. Race-safe: the table is locked for
/// writes while it is checked, so two setup requests at once create one account.
pub async fn create_first_account(
    pool: &PgPool,
    email: &str,
    password_hash: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE sluice.users IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sluice.users)")
        .fetch_one(&mut *tx)
        .await?;
    if exists {
        return Ok(None);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sluice.users (email, password_hash) VALUES ($1, $2) RETURNING id",
    )
    .bind(email)
    .bind(password_hash)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Deletes cookie sessions that have expired, so the table cannot grow without bound.
pub async fn sweep_sessions(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sluice.editor_sessions WHERE expiry_date < now()")
        .execute(pool)
        .await?;
    Ok(())
}

/// An admin API token as listed: never the token itself.
#[derive(Debug, serde::Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created_by: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

const COLUMNS: &str = "t.id, t.name, t.prefix, u.email AS created_by, \
    to_jsonb(t.created_at) #>> '{}' AS created_at, to_jsonb(t.last_used_at) #>> '{}' AS last_used_at";

fn token_from_row(r: &sqlx::postgres::PgRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

pub async fn create_api_token(
    pool: &PgPool,
    user_id: i64,
    name: &str,
    prefix: &str,
    token_hash: &[u8],
) -> Result<ApiToken, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sluice.api_tokens (user_id, name, prefix, token_hash) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(user_id)
    .bind(name)
    .bind(prefix)
    .bind(token_hash)
    .fetch_one(pool)
    .await?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sluice.api_tokens t LEFT JOIN sluice.users u ON u.id = t.user_id WHERE t.id = $1"
    ))
    .bind(id)
    .fetch_one(pool)
    .await?;
    token_from_row(&row)
}

pub async fn list_api_tokens(pool: &PgPool) -> Result<Vec<ApiToken>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM sluice.api_tokens t LEFT JOIN sluice.users u ON u.id = t.user_id ORDER BY t.id"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(token_from_row).collect()
}

/// Revokes a token. Returns whether it existed.
pub async fn delete_api_token(pool: &PgPool, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sluice.api_tokens WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The account behind an admin API token. Notes the time of use, at most once a minute, so
/// a busy client does not write on every request.
pub async fn api_token_user(pool: &PgPool, token_hash: &[u8]) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH t AS (SELECT id, user_id, last_used_at FROM sluice.api_tokens WHERE token_hash = $1), \
         touched AS (UPDATE sluice.api_tokens SET last_used_at = now() \
             WHERE id IN (SELECT id FROM t WHERE last_used_at IS NULL OR last_used_at < now() - interval '1 minute')) \
         SELECT user_id FROM t",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}
