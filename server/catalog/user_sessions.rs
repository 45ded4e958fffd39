//! End-user sessions and their refresh tokens (`sluice.user_sessions`,
//! `sluice.user_refresh_tokens`, docs/SESSIONS.md). Only a selector and the SHA-256 of a
//! verifier are stored per refresh token; the comparison of hashes is the caller's
//! (`auth::sessions`, in constant time). Times cross this module as unix seconds.

use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

/// A session as the admin API lists it: no secrets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionRow {
    pub id: String,
    pub subject: String,
    pub role: Option<String>,
    pub audience: String,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
}

/// What a new session is made of.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub role: Option<&'a str>,
    pub audience: &'a str,
    pub claims: &'a serde_json::Value,
    pub expires_at: i64,
    pub access_expires_at: i64,
    pub selector: &'a [u8],
    pub verifier_hash: &'a [u8],
}

/// A session ended: its id and when its last access token expires.
pub type Ended = (String, i64);

/// A refresh token's row with its session, locked for the exchange.
pub struct Presented {
    pub verifier_hash: Vec<u8>,
    pub used: bool,
    pub session_id: String,
    pub subject: String,
    pub role: Option<String>,
    pub audience: String,
    pub claims: serde_json::Value,
    pub expires_at: i64,
    pub revoked: bool,
}

const ENDED: &str = "RETURNING id, extract(epoch FROM access_expires_at)::bigint AS access_exp";

fn ended(rows: Vec<sqlx::postgres::PgRow>) -> Result<Vec<Ended>, sqlx::Error> {
    rows.into_iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("access_exp")?)))
        .collect()
}

/// Stores a new session and its first refresh token in one transaction. The subject's
/// sessions of the same audience beyond `max_per_subject` live ones are ended, oldest first
/// (reason `capped`; per audience, so password-reset requests anyone can make for an email
/// cannot push the user's sign-ins out), and
/// up to a hundred ended or expired sessions of anyone are deleted. Returns the sessions the
/// cap ended.
pub async fn create(
    pool: &PgPool,
    new: NewSession<'_>,
    max_per_subject: i64,
) -> Result<Vec<Ended>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One subject's issues take turns, so two logins at once cannot both slip under the cap.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('sluice.user_sessions:' || $1, 0))")
        .bind(new.subject)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "DELETE FROM sluice.user_sessions WHERE id IN (SELECT id FROM sluice.user_sessions \
         WHERE expires_at < now() \
            OR (revoked_at IS NOT NULL AND access_expires_at < now() - interval '1 day') \
         LIMIT 100)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sluice.user_sessions \
         (id, subject, role, audience, claims, expires_at, access_expires_at) \
         VALUES ($1, $2, $3, $4, $5, to_timestamp($6), to_timestamp($7))",
    )
    .bind(new.id)
    .bind(new.subject)
    .bind(new.role)
    .bind(new.audience)
    .bind(sqlx::types::Json(new.claims))
    .bind(new.expires_at as f64)
    .bind(new.access_expires_at as f64)
    .execute(&mut *tx)
    .await?;
    add_token(&mut tx, new.selector, new.verifier_hash, new.id).await?;
    let capped = sqlx::query(&format!(
        "UPDATE sluice.user_sessions SET revoked_at = now(), revoked_reason = 'capped' \
         WHERE id IN (SELECT id FROM sluice.user_sessions \
                      WHERE subject = $1 AND audience = $3 AND revoked_at IS NULL \
                        AND expires_at > now() \
                      ORDER BY created_at DESC, id OFFSET $2) {ENDED}"
    ))
    .bind(new.subject)
    .bind(max_per_subject)
    .bind(new.audience)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    ended(capped)
}

async fn add_token(
    conn: &mut PgConnection,
    selector: &[u8],
    verifier_hash: &[u8],
    session: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sluice.user_refresh_tokens (selector, verifier_hash, session_id) \
         VALUES ($1, $2, $3)",
    )
    .bind(selector)
    .bind(verifier_hash)
    .bind(session)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The refresh token with this selector and its session, locked until `conn`'s transaction
