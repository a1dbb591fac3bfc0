//! Revocation of a whole chain: every certificate against its issuer's base and delta CRL, up to
//! the root. A CA with a CRL URL whose CRL cannot be had fails the sign-in (fail closed). Only this
//! module makes a [`NotRevoked`].

use serde::Serialize;
use time::OffsetDateTime;

use super::cache::{CrlCache, CrlFailure};
use super::index::REASON_REMOVE_FROM_CRL;
use super::source::CrlKind;
use crate::verifier::outcome::ErrorCode;
use crate::verifier::policy::{CrlValidation, Switch};
use crate::verifier::trust::VerifiedChain;

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
    let fail = |code: ErrorCode, message: String, links: &[LinkStatus]| RevocationFailure {
        error_code: code,
        message,
        links: links.to_vec(),
    };
    for (index, (cert, ca)) in chain.links().enumerate() {
        let mut link = LinkStatus {
            subject: cert.subject.clone(),
            issuer: ca.info.subject.clone(),
            status: Status::Good,
            crl_number: None,
            delta_crl_number: None,
        };
        if ca.crl_url.is_none() {
            let exempt = validation
                .exempted_certificate_authorities_subject_key_identifiers
                .iter()
                .any(|ski| ski.eq_ignore_ascii_case(&ca.ski));
            // Required CRL validation applies to the CA that issued the user's certificate.
            if validation.state == Switch::Enabled && index == 0 && !exempt {
                links.push(LinkStatus {
                    status: Status::NotChecked,
                    ..link
                });
                return Err(fail(
                    ErrorCode::CrlMissing,
                    format!(
                        "CRL validation is required, and `{}` has no CRL configured",
                        ca.info.subject
                    ),
                    &links,
                ));
            }
            link.status = if exempt {
                Status::Exempt
            } else {
                Status::NotChecked
            };
            links.push(link);
            continue;
        }
        let failure =
            |e: CrlFailure, links: &[LinkStatus]| fail(e.error_code(), e.to_string(), links);
        let base = match cache.get(ca, CrlKind::Base, now).await {
            Ok(base) => base,
            Err(e) => return Err(failure(e, &links)),
        };
        link.crl_number = Some(base.number.to_string());
        let delta = match &ca.delta_crl_url {
            Some(_) => match cache.get(ca, CrlKind::Delta, now).await {
                Ok(delta) => Some(delta),
                Err(e) => return Err(failure(e, &links)),
            },
            None => None,
        };
        if let Some(delta) = &delta {
            link.delta_crl_number = Some(delta.number.to_string());
            // A delta applies to its base or any later one.
            if delta.delta_of.as_ref().is_some_and(|of| *of > base.number) {
                return Err(fail(
                    ErrorCode::CrlSegmentsUnavailable,
                    format!(
                        "the delta CRL of `{}` completes base CRL {}, newer than the base CRL {} at hand",
                        ca.info.subject,
                        delta.delta_of.as_ref().map(ToString::to_string).unwrap_or_default(),
                        base.number
                    ),
                    &links,
                ));
            }
        }
        let in_delta = delta.as_ref().and_then(|d| d.lookup(&cert.serial));
        let revoked_by = match in_delta {
            Some(entry) if entry.reason == Some(REASON_REMOVE_FROM_CRL) => None,
            Some(entry) => Some((CrlKind::Delta, entry)),
            None => base
                .lookup(&cert.serial)
                .map(|entry| (CrlKind::Base, entry)),
        };
        if let Some((kind, entry)) = revoked_by {
            link.status = Status::Revoked;
            links.push(link);
            let reason = entry
                .reason
                .map(|r| format!(" ({})", super::crl::Reason(r)))
                .unwrap_or_default();
            return Err(fail(
                ErrorCode::CertificateRevoked,
                format!(
                    "certificate has been revoked: `{}` (serial {}) is on the {kind} of `{}`{reason}",
                    cert.subject,
                    cert.serial_hex(),
                    ca.info.subject
                ),
                &links,
            ));
        }
        links.push(link);
    }
    Ok(NotRevoked { links })
}
