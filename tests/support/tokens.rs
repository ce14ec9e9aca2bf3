//! Tokens a hostile caller would send, made from a real one: the same claims signed with the
//! emulator's own key but one claim broken (expired, another audience, another issuer), the
//! signature tampered with, or no signature at all (`alg: none`).
//!
//! The Cognito emulator (moto) signs with a key that ships in its package; `scripts/e2e.sh` writes
//! it as PEM and names the file in `ORDERFLOW_COGNITO_SIGNING_KEY`, so these tokens carry a valid
//! signature and only the broken claim can make the authorizer refuse them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

/// Signs claims as the emulator's user pool does.
pub struct Forger {
    key: EncodingKey,
    kid: String,
}

/// The parts of a compact JWT.
fn parts(token: &str) -> (String, String, String) {
    let mut parts = token.splitn(3, '.').map(str::to_owned);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature)) => (header, payload, signature),
        _ => panic!("not a compact JWT"),
    }
}

fn decode_part(part: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_else(|e| panic!("a JWT part is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("a JWT part is not JSON: {e}"))
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The claims of `token` (not verified).
pub fn claims(token: &str) -> Value {
    decode_part(&parts(token).1)
}

/// `token` with its signature changed (one byte of it flipped).
pub fn tampered(token: &str) -> String {
    let (header, payload, signature) = parts(token);
    let mut bytes = URL_SAFE_NO_PAD
        .decode(&signature)
        .unwrap_or_else(|e| panic!("the signature is not base64url: {e}"));
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x01;
    }
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `token`'s claims under `{"alg": "none"}`, without a signature.
pub fn unsigned(token: &str) -> String {
    let (_, payload, _) = parts(token);
    let header = serde_json::json!({"alg": "none", "typ": "JWT"});
    format!("{}.{payload}.", encode_part(&header))
}

impl Forger {
    /// The emulator's signing key, from the PEM file `ORDERFLOW_COGNITO_SIGNING_KEY` names; panics
    /// saying how to run the suite when it is not set.
    pub fn from_env() -> Self {
        let path = std::env::var("ORDERFLOW_COGNITO_SIGNING_KEY").unwrap_or_else(|_| {
            panic!(
                "ORDERFLOW_COGNITO_SIGNING_KEY is not set: run the suite with scripts/e2e.sh, which \
                 writes the Cognito emulator's signing key and names it there"
            )
        });
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let key = EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| panic!("{path}: {e}"));
        Self {
            key,
            kid: "dummy".into(),
        }
    }

    /// A token with `token`'s claims, `change`d, signed with the emulator's key under its `kid`.
    pub fn resign(&self, token: &str, change: impl FnOnce(&mut Value)) -> String {
        let header = decode_part(&parts(token).0);
        let mut claims = claims(token);
        change(&mut claims);
        let mut forged = Header::new(Algorithm::RS256);
        forged.kid = header["kid"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| Some(self.kid.clone()));
        jsonwebtoken::encode(&forged, &claims, &self.key)
            .unwrap_or_else(|e| panic!("signing a token: {e}"))
    }
}
