//! Chain building, policy-free: from a leaf up to a CA marked root, by AKI = SKI, at most
//! [`MAX_CHAIN_CAS`] CAs. At every link the certificate's issuer Name must be the CA's subject
//! (RFC 5280 §6.1.3 (a)(4), compared by [`same_name`]) besides AKI = SKI and the signature, or a
//! CA's key could vouch for another CA's name. Every validity period on the way is checked, and a
//! leaf with an extended key usage must allow client authentication.
//!
//! Which CAs are trusted is the caller's, through [`Issuers`]; only this module makes a
//! [`VerifiedChain`].

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::x509::cert_info::{rfc3339, CertInfo, OID_EKU_ANY, OID_EKU_CLIENT_AUTH};
use crate::x509::dn::same_name;
use crate::x509::hex;

/// Entra checks at most this many CAs up from the leaf.
pub const MAX_CHAIN_CAS: usize = 10;

/// A CA a chain may run through.
pub trait ChainCa: Clone {
    /// Its certificate.
    fn cert(&self) -> &CertInfo;
    /// Whether a chain ends at it.
    fn is_root(&self) -> bool;
}

/// What a store says of the CA with a given subject key identifier.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a, C> {
    Found(&'a C),
    /// No such CA is trusted.
    Unknown,
    /// A CA with this key identifier is stored in a state that cannot be trusted: chains through
    /// it fail closed.
    Quarantined {
        reason: &'a str,
    },
}

/// The CAs chains are built from.
pub trait Issuers {
    type Ca: ChainCa;
    /// The CA whose SKI is `ski` (lowercase hex).
    fn issuer(&self, ski: &str) -> Lookup<'_, Self::Ca>;
}

/// A chain from a leaf to a trusted root, signatures, names and validity checked.
#[derive(Debug, Clone)]
pub struct VerifiedChain<C> {
    leaf: CertInfo,
    /// Issuing CA first, root last.
    cas: Vec<C>,
}

impl<C: ChainCa> VerifiedChain<C> {
    pub fn leaf(&self) -> &CertInfo {
        &self.leaf
    }

    /// The CAs, issuing CA first, root last.
    pub fn cas(&self) -> &[C] {
        &self.cas
    }

    /// Each certificate with the CA that issued it: (leaf, issuing CA), (issuing CA, its issuer)...
    pub fn links(&self) -> impl Iterator<Item = (&CertInfo, &C)> {
        std::iter::once(&self.leaf)
            .chain(self.cas.iter().map(ChainCa::cert))
            .zip(self.cas.iter())
    }
}

/// Why a chain could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the certificate does not parse: {0}")]
    Malformed(String),
    #[error("the CA that issued `{subject}` is not set up in the tenant (authority key identifier {aki})")]
    UnknownIssuer { subject: String, aki: String },
    #[error("`{subject}` has no authority key identifier, so its issuer cannot be found")]
    NoAuthorityKeyIdentifier { subject: String },
    #[error(
        "`{subject}` is not valid now: valid from {not_before} to {not_after}, and it is {now}"
    )]
    OutsideValidity {
        subject: String,
        not_before: String,
        not_after: String,
        now: String,
    },
    #[error("the signature on `{subject}` does not verify with `{issuer}`'s key")]
    BadSignature { subject: String, issuer: String },
    #[error("`{subject}` names `{claimed}` as its issuer, but the CA with its authority key identifier is `{ca}`")]
    IssuerNameMismatch {
        subject: String,
        claimed: String,
        ca: String,
    },
    #[error("the CA that issued `{subject}` is stored in a state that cannot be trusted ({reason}); an administrator must delete the bad CA row")]
    IssuerQuarantined { subject: String, reason: String },
    #[error("the chain is longer than {MAX_CHAIN_CAS} CAs")]
    TooLong,
    #[error(
        "`{subject}` is not for client authentication (its extended key usage lacks clientAuth)"
    )]
    NotForClientAuth { subject: String },
}

/// Builds and checks the chain of `leaf_der` through `store` at `now`.
pub fn verify_chain<I: Issuers>(
    leaf_der: &[u8],
    store: &I,
    now: OffsetDateTime,
) -> Result<VerifiedChain<I::Ca>, ChainError> {
    let leaf = CertInfo::from_der(leaf_der).map_err(|e| ChainError::Malformed(e.to_string()))?;
    check_time(&leaf, now)?;
    if let Some(ekus) = &leaf.extended_key_usage {
        if !ekus
            .iter()
            .any(|e| e == OID_EKU_CLIENT_AUTH || e == OID_EKU_ANY)
        {
            return Err(ChainError::NotForClientAuth {
                subject: leaf.subject.clone(),
            });
        }
    }
    let mut cas: Vec<I::Ca> = Vec::new();
    loop {
        let current = cas.last().map_or(&leaf, ChainCa::cert);
        let issuer = issuer_of(current, store)?;
        verify_signature(current, issuer.cert())?;
        check_time(issuer.cert(), now)?;
        let done = issuer.is_root();
        cas.push(issuer.clone());
        if done {
            return Ok(VerifiedChain { leaf, cas });
        }
        if cas.len() >= MAX_CHAIN_CAS {
            return Err(ChainError::TooLong);
        }
    }
}

/// The CA that issued `current`: found by its AKI, and named by its issuer Name.
fn issuer_of<'a, I: Issuers>(current: &CertInfo, store: &'a I) -> Result<&'a I::Ca, ChainError> {
    let Some(aki) = current.authority_key_identifier.as_deref().map(hex) else {
        return Err(ChainError::NoAuthorityKeyIdentifier {
            subject: current.subject.clone(),
        });
    };
    let issuer = match store.issuer(&aki) {
        Lookup::Found(issuer) => issuer,
        Lookup::Quarantined { reason } => {
            return Err(ChainError::IssuerQuarantined {
                subject: current.subject.clone(),
                reason: reason.to_owned(),
            })
        }
        Lookup::Unknown => {
            return Err(ChainError::UnknownIssuer {
                subject: current.subject.clone(),
                aki,
            })
        }
    };
    // Name chaining: AKI = SKI and a good signature are not enough, or a CA's key could
    // vouch for another CA's name (and that CA's issuer rules and bindings).
    if !same_name(&current.issuer_der, &issuer.cert().subject_der) {
        return Err(ChainError::IssuerNameMismatch {
            subject: current.subject.clone(),
            claimed: current.issuer.clone(),
            ca: issuer.cert().subject.clone(),
        });
    }
    Ok(issuer)
}

fn check_time(cert: &CertInfo, now: OffsetDateTime) -> Result<(), ChainError> {
    if cert.is_valid_at(now) {
        return Ok(());
    }
    Err(ChainError::OutsideValidity {
        subject: cert.subject.clone(),
        not_before: rfc3339(cert.not_before),
        not_after: rfc3339(cert.not_after),
        now: rfc3339(now),
    })
}

fn verify_signature(cert: &CertInfo, issuer: &CertInfo) -> Result<(), ChainError> {
    let bad = || ChainError::BadSignature {
        subject: cert.subject.clone(),
        issuer: issuer.subject.clone(),
    };
    let (_, parsed) = X509Certificate::from_der(&cert.der).map_err(|_| bad())?;
    let (_, issuer_parsed) = X509Certificate::from_der(&issuer.der).map_err(|_| bad())?;
    parsed
        .verify_signature(Some(issuer_parsed.public_key()))
        .map_err(|_| bad())
}
