//! The HTTP edge of `endpoint.auth`: runs [`crate::auth::bearer::check`] on a request's
//! `Authorization` header with the runtime's key ring, and turns a refusal into Sluice's error
//! envelope with a `WWW-Authenticate` header (401 for a missing or bad token, 403 for a valid
//! token that may not call the endpoint).
//!
//! A token whose `kid` the ring does not know makes the ring reload from the catalog (at most
//! once per [`RING_REFRESH_MIN_AGE`], [`crate::serving::Serving::refresh_keys`]) and is checked
//! again: another instance may have rotated
//! the keys and signed it with the new one before this instance heard of the rotation.

use super::Serving;
use super::error::ApiError;
use crate::auth::bearer::{self, BearerError};
use crate::auth::jwt::JwtError;
use crate::auth::jwt::KeyRing;
use crate::auth::sessions::Revoked;
use crate::engine::Program;
use crate::flow::plan::AuthLevel;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::time::Duration;

/// A ring younger than this is not reloaded for an unknown `kid`, so tokens with made-up kids
/// cannot turn into a query per request.
pub const RING_REFRESH_MIN_AGE: Duration = Duration::from_secs(1);

/// The flow's `auth` value for a request to `program`, checked with `keys` (those of the
/// request's snapshot of `serving`), or why it is refused (answered with [`refusal`]).
pub async fn authenticate(
    serving: &Serving,
    keys: &KeyRing,
    revoked: &Revoked,
    program: &Program,
    headers: &HeaderMap,
) -> Result<Value, BearerError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map_err(|_| ()));
    check_or_reload(serving, keys, revoked, program, authorization).await
}

/// The same check for a token given as text (debug runs; a leading `Bearer ` is allowed);
/// `None` means no token.
pub async fn check_token(
    serving: &Serving,
    keys: &KeyRing,
    revoked: &Revoked,
    program: &Program,
    token: Option<&str>,
) -> Result<Value, BearerError> {
    let header = token.map(|t| match t.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => t.to_string(),
        _ => format!("Bearer {t}"),
    });
    check_or_reload(serving, keys, revoked, program, header.as_deref().map(Ok)).await
}

/// [`check`], and once more with a reloaded key ring when the token names a key the served
/// ring does not have (a key rotated on another instance).
async fn check_or_reload(
    serving: &Serving,
    keys: &KeyRing,
    revoked: &Revoked,
    program: &Program,
    authorization: Option<Result<&str, ()>>,
) -> Result<Value, BearerError> {
    match check(keys, revoked, program, authorization) {
        Err(BearerError::Invalid(JwtError::UnknownKey)) if refresh_ring(serving).await => check(
            &serving.load().live.token_keys,
            revoked,
            program,
            authorization,
        ),
        other => other,
    }
}

/// Reloads the key ring if the one served is old enough; returns whether it did.
async fn refresh_ring(serving: &Serving) -> bool {
    if serving.load().live.token_keys.age() < RING_REFRESH_MIN_AGE {
        return false;
    }
    serving.refresh_keys().await
}

fn check(
    keys: &KeyRing,
    revoked: &Revoked,
    program: &Program,
    authorization: Option<Result<&str, ()>>,
) -> Result<Value, BearerError> {
    let endpoint = program.plan.endpoint.as_ref();
    let level = endpoint.map(|e| e.auth).unwrap_or_default();
    let accept = bearer::Accept {
        audience: endpoint.map_or(crate::base::DEFAULT_AUDIENCE, |e| e.audience()),
        revoked,
    };
    // Public endpoints, most of them, cost nothing here: no clock, no key ring.
    if level == AuthLevel::Public {
        return Ok(Value::Null);
    }
    let authorization = match authorization {
        None => None,
        Some(Ok(v)) => Some(v),
        // Not visible ASCII: no token of ours looks like that.
        Some(Err(())) => return Err(BearerError::Invalid(JwtError::Malformed)),
    };
    bearer::check(level, accept, authorization, keys, bearer::now())
}

/// The envelope of a refusal, with its challenge.
pub fn refusal(e: BearerError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = ApiError::new(status, e.code(), e.to_string()).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(e.challenge()),
    );
    resp
}
