//! The tenant's certificate authorities, and chains built through them.
//!
//! CAs come in Graph's shapes (`certificateAuthorityDetail` of the PKI store, or the classic
//! `certificateAuthority`), or as plain certificate files. Chains are built by the shared
//! `pki::chain` (AKI = SKI as Entra does, name chaining, signatures, validity) through the
//! [`TrustStore`]: issuer rules, `<I>` bindings and the log trust the names it checks. A CA stored
//! in a state that cannot be trusted is quarantined, and chains through it fail closed. This
//! module says which Entra error code a chain that fails gets.

use std::path::Path;

use base64::Engine;
use serde::Deserialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::outcome::ErrorCode;
use crate::pki::chain::{self, ChainCa, ChainError, Issuers, Lookup};
use crate::x509::cert_info::CertInfo;
use crate::x509::hex;

/// A CA the tenant trusts.
#[derive(Debug, Clone)]
pub struct TrustedCa {
    pub info: CertInfo,
    pub is_root: bool,
    pub crl_url: Option<String>,
    pub delta_crl_url: Option<String>,
    pub display_name: Option<String>,
    pub issuer_hint: bool,
    /// The SKI, lowercase hex (every trusted CA has one).
    pub ski: String,
}

/// Why a CA or a CA list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustStoreError {
    #[error("{source_name}: {field}: {message}")]
    Invalid {
        source_name: String,
        field: String,
        message: String,
    },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("a CA cannot be added while `{subject}` has expired (on {expired}); delete the expired CA first")]
    ExpiredCaPresent { subject: String, expired: String },
    #[error("`{subject}` is already a trusted CA")]
    Duplicate { subject: String },
}

/// Graph's `certificateAuthorityDetail` and classic `certificateAuthority` in one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaJson {
    certificate: String,
    #[serde(default)]
    certificate_authority_type: Option<CaType>,
    #[serde(default)]
    is_root_authority: Option<bool>,
    #[serde(default)]
    certificate_revocation_list_url: Option<String>,
    #[serde(default, alias = "deltacertificateRevocationListUrl")]
    delta_certificate_revocation_list_url: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    is_issuer_hint_enabled: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum CaType {
    Root,
    Intermediate,
}

/// The CAs a policy decision trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    cas: Vec<TrustedCa>,
    /// SKIs (lowercase hex) of stored CAs that could not take their place, with why: chains
    /// through them fail closed until an admin deletes the bad row.
    quarantined: Vec<(String, String)>,
}

impl TrustStore {
    pub fn cas(&self) -> &[TrustedCa] {
        &self.cas
    }

    /// The CA whose SKI is `ski` (lowercase hex).
    pub fn by_ski(&self, ski: &str) -> Option<&TrustedCa> {
        self.cas.iter().find(|ca| ca.ski.eq_ignore_ascii_case(ski))
    }

