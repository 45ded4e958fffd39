//! End-user sessions with refresh tokens (docs/SESSIONS.md). Pure parts: the refresh token's
//! form (a public selector and a secret verifier, 128 + 256 random bits), its hash and the
//! constant-time comparison, the limits, and [`Revoked`], the bounded in-memory set of
//! sessions ended while their access tokens may still be alive. With IO (the catalog's
//! `user_sessions`): [`open`], [`refresh`] (rotation and reuse detection), the ways to end
//! sessions, and [`follow`], which feeds every instance's [`Revoked`] from the catalog.
//!
//! Session writes commit on their own, never in a flow's transaction: a reuse must end the
//! session even when the flow then fails, and a logout must hold whatever the flow does next.

use crate::catalog::user_sessions::{self as store, Ended, NewSession};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Default lifetime of a session's access tokens, in seconds.
pub const DEFAULT_ACCESS_TTL_SECS: u32 = 15 * 60;
/// Longest lifetime of a session's access tokens: bounds how long a revoked session's token
/// can be alive, so the revoked set holds at most this much of revocations.
pub const MAX_ACCESS_TTL_SECS: u32 = 3600;
/// Default and longest lifetime of a session (its refresh tokens), in seconds.
pub const DEFAULT_REFRESH_TTL_SECS: u32 = 30 * 24 * 3600;
pub const MAX_REFRESH_TTL_SECS: u32 = 90 * 24 * 3600;
/// Live sessions per subject and audience; opening one more ends the oldest.
pub const MAX_SESSIONS_PER_SUBJECT: i64 = 20;
/// Used refresh tokens remembered per session, for reuse detection.
pub const KEEP_USED_TOKENS: i64 = 16;
/// Most sessions the revoked set holds; past it the entries whose tokens expire soonest go.
pub const REVOKED_SET_CAP: usize = 200_000;
/// How often [`follow`] reads the catalog's recent revocations.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
pub use crate::base::DEFAULT_AUDIENCE;

const PREFIX: &str = "srt_";
const SELECTOR_BYTES: usize = 16;
const VERIFIER_BYTES: usize = 32;

/// A refresh token: `srt_` + hex(selector) + hex(verifier). Only the selector and the
/// SHA-256 of the verifier are stored.
pub struct RefreshToken {
    pub selector: Vec<u8>,
    verifier: Vec<u8>,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RefreshToken(***)")
    }
}

impl RefreshToken {
    /// A new token from the OS's random source.
    pub fn generate() -> RefreshToken {
        let mut selector = vec![0u8; SELECTOR_BYTES];
        let mut verifier = vec![0u8; VERIFIER_BYTES];
        OsRng.fill_bytes(&mut selector);
        OsRng.fill_bytes(&mut verifier);
        RefreshToken { selector, verifier }
    }

    /// Reads a token a client presented; `None` for anything not of the form.
    pub fn parse(text: &str) -> Option<RefreshToken> {
        let hex = text.strip_prefix(PREFIX)?;
        if hex.len() != 2 * (SELECTOR_BYTES + VERIFIER_BYTES) {
            return None;
        }
        let bytes = unhex(hex)?;
        let (s, v) = bytes.split_at(SELECTOR_BYTES);
        Some(RefreshToken {
            selector: s.to_vec(),
            verifier: v.to_vec(),
        })
    }

