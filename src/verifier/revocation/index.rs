//! One CRL, verified against its CA and indexed: the revoked serials in a hash map, so a lookup
//! costs the same however large the CRL.

use std::collections::HashMap;

use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;
use x509_parser::oid_registry::{Oid, OID_X509_EXT_DELTA_CRL_INDICATOR};
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::crl::{verify_crl_signature, CrlError};
use crate::verifier::trust::TrustedCa;

/// Microsoft's "Next CRL Publish" extension: when a fresher CRL will be out.
const OID_NEXT_CRL_PUBLISH: &[u64] = &[1, 3, 6, 1, 4, 1, 311, 21, 4];
/// CRLReason removeFromCRL: a delta CRL un-revokes a certificate that was on hold.
pub const REASON_REMOVE_FROM_CRL: u8 = 8;

/// What a CRL says of one serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The CRLReason, if given.
    pub reason: Option<u8>,
}

/// A verified, indexed CRL.
#[derive(Debug)]
pub struct RevocationList {
    pub number: BigUint,
    /// For a delta CRL, the base CRL number it completes.
    pub delta_of: Option<BigUint>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub next_publish: Option<OffsetDateTime>,
    entries: HashMap<Box<[u8]>, Entry>,
}

impl RevocationList {
    /// Parses `der`, checks it was issued and signed by `ca` (name, AKI = SKI, signature), and
    /// indexes its entries.
    pub fn verify_and_index(der: &[u8], ca: &TrustedCa) -> Result<Self, CrlError> {
        verify_crl_signature(der, &ca.info.der)?;
        let (_, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| CrlError::Malformed(e.to_string()))?;
        let number = crl
            .crl_number()
            .cloned()
            .ok_or_else(|| CrlError::Malformed("the CRL has no CRL number".into()))?;
        let delta_of = match crl
            .tbs_cert_list
            .find_extension(&OID_X509_EXT_DELTA_CRL_INDICATOR)
        {
            Some(ext) => Some(
                x509_parser::der_parser::der::parse_der_integer(ext.value)
                    .ok()
                    .and_then(|(_, n)| n.as_biguint().ok())
                    .ok_or(CrlError::BadDeltaIndicator)?,
            ),
            None => None,
        };
        let next_publish_oid = Oid::from(OID_NEXT_CRL_PUBLISH).ok();
        let next_publish = next_publish_oid
            .and_then(|oid| crl.tbs_cert_list.find_extension(&oid).map(|ext| ext.value))
            .and_then(parse_time);
        let mut entries = HashMap::with_capacity(crl.tbs_cert_list.revoked_certificates.len());
        for revoked in crl.iter_revoked_certificates() {
            entries.insert(
                normalise(revoked.raw_serial()).into(),
                Entry {
                    reason: revoked.reason_code().map(|(_, code)| code.0),
                },
            );
        }
        Ok(Self {
            number,
            delta_of,
            this_update: crl.last_update().to_datetime(),
            next_update: crl.next_update().map(|t| t.to_datetime()),
            next_publish,
            entries,
        })
    }

    /// What the CRL lists for a serial (DER INTEGER content octets).
    pub fn lookup(&self, serial: &[u8]) -> Option<Entry> {
        self.entries.get(normalise(serial)).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Until when this CRL may be used without fetching again.
    pub fn fresh_until(&self) -> Option<OffsetDateTime> {
        match (self.next_update, self.next_publish) {
            (Some(next), Some(publish)) => Some(next.min(publish)),
            (next, publish) => next.or(publish),
        }
    }
}

/// Serials compare as numbers: drop the sign-padding zero byte.
fn normalise(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

/// The Next CRL Publish value is a Time (UTCTime or GeneralizedTime).
fn parse_time(der: &[u8]) -> Option<OffsetDateTime> {
    x509_parser::time::ASN1Time::from_der(der)
        .ok()
        .map(|(_, t)| t.to_datetime())
}
