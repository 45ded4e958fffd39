//! Editor accounts: argon2id password hashes, the first admin from the environment, login
//! sessions as random bearer tokens of which only a SHA-256 hash is stored. Knows sqlx, not axum.

use crate::catalog::users;
use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// How long a login session lasts.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A new login session.
#[derive(Debug, serde::Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
}

/// Hashes a password with argon2id off the async workers (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| AuthError::Hash(e.to_string()))?
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Creates the first admin account from configuration when no account exists yet.
pub async fn bootstrap_admin(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<bool, AuthError> {
    if users::count(pool).await? > 0 {
        return Ok(false);
    }
    let hash = hash_password(password.to_string()).await?;
    let created = users::create(pool, email, &hash).await?;
    if created {
        tracing::info!(email, "created the first admin account");
    }
    Ok(created)
}

/// Checks credentials and opens a session. Unknown emails cost the same hashing work as wrong
/// passwords, so response times do not reveal which accounts exist.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<Session>, AuthError> {
    let found = users::find_by_email(pool, email).await?;
    let (user_id, hash) = match found {
        Some(f) => f,
        None => {
            let _ = hash_password(password.to_string()).await;
            return Ok(None);
        }
    };
    if !verify_password(password.to_string(), hash).await {
        return Ok(None);
    }
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let expires_at =
        users::create_session(pool, &token_hash(&token), user_id, SESSION_TTL_SECS).await?;
    Ok(Some(Session { token, expires_at }))
}

/// The user id behind a bearer token, if the session is live.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<i64>, AuthError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(users::session_user(pool, &token_hash(token)).await?)
}

pub async fn logout(pool: &PgPool, token: &str) -> Result<(), AuthError> {
    Ok(users::delete_session(pool, &token_hash(token)).await?)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
