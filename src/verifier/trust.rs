//! The tenant's certificate authorities and chain building.
//!
//! CAs come in Graph's shapes (`certificateAuthorityDetail` of the PKI store, or the classic
//! `certificateAuthority`), or as plain certificate files. Chains are built from the leaf up by
//! AKI = SKI, as Entra does, to a CA marked root, at most 10 CAs. At every link the certificate's
//! issuer Name must be the CA's subject (RFC 5280 §6.1.3 (a)(4)), besides AKI = SKI and the
//! signature: issuer rules, `<I>` bindings and the log trust that name. Every validity period on
//! the way is checked. Only this module makes a [`VerifiedChain`].

use std::path::Path;

use base64::Engine;
use serde::Deserialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::outcome::ErrorCode;
use crate::x509::cert_info::{rfc3339, CertInfo, OID_EKU_ANY, OID_EKU_CLIENT_AUTH};
use crate::x509::dn::same_name;
use crate::x509::hex;

/// Entra checks at most this many CAs up from the leaf.
pub const MAX_CHAIN_CAS: usize = 10;

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

/// A chain from a leaf to a trusted root, signatures and validity checked.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    leaf: CertInfo,
    /// Indexes into the store, issuing CA first, root last.
    cas: Vec<TrustedCa>,
}

impl VerifiedChain {
    pub fn leaf(&self) -> &CertInfo {
        &self.leaf
    }

    /// The CAs, issuing CA first, root last.
    pub fn cas(&self) -> &[TrustedCa] {
        &self.cas
    }

    /// Each certificate with the CA that issued it: (leaf, issuing CA), (issuing CA, its issuer)...
    pub fn links(&self) -> impl Iterator<Item = (&CertInfo, &TrustedCa)> {
        std::iter::once(&self.leaf)
            .chain(self.cas.iter().map(|ca| &ca.info))
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

impl ChainError {
    /// The Entra error code a sign-in gets.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::UnknownIssuer { .. }
            | Self::NoAuthorityKeyIdentifier { .. }
            | Self::IssuerQuarantined { .. } => ErrorCode::IssuerNotConfigured,
            Self::OutsideValidity { .. } => ErrorCode::NotValidNow,
            Self::Malformed(_)
            | Self::BadSignature { .. }
            | Self::IssuerNameMismatch { .. }
            | Self::TooLong
            | Self::NotForClientAuth { .. } => ErrorCode::CertificateValidationFailed,
        }
    }
}

/// Builds and checks the chain of `leaf_der` at `now`.
pub fn verify_chain(
    leaf_der: &[u8],
    store: &TrustStore,
    now: OffsetDateTime,
) -> Result<VerifiedChain, ChainError> {
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
    let mut cas: Vec<TrustedCa> = Vec::new();
    loop {
        let current = cas.last().map_or(&leaf, |ca| &ca.info);
        let Some(aki) = current.authority_key_identifier.as_deref().map(hex) else {
            return Err(ChainError::NoAuthorityKeyIdentifier {
                subject: current.subject.clone(),
            });
        };
        if let Some(reason) = store.quarantined(&aki) {
            return Err(ChainError::IssuerQuarantined {
                subject: current.subject.clone(),
                reason: reason.to_owned(),
            });
        }
        let issuer = store
            .by_ski(&aki)
            .ok_or_else(|| ChainError::UnknownIssuer {
                subject: current.subject.clone(),
                aki: aki.clone(),
            })?;
        // Name chaining: AKI = SKI and a good signature are not enough, or a CA's key could
        // vouch for another CA's name (and that CA's issuer rules and bindings).
        if !same_name(&current.issuer_der, &issuer.info.subject_der) {
            return Err(ChainError::IssuerNameMismatch {
                subject: current.subject.clone(),
                claimed: current.issuer.clone(),
                ca: issuer.info.subject.clone(),
            });
        }
        verify_signature(current, &issuer.info)?;
        check_time(&issuer.info, now)?;
        let done = issuer.is_root;
        cas.push(issuer.clone());
        if done {
            return Ok(VerifiedChain { leaf, cas });
        }
        if cas.len() >= MAX_CHAIN_CAS {
            return Err(ChainError::TooLong);
        }
    }
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
