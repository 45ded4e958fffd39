//! End-user API tokens: JSON Web Tokens signed with HS256 (RFC 7519, RFC 7515).
//!
//! Written on `hmac` + `sha2` + `base64`, which Sluice has anyway: the `jsonwebtoken` crate
//! either brings RSA and elliptic-curve crates or aws-lc (10.x), or, in 9.x (on ring), has a
//! claim-validation advisory (CVE-2026-25537). HS256 alone is small enough to own.
//!
//! Verification is strict: the header must say `HS256`, the signature is compared in constant
//! time, and `exp` must be an integer in the future (a claim of the wrong type is an invalid
//! token, never a missing one).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A signing key from the catalog. `Debug` never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    /// Row id in `sluice.token_keys`; sent as the token's `kid`.
    pub id: i64,
    secret: Vec<u8>,
}

impl SigningKey {
    pub fn new(id: i64, secret: Vec<u8>) -> SigningKey {
        SigningKey { id, secret }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, ***)", self.id)
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with HS256")]
    Algorithm,
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token has expired")]
    Expired,
}

/// Signs `claims` (an object) as a compact JWT: `base64url(header).base64url(claims).sig`.
pub fn sign(key: &SigningKey, claims: &Map<String, Value>) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.id.to_string()});
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string()));
    let mut mac = key.mac();
    mac.update(out.as_bytes());
    let sig = mac.finalize().into_bytes();
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// Checks a token against `key` at time `now` (unix seconds) and returns its claims.
pub fn verify(key: &SigningKey, token: &str, now: i64) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = decode_json(h)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let mut mac = key.mac();
    mac.update(&token.as_bytes()[..h.len() + 1 + c.len()]);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig).map_err(|_| JwtError::Signature)?;
    let Value::Object(claims) = decode_json(c)? else {
        return Err(JwtError::Malformed);
    };
    match claims.get("exp").map(Value::as_i64) {
        Some(Some(exp)) if exp > now => Ok(claims),
        Some(Some(_)) => Err(JwtError::Expired),
        // Missing or not an integer: never treated as "does not expire".
        _ => Err(JwtError::Malformed),
    }
}

fn decode_json(part: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> SigningKey {
        SigningKey::new(1, secret.to_vec())
    }

    /// The HS256 example of RFC 7515, appendix A.1: same header and payload bytes give the
    /// same signature, so the HMAC and base64url parts are right.
    #[test]
    fn the_hmac_matches_the_rfc_7515_example() {
        let k = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .expect("key");
        let signing_input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let mut mac = key(&k).mac();
        mac.update(signing_input.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    /// A token of the well-known jwt.io example (secret `your-256-bit-secret`), re-signed
    /// here with a future `exp`: sign, then check the exact text.
    #[test]
    fn signing_produces_the_expected_compact_token() {
        let k = key(b"your-256-bit-secret");
        let claims = json!({"exp": 4102444800i64, "sub": "1234567890"});
        let token = sign(&k, claims.as_object().expect("object"));
        assert_eq!(
            token,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6IjEiLCJ0eXAiOiJKV1QifQ.eyJleHAiOjQxMDI0NDQ4MDAsInN1YiI6IjEyMzQ1Njc4OTAifQ.RUH0GHyAjL_lacczZ_eWk09OrthHxPcd4spUjktbUuw"
        );
        assert!(!token.contains('='), "base64url without padding");
        let back = verify(&k, &token, 1_700_000_000).expect("valid");
        assert_eq!(back["sub"], "1234567890");
    }

    #[test]
    fn verification_refuses_tampering_other_algorithms_and_bad_expiry() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let good = sign(&k, json!({"sub": "a", "exp": 2000}).as_object().expect("o"));
        assert!(verify(&k, &good, 1999).is_ok());
        assert_eq!(verify(&k, &good, 2000), Err(JwtError::Expired));
        assert_eq!(
            verify(&key(b"another key"), &good, 1000),
            Err(JwtError::Signature)
        );
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"admin","exp":2000}"#);
        parts[1] = &forged;
        assert_eq!(verify(&k, &parts.join("."), 1000), Err(JwtError::Signature));
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"a","exp":2000}"#)
        );
        assert_eq!(verify(&k, &none_alg, 1000), Err(JwtError::Algorithm));
        let string_exp = sign(
            &k,
            json!({"sub": "a", "exp": "never"}).as_object().expect("o"),
        );
        assert_eq!(verify(&k, &string_exp, 1000), Err(JwtError::Malformed));
        let no_exp = sign(&k, json!({"sub": "a"}).as_object().expect("o"));
        assert_eq!(verify(&k, &no_exp, 1000), Err(JwtError::Malformed));
        assert_eq!(verify(&k, "a.b", 1000), Err(JwtError::Malformed));
        assert_eq!(verify(&k, "a.b.c.d", 1000), Err(JwtError::Malformed));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        assert_eq!(format!("{:?}", key(b"hunter2")), "SigningKey(1, ***)");
    }
}
