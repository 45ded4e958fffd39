//! `/_/api/v1/token-keys`: the keys that sign end-user tokens. Lists them (never their
//! secrets; the public keys of EdDSA keys as JSON Web Keys) and rotates, to a new key of
//! HS256 or EdDSA: the current key is retired and a new one made in one transaction,
//! then what is served is reloaded (`crate::serving`), so new tokens carry the new `kid` at once
//! and tokens of retired keys stay valid until they expire.

use super::AppState;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::session::Editor;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/token-keys", get(list))
        .route("/token-keys/rotate", post(rotate))
}

async fn listing(state: &AppState) -> Result<Value, ApiError> {
    let keys = crate::catalog::token_keys::list(&state.db).await?;
    let ring = state.serving.load().live.token_keys.clone();
    let verifying = ring.ids();
    let public = ring.public_jwks();
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|k| {
            let mut out = json!({
                "id": k.id,
                "alg": k.alg,
                "created_at": k.created_at,
                "retired_at": k.retired_at,
                "current": k.retired_at.is_none(),
                "verifies": verifying.contains(&k.id),
            });
            if let Some(jwk) = public
                .iter()
                .find(|j| j["kid"].as_str().and_then(|s| s.parse::<i64>().ok()) == Some(k.id))
            {
                out["public_jwk"] = jwk.clone();
            }
            out
        })
        .collect();
    Ok(json!({
        "keys": keys,
        "jwks": {"keys": public},
        "retired_key_horizon_secs": crate::auth::RETIRED_KEY_HORIZON_SECS,
    }))
}

async fn list(State(state): State<AppState>, _: Editor) -> Result<Json<Value>, ApiError> {
    Ok(Json(listing(&state).await?))
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateQuery {
    /// Also delete every retired key, so every token issued so far stops working (a leaked
    /// key, a compromised database backup).
    #[serde(default)]
    revoke: bool,
    /// The new key's algorithm: `HS256` (the default) or `EdDSA`.
    #[serde(default)]
    alg: crate::auth::jwt::Algorithm,
}

async fn rotate(
    State(state): State<AppState>,
    _: Editor,
    ApiQuery(q): ApiQuery<RotateQuery>,
) -> Result<Json<Value>, ApiError> {
    let rotation = state
        .serving
        .change(crate::auth::rotate_token_keys(
            &state.db,
            q.revoke,
            state.serving.key_sealer(),
            q.alg,
        ))
        .await?;
    let mut out = listing(&state).await?;
    out["rotation"] = serde_json::to_value(&rotation).unwrap_or(Value::Null);
    Ok(Json(out))
}
