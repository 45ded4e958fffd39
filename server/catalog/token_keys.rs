//! Keys that sign end-user API tokens (`sluice.token_keys`): the current one, retired ones that
//! still verify, listing and rotation. Each has an algorithm (`HS256` or `EdDSA`). The secret
//! is random bytes (HS256) or an Ed25519 key pair (EdDSA) made by Sluice, stored as is
//! or sealed (`auth::key_seal`); it is read into memory (the key ring) and never logged or
//! returned by a listing.

use sqlx::PgPool;

/// `(id, secret, alg)` of the current key, if there is one.
pub async fn current(pool: &PgPool) -> Result<Option<(i64, Vec<u8>, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, secret, alg FROM sluice.token_keys WHERE retired_at IS NULL")
        .fetch_optional(pool)
        .await
}

/// `(id, stored secret)` of every key, sealed or not (see `auth::key_seal`).
pub async fn all_secrets(pool: &PgPool) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as("SELECT id, secret FROM sluice.token_keys ORDER BY id")
        .fetch_all(pool)
        .await
}

/// Replaces a key's stored secret with `new` if it is still `old` (an instance starting at the
/// same time may have sealed it first); returns whether this call replaced it.
pub async fn replace_secret(
    pool: &PgPool,
    id: i64,
    old: &[u8],
    new: &[u8],
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE sluice.token_keys SET secret = $3 WHERE id = $1 AND secret = $2")
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
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

/// A key as the admin API shows it: never its secret.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct KeyInfo {
    pub id: i64,
    /// `HS256` or `EdDSA`.
    pub alg: String,
    pub created_at: String,
    pub retired_at: Option<String>,
}

/// Every key, newest first.
pub async fn list(pool: &PgPool) -> Result<Vec<KeyInfo>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, alg, to_jsonb(created_at) #>> '{}' AS created_at, \
                to_jsonb(retired_at) #>> '{}' AS retired_at \
         FROM sluice.token_keys ORDER BY id DESC",
    )
    .fetch_all(pool)
    .await
}

/// `(id, secret, retired, alg)` of the keys tokens may still be checked with: the current one
/// and those retired less than `horizon_secs` ago.
pub async fn usable(
    pool: &PgPool,
    horizon_secs: i64,
) -> Result<Vec<(i64, Vec<u8>, bool, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, secret, retired_at IS NOT NULL, alg FROM sluice.token_keys \
         WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)",
    )
    .bind(horizon_secs as f64)
    .fetch_all(pool)
    .await
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    /// The new current key.
    pub current: i64,
    /// The key that was current before, now retired.
    pub retired: Option<i64>,
    /// Keys deleted because they were retired more than the horizon ago.
    pub purged: Vec<i64>,
}

/// Retires the current key, stores `secret` as the new current one and deletes keys retired
/// more than `horizon_secs` ago, in one transaction. Concurrent rotations (also from other
/// instances) queue on a table lock, so each retires exactly the key before it.
pub async fn rotate(
    pool: &PgPool,
    secret: &[u8],
    alg: &str,
    horizon_secs: i64,
) -> Result<Rotation, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Readers (token checks loading the ring) are not blocked; other writers wait.
    sqlx::query("LOCK TABLE sluice.token_keys IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let retired: Option<i64> = sqlx::query_scalar(
        "UPDATE sluice.token_keys SET retired_at = now() WHERE retired_at IS NULL RETURNING id",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let current: i64 = sqlx::query_scalar(
        "INSERT INTO sluice.token_keys (secret, alg) VALUES ($1, $2) RETURNING id",
    )
    .bind(secret)
    .bind(alg)
    .fetch_one(&mut *tx)
    .await?;
    let purged: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM sluice.token_keys \
         WHERE retired_at IS NOT NULL AND retired_at <= now() - make_interval(secs => $1) \
         RETURNING id",
    )
    .bind(horizon_secs as f64)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Rotation {
        current,
        retired,
        purged,
    })
}
