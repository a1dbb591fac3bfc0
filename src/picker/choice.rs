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
}

#[cfg(test)]
mod tests {
    use super::*;

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
