//! Naming a certificate without the picker: an RFC 7512 `pkcs11:` URI or a SHA-256 thumbprint.

use crate::token::inventory::{CertificateReport, TokenReport};

/// `--cert`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertChoice {
    /// A `pkcs11:` URI; every attribute it gives must match.
    Uri(Vec<(String, Vec<u8>)>),
    /// Lowercase hex.
    Sha256(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertChoiceError {
    #[error("`{0}` is neither a pkcs11: URI nor a SHA-256 thumbprint (64 hex digits)")]
    Unrecognised(String),
    #[error("the pkcs11: URI `{uri}` is malformed: {reason}")]
    BadUri { uri: String, reason: String },
}

impl std::str::FromStr for CertChoice {
    type Err = CertChoiceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("pkcs11:") {
            let attributes =
                crate::token::uri::parse(text).map_err(|reason| CertChoiceError::BadUri {
                    uri: text.to_owned(),
                    reason,
                })?;
            return Ok(Self::Uri(attributes));
        }
        let hex: String = text
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self::Sha256(hex))
        } else {
            Err(CertChoiceError::Unrecognised(text.to_owned()))
        }
    }
}

impl CertChoice {
    /// Whether `cert` on `token` is the one named.
    pub fn matches(&self, token: &TokenReport, cert: &CertificateReport) -> bool {
        match self {
            Self::Sha256(thumbprint) => cert
                .cert
                .as_ref()
                .is_ok_and(|info| &info.sha256 == thumbprint),
            Self::Uri(attributes) => attributes.iter().all(|(name, value)| {
                let actual: &[u8] = match name.as_str() {
                    "token" => token.label.as_bytes(),
                    "manufacturer" => token.manufacturer.as_bytes(),
                    "serial" => token.serial.as_bytes(),
                    "model" => token.model.as_bytes(),
                    "object" => cert.label.as_bytes(),
                    "id" => &cert.id,
                    // type=cert was checked when parsing.
                    _ => return true,
                };
                actual == value.as_slice()
            }),
        }
    }

    /// Whether the certificate that `uri` (a full `pkcs11:` URI, as `certauth list` prints) and
    /// `sha256` identify is the one named.
    pub fn matches_identified(&self, uri: &str, sha256: &str) -> bool {
        match self {
            Self::Sha256(thumbprint) => thumbprint == sha256,
            Self::Uri(wanted) => crate::token::uri::parse(uri).is_ok_and(|actual| {
                wanted.iter().all(|(name, value)| {
                    name == "type" || actual.iter().any(|(n, v)| n == name && v == value)
                })
            }),
        }
    }
}

/// The choice as `--cert` takes it: the thumbprint, or a `pkcs11:` URI with every value byte
/// percent-encoded.
impl std::fmt::Display for CertChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sha256(thumbprint) => f.write_str(thumbprint),
            Self::Uri(attributes) => {
                let parts: Vec<String> = attributes
                    .iter()
                    .map(|(name, value)| {
                        let encoded: String = value.iter().map(|b| format!("%{b:02X}")).collect();
                        format!("{name}={encoded}")
                    })
                    .collect();
                write!(f, "pkcs11:{}", parts.join(";"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_written_out_parses_back_and_matches_what_it_named() {
        let uri: CertChoice = "pkcs11:token=Woodgrove%20Alice;id=%01;type=cert"
            .parse()
            .unwrap();
        let again: CertChoice = uri.to_string().parse().unwrap();
        assert_eq!(again, uri);
        let listed = "pkcs11:token=Woodgrove%20Alice;manufacturer=x;serial=1;model=m;object=alice;id=%01;type=cert";
        assert!(uri.matches_identified(listed, "00"));
        assert!(!uri.matches_identified(&listed.replace("%01", "%02"), "00"));
        let sha: CertChoice = "ab".repeat(32).parse().unwrap();
        assert_eq!(sha.to_string(), "ab".repeat(32));
        assert!(sha.matches_identified(listed, &"ab".repeat(32)));
        assert!(!sha.matches_identified(listed, &"cd".repeat(32)));
    }

    #[test]
    fn parses_uris_and_thumbprints() {
        let uri: CertChoice =
            "pkcs11:token=Woodgrove%20Alice;object=alice;id=%01;type=cert?pin-value=x"
                .parse()
                .unwrap();
        assert_eq!(
            uri,
            CertChoice::Uri(vec![
                ("token".into(), b"Woodgrove Alice".to_vec()),
                ("object".into(), b"alice".to_vec()),
                ("id".into(), vec![1]),
                ("type".into(), b"cert".to_vec()),
            ])
        );
        let thumb = "AB".repeat(32);
        assert_eq!(
            thumb.parse::<CertChoice>(),
            Ok(CertChoice::Sha256("ab".repeat(32)))
        );
        assert!(matches!(
            "pkcs11:type=private".parse::<CertChoice>(),
            Err(CertChoiceError::BadUri { .. })
        ));
        assert!(matches!(
            "alice".parse::<CertChoice>(),
            Err(CertChoiceError::Unrecognised(_))
        ));
    }
}
