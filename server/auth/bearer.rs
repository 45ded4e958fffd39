//! `endpoint.auth` for end users: reads `Authorization: Bearer <jwt>`, checks the token against
//! the key ring and the endpoint's level, and gives the flow its `auth` value,
//! `{"id": <sub>, "claims": {...}}`. Pure (no IO, no axum): the HTTP edge and debug runs call
//! the same [`check`], so a debug run fails exactly as a real request would.

use super::jwt::{JwtError, KeyRing};
use super::sessions::Revoked;
use crate::base::AuthLevel;
pub use crate::base::DEFAULT_AUDIENCE;
use serde_json::{Value, json};

/// The claim and value an `admin` endpoint requires.
pub const ADMIN_CLAIM: &str = "role";
pub const ADMIN_ROLE: &str = "admin";
/// The claim naming the audience a token is for.
pub const AUDIENCE_CLAIM: &str = "aud";
/// The claim naming the session an access token belongs to.
pub const SESSION_CLAIM: &str = "sid";

/// Why a request is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("this endpoint needs a bearer token (Authorization: Bearer <token>)")]
    Missing,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid: {0}")]
    Invalid(JwtError),
    #[error("the token's sub claim must be non-empty text")]
    NoSubject,
    #[error("this endpoint is for admins (a token with \"role\": \"admin\")")]
    Forbidden,
    /// The token was issued for another audience (`aud`) than the endpoint's.
    #[error("the bearer token is for audience `{token}`, this endpoint accepts `{endpoint}`")]
    WrongAudience { token: String, endpoint: String },
    /// The token's session (`sid`) was ended: logout, an admin, or a reused refresh token.
    #[error("the bearer token's session has ended")]
    SessionRevoked,
}

