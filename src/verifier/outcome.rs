//! What a sign-in attempt comes to, typed: the Entra error codes (`AADSTS…`) a refusal carries,
//! each with its meaning and the HTTP status the certauth endpoint answers it with, and the
//! authentication strength a success grants.

use std::fmt;

use serde::{Serialize, Serializer};

use super::policy::Strength;

/// An Entra sign-in error code the verifier answers with (`docs/signin-protocol.md`). The wire
/// and the sign-in log carry it as text, `AADSTS` and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The certificate failed validation: no client certificate, a bad signature, an issuer name
    /// that does not chain, not for client authentication.
    CertificateValidationFailed,
    /// No unique user: the username does not exist, or the certificate does not bind to it.
    UserNotFound,
    /// The verifier could not do or keep its part (its storage, its signing key): try again.
    Transient,
    /// The request lacks a required parameter.
    MissingParameter,
    /// Blocked by the authentication method policy: CBA off, or the user out of its targets.
    BlockedByPolicy,
    /// The certificate is on its CA's base or delta CRL.
    CertificateRevoked,
    /// A certificate or a CRL outside its validity period.
    NotValidNow,
    /// A CRL could not be downloaded.
    CrlDownloadFailed,
    /// No valid CRL could be constructed from what was downloaded (an older issue, a wrong kind).
    CrlUnusable,
    /// CRL validation is required and the issuing CA has no CRL.
    CrlMissing,
    /// The CA that issued the certificate is not set up in the tenant.
    IssuerNotConfigured,
    /// A delta CRL URL configured without a base CRL URL.
    DeltaWithoutBase,
    /// The delta CRL at hand does not complete the base CRL at hand.
    CrlSegmentsUnavailable,
    /// CA scoping: the user is not in a group the CA is scoped to.
    CaScopingDenied,
    /// A username binding's certificate field is missing from the certificate.
    BindingValueMissing,
    /// A CRL that is not valid ASN.1 DER.
    CrlNotDer,
    /// A CRL download that took too long.
    CrlDownloadTimedOut,
    /// A CRL larger than the verifier takes.
    CrlTooLarge,
    /// A CRL whose signature, or whose AKI, does not match its CA.
    CrlSignatureInvalid,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [Self; 19] = [
        Self::CertificateValidationFailed,
        Self::UserNotFound,
        Self::Transient,
        Self::MissingParameter,
        Self::BlockedByPolicy,
        Self::CertificateRevoked,
        Self::NotValidNow,
        Self::CrlDownloadFailed,
        Self::CrlUnusable,
        Self::CrlMissing,
        Self::IssuerNotConfigured,
        Self::DeltaWithoutBase,
        Self::CrlSegmentsUnavailable,
        Self::CaScopingDenied,
        Self::BindingValueMissing,
        Self::CrlNotDer,
        Self::CrlDownloadTimedOut,
        Self::CrlTooLarge,
        Self::CrlSignatureInvalid,
    ];

    /// Entra's number for it, as the Graph sign-in log's integer `errorCode` carries it.
    pub fn number(self) -> u32 {
        match self {
            Self::CertificateValidationFailed => 50017,
            Self::UserNotFound => 50034,
            Self::Transient => 90033,
            Self::MissingParameter => 900_144,
            Self::BlockedByPolicy => 130_501,
            Self::CertificateRevoked => 500_171,
            Self::NotValidNow => 500_172,
            Self::CrlDownloadFailed => 500_173,
            Self::CrlUnusable => 500_174,
            Self::CrlMissing => 500_175,
            Self::IssuerNotConfigured => 500_176,
            Self::DeltaWithoutBase => 500_177,
            Self::CrlSegmentsUnavailable => 500_178,
            Self::CaScopingDenied => 500_189,
            Self::BindingValueMissing => 1_001_003,
            Self::CrlNotDer => 2_205_011,
            Self::CrlDownloadTimedOut => 2_205_012,
            Self::CrlTooLarge => 2_205_014,
            Self::CrlSignatureInvalid => 2_205_015,
        }
    }

    /// The code as the wire carries it: `AADSTS` and the number.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CertificateValidationFailed => "AADSTS50017",
            Self::UserNotFound => "AADSTS50034",
            Self::Transient => "AADSTS90033",
            Self::MissingParameter => "AADSTS900144",
            Self::BlockedByPolicy => "AADSTS130501",
            Self::CertificateRevoked => "AADSTS500171",
            Self::NotValidNow => "AADSTS500172",
            Self::CrlDownloadFailed => "AADSTS500173",
            Self::CrlUnusable => "AADSTS500174",
            Self::CrlMissing => "AADSTS500175",
            Self::IssuerNotConfigured => "AADSTS500176",
            Self::DeltaWithoutBase => "AADSTS500177",
            Self::CrlSegmentsUnavailable => "AADSTS500178",
            Self::CaScopingDenied => "AADSTS500189",
            Self::BindingValueMissing => "AADSTS1001003",
            Self::CrlNotDer => "AADSTS2205011",
            Self::CrlDownloadTimedOut => "AADSTS2205012",
            Self::CrlTooLarge => "AADSTS2205014",
            Self::CrlSignatureInvalid => "AADSTS2205015",
        }
    }

    /// The code named by its wire text, as a stored sign-in log row holds it.
    pub fn from_wire(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }

    /// What Entra's error table says it means.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::CertificateValidationFailed => "certificate validation failed",
            Self::UserNotFound => "no unique user was found for the certificate and username",
            Self::Transient => "a transient error occurred on the server",
            Self::MissingParameter => "the request lacks a required parameter",
            Self::BlockedByPolicy => "sign-in was blocked due to user credential policy",
            Self::CertificateRevoked => "the certificate has been revoked",
            Self::NotValidNow => "a certificate or CRL is not valid at this time",
            Self::CrlDownloadFailed => "a CRL could not be downloaded",
            Self::CrlUnusable => "no valid CRL could be constructed from the response",
            Self::CrlMissing => "the CRL for a certificate in the chain is missing",
            Self::IssuerNotConfigured => {
                "the issuing certificate authority is not set up in the tenant"
            }
            Self::DeltaWithoutBase => "a delta CRL is configured without a base CRL",
            Self::CrlSegmentsUnavailable => "valid CRL segments could not be retrieved",
            Self::CaScopingDenied => {
                "the user is not in a group the certificate authority is scoped to"
            }
            Self::BindingValueMissing => {
                "a value a username binding needs is missing from the certificate"
            }
            Self::CrlNotDer => "the CRL is not valid ASN.1 DER",
            Self::CrlDownloadTimedOut => "the CRL download timed out",
            Self::CrlTooLarge => "the CRL exceeds the maximum allowed size",
            Self::CrlSignatureInvalid => "the CRL failed signature validation",
        }
    }

    /// The HTTP status the certauth endpoint answers a refusal with: 403 when policy blocks a
    /// user it knows, 503 when the verifier's own part failed, 400 for a malformed request, and
    /// 401 (not authenticated) otherwise.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BlockedByPolicy | Self::CaScopingDenied => 403,
            Self::Transient => 503,
            Self::MissingParameter => 400,
            _ => 401,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// How strongly a successful sign-in authenticated: the `authenticationStrength` of the protocol
