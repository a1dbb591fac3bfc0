//! CRLs, policy-free: parsing a base or delta CRL, checking that a CA issued and signed it,
//! indexing its serials, whether it is in effect at a given time, and what a base CRL and its
//! delta say of one serial together. What to fetch, which CRLs to require, and the replay marks
//! kept between fetches are the verifier's (`verifier::revocation`).

pub mod der_walk;
pub mod facts;
pub mod index;
pub mod status;

use std::fmt;

pub use facts::{parse_crl, verify_crl_signature, CrlFacts, RevokedSerial};
pub use index::{Entry, RevocationList, REASON_REMOVE_FROM_CRL};
pub use status::{listed_on, timing, DeltaAhead, Listing, Timing, MAX_CLOCK_SKEW};

/// Why a CRL could not be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CrlError {
    #[error("not a DER-encoded CRL: {0}")]
    Malformed(String),
    #[error("the CRL's delta CRL indicator is not an INTEGER")]
    BadDeltaIndicator,
    #[error("the issuing CA certificate does not parse: {0}")]
    BadIssuer(String),
    #[error("the CRL was issued by `{crl_issuer}`, not by `{ca_subject}`")]
    WrongIssuer {
        crl_issuer: String,
        ca_subject: String,
    },
    #[error(
        "the CRL's authority key identifier ({crl}) is not the CA's subject key identifier ({ca})"
    )]
    KeyIdentifierMismatch { crl: String, ca: String },
    #[error("the CRL's signature does not verify with the CA's key")]
    BadSignature,
}

/// A base CRL or its delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlKind {
    Base,
    Delta,
}

impl fmt::Display for CrlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Base => "base CRL",
            Self::Delta => "delta CRL",
        })
    }
}

/// An RFC 5280 CRLReason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub u8);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            0 => "unspecified",
            1 => "keyCompromise",
            2 => "cACompromise",
            3 => "affiliationChanged",
            4 => "superseded",
            5 => "cessationOfOperation",
            6 => "certificateHold",
            8 => "removeFromCRL",
            9 => "privilegeWithdrawn",
            10 => "aACompromise",
            other => return write!(f, "reason {other}"),
        };
        f.write_str(name)
    }
}