impl BearerError {
    /// Stable error code of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            BearerError::Missing => "auth.token_missing",
            BearerError::Expired => "auth.token_expired",
            BearerError::Invalid(_) | BearerError::NoSubject => "auth.token_invalid",
            BearerError::Forbidden => "auth.forbidden",
            BearerError::WrongAudience { .. } => "auth.wrong_audience",
            BearerError::SessionRevoked => "auth.session_revoked",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            BearerError::Forbidden => 403,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` value that goes with the answer (RFC 6750, section 3).
    pub fn challenge(&self) -> &'static str {
        match self {
            BearerError::Missing => "Bearer",
            BearerError::Forbidden => "Bearer error=\"insufficient_scope\"",
            _ => "Bearer error=\"invalid_token\"",
        }
    }
}

/// What an endpoint accepts besides its level: the audience its tokens must have, and the
/// sessions ended while their access tokens may still be alive.
#[derive(Clone, Copy)]
pub struct Accept<'a> {
    /// `endpoint.audience`, [`DEFAULT_AUDIENCE`] when not given.
    pub audience: &'a str,
    pub revoked: &'a Revoked,
}

/// The `auth` value of a request to an endpoint of `level`, from its `Authorization` header
/// (`None` when absent) at time `now` (unix seconds). Public endpoints never read the header
/// and get `null`. A token's audience is its `aud` claim, [`DEFAULT_AUDIENCE`] without one;
/// it must be the endpoint's. A token with a `sid` claim is refused once its session is in
/// the revoked set.
pub fn check(
    level: AuthLevel,
    accept: Accept<'_>,
    authorization: Option<&str>,
    ring: &KeyRing,
    now: i64,
) -> Result<Value, BearerError> {
    if level == AuthLevel::Public {
        return Ok(Value::Null);
    }
    let token = authorization
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(BearerError::Missing)?;
    let claims = ring.verify(token, now).map_err(|e| match e {
        JwtError::Expired => BearerError::Expired,
        other => BearerError::Invalid(other),
    })?;
    let id = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(BearerError::NoSubject),
    };
    let audience = match claims.get(AUDIENCE_CLAIM) {
        None => DEFAULT_AUDIENCE,
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(BearerError::Invalid(JwtError::Malformed)),
    };
    if audience != accept.audience {
        return Err(BearerError::WrongAudience {
            token: audience.to_string(),
            endpoint: accept.audience.to_string(),
        });
    }
    match claims.get(SESSION_CLAIM) {
        None => {}
        Some(Value::String(sid)) if accept.revoked.contains(sid, now) => {
            return Err(BearerError::SessionRevoked);
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(BearerError::Invalid(JwtError::Malformed)),
    }
    if level == AuthLevel::Admin
        && claims.get(ADMIN_CLAIM).and_then(Value::as_str) != Some(ADMIN_ROLE)
    {
        return Err(BearerError::Forbidden);
    }
    Ok(json!({"id": id, "claims": claims}))
}

/// The current time in unix seconds, as tokens count it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::{SigningKey, sign};

    fn ring() -> (KeyRing, SigningKey) {
        let k = SigningKey::new(3, b"a key of thirty-two bytes or more!".to_vec());
        (KeyRing::new(Some(k.clone()), vec![]), k)
    }

    fn check_(
        level: AuthLevel,
        authorization: Option<&str>,
        ring: &KeyRing,
        now: i64,
    ) -> Result<Value, BearerError> {
        let revoked = Revoked::default();
        check(
            level,
            Accept {
                audience: DEFAULT_AUDIENCE,
                revoked: &revoked,
            },
            authorization,
            ring,
            now,
        )
    }

    fn token(k: &SigningKey, claims: Value) -> String {
        sign(k, claims.as_object().expect("an object"))
    }

    #[test]
    fn public_endpoints_ignore_the_header() {
        let (r, _) = ring();
        assert_eq!(
            check_(AuthLevel::Public, Some("Bearer garbage"), &r, 0),
            Ok(Value::Null)
        );
    }

    #[test]
    fn user_endpoints_need_a_valid_bearer_token() {
        let (r, k) = ring();
        let good = token(&k, json!({"sub": "42", "exp": 2000, "plan": "pro"}));
        let header = format!("Bearer {good}");
        assert_eq!(
            check_(AuthLevel::User, Some(&header), &r, 1000),
            Ok(json!({"id": "42", "claims": {"sub": "42", "exp": 2000, "plan": "pro"}}))
        );
        let lower = format!("bearer  {good} ");
        assert!(check_(AuthLevel::User, Some(&lower), &r, 1000).is_ok());
        for missing in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer   "),
            Some("Basic abc"),
        ] {
            assert_eq!(
                check_(AuthLevel::User, missing, &r, 1000),
                Err(BearerError::Missing),
                "{missing:?}"
            );
        }
        assert_eq!(
            check_(AuthLevel::User, Some(&header), &r, 2000),
            Err(BearerError::Expired)
        );
        assert_eq!(
            check_(AuthLevel::User, Some("Bearer not.a.token"), &r, 1000).map_err(|e| e.code()),
            Err("auth.token_invalid")
        );
        let numeric_sub = token(&k, json!({"sub": 42, "exp": 2000}));
        assert_eq!(
            check_(
                AuthLevel::User,
                Some(&format!("Bearer {numeric_sub}")),
                &r,
                1000
            ),
            Err(BearerError::NoSubject)
        );
    }

    #[test]
    fn admin_endpoints_need_the_admin_role() {
        let (r, k) = ring();
        let user = format!("Bearer {}", token(&k, json!({"sub": "1", "exp": 2000})));
        let other = format!(
            "Bearer {}",
            token(&k, json!({"sub": "1", "exp": 2000, "role": "editor"}))
        );
        let admin = format!(
            "Bearer {}",
            token(&k, json!({"sub": "1", "exp": 2000, "role": "admin"}))
        );
        assert_eq!(
            check_(AuthLevel::Admin, Some(&user), &r, 1000),
            Err(BearerError::Forbidden)
        );
        assert_eq!(
            check_(AuthLevel::Admin, Some(&other), &r, 1000),
            Err(BearerError::Forbidden)
        );
        assert!(check_(AuthLevel::Admin, Some(&admin), &r, 1000).is_ok());
        // A bad token on an admin endpoint is 401, not 403.
        assert_eq!(
            check_(AuthLevel::Admin, None, &r, 1000),
            Err(BearerError::Missing)
        );
        assert_eq!(BearerError::Forbidden.status(), 403);
    }

    #[test]
    fn tokens_are_accepted_only_by_endpoints_of_their_audience() {
        let (r, k) = ring();
        let revoked = Revoked::default();
        let plain = format!("Bearer {}", token(&k, json!({"sub": "1", "exp": 2000})));
        let api = format!(
            "Bearer {}",
            token(&k, json!({"sub": "1", "exp": 2000, "aud": "api"}))
        );
        let reset = format!(
            "Bearer {}",
            token(
                &k,
                json!({"sub": "1", "exp": 2000, "aud": "password_reset"})
            )
        );
        let at = |audience| Accept {
            audience,
            revoked: &revoked,
        };
        assert!(check(AuthLevel::User, at("api"), Some(&plain), &r, 1000).is_ok());
        assert!(check(AuthLevel::User, at("api"), Some(&api), &r, 1000).is_ok());
        assert_eq!(
            check(AuthLevel::User, at("api"), Some(&reset), &r, 1000).map_err(|e| e.code()),
            Err("auth.wrong_audience")
        );
        assert!(
            check(
                AuthLevel::User,
                at("password_reset"),
                Some(&reset),
                &r,
                1000
            )
            .is_ok()
        );
        assert_eq!(
            check(
                AuthLevel::User,
                at("password_reset"),
                Some(&plain),
                &r,
                1000
            )
            .map_err(|e| e.code()),
            Err("auth.wrong_audience")
        );
        let listed = format!(
            "Bearer {}",
            token(&k, json!({"sub": "1", "exp": 2000, "aud": ["api"]}))
        );
        assert_eq!(
            check(AuthLevel::User, at("api"), Some(&listed), &r, 1000).map_err(|e| e.code()),
            Err("auth.token_invalid")
        );
    }

    #[test]
    fn tokens_of_a_revoked_session_are_refused_until_they_expire() {
        let (r, k) = ring();
        let revoked = Revoked::default();
        let t = format!(
            "Bearer {}",
            token(&k, json!({"sub": "1", "exp": 2000, "sid": "s1"}))
        );
        let accept = Accept {
            audience: DEFAULT_AUDIENCE,
            revoked: &revoked,
        };
        assert!(check(AuthLevel::User, accept, Some(&t), &r, 1000).is_ok());
        revoked.add(&[("s1".to_string(), 2000)], 1000);
        assert_eq!(
            check(AuthLevel::User, accept, Some(&t), &r, 1000),
            Err(BearerError::SessionRevoked)
        );
        assert_eq!(BearerError::SessionRevoked.status(), 401);
    }
}
