//! The signed result of a successful sign-in: a JWT (ES256) bound to the client certificate with
//! `cnf.x5t#S256`, and the JWKS that verifies it. The signing key lives in the store; its private
//! half never leaves this module.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::store::{Store, StoreError};
use crate::x509::hex;

/// Issues and publishes sign-in tokens.
pub struct JwtSigner {
    kid: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    /// The store's signing key, made on first use.
    pub fn load_or_create(store: &Store, created: &str) -> Result<Self, StoreError> {
        let rng = SystemRandom::new();
        let (kid, pkcs8) = match store.jwt_key()? {
            Some(existing) => existing,
            None => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| StoreError::Invalid("cannot generate a JWT signing key".into()))?;
                let pkcs8 = pkcs8.as_ref().to_vec();
                let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
                    .map_err(|_| StoreError::Invalid("the new JWT key does not load".into()))?;
                let kid = key_id(key.public_key().as_ref());
                store.add_jwt_key(&kid, &pkcs8, created)?;
                (kid, pkcs8)
            }
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|_| StoreError::Invalid("the stored JWT key does not load".into()))?;
        Ok(Self { kid, key, rng })
    }

    /// A compact JWS over `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, StoreError> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| StoreError::Invalid("signing the JWT failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        // Uncompressed point: 0x04 || x || y.
        let (x, y) = point[1..].split_at(32);
        json!({"keys": [{
            "kty": "EC",
            "crv": "P-256",
            "use": "sig",
            "alg": "ES256",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }
}

/// `x5t#S256`: the base64url SHA-256 of the certificate DER.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
}

fn key_id(public_key: &[u8]) -> String {
    hex(&ring::digest::digest(&ring::digest::SHA256, public_key).as_ref()[..8])
}

/// Checks a token against a JWKS, as a relying party would; returns its claims.
pub fn verify(token: &str, jwks: &Value) -> Result<Value, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" {
        return Err(format!("unexpected alg {}", header["alg"]));
    }
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .ok_or("no key with the token's kid")?;
    let x = decode(key["x"].as_str().ok_or("no x")?)?;
    let y = decode(key["y"].as_str().ok_or("no y")?)?;
    let point = [&[0x04][..], &x, &y].concat();
    let signed = &token[..token.len() - signature.len() - 1];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| "the signature does not verify".to_owned())?;
    serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())
}

/// A random identifier (128 bits, hex).
pub fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system RNG failing is not recoverable in any useful way; a zero id is still unique
    // enough for a log line, and the JWT keys are made elsewhere.
    let _ = SystemRandom::new().fill(&mut bytes);
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_against_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let signer = JwtSigner::load_or_create(&store, "now").unwrap();
        let token = signer.sign(&json!({"upn": "alice@woodgrove.com"})).unwrap();
        let claims = verify(&token, &signer.jwks()).unwrap();
        assert_eq!(claims["upn"], "alice@woodgrove.com");
        let tampered = token.replacen('.', ".e", 1);
        assert!(verify(&tampered, &signer.jwks()).is_err());
        // The same key comes back from the store.
        let again = JwtSigner::load_or_create(&store, "later").unwrap();
        assert_eq!(again.jwks(), signer.jwks());
    }
}
