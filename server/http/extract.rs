//! Our own JSON body extractor, so malformed or oversized bodies get Sluice's envelope.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// Largest admin API body (flow documents are small; CSV import will stream).
pub const ADMIN_BODY_LIMIT: usize = 2 << 20;

/// A JSON body decoded into `T`; errors are 400 `request.invalid_json` / `request.invalid_body`
/// or 413 `request.too_large`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        decode(req, ADMIN_BODY_LIMIT).await.map(ApiJson)
    }
}

/// Reads a JSON body of at most `limit` bytes and decodes it into `T`, with the errors of
/// [`ApiJson`].
pub async fn decode<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, ApiError> {
    let bytes = read_body(req, limit).await?;
    let value = parse_json(&bytes)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = pointer(e.path());
        let inner = e.into_inner();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_body",
            format!("the body does not have the expected shape: {inner}"),
        )
        .with_details(vec![
            serde_json::json!({"pointer": pointer, "message": inner.to_string()}),
        ])
    })
}

/// A serde path (`fields[3].name`) as a JSON pointer into the body (`/fields/3/name`).
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        let step = match seg {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } | Segment::Enum { variant: key } => key.clone(),
            Segment::Unknown => continue,
        };
        out.push('/');
        out.push_str(&step.replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// Reads a whole body up to `limit` bytes, within the body deadline of the listener.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let (parts, body) = req.into_parts();
    read_body_of(&parts.headers, body, limit).await
}

/// [`read_body`] of a request already taken apart.
pub async fn read_body_of(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if super::listener::is_body_timeout(&e) {
            body_timeout()
        } else {
            too_large()
        }
    })
}

/// 408 `request.body_timeout`: the body did not arrive within the body deadline. The
/// connection is closed after it (the rest of the body is never read).
fn body_timeout() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request.body_timeout",
        "the request body did not arrive in time",
    )
}

/// Parses JSON text; an empty body is `null`.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.invalid_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// A path parameter whose parse failure is Sluice's JSON 400, not axum's plain text.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> axum::extract::FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "request.invalid_path",
                    e.body_text(),
                )
            })
    }
}

/// A query string whose parse failure is Sluice's JSON 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "request.invalid_query",
                    e.body_text(),
                )
            })
    }
}

/// The rev a save or publish expects, from `If-Match` (quoted or bare).
pub(crate) fn if_match(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::IF_MATCH)?.to_str().ok()?.trim();
    Some(v.trim_start_matches("W/").trim_matches('"').to_string())
}