    /// Loads CAs from a JSON file (a Graph list: an array, or `{"value": [...]}` or
    /// `{"certificateAuthorities": [...]}`), a PEM or DER certificate file, or a directory of them.
    pub fn load(path: &Path) -> Result<Self, TrustStoreError> {
        let mut store = Self::default();
        let read_error = |e: std::io::Error| TrustStoreError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if path.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .map_err(read_error)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| matches!(e, "json" | "pem" | "crt" | "cer" | "der"))
                })
                .collect();
            files.sort();
            for file in files {
                store.load_file(&file)?;
            }
        } else {
            store.load_file(path)?;
        }
        Ok(store)
    }

    fn load_file(&mut self, path: &Path) -> Result<(), TrustStoreError> {
        let bytes = std::fs::read(path).map_err(|e| TrustStoreError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e == "json") {
            for ca in parse_json(&bytes, &name)? {
                self.insert(ca, &name)?;
            }
            return Ok(());
        }
        for (i, der) in certificates_in(&bytes).into_iter().enumerate() {
            let info = CertInfo::from_der(&der)
                .map_err(|e| invalid(&name, &format!("certificate {i}"), e.to_string()))?;
            let is_root = info.subject_der == info.issuer_der;
            let ca = make_ca(
                info,
                is_root,
                None,
                None,
                None,
                false,
                &name,
                &format!("certificate {i}"),
            )?;
            self.insert(ca, &name)?;
        }
        Ok(())
    }

    /// Parses Graph JSON into a store.
    pub fn from_json(json: &[u8], source_name: &str) -> Result<Self, TrustStoreError> {
        let mut store = Self::default();
        for ca in parse_json(json, source_name)? {
            store.insert(ca, source_name)?;
        }
        Ok(store)
    }

    fn insert(&mut self, ca: TrustedCa, source_name: &str) -> Result<(), TrustStoreError> {
        if self.cas.iter().any(|c| c.info.sha256 == ca.info.sha256) {
            return Err(TrustStoreError::Duplicate {
                subject: ca.info.subject,
            });
        }
        if let Some(other) = self.cas.iter().find(|c| c.ski == ca.ski) {
            return Err(invalid(
                source_name,
                &ca.info.subject,
                format!(
                    "its subject key identifier {} is also `{}`'s",
                    ca.ski, other.info.subject
                ),
            ));
        }
        self.cas.push(ca);
        Ok(())
    }

    /// Adds a CA read back from storage. One that conflicts with a CA already in (the same
    /// certificate or SKI) is refused, and its SKI quarantined: sign-ins through either fail
    /// closed until the bad row is gone.
    pub fn insert_stored(&mut self, ca: TrustedCa) -> Result<(), TrustStoreError> {
        let ski = ca.ski.clone();
        self.insert(ca, "database").inspect_err(|e| {
            self.quarantined.push((ski, e.to_string()));
        })
    }

    /// Why chains through the CA with this SKI fail closed, if they do.
    pub fn quarantined(&self, ski: &str) -> Option<&str> {
        self.quarantined
            .iter()
            .find(|(q, _)| q.eq_ignore_ascii_case(ski))
            .map(|(_, reason)| reason.as_str())
    }

    /// Adds a CA as an admin upload does: refused while any trusted CA has expired.
    pub fn add(&mut self, ca: TrustedCa, now: OffsetDateTime) -> Result<(), TrustStoreError> {
        if let Some(expired) = self.cas.iter().find(|c| c.info.not_after < now) {
            return Err(TrustStoreError::ExpiredCaPresent {
                subject: expired.info.subject.clone(),
                expired: expired.info.not_after.date().to_string(),
            });
        }
        self.insert(ca, "upload")
    }
}

fn invalid(source_name: &str, field: &str, message: String) -> TrustStoreError {
    TrustStoreError::Invalid {
        source_name: source_name.to_owned(),
        field: field.to_owned(),
        message,
    }
}

fn parse_json(json: &[u8], source_name: &str) -> Result<Vec<TrustedCa>, TrustStoreError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Document {
        List(Vec<CaJson>),
        Value {
            value: Vec<CaJson>,
        },
        Cas {
            #[serde(rename = "certificateAuthorities")]
            certificate_authorities: Vec<CaJson>,
        },
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let document: Document = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        invalid(
            source_name,
            "(document)",
            format!(
                "not a list of certificate authorities in Graph's shape: {}",
                e.inner()
            ),
        )
    })?;
    let entries = match document {
        Document::List(list) | Document::Value { value: list } => list,
        Document::Cas {
            certificate_authorities,
        } => certificate_authorities,
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = format!("[{i}]");
            let der = base64::engine::general_purpose::STANDARD
                .decode(entry.certificate.trim())
                .map_err(|e| {
                    invalid(
                        source_name,
                        &format!("{at}.certificate"),
                        format!("not base64: {e}"),
                    )
                })?;
            let info = CertInfo::from_der(&der)
                .map_err(|e| invalid(source_name, &format!("{at}.certificate"), e.to_string()))?;
            let is_root = match (entry.certificate_authority_type, entry.is_root_authority) {
                (Some(kind), _) => kind == CaType::Root,
                (None, Some(root)) => root,
                (None, None) => {
                    return Err(invalid(
                        source_name,
                        &format!("{at}.certificateAuthorityType"),
                        "say whether the CA is a root or an intermediate".into(),
                    ))
                }
            };
            make_ca(
                info,
                is_root,
                entry.certificate_revocation_list_url,
                entry.delta_certificate_revocation_list_url,
                entry.display_name,
                entry.is_issuer_hint_enabled.unwrap_or(false),
                source_name,
                &at,
            )
        })
        .collect()
}

