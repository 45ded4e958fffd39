//! Editor accounts: argon2id password hashes, the first admin from the environment, login
//! sessions as random bearer tokens of which only a SHA-256 hash is stored. End-user API tokens
//! (`jwt`), the keys that sign them (`token_key`, `key_ring`, `rotate_token_keys`) and the
//! check of a request's bearer token against an endpoint's `auth` level (`bearer`). Knows sqlx,
//! not axum.

pub mod admin_tokens;
pub mod bearer;

pub mod jwt;
pub mod key_seal;
pub mod sessions;
pub mod throttle;

use crate::passwords as hasher;
pub use crate::passwords::MAX_PASSWORD_BYTES;
use key_seal::KeySealer;

use crate::catalog::users;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// How long a login session lasts.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every hashing thread stayed busy (503 `server.busy`).
    #[error("every password hashing thread is busy")]
    Busy,
    /// Too many failed logins from this address or for this account (429 `auth.throttled`).
    #[error("too many failed logins; retry in {0} s")]
    Throttled(u64),
    /// A password longer than [`MAX_PASSWORD_BYTES`] (400 `auth.password_too_long`).
    #[error("a password must be at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("the catalog has no token signing key")]
    NoTokenKey,
    /// A token signing key cannot be read with the configured key encryption key.
    #[error("{0}")]
    KeySealing(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A new login session.
#[derive(Debug, serde::Serialize)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
}

/// Hashes a password with argon2id on the bounded hasher ([`hasher`]).
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::PasswordTooLong);
    }
    hasher::hash(password).await.map_err(AuthError::from)
}

/// Checks a password against an argon2 hash on the bounded hasher. A malformed hash is
/// `false`, after the same hashing work as a real check, so timing does not tell them apart.
pub async fn verify_password(password: String, hash: String) -> Result<bool, AuthError> {
    hasher::verify(password, hash)
        .await
        .map_err(AuthError::from)
}

impl From<hasher::HashError> for AuthError {
    fn from(e: hasher::HashError) -> AuthError {
        match e {
            hasher::HashError::Busy => AuthError::Busy,
            hasher::HashError::Failed(m) => AuthError::Hash(m),
        }
    }
}

/// Checks an editor's credentials under the login throttle: refused while throttled, the
/// password's length checked, and the outcome counted.
async fn checked_credentials(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<i64>, AuthError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::PasswordTooLong);
    }
    let attempt = throttle::attempt("editor", Some(email))
        .map_err(|wait| AuthError::Throttled(throttle::retry_after_secs(wait)))?;
    let user = match users::find_by_email(pool, email).await? {
        Some((user_id, hash)) => verify_password(password.to_string(), hash)
            .await?
            .then_some(user_id),
        None => {
            // Unknown emails cost the same hashing work as wrong passwords.
            verify_password(password.to_string(), String::new()).await?;
            None
        }
    };
    attempt.finish(user.is_some());
    Ok(user)
}

/// The current token signing key, created (32 random bytes) when the catalog has none.
///
/// With a key encryption key (`SLUICE_KEY_ENCRYPTION_KEY`), keys stored in plaintext are sealed
/// first, and every stored key must open with it: a wrong key stops here, at start-up, rather
/// than at the first token. Without one, sealed keys are refused the same way.
pub async fn token_key(
    pool: &PgPool,
    sealer: Option<&KeySealer>,
) -> Result<jwt::SigningKey, AuthError> {
    if let Some(sealer) = sealer {
        let mut sealed = 0;
        for (id, stored) in crate::catalog::token_keys::all_secrets(pool).await? {
            if !key_seal::is_sealed(&stored)
                && crate::catalog::token_keys::replace_secret(
                    pool,
                    id,
                    &stored,
                    &sealer.seal(&stored),
                )
                .await?
            {
                sealed += 1;
            }
        }
        if sealed > 0 {
            tracing::info!(keys = sealed, "encrypted token signing keys at rest");
        }
    }
    for (id, stored) in crate::catalog::token_keys::all_secrets(pool).await? {
        unseal(id, stored, sealer)?;
    }
    if let Some((id, stored, alg)) = crate::catalog::token_keys::current(pool).await? {
        return key_of(id, &alg, unseal(id, stored, sealer)?);
    }
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    if crate::catalog::token_keys::create_if_none(pool, &stored_form(&secret, sealer)).await? {
        tracing::info!(
            encrypted = sealer.is_some(),
            "created the token signing key"
        );
    }
    let (id, stored, alg) = crate::catalog::token_keys::current(pool)
        .await?
        .ok_or(AuthError::NoTokenKey)?;
    key_of(id, &alg, unseal(id, stored, sealer)?)
}