/// ends.
pub async fn presented(
    conn: &mut PgConnection,
    selector: &[u8],
) -> Result<Option<Presented>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.verifier_hash, t.used_at IS NOT NULL AS used, s.id, s.subject, s.role, \
                s.audience, s.claims, extract(epoch FROM s.expires_at)::bigint AS expires_at, \
                s.revoked_at IS NOT NULL AS revoked \
         FROM sluice.user_refresh_tokens t JOIN sluice.user_sessions s ON s.id = t.session_id \
         WHERE t.selector = $1 FOR UPDATE OF t, s",
    )
    .bind(selector)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Presented {
            verifier_hash: r.try_get("verifier_hash")?,
            used: r.try_get("used")?,
            session_id: r.try_get("id")?,
            subject: r.try_get("subject")?,
            role: r.try_get("role")?,
            audience: r.try_get("audience")?,
            claims: r
                .try_get::<sqlx::types::Json<serde_json::Value>, _>("claims")?
                .0,
            expires_at: r.try_get("expires_at")?,
            revoked: r.try_get("revoked")?,
        })
    })
    .transpose()
}

/// Uses up the refresh token `old` and adds `selector` to its session's family; the session
/// was used now and its access tokens live until at least `access_expires_at`. Used tokens
/// beyond the newest `keep_used` of the family are forgotten (presenting one of them is then
/// an unknown token, refused as well, but no longer a reuse).
pub async fn rotate(
    conn: &mut PgConnection,
    old: &[u8],
    selector: &[u8],
    verifier_hash: &[u8],
    session: &str,
    access_expires_at: i64,
    keep_used: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sluice.user_refresh_tokens SET used_at = now() WHERE selector = $1")
        .bind(old)
        .execute(&mut *conn)
        .await?;
    add_token(conn, selector, verifier_hash, session).await?;
    sqlx::query(
        "UPDATE sluice.user_sessions SET last_used_at = now(), \
         access_expires_at = greatest(access_expires_at, to_timestamp($2)) WHERE id = $1",
    )
    .bind(session)
    .bind(access_expires_at as f64)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM sluice.user_refresh_tokens WHERE selector IN ( \
           SELECT selector FROM sluice.user_refresh_tokens \
           WHERE session_id = $1 AND used_at IS NOT NULL \
           ORDER BY created_at DESC OFFSET $2)",
    )
    .bind(session)
    .bind(keep_used)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Records the role the session's latest access token carries.
pub async fn set_role(pool: &PgPool, session: &str, role: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sluice.user_sessions SET role = $2 WHERE id = $1")
        .bind(session)
        .bind(role)
        .execute(pool)
        .await
        .map(|_| ())
}

/// Ends one session (if live).
pub async fn revoke(
    conn: &mut PgConnection,
    session: &str,
    reason: &str,
) -> Result<Vec<Ended>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "UPDATE sluice.user_sessions SET revoked_at = now(), revoked_reason = $2 \
         WHERE id = $1 AND revoked_at IS NULL {ENDED}"
    ))
    .bind(session)
    .bind(reason)
    .fetch_all(conn)
    .await?;
    ended(rows)
}

/// Ends every live session of a subject.
pub async fn revoke_subject(
    pool: &PgPool,
    subject: &str,
    reason: &str,
) -> Result<Vec<Ended>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "UPDATE sluice.user_sessions SET revoked_at = now(), revoked_reason = $2 \
         WHERE subject = $1 AND revoked_at IS NULL {ENDED}"
    ))
    .bind(subject)
    .bind(reason)
    .fetch_all(pool)
    .await?;
    ended(rows)
}

/// The subject's sessions, newest first, at most `limit`.
pub async fn list(
    pool: &PgPool,
    subject: &str,
    limit: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let t = |c: &str| format!("to_jsonb({c}) #>> '{{}}' AS {c}");
    let rows = sqlx::query(&format!(
        "SELECT id, subject, role, audience, {}, {}, {}, {}, revoked_reason \
         FROM sluice.user_sessions WHERE subject = $1 ORDER BY created_at DESC, id LIMIT $2",
        t("created_at"),
        t("last_used_at"),
        t("expires_at"),
        t("revoked_at"),
    ))
    .bind(subject)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(SessionRow {
                id: r.try_get("id")?,
                subject: r.try_get("subject")?,
                role: r.try_get("role")?,
                audience: r.try_get("audience")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
                expires_at: r.try_get("expires_at")?,
                revoked_at: r.try_get("revoked_at")?,
                revoked_reason: r.try_get("revoked_reason")?,
            })
        })
        .collect()
}

/// Sessions revoked in the last `within_secs` seconds whose access tokens have not all
/// expired: what every instance's revoked set must hold.
pub async fn recently_revoked(pool: &PgPool, within_secs: i64) -> Result<Vec<Ended>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, extract(epoch FROM access_expires_at)::bigint AS access_exp \
         FROM sluice.user_sessions \
         WHERE revoked_at > now() - make_interval(secs => $1) AND access_expires_at > now()",
    )
    .bind(within_secs as f64)
    .fetch_all(pool)
    .await?;
    ended(rows)
}
