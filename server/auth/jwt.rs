//! End-user API tokens: JSON Web Tokens signed with HS256 (RFC 7519, RFC 7515) or, per key,
//! EdDSA with Ed25519 (RFC 8037) through `ring`.
//!
//! Written on `hmac` + `sha2` + `base64`, which Sluice has anyway: the `jsonwebtoken` crate
//! either brings RSA and elliptic-curve crates or aws-lc (10.x), or, in 9.x (on ring), has a
//! claim-validation advisory (CVE-2026-25537). HS256 alone is small enough to own.
//!
//! Verification is strict: the algorithm is the key's (a key is HS256 or EdDSA, chosen when it
//! is made), never the token's: the header must name exactly the algorithm of the key its
//! `kid` picks, so an HS256 token cannot be checked against an Ed25519 public key taken as an
//! HMAC secret. `crit` is refused, the signature is compared in constant time, `exp` must
//! be an integer in the future and `nbf`, when present, an integer not in the future (a claim
//! of the wrong type is an invalid token, never a missing one). [`KeyRing`] picks the key by
//! the header's `kid`, so tokens signed by a retired key stay valid until they expire.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The algorithm of a key: HS256 (the default) or EdDSA (Ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[default]
    HS256,
    EdDSA,
}

impl Algorithm {
    /// The name in the token header and the catalog.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "HS256" => Some(Algorithm::HS256),
            "EdDSA" => Some(Algorithm::EdDSA),
            _ => None,
        }
    }
}

/// A signing key from the catalog. `Debug` never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    /// Row id in `sluice.token_keys`; sent as the token's `kid`.
    pub id: i64,
    /// HS256: the HMAC secret. EdDSA: the PKCS#8 document of the key pair.
    secret: Vec<u8>,
    /// EdDSA: the key pair read from `secret`.
    ed25519: Option<std::sync::Arc<ring::signature::Ed25519KeyPair>>,
}

impl SigningKey {
    /// An HS256 key.
    pub fn new(id: i64, secret: Vec<u8>) -> SigningKey {
        SigningKey {
            id,
            secret,
            ed25519: None,
        }
    }

    /// An EdDSA key from its PKCS#8 document (as [`generate_ed25519`] makes).
    pub fn ed25519(id: i64, pkcs8: Vec<u8>) -> Result<SigningKey, JwtError> {
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
            .map_err(|_| JwtError::Malformed)?;
        Ok(SigningKey {
            id,
            secret: pkcs8,
            ed25519: Some(std::sync::Arc::new(pair)),
        })
    }

    /// A key of `alg` from what the catalog stores for it.
    pub fn of(alg: Algorithm, id: i64, secret: Vec<u8>) -> Result<SigningKey, JwtError> {
        match alg {
            Algorithm::HS256 => Ok(SigningKey::new(id, secret)),
            Algorithm::EdDSA => SigningKey::ed25519(id, secret),
        }
    }

    pub fn alg(&self) -> Algorithm {
        if self.ed25519.is_some() {
            Algorithm::EdDSA
        } else {
            Algorithm::HS256
        }
    }

