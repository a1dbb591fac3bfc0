//! A certificate's chain through a pool of its issuers, and the names along it that a server's
//! acceptable CA names are matched against. Servers usually name *root* subjects, so the whole
//! chain is matched, not only the leaf's issuer.

use super::cert_info::CertInfo;

/// Chains are at most this many CAs long (Entra's limit).
const MAX_CHAIN: usize = 10;

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

    pub(crate) fn of(leaf: &CertInfo, chain: &[&CertInfo]) -> Self {
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

/// Follows issuers from `leaf` through `pool`, by AKI = SKI where present, else by name.
pub(crate) fn build_chain<'a>(leaf: &'a CertInfo, pool: &'a [CertInfo]) -> Vec<&'a CertInfo> {
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
