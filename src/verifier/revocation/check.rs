//! Revocation of a whole chain: every certificate against its issuer's base and delta CRL, up to
//! the root. A CA with a CRL URL whose CRL cannot be had fails the sign-in (fail closed), and the
//! tenant's CRL validation setting decides whether a CA without one may pass. What the CRLs say of
//! a serial is `pki::crl`'s. Only this module makes a [`NotRevoked`].

use serde::Serialize;
use time::OffsetDateTime;

use super::cache::{CrlCache, CrlFailure};
use crate::pki::crl::{listed_on, CrlKind, Listing, Reason};
use crate::verifier::outcome::ErrorCode;
use crate::verifier::policy::{CrlValidation, Switch};
use crate::verifier::trust::{TrustedCa, VerifiedChain};
use crate::x509::cert_info::CertInfo;

/// What was found for one certificate of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    /// The certificate checked.
    pub subject: String,
    /// The CA whose CRL was consulted.
    pub issuer: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_crl_number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Not on the CRLs.
    Good,
    /// On the base CRL, or on the delta CRL.
    Revoked,
    /// The CA has no CRL configured, so nothing was checked.
    NotChecked,
    /// The CA has no CRL, but is exempt from the CRL requirement.
    Exempt,
}

/// Proof that every certificate of a chain was checked and found not revoked.
#[derive(Debug, Clone)]
pub struct NotRevoked {
    links: Vec<LinkStatus>,
}

impl NotRevoked {
    pub fn links(&self) -> &[LinkStatus] {
        &self.links
    }
}

/// A chain that did not pass, with what was learned on the way.
#[derive(Debug, Clone)]
pub struct RevocationFailure {
    pub error_code: ErrorCode,
    pub message: String,
    pub links: Vec<LinkStatus>,
}

/// Checks every link of `chain`.
pub async fn check_chain(
    chain: &VerifiedChain,
    cache: &CrlCache,
    validation: &CrlValidation,
    now: OffsetDateTime,
) -> Result<NotRevoked, RevocationFailure> {
    let mut links = Vec::new();
    for (index, (cert, ca)) in chain.links().enumerate() {
        let link = LinkStatus {
            subject: cert.subject.clone(),
            issuer: ca.info.subject.clone(),
            status: Status::Good,
            crl_number: None,
            delta_crl_number: None,
        };
        let checked = match ca.crl_url {
            None => without_crl(link, ca, index == 0, validation, &mut links),
            Some(_) => against_crls(link, cert, ca, cache, now, &mut links).await,
        };
        if let Err(failure) = checked {
            return Err(RevocationFailure {
                error_code: failure.error_code,
                message: failure.message,
                links,
            });
        }
    }
    Ok(NotRevoked { links })
}

/// Why one link failed.
struct LinkFailure {
    error_code: ErrorCode,
    message: String,
}

impl LinkFailure {
    fn new(error_code: ErrorCode, message: String) -> Self {
        Self {
            error_code,
            message,
        }
    }
}

/// A link whose CA has no CRL: passed as not checked or exempt, unless required CRL validation
/// applies to it. The link joins `links` either way.
fn without_crl(
    link: LinkStatus,
    ca: &TrustedCa,
    issues_the_leaf: bool,
    validation: &CrlValidation,
    links: &mut Vec<LinkStatus>,
) -> Result<(), LinkFailure> {
    let exempt = validation
        .exempted_certificate_authorities_subject_key_identifiers
        .iter()
        .any(|ski| ski.eq_ignore_ascii_case(&ca.ski));
    let status = if exempt {
        Status::Exempt
    } else {
        Status::NotChecked
    };
    links.push(LinkStatus { status, ..link });
    // Required CRL validation applies to the CA that issued the user's certificate.
    if validation.state == Switch::Enabled && issues_the_leaf && !exempt {
        return Err(LinkFailure::new(
            ErrorCode::CrlMissing,
            format!(
                "CRL validation is required, and `{}` has no CRL configured",
                ca.info.subject
            ),
        ));
    }
    Ok(())
}

/// A link checked against its CA's base CRL and, if the CA has one, its delta CRL. The link
/// joins `links` when its CRLs could be read together: good, or revoked.
async fn against_crls(
    mut link: LinkStatus,
    cert: &CertInfo,
    ca: &TrustedCa,
    cache: &CrlCache,
    now: OffsetDateTime,
    links: &mut Vec<LinkStatus>,
) -> Result<(), LinkFailure> {
    let failure = |e: CrlFailure| LinkFailure::new(e.error_code(), e.to_string());
    let base = cache.get(ca, CrlKind::Base, now).await.map_err(failure)?;
    link.crl_number = Some(base.number.to_string());
    let delta = match &ca.delta_crl_url {
        Some(_) => Some(cache.get(ca, CrlKind::Delta, now).await.map_err(failure)?),
        None => None,
    };
    if let Some(delta) = &delta {
        link.delta_crl_number = Some(delta.number.to_string());
    }
    let listed = listed_on(&cert.serial, &base, delta.as_deref()).map_err(|ahead| {
        LinkFailure::new(
            ErrorCode::CrlSegmentsUnavailable,
            format!(
                "the delta CRL of `{}` completes base CRL {}, newer than the base CRL {} at hand",
                ca.info.subject, ahead.delta_of, ahead.base
            ),
        )
    })?;
    let Some(Listing { kind, entry }) = listed else {
        links.push(link);
        return Ok(());
    };
    links.push(LinkStatus {
        status: Status::Revoked,
        ..link
    });
    let reason = entry
        .reason
        .map(|r| format!(" ({})", Reason(r)))
        .unwrap_or_default();
    Err(LinkFailure::new(
        ErrorCode::CertificateRevoked,
        format!(
            "certificate has been revoked: `{}` (serial {}) is on the {kind} of `{}`{reason}",
            cert.subject,
            cert.serial_hex(),
            ca.info.subject
        ),
    ))
}