    /// An EdDSA key's public half as a JSON Web Key (RFC 8037); `None` for HS256, whose key
    /// is secret.
    pub fn public_jwk(&self) -> Option<Value> {
        use ring::signature::KeyPair as _;
        let pair = self.ed25519.as_ref()?;
        Some(json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.id.to_string(),
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        }))
    }

    fn signature(&self, signed: &[u8]) -> Vec<u8> {
        match &self.ed25519 {
            Some(pair) => pair.sign(signed).as_ref().to_vec(),
            None => {
                let mut mac = self.mac();
                mac.update(signed);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Checks a signature in the key's own algorithm (HMAC compared in constant time).
    fn check(&self, signed: &[u8], sig: &[u8]) -> Result<(), JwtError> {
        use ring::signature::KeyPair as _;
        match &self.ed25519 {
            Some(pair) => ring::signature::UnparsedPublicKey::new(
                &ring::signature::ED25519,
                pair.public_key().as_ref(),
            )
            .verify(signed, sig)
            .map_err(|_| JwtError::Signature),
            None => {
                let mut mac = self.mac();
                mac.update(signed);
                mac.verify_slice(sig).map_err(|_| JwtError::Signature)
            }
        }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {}, ***)", self.id, self.alg().name())
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not signed with its key's algorithm")]
    Algorithm,
    #[error("the token's signature does not match")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token names no known signing key")]
    UnknownKey,
}

/// The keys tokens are checked against: the current one (which also signs) and the retired
/// ones that may still have live tokens. Built from the catalog, swapped as a whole.
#[derive(Debug)]
pub struct KeyRing {
    current: Option<SigningKey>,
    /// Every key, current included, by `kid` (the row id as text).
    by_kid: std::collections::HashMap<String, SigningKey>,
    loaded_at: std::time::Instant,
}

impl Default for KeyRing {
    fn default() -> KeyRing {
        KeyRing::new(None, Vec::new())
    }
}

impl KeyRing {
    pub fn new(current: Option<SigningKey>, retired: Vec<SigningKey>) -> KeyRing {
        let by_kid = retired
            .into_iter()
            .chain(current.clone())
            .map(|k| (k.id.to_string(), k))
            .collect();
        KeyRing {
            current,
            by_kid,
            loaded_at: std::time::Instant::now(),
        }
    }

    /// How long ago this ring was built.
    pub fn age(&self) -> std::time::Duration {
        self.loaded_at.elapsed()
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> Option<&SigningKey> {
        self.current.as_ref()
    }

    /// The public keys of the EdDSA keys tokens are accepted from, as JSON Web Keys.
    pub fn public_jwks(&self) -> Vec<Value> {
        let mut keys: Vec<&SigningKey> = self.by_kid.values().collect();
        keys.sort_by_key(|k| k.id);
        keys.into_iter()
            .filter_map(SigningKey::public_jwk)
            .collect()
    }

    /// Ids of every key tokens are accepted from.
    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.by_kid.values().map(|k| k.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Checks a token with the key its `kid` names, at time `now` (unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, JwtError> {
        let parts = Parts::split(token)?;
        let kid = parts.header.get("kid").and_then(Value::as_str);
        let key = kid
            .and_then(|k| self.by_kid.get(k))
            .ok_or(JwtError::UnknownKey)?;
        parts.verify(key, now)
    }
}
/// Signs `claims` (an object) as a compact JWT: `base64url(header).base64url(claims).sig`.
pub fn sign(key: &SigningKey, claims: &Map<String, Value>) -> String {
    let header = json!({"alg": key.alg().name(), "typ": "JWT", "kid": key.id.to_string()});
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string()));
    let sig = key.signature(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// Checks a token against `key` at time `now` (unix seconds) and returns its claims.
pub fn verify(key: &SigningKey, token: &str, now: i64) -> Result<Map<String, Value>, JwtError> {
    Parts::split(token)?.verify(key, now)
}

/// A compact token cut into its parts, with the header decoded and checked.
struct Parts<'t> {
    header: Map<String, Value>,
    alg: Algorithm,
    /// `base64url(header).base64url(claims)`: what the signature covers.
    signed: &'t str,
    claims: &'t str,
    signature: &'t str,
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Result<Parts<'t>, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let Value::Object(header) = decode_json(h)? else {
            return Err(JwtError::Malformed);
        };
        // Only the two algorithms Sluice signs with; which one must match the key (`verify`).
        let Some(alg) = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Algorithm::parse)
        else {
            return Err(JwtError::Algorithm);
        };
        // No extension is understood, so none may be marked critical (RFC 7515, 4.1.11).
        if header.contains_key("crit") {
            return Err(JwtError::Malformed);
        }
        Ok(Parts {
            header,
            alg,
            signed: &token[..h.len() + 1 + c.len()],
            claims: c,
            signature: s,
        })
    }

    fn verify(&self, key: &SigningKey, now: i64) -> Result<Map<String, Value>, JwtError> {
        let sig = URL_SAFE_NO_PAD
            .decode(self.signature)
            .map_err(|_| JwtError::Malformed)?;
        // The key's algorithm, never the token's choice.
        if self.alg != key.alg() {
            return Err(JwtError::Algorithm);
        }
        key.check(self.signed.as_bytes(), &sig)?;
        let Value::Object(claims) = decode_json(self.claims)? else {
            return Err(JwtError::Malformed);
        };
        match claims.get("nbf").map(Value::as_i64) {
            None => {}
            Some(Some(nbf)) if nbf <= now => {}
            Some(Some(_)) => return Err(JwtError::NotYetValid),
            Some(None) => return Err(JwtError::Malformed),
        }
        match claims.get("exp").map(Value::as_i64) {
            Some(Some(exp)) if exp > now => Ok(claims),
            Some(Some(_)) => Err(JwtError::Expired),
            // Missing or not an integer: never treated as "does not expire".
            _ => Err(JwtError::Malformed),
        }
    }
}

/// A new Ed25519 key pair as a PKCS#8 document (what the catalog stores for an EdDSA key).
/// `None` when the system's random source fails.
pub fn generate_ed25519() -> Option<Vec<u8>> {
    ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .ok()
        .map(|doc| doc.as_ref().to_vec())
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
    fn not_before_is_honoured_when_present() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let t = |nbf: Value| {
            sign(
                &k,
                json!({"sub": "a", "exp": 5000, "nbf": nbf})
                    .as_object()
                    .expect("o"),
            )
        };
        assert!(verify(&k, &t(json!(1000)), 1000).is_ok());
        assert_eq!(
            verify(&k, &t(json!(1001)), 1000),
            Err(JwtError::NotYetValid)
        );
        assert_eq!(
            verify(&k, &t(json!("soon")), 1000),
            Err(JwtError::Malformed)
        );
    }

    /// Builds a token with any header, signed with `k`.
    fn with_header(k: &SigningKey, header: Value, claims: Value) -> String {
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut mac = k.mac();
        mac.update(out.as_bytes());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        out
    }

    #[test]
    fn the_algorithm_is_pinned_and_critical_extensions_are_refused() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let claims = json!({"sub": "a", "exp": 5000});
        for alg in ["HS384", "HS512", "RS256", "none", "hs256"] {
            let t = with_header(&k, json!({"alg": alg, "kid": "1"}), claims.clone());
            assert_eq!(verify(&k, &t, 1000), Err(JwtError::Algorithm), "{alg}");
        }
        let t = with_header(
            &k,
            json!({"alg": "HS256", "kid": "1", "crit": ["b64"], "b64": false}),
            claims.clone(),
        );
        assert_eq!(verify(&k, &t, 1000), Err(JwtError::Malformed));
        let t = with_header(&k, json!(["HS256"]), claims);
        assert_eq!(verify(&k, &t, 1000), Err(JwtError::Malformed));
    }

    #[test]
    fn a_key_ring_picks_the_key_by_kid_and_accepts_retired_keys() {
        let old = SigningKey::new(1, b"an old key, retired but still in the ring".to_vec());
        let new = SigningKey::new(2, b"the current key, which signs new tokens".to_vec());
        let claims = json!({"sub": "7", "exp": 5000});
        let by_old = sign(&old, claims.as_object().expect("o"));
        let by_new = sign(&new, claims.as_object().expect("o"));
        let ring = KeyRing::new(Some(new.clone()), vec![old.clone()]);
        assert_eq!(ring.current().map(|k| k.id), Some(2));
        assert_eq!(ring.ids(), [1, 2]);
        assert_eq!(ring.verify(&by_old, 1000).expect("old")["sub"], "7");
        assert_eq!(ring.verify(&by_new, 1000).expect("new")["sub"], "7");
        // A purged key's tokens fail, and a kid cannot point a token at another key.
        let purged = KeyRing::new(Some(new.clone()), vec![]);
        assert_eq!(purged.verify(&by_old, 1000), Err(JwtError::UnknownKey));
        let lying = with_header(&old, json!({"alg": "HS256", "kid": "2"}), claims.clone());
        assert_eq!(ring.verify(&lying, 1000), Err(JwtError::Signature));
        let no_kid = with_header(&new, json!({"alg": "HS256"}), claims.clone());
        assert_eq!(ring.verify(&no_kid, 1000), Err(JwtError::UnknownKey));
        let number_kid = with_header(&new, json!({"alg": "HS256", "kid": 2}), claims);
        assert_eq!(ring.verify(&number_kid, 1000), Err(JwtError::UnknownKey));
        assert_eq!(
            KeyRing::default().verify(&by_new, 1000),
            Err(JwtError::UnknownKey)
        );
    }

    #[test]
    fn ed25519_keys_sign_and_verify_and_refuse_algorithm_confusion() {
        let pkcs8 = generate_ed25519().expect("random");
        let ed = SigningKey::ed25519(7, pkcs8.clone()).expect("a key pair");
        assert_eq!(ed.alg(), Algorithm::EdDSA);
        let claims = json!({"sub": "a", "exp": 2000});
        let token = sign(&ed, claims.as_object().expect("o"));
        let header = decode_json(token.split('.').next().expect("header")).expect("json");
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(verify(&ed, &token, 1000).expect("valid")["sub"], "a");
        // Another key pair does not verify it.
        let other =
            SigningKey::ed25519(7, generate_ed25519().expect("random")).expect("a key pair");
        assert_eq!(verify(&other, &token, 1000), Err(JwtError::Signature));
        // An HS256 token whose HMAC secret is the public key, with the EdDSA key's kid.
        let jwk = ed.public_jwk().expect("a public key");
        let public = URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().expect("x"))
            .expect("base64url");
        assert_eq!(public.len(), 32);
        let confused = sign(&SigningKey::new(7, public), claims.as_object().expect("o"));
        assert_eq!(verify(&ed, &confused, 1000), Err(JwtError::Algorithm));
        // And an EdDSA token is not checked by an HS256 key of the same id.
        assert_eq!(
            verify(&key(b"some hmac key"), &token, 1000),
            Err(JwtError::Algorithm)
        );
        let ring = KeyRing::new(Some(key(b"x")), vec![ed]);
        assert_eq!(ring.public_jwks().len(), 1);
        assert!(format!("{:?}", SigningKey::ed25519(7, pkcs8).expect("k")).contains("***"));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        assert_eq!(
            format!("{:?}", key(b"hunter2")),
            "SigningKey(1, HS256, ***)"
        );
    }
}
