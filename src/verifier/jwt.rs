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

/// The issuer every sign-in token names.
pub const ISSUER: &str = "certauth-verifier";
/// The audience every sign-in token names.
pub const AUDIENCE: &str = "certauth";

/// What a relying party expects of a token besides its signature.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway: i64,
}

impl Expected<'static> {
    /// The verifier's own issuer and audience, now, with a minute of leeway.
    pub fn sign_in_token() -> Self {
        Self {
            issuer: ISSUER,
            audience: AUDIENCE,
            now: time::OffsetDateTime::now_utc().unix_timestamp(),
            leeway: 60,
        }
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("the token's {0} is not valid base64url JSON")]
    Encoding(&'static str),
    #[error("unexpected alg {0}")]
    Algorithm(String),
    #[error("no key with the token's kid")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("the token is not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("the token has no numeric `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token is for audience {found}, not {expected}")]
    WrongAudience { expected: String, found: String },
    #[error("the token was issued by {found}, not {expected}")]
    WrongIssuer { expected: String, found: String },
}

/// Checks a token against a JWKS as a relying party would: the signature, then `iss`, `aud`,
/// `exp` and `nbf`. Returns its claims.
pub fn verify(token: &str, jwks: &Value, expected: &Expected<'_>) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str, what| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Encoding(what))
    };
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| JwtError::Encoding("header"))?;
    if header["alg"] != "ES256" {
        return Err(JwtError::Algorithm(header["alg"].to_string()));
    }
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == header["kid"]))
        .ok_or(JwtError::UnknownKey)?;
    let coordinate = |name| {
        key[name]
            .as_str()
            .ok_or(JwtError::UnknownKey)
            .and_then(|c| decode(c, "key"))
    };
    let point = [&[0x04][..], &coordinate("x")?, &coordinate("y")?].concat();
    let signed = &token[..token.len() - signature.len() - 1];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(signed.as_bytes(), &decode(signature, "signature")?)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Value = serde_json::from_slice(&decode(claims, "claims")?)
        .map_err(|_| JwtError::Encoding("claims"))?;
    let text = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
    if claims["iss"] != expected.issuer {
        return Err(JwtError::WrongIssuer {
            expected: expected.issuer.to_owned(),
            found: text("iss"),
        });
    }
    let audience_matches = match &claims["aud"] {
        Value::String(aud) => aud == expected.audience,
        Value::Array(auds) => auds.iter().any(|a| a == expected.audience),
        _ => false,
    };
    if !audience_matches {
        return Err(JwtError::WrongAudience {
            expected: expected.audience.to_owned(),
            found: claims["aud"].to_string(),
        });
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or(JwtError::MissingClaim("exp"))?;
    if expected.now >= exp + expected.leeway {
        return Err(JwtError::Expired {
            exp,
            now: expected.now,
        });
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_i64().ok_or(JwtError::MissingClaim("nbf"))?;
        if expected.now + expected.leeway < nbf {
            return Err(JwtError::NotYetValid {
                nbf,
                now: expected.now,
            });
        }
    }
    Ok(claims)
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

/// A random object id in Graph's form: a version-4 GUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
pub fn random_guid() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