#[allow(
    clippy::too_many_arguments,
    reason = "one place builds a TrustedCa from its parts"
)]
fn make_ca(
    info: CertInfo,
    is_root: bool,
    crl_url: Option<String>,
    delta_crl_url: Option<String>,
    display_name: Option<String>,
    issuer_hint: bool,
    source_name: &str,
    at: &str,
) -> Result<TrustedCa, TrustStoreError> {
    let fail =
        |field: &str, message: String| invalid(source_name, &format!("{at}.{field}"), message);
    let (_, parsed) =
        X509Certificate::from_der(&info.der).map_err(|e| fail("certificate", e.to_string()))?;
    let is_ca = parsed
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(fail(
            "certificate",
            format!(
                "`{}` is not a CA certificate (basicConstraints cA is not set)",
                info.subject
            ),
        ));
    }
    let Some(ski) = info.subject_key_identifier.as_deref().map(hex) else {
        return Err(fail(
            "certificate",
            format!(
                "`{}` has no subject key identifier; chains are built by SKI and AKI",
                info.subject
            ),
        ));
    };
    if !is_root && info.authority_key_identifier.as_deref().map(hex) == Some(ski.clone()) {
        return Err(fail(
            "certificateAuthorityType",
            format!("`{}` is self-issued, so it must be a root", info.subject),
        ));
    }
    for (field, url) in [
        ("certificateRevocationListUrl", &crl_url),
        ("deltaCertificateRevocationListUrl", &delta_crl_url),
    ] {
        if let Some(url) = url {
            let path = url.strip_prefix("http://").unwrap_or_default();
            if !path.contains('/') || path.ends_with('/') {
                return Err(fail(
                    field,
                    format!("`{url}` is not an http:// URL ending in a file (Entra fetches CRLs over plain HTTP)"),
                ));
            }
        }
    }
    if delta_crl_url.is_some() && crl_url.is_none() {
        return Err(fail(
            "deltaCertificateRevocationListUrl",
            format!(
                "a delta CRL needs a base CRL URL ({})",
                ErrorCode::DeltaWithoutBase
            ),
        ));
    }
    Ok(TrustedCa {
        info,
        is_root,
        crl_url,
        delta_crl_url,
        display_name,
        issuer_hint,
        ski,
    })
}

/// PEM blocks, or the whole input as one DER certificate.
fn certificates_in(bytes: &[u8]) -> Vec<Vec<u8>> {
    if !bytes.starts_with(b"-----") && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return vec![bytes.to_vec()];
    }
    x509_parser::pem::Pem::iter_from_buffer(bytes)
        .filter_map(Result::ok)
        .filter(|pem| pem.label == "CERTIFICATE")
        .map(|pem| pem.contents)
        .collect()
}

impl ChainCa for TrustedCa {
    fn cert(&self) -> &CertInfo {
        &self.info
    }

    fn is_root(&self) -> bool {
        self.is_root
    }
}

impl Issuers for TrustStore {
    type Ca = TrustedCa;

    /// A quarantined SKI fails closed before any CA with it is looked at.
    fn issuer(&self, ski: &str) -> Lookup<'_, TrustedCa> {
        if let Some(reason) = self.quarantined(ski) {
            return Lookup::Quarantined { reason };
        }
        self.by_ski(ski).map_or(Lookup::Unknown, Lookup::Found)
    }
}

/// A chain from a leaf to one of the tenant's roots.
pub type VerifiedChain = chain::VerifiedChain<TrustedCa>;

/// The Entra error code a sign-in whose chain failed gets.
pub fn error_code(error: &ChainError) -> ErrorCode {
    match error {
        ChainError::UnknownIssuer { .. }
        | ChainError::NoAuthorityKeyIdentifier { .. }
        | ChainError::IssuerQuarantined { .. } => ErrorCode::IssuerNotConfigured,
        ChainError::OutsideValidity { .. } => ErrorCode::NotValidNow,
        ChainError::Malformed(_)
        | ChainError::BadSignature { .. }
        | ChainError::IssuerNameMismatch { .. }
        | ChainError::TooLong
        | ChainError::NotForClientAuth { .. } => ErrorCode::CertificateValidationFailed,
    }
}