/// A key from its catalog row.
fn key_of(id: i64, alg: &str, secret: Vec<u8>) -> Result<jwt::SigningKey, AuthError> {
    let alg = jwt::Algorithm::parse(alg).ok_or_else(|| {
        AuthError::KeySealing(format!("token signing key {id}: unknown algorithm {alg}"))
    })?;
    jwt::SigningKey::of(alg, id, secret).map_err(|_| {
        AuthError::KeySealing(format!(
            "token signing key {id} is not a valid {} key",
            alg.name()
        ))
    })
}

/// What is stored for a new key: sealed when a key encryption key is configured.
fn stored_form(secret: &[u8], sealer: Option<&KeySealer>) -> Vec<u8> {
    match sealer {
        Some(s) => s.seal(secret),
        None => secret.to_vec(),
    }
}

/// The secret of a stored key.
fn unseal(id: i64, stored: Vec<u8>, sealer: Option<&KeySealer>) -> Result<Vec<u8>, AuthError> {
    match (key_seal::is_sealed(&stored), sealer) {
        (false, _) => Ok(stored),
        (true, Some(s)) => s.open(&stored).map_err(|_| {
            AuthError::KeySealing(format!(
                "SLUICE_KEY_ENCRYPTION_KEY does not decrypt token signing key {id}: it is not the key the token keys were encrypted with"
            ))
        }),
        (true, None) => Err(AuthError::KeySealing(format!(
            "token signing key {id} is encrypted at rest: set SLUICE_KEY_ENCRYPTION_KEY to the key it was encrypted with"
        ))),
    }
}

/// The longest lifetime of a token `auth.issue_token` signs, in seconds.
pub const MAX_TOKEN_LIFETIME_SECS: u32 = 30 * 24 * 3600;

/// How long a retired key keeps verifying tokens: the longest lifetime `auth.issue_token`
/// allows (a token signed just before the rotation lives that long), plus an hour for
/// instances that still signed with the old key until they reloaded and for clock skew.
/// Keys retired longer ago are left out of the ring and deleted by the next rotation.
pub const RETIRED_KEY_HORIZON_SECS: i64 = MAX_TOKEN_LIFETIME_SECS as i64 + 3600;

/// The keys tokens are checked against, from the catalog.
pub async fn key_ring(
    pool: &PgPool,
    sealer: Option<&KeySealer>,
) -> Result<jwt::KeyRing, AuthError> {
    let rows = crate::catalog::token_keys::usable(pool, RETIRED_KEY_HORIZON_SECS).await?;
    let mut current = None;
    let mut retired = Vec::new();
    for (id, stored, is_retired, alg) in rows {
        let key = key_of(id, &alg, unseal(id, stored, sealer)?)?;
        if is_retired {
            retired.push(key);
        } else {
            current = Some(key);
        }
    }
    Ok(jwt::KeyRing::new(current, retired))
}

/// Retires the current signing key and makes a new one of `alg` (HS256: 32 random bytes;
/// EdDSA: a new Ed25519 key pair), deleting keys retired longer than
/// [`RETIRED_KEY_HORIZON_SECS`] ago, or with `revoke` every retired key (so no token issued so
/// far verifies any more); one transaction.
pub async fn rotate_token_keys(
    pool: &PgPool,
    revoke: bool,
    sealer: Option<&KeySealer>,
    alg: jwt::Algorithm,
) -> Result<crate::catalog::token_keys::Rotation, AuthError> {
    let secret = match alg {
        jwt::Algorithm::HS256 => {
            let mut secret = [0u8; 32];
            OsRng.fill_bytes(&mut secret);
            secret.to_vec()
        }
        jwt::Algorithm::EdDSA => jwt::generate_ed25519().ok_or_else(|| {
            AuthError::KeySealing("the system's random source failed".to_string())
        })?,
    };
    let horizon = if revoke { 0 } else { RETIRED_KEY_HORIZON_SECS };
    let rotation = crate::catalog::token_keys::rotate(
        pool,
        &stored_form(&secret, sealer),
        alg.name(),
        horizon,
    )
    .await?;
    tracing::info!(
        key.current = rotation.current,
        key.alg = alg.name(),
        key.retired = ?rotation.retired,
        key.purged = ?rotation.purged,
        "rotated the token signing key"
    );
    Ok(rotation)
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
/// passwords, so response times do not reveal which accounts exist; failures are throttled
/// ([`throttle`]).
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<Session>, AuthError> {
    let Some(user_id) = checked_credentials(pool, email, password).await? else {
        return Ok(None);
    };
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let expires_at =
        users::create_session(pool, &token_hash(&token), user_id, SESSION_TTL_SECS).await?;
    Ok(Some(Session { token, expires_at }))
}

/// The account these credentials belong to, without opening a bearer session (the editor's
/// cookie sessions are kept by tower-sessions). Unknown emails cost the same hashing work;
/// failures are throttled.
pub async fn check_credentials(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<i64>, AuthError> {
    checked_credentials(pool, email, password).await
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
