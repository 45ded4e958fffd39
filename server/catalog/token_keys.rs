//! Keys that sign end-user API tokens (`sluice.token_keys`). The secret is random bytes made by
//! Sluice; it is read into memory at startup and never logged.

use sqlx::PgPool;

/// `(id, secret)` of the current key, if there is one.
pub async fn current(pool: &PgPool) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, secret FROM sluice.token_keys WHERE retired_at IS NULL")
        .fetch_optional(pool)
        .await
}

/// Stores `secret` as the current key unless one exists (the partial unique index
/// `token_keys_current_key` decides between instances that start together). Returns whether
/// this call created it.
pub async fn create_if_none(pool: &PgPool, secret: &[u8]) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO sluice.token_keys (secret) VALUES ($1) \
         ON CONFLICT ((true)) WHERE retired_at IS NULL DO NOTHING",
    )
    .bind(secret)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
