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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct Ca {
        info: CertInfo,
        root: bool,
    }

    impl ChainCa for Ca {
        fn cert(&self) -> &CertInfo {
            &self.info
        }
        fn is_root(&self) -> bool {
            self.root
        }
    }

    /// The CAs by SKI, and the quarantined SKIs.
    struct Store(Vec<Ca>, Vec<String>);

    impl Issuers for Store {
        type Ca = Ca;
        fn issuer(&self, ski: &str) -> Lookup<'_, Ca> {
            if self.1.iter().any(|q| q == ski) {
                return Lookup::Quarantined { reason: "bad row" };
            }
            self.0
                .iter()
                .find(|ca| {
                    ca.info
                        .subject_key_identifier
                        .as_deref()
                        .map(hex)
                        .as_deref()
                        == Some(ski)
                })
                .map_or(Lookup::Unknown, Lookup::Found)
        }
    }

    fn name(cn: &str) -> rcgen::DistinguishedName {
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::OrganizationName, "Woodgrove Bank");
        name.push(rcgen::DnType::CommonName, cn);
        name
    }

    fn ca_params(cn: &str) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = name(cn);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
    }

    /// A root, and a leaf it issued.
    fn root_and_leaf(issuer_cn_on_leaf: &str) -> (Store, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let root_params = ca_params("Woodgrove Root CA");
        let root = root_params.self_signed(&key).unwrap();
        let root = CertInfo::from_der(root.der()).unwrap();
        // The issuer as the leaf names it: the root's key and SKI, under a name of choice.
        let mut named = ca_params(issuer_cn_on_leaf);
        named.key_identifier_method =
            rcgen::KeyIdMethod::PreSpecified(root.subject_key_identifier.clone().unwrap());
        let issuer = rcgen::Issuer::new(named, &key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::default();
        leaf.distinguished_name = name("Alice");
        leaf.use_authority_key_identifier_extension = true;
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let ca = Ca {
            info: root,
            root: true,
        };
        (Store(vec![ca], vec![]), leaf.der().to_vec())
    }

    #[test]
    fn a_chain_is_built_to_a_root_by_key_identifier_and_name() {
        let (store, leaf) = root_and_leaf("Woodgrove Root CA");
        let chain = verify_chain(&leaf, &store, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(chain.leaf().subject, "O=Woodgrove Bank,CN=Alice");
        assert_eq!(chain.cas().len(), 1);
        assert_eq!(chain.links().count(), 1);
    }

    #[test]
    fn trap_the_right_key_under_another_name_is_not_its_issuer() {
        let (store, leaf) = root_and_leaf("Woodgrove Issuing CA");
        let err = verify_chain(&leaf, &store, OffsetDateTime::now_utc()).unwrap_err();
        assert!(
            matches!(err, ChainError::IssuerNameMismatch { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_quarantined_issuer_fails_closed_and_an_unknown_one_is_unknown() {
        let (mut store, leaf) = root_and_leaf("Woodgrove Root CA");
        let ski = hex(store.0[0].info.subject_key_identifier.as_deref().unwrap());
        store.1.push(ski);
        let err = verify_chain(&leaf, &store, OffsetDateTime::now_utc()).unwrap_err();
        assert!(
            matches!(err, ChainError::IssuerQuarantined { .. }),
            "{err:?}"
        );
        let empty = Store(vec![], vec![]);
        let err = verify_chain(&leaf, &empty, OffsetDateTime::now_utc()).unwrap_err();
        assert!(matches!(err, ChainError::UnknownIssuer { .. }), "{err:?}");
    }
}
