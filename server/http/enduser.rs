//! The HTTP edge of `endpoint.auth`: runs [`crate::auth::bearer::check`] on a request's
//! `Authorization` header with the runtime's key ring, and turns a refusal into Sluice's error
//! envelope with a `WWW-Authenticate` header (401 for a missing or bad token, 403 for a valid
//! token that may not call the endpoint).

use super::error::ApiError;
use crate::auth::bearer::{self, BearerError};
use crate::engine::{Program, Runtime};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The flow's `auth` value for a request to `program`, or why it is refused (answered with
/// [`refusal`]).
pub fn authenticate(
    rt: &Runtime,
    program: &Program,
    headers: &HeaderMap,
) -> Result<Value, BearerError> {
    check(
        rt,
        program,
        headers.get(header::AUTHORIZATION).map(|v| v.to_str()),
    )
}

/// The same check for a token given as text (debug runs); `None` means no token.
pub fn check_token(
    rt: &Runtime,
    program: &Program,
    token: Option<&str>,
) -> Result<Value, BearerError> {
    let header = token.map(|t| format!("Bearer {t}"));
    check(rt, program, header.as_deref().map(Ok::<&str, ()>))
}

fn check<E>(
    rt: &Runtime,
    program: &Program,
    authorization: Option<Result<&str, E>>,
) -> Result<Value, BearerError> {
    let level = program
        .plan
        .endpoint
        .as_ref()
        .map(|e| e.auth)
        .unwrap_or_default();
    let authorization = match authorization {
        None => None,
        Some(Ok(v)) => Some(v),
        // Not visible ASCII: no token of ours looks like that.
        Some(Err(_)) if level != crate::flow::plan::AuthLevel::Public => {
            return Err(BearerError::Invalid(crate::auth::jwt::JwtError::Malformed));
        }
        Some(Err(_)) => None,
    };
    bearer::check(level, authorization, &rt.token_keys.load(), bearer::now())
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
