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

use super::signing_key::TokenSigningKey;
use crate::x509::cert_info::CertInfo;
use crate::x509::chain::{build_chain, ChainNames};
use crate::x509::dn::dn_string;

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
