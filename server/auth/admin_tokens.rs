//! Admin API tokens: long-lived bearer tokens for the CLI, CI and scripts. Only the SHA-256
//! hash of a token is stored; the prefix makes a token recognisable (and findable by secret
//! scanners) and keeps it apart from login tokens.

use crate::catalog::editor as store;
use sha2::{Digest, Sha256};

/// Every admin API token starts with this.
pub const PREFIX: &str = "sluice_at_";

/// What is stored of a token.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The account behind an admin API token; `None` for a malformed or unknown token.
pub async fn user_of(db: &sqlx::PgPool, token: &str) -> Result<Option<i64>, sqlx::Error> {
    let well_formed = token.len() == PREFIX.len() + 64
        && token[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Ok(None);
    }
    store::api_token_user(db, &hash(token)).await
}
