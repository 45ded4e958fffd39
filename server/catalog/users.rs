//! Editor accounts and their sessions. Only hashes are stored: argon2id for passwords,
//! SHA-256 for session tokens.

use sqlx::{PgPool, Row};

pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM sluice.users")
        .fetch_one(pool)
        .await
}

/// Creates an account unless one with this email exists. Returns whether it was created.
pub async fn create(pool: &PgPool, email: &str, password_hash: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("INSERT INTO sluice.users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING")
        .bind(email)
        .bind(password_hash)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// `(id, password_hash)` of the account with this email.
pub async fn find_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    // Postgres text cannot hold NUL, so no account has such an email; asking would fail the
    // query (a 500 on login) instead of finding nothing.
    if email.contains('\0') {
        return Ok(None);
    }
    let row = sqlx::query("SELECT id, password_hash FROM sluice.users WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("id")?, r.try_get("password_hash")?)))
        .transpose()
}

/// Stores a session; returns its expiry as RFC 3339 text.
pub async fn create_session(
    pool: &PgPool,
    token_hash: &[u8],
    user_id: i64,
    ttl_secs: i64,
) -> Result<String, sqlx::Error> {
    // Expired sessions are swept here so the table cannot grow without bound.
    sqlx::query("DELETE FROM sluice.sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    sqlx::query_scalar(
        "INSERT INTO sluice.sessions (token_hash, user_id, expires_at) \
         VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING to_jsonb(expires_at) #>> '{}'",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(ttl_secs as f64)
    .fetch_one(pool)
    .await
}

/// The user of a live session.
pub async fn session_user(pool: &PgPool, token_hash: &[u8]) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT user_id FROM sluice.sessions WHERE token_hash = $1 AND expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(pool)
    .await
}

pub async fn delete_session(pool: &PgPool, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sluice.sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Used by tests and tools that need the email of an account.
pub async fn email_of(pool: &PgPool, id: i64) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT email FROM sluice.users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.try_get("email")).transpose()
}
