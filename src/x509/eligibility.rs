//! Sign-in eligibility: the rules every listing and the picker apply to a certificate on a token.
//! Revocation and trust are the server's call, so they are not rules here.

use serde::Serialize;
use time::OffsetDateTime;

use crate::x509::cert_info::{CertInfo, OID_EKU_ANY, OID_EKU_CLIENT_AUTH, OID_EKU_SMARTCARD_LOGON};

/// Whether the token holds the private key that belongs to a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyPresence {
    Present,
    Absent,
    /// Keys on this token are private: only a login can show whether it is there.
    NeedsLogin,
}

/// One reason a certificate cannot sign in. `code` values are part of `certauth list --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ineligible {
    Unparsable(String),
    NotYetValid(OffsetDateTime),
    Expired(OffsetDateTime),
    NoDigitalSignature,
    NoClientAuth { smartcard_logon: bool },
    NoPrivateKey,
}

impl Ineligible {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unparsable(_) => "unparsable",
            Self::NotYetValid(_) => "notYetValid",
            Self::Expired(_) => "expired",
            Self::NoDigitalSignature => "noDigitalSignature",
            Self::NoClientAuth {
                smartcard_logon: true,
            } => "smartcardLogonOnly",
            Self::NoClientAuth {
                smartcard_logon: false,
            } => "noClientAuth",
            Self::NoPrivateKey => "noPrivateKey",
        }
    }
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let day = |t: &OffsetDateTime| t.date().to_string();
        match self {
            Self::Unparsable(why) => write!(f, "the certificate does not parse ({why})"),
            Self::NotYetValid(from) => write!(f, "not valid before {}", day(from)),
            Self::Expired(at) => write!(f, "expired on {}", day(at)),
            Self::NoDigitalSignature => {
                f.write_str("its key usage does not allow digital signatures")
            }
            Self::NoClientAuth {
                smartcard_logon: true,
            } => {
                f.write_str("for Windows smartcard logon only: its EKU lacks client authentication")
            }
            Self::NoClientAuth {
                smartcard_logon: false,
            } => f.write_str("its extended key usage does not allow client authentication"),
            Self::NoPrivateKey => f.write_str("the token holds no private key for it"),
        }
    }
}

/// The verdict on one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Eligibility {
    pub reasons: Vec<Ineligible>,
}

impl Eligibility {
    pub fn is_eligible(&self) -> bool {
        self.reasons.is_empty()
    }

    /// The reasons, in one line for people.
    pub fn describe(&self) -> String {
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Applies the rules: within validity; digitalSignature if key usage is present; clientAuth, no
/// EKU or anyExtendedKeyUsage; a private key (unless only a login could tell).
pub fn assess(cert: &CertInfo, key: KeyPresence, now: OffsetDateTime) -> Eligibility {
    let mut reasons = Vec::new();
    if now < cert.not_before {
        reasons.push(Ineligible::NotYetValid(cert.not_before));
    }
    if now > cert.not_after {
        reasons.push(Ineligible::Expired(cert.not_after));
    }
    if cert
        .key_usage
        .as_ref()
        .is_some_and(|ku| !ku.digital_signature)
    {
        reasons.push(Ineligible::NoDigitalSignature);
    }
    if let Some(ekus) = &cert.extended_key_usage {
        let allows = ekus
            .iter()
            .any(|e| e == OID_EKU_CLIENT_AUTH || e == OID_EKU_ANY);
        if !allows {
            reasons.push(Ineligible::NoClientAuth {
                smartcard_logon: ekus.iter().any(|e| e == OID_EKU_SMARTCARD_LOGON),
            });
        }
    }
    if key == KeyPresence::Absent {
        reasons.push(Ineligible::NoPrivateKey);
    }
    Eligibility { reasons }
}

/// The verdict for DER that would not parse.
pub fn unparsable(why: &str) -> Eligibility {
    Eligibility {
        reasons: vec![Ineligible::Unparsable(why.to_owned())],
    }
}
