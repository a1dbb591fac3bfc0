//! Signing the result of a successful sign-in: a JWT (ES256) bound to the client certificate with
//! `cnf.x5t#S256`, and the JWKS that verifies it. The signing key lives in the store; its private
//! half never leaves this module. Verifying a token against a JWKS is the shared `pki::jwt`.

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

fn key_id(public_key: &[u8]) -> String {
    hex(&ring::digest::digest(&ring::digest::SHA256, public_key).as_ref()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::jwt::{verify, Expected, JwtError, AUDIENCE, ISSUER};

    #[test]
    fn tokens_verify_against_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let signer = JwtSigner::load_or_create(&store, "now").unwrap();
        let now = 1_800_000_000;
        let expected = Expected {
            issuer: ISSUER,
            audience: AUDIENCE,
            now,
            leeway: 60,
        };
        let claims = |changes: Value| {
            let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "upn": "alice@woodgrove.com",
                "nbf": now - 10, "exp": now + 3600});
            for (k, v) in changes.as_object().unwrap() {
                claims[k] = v.clone();
            }
            signer.sign(&claims).unwrap()
        };
        let token = claims(json!({}));
        let checked = verify(&token, &signer.jwks(), &expected).unwrap();
        assert_eq!(checked["upn"], "alice@woodgrove.com");
        let tampered = token.replacen('.', ".e", 1);
        assert!(verify(&tampered, &signer.jwks(), &expected).is_err());
        let refused = |changes: Value| verify(&claims(changes), &signer.jwks(), &expected);
        assert_eq!(
            refused(json!({"exp": now - 61})),
            Err(JwtError::Expired { exp: now - 61, now })
        );
        assert_eq!(
            refused(json!({"nbf": now + 61})),
            Err(JwtError::NotYetValid { nbf: now + 61, now })
        );
        assert!(matches!(
            refused(json!({"aud": "someone-else"})),
            Err(JwtError::WrongAudience { .. })
        ));
        assert!(matches!(
            refused(json!({"iss": "https://evil"})),
            Err(JwtError::WrongIssuer { .. })
        ));
        assert_eq!(
            refused(json!({"exp": null})),
            Err(JwtError::MissingClaim("exp"))
        );
        assert!(
            refused(json!({"exp": now - 30})).is_ok(),
            "within the leeway"
        );
        // The same key comes back from the store.
        let again = JwtSigner::load_or_create(&store, "later").unwrap();
        assert_eq!(again.jwks(), signer.jwks());
    }
}
