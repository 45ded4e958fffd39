//! `endpoint.auth` for end users: reads `Authorization: Bearer <jwt>`, checks the token against
//! the key ring and the endpoint's level, and gives the flow its `auth` value,
//! `{"id": <sub>, "claims": {...}}`. Pure (no IO, no axum): the HTTP edge and debug runs call
//! the same [`check`], so a debug run fails exactly as a real request would.

use super::jwt::{JwtError, KeyRing};
use crate::base::AuthLevel;
use serde_json::{Value, json};

/// The claim and value an `admin` endpoint requires.
pub const ADMIN_CLAIM: &str = "role";
pub const ADMIN_ROLE: &str = "admin";

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
}

impl BearerError {
    /// Stable error code of the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            BearerError::Missing => "auth.token_missing",
            BearerError::Expired => "auth.token_expired",
            BearerError::Invalid(_) | BearerError::NoSubject => "auth.token_invalid",
            BearerError::Forbidden => "auth.forbidden",
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

/// The `auth` value of a request to an endpoint of `level`, from its `Authorization` header
/// (`None` when absent) at time `now` (unix seconds). Public endpoints never read the header
/// and get `null`.
pub fn check(
    level: AuthLevel,
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

    fn token(k: &SigningKey, claims: Value) -> String {
        sign(k, claims.as_object().expect("an object"))
    }

    #[test]
    fn public_endpoints_ignore_the_header() {
        let (r, _) = ring();
        assert_eq!(
            check(AuthLevel::Public, Some("Bearer garbage"), &r, 0),
            Ok(Value::Null)
        );
    }

    #[test]
    fn user_endpoints_need_a_valid_bearer_token() {
        let (r, k) = ring();
        let good = token(&k, json!({"sub": "42", "exp": 2000, "plan": "pro"}));
        let header = format!("Bearer {good}");
        assert_eq!(
            check(AuthLevel::User, Some(&header), &r, 1000),
            Ok(json!({"id": "42", "claims": {"sub": "42", "exp": 2000, "plan": "pro"}}))
        );
        let lower = format!("bearer  {good} ");
        assert!(check(AuthLevel::User, Some(&lower), &r, 1000).is_ok());
        for missing in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer   "),
            Some("Basic abc"),
        ] {
            assert_eq!(
                check(AuthLevel::User, missing, &r, 1000),
                Err(BearerError::Missing),
                "{missing:?}"
            );
        }
        assert_eq!(
            check(AuthLevel::User, Some(&header), &r, 2000),
            Err(BearerError::Expired)
        );
        assert_eq!(
            check(AuthLevel::User, Some("Bearer not.a.token"), &r, 1000).map_err(|e| e.code()),
            Err("auth.token_invalid")
        );
        let numeric_sub = token(&k, json!({"sub": 42, "exp": 2000}));
        assert_eq!(
            check(
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
            check(AuthLevel::Admin, Some(&user), &r, 1000),
            Err(BearerError::Forbidden)
        );
        assert_eq!(
            check(AuthLevel::Admin, Some(&other), &r, 1000),
            Err(BearerError::Forbidden)
        );
        assert!(check(AuthLevel::Admin, Some(&admin), &r, 1000).is_ok());
        // A bad token on an admin endpoint is 401, not 403.
        assert_eq!(
            check(AuthLevel::Admin, None, &r, 1000),
            Err(BearerError::Missing)
        );
        assert_eq!(BearerError::Forbidden.status(), 403);
    }
}