    /// The text handed to the client.
    pub fn text(&self) -> String {
        let mut out = String::from(PREFIX);
        for b in self.selector.iter().chain(&self.verifier) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// What is stored of the verifier.
    pub fn verifier_hash(&self) -> Vec<u8> {
        Sha256::digest(&self.verifier).to_vec()
    }

    /// Whether this token's verifier is the one `stored` is the hash of, in constant time.
    pub fn matches(&self, stored: &[u8]) -> bool {
        bool::from(self.verifier_hash().ct_eq(stored))
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A new session id: 32 hex characters.
pub fn new_session_id() -> String {
    let mut raw = [0u8; 16];
    OsRng.fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sessions ended while access tokens of theirs may still be alive, by id, with the unix time
/// their last access token expires. Bounded: entries leave when that time passes, and past
/// [`REVOKED_SET_CAP`] the ones that would leave soonest are dropped (those tokens are then
/// accepted until they expire, at most [`MAX_ACCESS_TTL_SECS`]; logged).
#[derive(Debug, Default)]
pub struct Revoked {
    ids: Mutex<HashMap<String, i64>>,
}

impl Revoked {
    /// Adds ended sessions.
    pub fn add(&self, ended: &[Ended], now: i64) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        for (id, until) in ended {
            if *until > now {
                ids.insert(id.clone(), *until);
            }
        }
        if ids.len() > REVOKED_SET_CAP {
            ids.retain(|_, until| *until > now);
        }
        if ids.len() > REVOKED_SET_CAP {
            let mut untils: Vec<i64> = ids.values().copied().collect();
            let cut = untils.len() - REVOKED_SET_CAP;
            let (_, nth, _) = untils.select_nth_unstable(cut);
            let nth = *nth;
            let before = ids.len();
            ids.retain(|_, until| *until > nth);
            tracing::warn!(
                dropped = before - ids.len(),
                cap = REVOKED_SET_CAP,
                "the revoked-session set is full; the tokens of the sessions dropped from it stay valid until they expire"
            );
        }
    }

    /// Whether the session `id` was ended and its tokens may still be alive at `now`.
    pub fn contains(&self, id: &str, now: i64) -> bool {
        // A panic elsewhere while holding the lock must not let ended sessions back in.
        let ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.get(id).is_some_and(|until| *until > now)
    }

    /// Forgets entries whose tokens have all expired.
    pub fn prune(&self, now: i64) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.retain(|_, until| *until > now);
    }

    pub fn len(&self) -> usize {
        self.ids.lock().map(|ids| ids.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, malformed, expired, or its session ended (401 `auth.refresh_invalid`).
    Invalid,
    /// A used-up token presented again: the session is now ended (401 `auth.refresh_reused`).
    Reused,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("refused")]
    Refused(Refusal),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A session just opened.
pub struct Opened {
    pub id: String,
    pub refresh_token: String,
    pub expires_at: i64,
}

/// What [`open`] needs.
pub struct Open<'a> {
    pub subject: &'a str,
    pub role: Option<&'a str>,
    pub audience: &'a str,
    /// Claims besides `role`, given to every access token of the session.
    pub claims: &'a serde_json::Value,
    pub refresh_ttl_secs: u32,
    pub access_expires_at: i64,
    pub now: i64,
}

/// Opens a session and its first refresh token; sessions of the subject beyond
/// [`MAX_SESSIONS_PER_SUBJECT`] are ended, oldest first.
pub async fn open(pool: &PgPool, revoked: &Revoked, o: Open<'_>) -> Result<Opened, sqlx::Error> {
    let id = new_session_id();
    let token = RefreshToken::generate();
    let expires_at = o.now + i64::from(o.refresh_ttl_secs.min(MAX_REFRESH_TTL_SECS));
    let capped = store::create(
        pool,
        NewSession {
            id: &id,
            subject: o.subject,
            role: o.role,
            audience: o.audience,
            claims: o.claims,
            expires_at,
            access_expires_at: o.access_expires_at,
            selector: &token.selector,
            verifier_hash: &token.verifier_hash(),
        },
        MAX_SESSIONS_PER_SUBJECT,
    )
    .await?;
    revoked.add(&capped, o.now);
    Ok(Opened {
        id,
        refresh_token: token.text(),
        expires_at,
    })
}

/// A session continued by [`refresh`].
#[derive(Debug)]
pub struct Refreshed {
    pub id: String,
    pub subject: String,
    pub role: Option<String>,
    pub audience: String,
    pub claims: serde_json::Value,
    pub refresh_token: String,
    pub expires_at: i64,
}

/// Exchanges a refresh token for a new one of the same family. An unknown, malformed or
/// expired token, or one of an ended session, is [`Refusal::Invalid`]; a used-up one is
/// [`Refusal::Reused`] and ends its session (the theft signal: two parties hold the family).
/// `access_expires_at` is when the access token the caller is about to sign expires.
pub async fn refresh(
    pool: &PgPool,
    revoked: &Revoked,
    presented: &str,
    access_expires_at: i64,
    now: i64,
) -> Result<Refreshed, SessionError> {
    let refused = |r| Err(SessionError::Refused(r));
    let Some(token) = RefreshToken::parse(presented) else {
        return refused(Refusal::Invalid);
    };
    let mut tx = pool.begin().await?;
    let Some(row) = store::presented(&mut tx, &token.selector).await? else {
        return refused(Refusal::Invalid);
    };
    if !token.matches(&row.verifier_hash) || row.revoked || row.expires_at <= now {
        return refused(Refusal::Invalid);
    }
    if row.used {
        let ended = store::revoke(&mut tx, &row.session_id, "reuse").await?;
        tx.commit().await?;
        revoked.add(&ended, now);
        tracing::warn!(
            session = %row.session_id,
            "a used refresh token was presented again; its session is ended"
        );
        return refused(Refusal::Reused);
    }
    let next = RefreshToken::generate();
    store::rotate(
        &mut tx,
        &token.selector,
        &next.selector,
        &next.verifier_hash(),
        &row.session_id,
        access_expires_at,
        KEEP_USED_TOKENS,
    )
    .await?;
    tx.commit().await?;
    Ok(Refreshed {
        id: row.session_id,
        subject: row.subject,
        role: row.role,
        audience: row.audience,
        claims: row.claims,
        refresh_token: next.text(),
        expires_at: row.expires_at,
    })
}

/// Records the role the session's latest access token carries.
pub async fn set_role(pool: &PgPool, id: &str, role: Option<&str>) -> Result<(), sqlx::Error> {
    store::set_role(pool, id, role).await
}

/// Ends one session; returns how many were live (0 or 1).
pub async fn end(
    pool: &PgPool,
    revoked: &Revoked,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let ended = store::revoke(&mut conn, id, reason).await?;
    revoked.add(&ended, now);
    Ok(ended.len())
}

/// Ends the session of a refresh token (used up or not). An unknown or malformed token ends
/// nothing (0).
pub async fn end_by_refresh_token(
    pool: &PgPool,
    revoked: &Revoked,
    presented: &str,
    reason: &str,
    now: i64,
) -> Result<(usize, Option<String>), sqlx::Error> {
    let Some(token) = RefreshToken::parse(presented) else {
        return Ok((0, None));
    };
    let mut tx = pool.begin().await?;
    let Some(row) = store::presented(&mut tx, &token.selector).await? else {
        return Ok((0, None));
    };
    if !token.matches(&row.verifier_hash) {
        return Ok((0, None));
    }
    let ended = store::revoke(&mut tx, &row.session_id, reason).await?;
    tx.commit().await?;
    revoked.add(&ended, now);
    Ok((ended.len(), Some(row.subject)))
}

/// Ends every live session of a subject; returns how many.
pub async fn end_subject(
    pool: &PgPool,
    revoked: &Revoked,
    subject: &str,
    reason: &str,
    now: i64,
) -> Result<usize, sqlx::Error> {
    let ended = store::revoke_subject(pool, subject, reason).await?;
    revoked.add(&ended, now);
    Ok(ended.len())
}

/// Keeps `revoked` in step with the catalog, so a session another instance ended is refused
/// here within about [`FOLLOW_EVERY`]: reads the revocations of the last ten seconds (the
/// overlap covers transactions that commit late) every interval, and drops expired entries.
/// Runs until the task is dropped.
pub async fn follow(pool: PgPool, revoked: std::sync::Arc<Revoked>) {
    let mut first = true;
    let mut tick = tokio::time::interval(FOLLOW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The first read covers everything still relevant: revocations of the longest
        // access-token lifetime.
        let within = if first {
            i64::from(MAX_ACCESS_TTL_SECS) + 60
        } else {
            10
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        match store::recently_revoked(&pool, within).await {
            Ok(ended) => {
                first = false;
                revoked.add(&ended, now);
            }
            Err(e) => tracing::debug!(error = %e, "cannot read revoked sessions"),
        }
        revoked.prune(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_round_trip_and_only_their_verifier_matches() {
        let t = RefreshToken::generate();
        let text = t.text();
        assert_eq!(text.len(), 4 + 96);
        assert!(text.starts_with("srt_"));
        let back = RefreshToken::parse(&text).expect("parses");
        assert_eq!(back.selector, t.selector);
        assert!(back.matches(&t.verifier_hash()));
        let other = RefreshToken::generate();
        assert!(!other.matches(&t.verifier_hash()));
        assert!(!back.matches(&[]));
        assert_eq!(format!("{t:?}"), "RefreshToken(***)");
    }

    #[test]
    fn malformed_refresh_tokens_are_refused() {
        let good = RefreshToken::generate().text();
        for bad in [
            "",
            "srt_",
            &good[4..],
            &good[..good.len() - 1],
            &format!("{good}0"),
            &good.replace("srt_", "xrt_"),
            &format!("srt_{}", "g".repeat(96)),
            &format!("srt_{}é", "0".repeat(94)),
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn two_generated_tokens_differ() {
        assert_ne!(
            RefreshToken::generate().text(),
            RefreshToken::generate().text()
        );
        assert_ne!(new_session_id(), new_session_id());
        assert_eq!(new_session_id().len(), 32);
    }

    #[test]
    fn the_revoked_set_forgets_sessions_whose_tokens_expired() {
        let r = Revoked::default();
        r.add(&[("a".into(), 100), ("b".into(), 50), ("c".into(), 10)], 20);
        assert!(r.contains("a", 20) && r.contains("b", 20));
        assert!(!r.contains("c", 20), "already expired: never added");
        assert!(!r.contains("b", 50));
        r.prune(60);
        assert_eq!(r.len(), 1);
        assert!(!r.contains("zzz", 0));
    }

    #[test]
    fn the_revoked_set_is_bounded() {
        let r = Revoked::default();
        let many: Vec<Ended> = (0..REVOKED_SET_CAP + 10)
            .map(|i| (format!("s{i}"), 1000 + i as i64))
            .collect();
        r.add(&many, 0);
        assert!(r.len() <= REVOKED_SET_CAP);
        // The ones that expire last are kept.
        assert!(r.contains(&format!("s{}", REVOKED_SET_CAP + 9), 0));
        assert!(!r.contains("s0", 0));
    }
}