/// and the sign-in log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthenticationStrength {
    SingleFactor,
    MultiFactor,
}

impl AuthenticationStrength {
    /// The name the protocol and the sign-in log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SingleFactor => "singleFactor",
            Self::MultiFactor => "multiFactor",
        }
    }

    /// The strength named by its wire text.
    pub fn from_wire(text: &str) -> Option<Self> {
        [Self::SingleFactor, Self::MultiFactor]
            .into_iter()
            .find(|strength| strength.as_str() == text)
    }

    pub fn is_multifactor(self) -> bool {
        self == Self::MultiFactor
    }
}

impl From<Strength> for AuthenticationStrength {
    fn from(mode: Strength) -> Self {
        match mode {
            Strength::SingleFactor => Self::SingleFactor,
            Strength::MultiFactor => Self::MultiFactor,
        }
    }
}

impl fmt::Display for AuthenticationStrength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_wire_text_and_carries_its_number() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
            assert_eq!(code.as_str(), format!("AADSTS{}", code.number()));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
        assert_eq!(ErrorCode::from_wire("AADSTS0"), None);
    }

    #[test]
    fn policy_blocks_are_403_and_the_verifiers_own_failures_503() {
        assert_eq!(ErrorCode::BlockedByPolicy.http_status(), 403);
        assert_eq!(ErrorCode::CaScopingDenied.http_status(), 403);
        assert_eq!(ErrorCode::Transient.http_status(), 503);
        assert_eq!(ErrorCode::CertificateRevoked.http_status(), 401);
        assert_eq!(ErrorCode::UserNotFound.http_status(), 401);
    }

    #[test]
    fn strengths_use_the_protocol_names() {
        assert_eq!(
            serde_json::to_value(AuthenticationStrength::MultiFactor).unwrap(),
            "multiFactor"
        );
        assert_eq!(
            AuthenticationStrength::from(Strength::SingleFactor).as_str(),
            AuthenticationStrength::from(Strength::SingleFactor).as_str()
        );
        assert_eq!(
            AuthenticationStrength::from_wire("singleFactor"),
            Some(AuthenticationStrength::SingleFactor)
        );
    }
}
