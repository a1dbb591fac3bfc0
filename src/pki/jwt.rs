//! Verifying a sign-in token as a relying party does: a compact JWS (ES256) checked against a JWKS,
//! then `iss`, `aud`, `exp` and `nbf`; and the `x5t#S256` thumbprint that binds a token to its
//! certificate (`cnf`). Pure: no clock is read unless the caller asks for
//! [`Expected::sign_in_token`]. Signing is the verifier's alone (`verifier::jwt`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// The issuer every sign-in token names.
pub const ISSUER: &str = "certauth-verifier";
/// The audience every sign-in token names.
pub const AUDIENCE: &str = "certauth";

/// `x5t#S256`: the base64url SHA-256 of the certificate DER.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
}

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
    let header: Value = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| JwtError::Encoding("header"))?;
    if header["alg"] != "ES256" {
        return Err(JwtError::Algorithm(header["alg"].to_string()));
    }
    let point = jwks_key(jwks, &header["kid"])?;
    let signed = &token[..token.len() - signature.len() - 1];
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(signed.as_bytes(), &decode(signature, "signature")?)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Value = serde_json::from_slice(&decode(claims, "claims")?)
        .map_err(|_| JwtError::Encoding("claims"))?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Encoding(what))
}

/// The P-256 public key (an uncompressed point) of the JWKS key whose `kid` is `kid`.
pub fn jwks_key(jwks: &Value, kid: &Value) -> Result<Vec<u8>, JwtError> {
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == *kid))
        .ok_or(JwtError::UnknownKey)?;
    let coordinate = |name| {
        key[name]
            .as_str()
            .ok_or(JwtError::UnknownKey)
            .and_then(|c| decode(c, "key"))
    };
    Ok([&[0x04][..], &coordinate("x")?, &coordinate("y")?].concat())
}

/// `iss`, `aud`, `exp` and `nbf` of verified claims, against what is expected.
fn check_claims(claims: &Value, expected: &Expected<'_>) -> Result<(), JwtError> {
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
    Ok(())
}
