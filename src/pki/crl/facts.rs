//! Parsing one CRL, base or delta, into facts to show (issuer, numbers, dates, every entry), and
//! checking who signed it, with x509-parser. This is the path for looking at a CRL: `certauth
//! demo` and `certauth-verifier crl`; revocation checks index CRLs with [`super::index`].

use time::OffsetDateTime;
use x509_parser::oid_registry::OID_X509_EXT_DELTA_CRL_INDICATOR;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::{CrlError, Reason};
use crate::x509::{dn::entra_dn, hex, subject_key_identifier};

/// One revoked serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    /// Lowercase hex of the serial's DER content octets (big-endian).
    pub serial: String,
    pub revoked_at: OffsetDateTime,
    pub reason: Option<Reason>,
}

/// The facts of one parsed CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFacts {
    /// Issuer in Entra's DN format.
    pub issuer: String,
    /// Issuer Name, DER.
    pub issuer_der: Vec<u8>,
    /// The authorityKeyIdentifier, lowercase hex.
    pub authority_key_id: Option<String>,
    /// CRLNumber, decimal.
    pub number: Option<String>,
    /// For a delta CRL, the base CRL number it completes, decimal.
    pub delta_of: Option<String>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
    pub revoked: Vec<RevokedSerial>,
}

impl CrlFacts {
    pub fn is_delta(&self) -> bool {
        self.delta_of.is_some()
    }
}

/// Parses a DER CRL. It does not check the signature: see [`verify_crl_signature`].
pub fn parse_crl(der: &[u8]) -> Result<CrlFacts, CrlError> {
    let (_, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| CrlError::Malformed(e.to_string()))?;
    let delta_of = match crl
        .tbs_cert_list
        .find_extension(&OID_X509_EXT_DELTA_CRL_INDICATOR)
    {
        Some(ext) => Some(decimal_integer(ext.value).ok_or(CrlError::BadDeltaIndicator)?),
        None => None,
    };
    let authority_key_id = crl
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| hex(k.0))
            }
            _ => None,
        });
    let revoked = crl
        .iter_revoked_certificates()
        .map(|entry| RevokedSerial {
            serial: hex(entry.raw_serial()),
            revoked_at: entry.revocation_date.to_datetime(),
            reason: entry.reason_code().map(|(_, code)| Reason(code.0)),
        })
        .collect();
    Ok(CrlFacts {
        issuer: entra_dn(crl.issuer()),
        issuer_der: crl.issuer().as_raw().to_vec(),
        authority_key_id,
        number: crl.crl_number().map(ToString::to_string),
        delta_of,
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        revoked,
    })
}

/// Checks that `ca_der` issued the CRL: same name, AKI equal to the CA's SKI, valid signature.
pub fn verify_crl_signature(crl_der: &[u8], ca_der: &[u8]) -> Result<(), CrlError> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der)
        .map_err(|e| CrlError::Malformed(e.to_string()))?;
    let (_, ca) =
        X509Certificate::from_der(ca_der).map_err(|e| CrlError::BadIssuer(e.to_string()))?;
    if crl.issuer().as_raw() != ca.subject().as_raw() {
        return Err(CrlError::WrongIssuer {
            crl_issuer: entra_dn(crl.issuer()),
            ca_subject: entra_dn(ca.subject()),
        });
    }
    let facts = parse_crl(crl_der)?;
    if let (Some(crl_aki), Some(ca_ski)) = (&facts.authority_key_id, subject_key_identifier(&ca)) {
        if *crl_aki != hex(ca_ski) {
            return Err(CrlError::KeyIdentifierMismatch {
                crl: crl_aki.clone(),
                ca: hex(ca_ski),
            });
        }
    }
    crl.verify_signature(ca.public_key())
        .map_err(|_| CrlError::BadSignature)
}

fn decimal_integer(der: &[u8]) -> Option<String> {
    let (_, integer) = x509_parser::der_parser::der::parse_der_integer(der).ok()?;
    integer.as_biguint().ok().map(|n| n.to_string())
}
