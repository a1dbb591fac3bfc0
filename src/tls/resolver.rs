//! Which certificate to present: the client-certificate resolver.
//!
//! rustls hands over the server's acceptable CA names, which are usually *root* subjects, so each
//! candidate's whole chain is matched, not only the leaf's issuer. A candidate whose chain could
//! not be completed up to a self-signed root is offered anyway (the server decides), since tokens
//! rarely carry their intermediates. Every refusal is recorded so the user learns why.

use std::sync::{Arc, Mutex};

use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::signing_key::TokenSigningKey;
use crate::x509::cert_info::CertInfo;
use crate::x509::dn::entra_dn;

/// Chains are at most this many CAs long (Entra's limit).
const MAX_CHAIN: usize = 10;

/// A certificate on a token, ready to sign.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// For messages: the certificate and its token.
    pub description: String,
    pub certified: Arc<CertifiedKey>,
    pub key: TokenSigningKey,
    /// What the chain tells of the server's CA names.
    chain: ChainNames,
}

/// The names along a certificate's chain, to match against a server's acceptable CA names.
#[derive(Debug, Clone)]
pub struct ChainNames {
    /// Subject and issuer Names (DER) of every certificate in the chain, leaf first.
    names: Vec<Vec<u8>>,
    /// Whether the chain reaches a self-signed root.
    complete: bool,
    /// The top of the known chain, for messages.
    pub top_issuer: String,
}

impl ChainNames {
    /// `leaf`'s chain through whatever of its issuers `pool` holds.
    pub fn new(leaf: &CertInfo, pool: &[CertInfo]) -> Self {
        Self::of(leaf, &build_chain(leaf, pool))
    }

    fn of(leaf: &CertInfo, chain: &[&CertInfo]) -> Self {
        let complete = chain
            .last()
            .is_some_and(|top| top.subject_der == top.issuer_der);
        let mut names = Vec::new();
        for cert in chain {
            names.push(cert.subject_der.clone());
            names.push(cert.issuer_der.clone());
        }
        let top_issuer = chain
            .last()
            .map_or_else(|| leaf.issuer.clone(), |c| c.issuer.clone());
        Self {
            names,
            complete,
            top_issuer,
        }
    }

    /// Whether the server's CA names (`hints`, DER) admit this chain; `None` when it can't be
    /// told (the chain stops short of a root and no name along it matched). No names admit all.
    pub fn fits(&self, hints: &[&[u8]]) -> Option<bool> {
        if hints.is_empty() {
            return Some(true);
        }
        if self
            .names
            .iter()
            .any(|name| hints.contains(&name.as_slice()))
        {
            return Some(true);
        }
        self.complete.then_some(false)
    }

    /// Why the server would not take the certificate `description` names.
    pub fn refusal(&self, description: &str) -> String {
        format!(
            "{description}: the server does not accept certificates from `{}`",
            self.top_issuer
        )
    }
}

impl ClientIdentity {
    /// `leaf` with whatever of its issuers `pool` holds; the self-signed root is not sent.
    pub fn new(
        description: String,
        leaf: &CertInfo,
        pool: &[CertInfo],
        key: TokenSigningKey,
    ) -> Self {
        let chain = build_chain(leaf, pool);
        // The leaf and its intermediates; the server has the root already.
        let sent: Vec<CertificateDer<'static>> = chain
            .iter()
            .enumerate()
            .filter(|(i, c)| *i == 0 || c.subject_der != c.issuer_der)
            .map(|(_, c)| CertificateDer::from(c.der.clone()))
            .collect();
        let certified = Arc::new(CertifiedKey::new(sent, Arc::new(key.clone())));
        Self {
            description,
            certified,
            key,
            chain: ChainNames::of(leaf, &chain),
        }
    }
}

/// Follows issuers from `leaf` through `pool`, by AKI = SKI where present, else by name.
fn build_chain<'a>(leaf: &'a CertInfo, pool: &'a [CertInfo]) -> Vec<&'a CertInfo> {
    let mut chain = vec![leaf];
    while chain.len() <= MAX_CHAIN {
        let current = chain[chain.len() - 1];
        if current.subject_der == current.issuer_der && chain.len() > 1 {
            break;
        }
        let issuer = pool.iter().find(|candidate| {
            candidate.subject_der == current.issuer_der
                && match (
                    &current.authority_key_identifier,
                    &candidate.subject_key_identifier,
                ) {
                    (Some(aki), Some(ski)) => aki == ski,
                    _ => true,
                }
                && !chain.iter().any(|c| c.der == candidate.der)
        });
        match issuer {
            Some(issuer) => chain.push(issuer),
            None => break,
        }
    }
    chain
}

/// What happened when the server asked for a certificate.
#[derive(Debug, Clone, Default)]
pub struct ResolverReport {
    /// The server's acceptable CA names, as DN strings.
    pub acceptable_cas: Vec<String>,
    /// Why each candidate was not offered.
    pub refusals: Vec<String>,
    /// The identity offered, by description.
    pub offered: Option<String>,
    /// Whether the server asked for a certificate at all.
    pub asked: bool,
}

/// Offers the first candidate that fits the server's CA names and signature schemes.
#[derive(Debug)]
pub struct TokenCertResolver {
    identities: Vec<ClientIdentity>,
    report: Mutex<ResolverReport>,
}

impl TokenCertResolver {
    pub fn new(identities: Vec<ClientIdentity>) -> Self {
        Self {
            identities,
            report: Mutex::new(ResolverReport::default()),
        }
    }

    pub fn report(&self) -> ResolverReport {
        self.report.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl ResolvesClientCert for TokenCertResolver {
    fn resolve(&self, hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let mut report = ResolverReport {
            acceptable_cas: hints.iter().map(|h| dn_string(h)).collect(),
            asked: true,
            ..ResolverReport::default()
        };
        let mut chosen = None;
        for identity in &self.identities {
            match identity.chain.fits(hints) {
                Some(false) => {
                    report
                        .refusals
                        .push(identity.chain.refusal(&identity.description));
                    continue;
                }
                None => tracing::info!(
                    certificate = %identity.description,
                    "its chain could not be completed, so the server's CA names can't be checked; offering it"
                ),
                Some(true) => {}
            }
            if !identity.key.schemes().iter().any(|s| schemes.contains(s)) {
                report.refusals.push(format!(
                    "{}: the server accepts none of the signature schemes the token can make ({:?})",
                    identity.description,
                    identity.key.schemes()
                ));
                continue;
            }
            report.offered = Some(identity.description.clone());
            chosen = Some(identity.certified.clone());
            break;
        }
        if let Ok(mut shared) = self.report.lock() {
            *shared = report;
        }
        chosen
    }

    fn has_certs(&self) -> bool {
        !self.identities.is_empty()
    }
}

/// A DER Name as Entra writes DNs.
pub fn dn_string(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, name)) => entra_dn(&name),
        Err(_) => format!("(unparsable name {})", crate::x509::hex(der)),
    }
}
