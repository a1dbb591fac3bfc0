//! One CRL, verified against its CA and indexed: the revoked serials in a hash map, so a lookup
//! costs the same however large the CRL.

use std::collections::HashMap;

use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;
use x509_parser::prelude::{AlgorithmIdentifier, FromDer, X509Certificate};

use super::{der_walk, CrlError};
use crate::x509::cert_info::CertInfo;
use crate::x509::hex;

// Extension OIDs, as their DER content octets.
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
const OID_AUTHORITY_KEY_IDENTIFIER: &[u8] = &[0x55, 0x1d, 0x23];
/// Microsoft's "Next CRL Publish" (1.3.6.1.4.1.311.21.4): when a fresher CRL will be out.
const OID_NEXT_CRL_PUBLISH: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x15, 0x04];
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
    /// SHA-256 of the signed TBSCertList, to tell two CRLs with one number apart.
    pub tbs_sha256: [u8; 32],
    entries: HashMap<Box<[u8]>, Entry>,
}

impl RevocationList {
    /// Parses `der`, checks it was issued and signed by the CA certificate `ca` (name, AKI = SKI,
    /// signature), and indexes its entries in one pass over the DER.
    pub fn verify_and_index(der: &[u8], ca: &CertInfo) -> Result<Self, CrlError> {
        let malformed = |e: der_walk::DerError| CrlError::Malformed(e.to_string());
        let raw = der_walk::split(der).map_err(malformed)?;
        if raw.issuer != ca.subject_der.as_slice() {
            return Err(CrlError::WrongIssuer {
                crl_issuer: name_of(raw.issuer),
                ca_subject: ca.subject.clone(),
            });
        }
        if raw.tbs_signature_algorithm != raw.signature_algorithm {
            return Err(CrlError::Malformed(
                "the two signature algorithms differ".into(),
            ));
        }
        let CrlExtensions {
            number,
            delta_of,
            next_publish,
            authority_key_id,
        } = CrlExtensions::read(raw.extensions)?;
        let ca_ski = ca.subject_key_identifier.as_deref();
        match (authority_key_id, ca_ski) {
            (Some(aki), Some(ski)) if aki != ski => {
                return Err(CrlError::KeyIdentifierMismatch {
                    crl: hex(aki),
                    ca: hex(ski),
                })
            }
            (None, _) => {
                return Err(CrlError::Malformed(
                    "the CRL has no authority key identifier, so its CA cannot be checked".into(),
                ))
            }
            _ => {}
        }
        verify_signature(&raw, ca)?;
        let number =
            number.ok_or_else(|| CrlError::Malformed("the CRL has no CRL number".into()))?;
        let this_update = parse_time(raw.this_update)
            .ok_or_else(|| CrlError::Malformed("thisUpdate is not a time".into()))?;
        let next_update = match raw.next_update {
            Some(time) => Some(
                parse_time(time)
                    .ok_or_else(|| CrlError::Malformed("nextUpdate is not a time".into()))?,
            ),
            None => None,
        };
        let mut entries = HashMap::new();
        for entry in der_walk::revoked_entries(raw.revoked) {
            let entry = entry.map_err(malformed)?;
            entries.insert(
                normalise(entry.serial).into(),
                Entry {
                    reason: entry.reason,
                },
            );
        }
        let mut tbs_sha256 = [0; 32];
        tbs_sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, raw.tbs).as_ref());
        Ok(Self {
            number,
            delta_of,
            this_update,
            next_update,
            next_publish,
            tbs_sha256,
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

/// The crlExtensions the index keeps or checks.
struct CrlExtensions<'a> {
    number: Option<BigUint>,
    delta_of: Option<BigUint>,
    next_publish: Option<OffsetDateTime>,
    authority_key_id: Option<&'a [u8]>,
}

impl<'a> CrlExtensions<'a> {
    /// Reads crlExtensions' content; an unknown critical extension refuses the CRL.
    fn read(extensions: &'a [u8]) -> Result<Self, CrlError> {
        let mut read = Self {
            number: None,
            delta_of: None,
            next_publish: None,
            authority_key_id: None,
        };
        for ext in der_walk::extensions(extensions) {
            let ext = ext.map_err(|e| CrlError::Malformed(e.to_string()))?;
            match ext.oid {
                OID_CRL_NUMBER => read.number = Some(integer(ext.value)?),
                OID_DELTA_CRL_INDICATOR => {
                    read.delta_of =
                        Some(integer(ext.value).map_err(|_| CrlError::BadDeltaIndicator)?)
                }
                OID_AUTHORITY_KEY_IDENTIFIER => read.authority_key_id = key_identifier(ext.value),
                OID_NEXT_CRL_PUBLISH => read.next_publish = parse_time(ext.value),
                _ if ext.critical => {
                    return Err(CrlError::Malformed(
                        "the CRL has a critical extension certauth does not understand".into(),
                    ))
                }
                _ => {}
            }
        }
        Ok(read)
    }
}

/// Serials compare as numbers: drop the sign-padding zero byte.
fn normalise(serial: &[u8]) -> &[u8] {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    }
}

/// A Time (UTCTime or GeneralizedTime) TLV.
fn parse_time(der: &[u8]) -> Option<OffsetDateTime> {
    x509_parser::time::ASN1Time::from_der(der)
        .ok()
        .map(|(_, t)| t.to_datetime())
}

/// An INTEGER TLV as a non-negative number.
fn integer(der: &[u8]) -> Result<BigUint, CrlError> {
    let item = der_walk::tlv(der).map_err(|e| CrlError::Malformed(e.to_string()))?;
    if item.tag != der_walk::TAG_INTEGER || item.content.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(CrlError::Malformed(
            "a CRL number is not a non-negative INTEGER".into(),
        ));
    }
    Ok(BigUint::from_bytes_be(item.content))
}

/// `AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }`
fn key_identifier(der: &[u8]) -> Option<&[u8]> {
    let sequence = der_walk::tlv(der).ok()?;
    let first = der_walk::tlv(sequence.content).ok()?;
    (first.tag == 0x80).then_some(first.content)
}

fn name_of(der: &[u8]) -> String {
    x509_parser::x509::X509Name::from_der(der)
        .map(|(_, name)| crate::x509::dn::entra_dn(&name))
        .unwrap_or_else(|_| hex(der))
}

/// Checks the signature over the TBSCertList with the CA's public key.
fn verify_signature(raw: &der_walk::RawCrl<'_>, ca: &CertInfo) -> Result<(), CrlError> {
    let (_, ca_cert) =
        X509Certificate::from_der(&ca.der).map_err(|e| CrlError::BadIssuer(e.to_string()))?;
    let (_, algorithm) = AlgorithmIdentifier::from_der(raw.signature_algorithm)
        .map_err(|e| CrlError::Malformed(e.to_string()))?;
    let (_, signature) = x509_parser::asn1_rs::BitString::from_der(raw.signature)
        .map_err(|e| CrlError::Malformed(e.to_string()))?;
    x509_parser::verify::verify_signature(ca_cert.public_key(), &algorithm, &signature, raw.tbs)
        .map_err(|_| CrlError::BadSignature)
}
