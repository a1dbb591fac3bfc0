//! The decision: who a certificate signs in, and how strongly, as Entra CBA would decide it.
//!
//! The typed username picks the user first (home realm discovery); then targets, the chain to a
//! trusted root, revocation up the chain, CA scoping, the authentication binding (single- or
//! multi-factor, and the affinity required) and finally the username bindings. Every step adds a
//! line to the explanation. Only this module makes a [`Decision`].

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::directory::Directory;
use super::outcome::{AuthenticationStrength, ErrorCode};
use super::policy::{affinity_name, Affinity, CbaPolicy, State, Strength, UserProperty};
use super::revocation::cache::CrlCache;
use super::revocation::check::{check_chain, LinkStatus};
use super::revocation::source::CrlSource;
use super::trust::{self, TrustStore, VerifiedChain};
use crate::pki::chain::verify_chain;
use crate::x509::cert_info::{rfc3339, CertInfo};
use crate::x509::user_ids::{BindingField, SerialOrder};

mod authentication_binding;
mod targets;
mod username_binding;

/// The tenant's configuration at one moment: policy, trusted CAs and directory.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub policy: CbaPolicy,
    pub store: TrustStore,
    pub directory: Directory,
}

/// Everything a decision needs: a tenant snapshot and the CRL cache, which outlives snapshots.
#[derive(Debug, Clone)]
pub struct Engine {
    pub tenant: Arc<Tenant>,
    pub crls: Arc<CrlCache>,
    /// How `<SR>` in certificateUserIds orders the serial.
    pub serial_order: SerialOrder,
}

/// The authentication binding that set the strength.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRule {
    /// `issuerSubject`, `policyOID`, `issuerSubjectAndPolicyOID`, or `default` (no rule matched).
    pub x509_certificate_rule_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    pub x509_certificate_authentication_mode: Strength,
    pub x509_certificate_required_affinity_level: Affinity,
}

/// The username binding that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchedBinding {
    pub x509_certificate_field: BindingField,
    pub user_property: UserProperty,
    pub priority: i64,
    pub trust_affinity_level: Affinity,
    /// The certificate's value that matched.
    pub value: String,
}

/// Facts of the certificate, for the log and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateFacts {
    pub subject: String,
    pub issuer: String,
    pub serial_number: String,
    pub sha256: String,
    pub policy_oids: Vec<String>,
    pub not_before: String,
    pub not_after: String,
}

impl CertificateFacts {
    pub fn of(info: &CertInfo) -> Self {
        Self {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            serial_number: info.serial_hex(),
            sha256: info.sha256.clone(),
            policy_oids: info.policies.clone(),
            not_before: rfc3339(info.not_before),
            not_after: rfc3339(info.not_after),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Success,
    Failure,
}

/// A chain element as the decision reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainElement {
    pub subject: String,
    pub subject_key_identifier: String,
    pub root: bool,
}

/// The verdict on one sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub result: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<ErrorCode>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_strength: Option<AuthenticationStrength>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_binding: Option<MatchedBinding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_rule: Option<AuthenticationRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateFacts>,
    pub chain: Vec<ChainElement>,
    pub revocation: Vec<LinkStatus>,
    pub explanation: Vec<String>,
}

impl Decision {
    pub fn succeeded(&self) -> bool {
        self.result == Outcome::Success
    }

    /// How strongly it authenticated, on success.
    pub fn strength(&self) -> Option<AuthenticationStrength> {
        self.authentication_strength
    }
}

/// Why a step refused the sign-in.
struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Builds a decision step by step.
struct Trail {
    decision: Decision,
}

impl Trail {
    fn new() -> Self {
        Self {
            decision: Decision {
                result: Outcome::Failure,
                error_code: None,
                message: String::new(),
                user_principal_name: None,
                authentication_strength: None,
                username_binding: None,
                authentication_rule: None,
                certificate: None,
                chain: Vec::new(),
                revocation: Vec::new(),
                explanation: Vec::new(),
            },
        }
    }

    fn step(&mut self, line: impl Into<String>) {
        self.decision.explanation.push(line.into());
    }

    fn fail(mut self, code: ErrorCode, message: impl Into<String>) -> Decision {
        let message = message.into();
        self.step(format!("Failed: {code}: {message}"));
        self.decision.error_code = Some(code);
        self.decision.message = message;
        self.decision
    }
}

impl Engine {
    /// An engine over one tenant, fetching CRLs from `crls`.
    pub fn new(
        policy: CbaPolicy,
        store: TrustStore,
        directory: Directory,
        crls: CrlSource,
    ) -> Self {
        Self {
            tenant: Arc::new(Tenant {
                policy,
                store,
                directory,
            }),
            crls: Arc::new(CrlCache::new(crls)),
            serial_order: SerialOrder::default(),
        }
    }

    /// Decides whether the certificate `leaf_der` signs in `username` at `now`.
    pub async fn decide(&self, leaf_der: &[u8], username: &str, now: OffsetDateTime) -> Decision {
        let mut trail = Trail::new();
        match self.steps(leaf_der, username, now, &mut trail).await {
            Ok(()) => trail.decision,
            Err(refusal) => trail.fail(refusal.code, refusal.message),
        }
    }

    /// Every step in Entra's order; the first refusal ends the sign-in.
    async fn steps(
        &self,
        leaf_der: &[u8],
        username: &str,
        now: OffsetDateTime,
        trail: &mut Trail,
    ) -> Result<(), Refusal> {
        let policy = &self.tenant.policy;
        if policy.state != State::Enabled {
            return Err(Refusal::new(
                ErrorCode::BlockedByPolicy,
                "certificate-based authentication is not enabled in this tenant",
            ));
        }
        trail.step("Certificate-based authentication is enabled.");

        let user = self.tenant.directory.user_by_upn(username).ok_or_else(|| {
            Refusal::new(
                ErrorCode::UserNotFound,
                format!("the user account `{username}` does not exist in the directory"),
            )
        })?;
        trail.decision.user_principal_name = Some(user.user_principal_name.clone());
        trail.step(format!(
            "User `{}` found by the username typed.",
            user.user_principal_name
        ));

        targets::in_scope(policy, user).map_err(|why| {
            Refusal::new(
                ErrorCode::BlockedByPolicy,
                format!("sign-in was blocked due to user credential policy: {why}"),
            )
        })?;
        trail.step("The user is in the method's targets.");

        let chain = self.chain(leaf_der, now, trail)?;
        self.revocation(&chain, now, trail).await?;

        targets::ca_scoping(policy, &chain, user)
            .map_err(|why| Refusal::new(ErrorCode::CaScopingDenied, why))?;
        trail.step("CA scoping allows the user.");

        let leaf = chain.leaf();
        let rule = authentication_binding::authentication_binding(
            &policy.authentication_mode_configuration,
            leaf,
        );
        trail.step(describe_rule(&rule));
        trail.decision.authentication_rule = Some(rule.clone());

        let binding = username_binding::username_binding(
            &policy.certificate_user_bindings,
            self.serial_order,
            leaf,
            user,
            rule.x509_certificate_required_affinity_level,
            trail,
        )?;
        let strength = rule.x509_certificate_authentication_mode;
        trail.step(format!(
            "Signed in as {} ({}).",
            user.user_principal_name,
            AuthenticationStrength::from(strength).as_str()
        ));
        let d = &mut trail.decision;
        d.result = Outcome::Success;
        d.message = format!("signed in as {}", user.user_principal_name);
        d.authentication_strength = Some(strength.into());
        d.username_binding = Some(binding);
        Ok(())
    }

    /// The chain to a trusted root, with signatures, names and validity checked.
    fn chain(
        &self,
        leaf_der: &[u8],
        now: OffsetDateTime,
        trail: &mut Trail,
    ) -> Result<VerifiedChain, Refusal> {
        let chain = verify_chain(leaf_der, &self.tenant.store, now).map_err(|e| {
            if let Ok(info) = CertInfo::from_der(leaf_der) {
                trail.decision.certificate = Some(CertificateFacts::of(&info));
            }
            Refusal::new(trust::error_code(&e), e.to_string())
        })?;
        let leaf = chain.leaf();
        trail.decision.certificate = Some(CertificateFacts::of(leaf));
        trail.decision.chain = chain
            .cas()
            .iter()
            .map(|ca| ChainElement {
                subject: ca.info.subject.clone(),
                subject_key_identifier: ca.ski.clone(),
                root: ca.is_root,
            })
            .collect();
        trail.step(format!(
            "Chain built by AKI/SKI to a trusted root, signatures and validity checked: {}.",
            std::iter::once(leaf.subject.as_str())
                .chain(chain.cas().iter().map(|ca| ca.info.subject.as_str()))
                .collect::<Vec<_>>()
                .join(" <- ")
        ));
        Ok(chain)
    }

    /// Revocation of every certificate in the chain, by its CA's CRLs.
    async fn revocation(
        &self,
        chain: &VerifiedChain,
        now: OffsetDateTime,
        trail: &mut Trail,
    ) -> Result<(), Refusal> {
        let checked = check_chain(
            chain,
            &self.crls,
            &self.tenant.policy.crl_validation_configuration,
            now,
        )
        .await;
        match checked {
            Ok(proof) => {
                trail.decision.revocation = proof.links().to_vec();
                trail.step(format!(
                    "Revocation checked for every certificate in the chain: {}.",
                    describe_links(proof.links())
                ));
                Ok(())
            }
            Err(failure) => {
                trail.decision.revocation = failure.links;
                Err(Refusal::new(failure.error_code, failure.message))
            }
        }
    }
}

/// The explanation's line for the authentication binding.
fn describe_rule(rule: &AuthenticationRule) -> String {
    match rule.x509_certificate_rule_type.as_str() {
        "default" => format!(
            "No authentication binding rule matches: the tenant default applies ({}, {} affinity).",
            AuthenticationStrength::from(rule.x509_certificate_authentication_mode).as_str(),
            affinity_name(rule.x509_certificate_required_affinity_level)
        ),
        kind => format!(
            "Authentication binding: the {kind} rule `{}` gives {} and requires {} affinity.",
            rule.identifier.as_deref().unwrap_or_default(),
            AuthenticationStrength::from(rule.x509_certificate_authentication_mode).as_str(),
            affinity_name(rule.x509_certificate_required_affinity_level)
        ),
    }
}

fn describe_links(links: &[LinkStatus]) -> String {
    links
        .iter()
        .map(|l| {
            let status = match l.status {
                super::revocation::check::Status::Good => {
                    match (&l.crl_number, &l.delta_crl_number) {
                        (Some(base), Some(delta)) => {
                            format!("not revoked (CRL {base}, delta {delta})")
                        }
                        (Some(base), None) => format!("not revoked (CRL {base})"),
                        _ => "not revoked".to_owned(),
                    }
                }
                super::revocation::check::Status::Revoked => "revoked".to_owned(),
                super::revocation::check::Status::NotChecked => "no CRL configured".to_owned(),
                super::revocation::check::Status::Exempt => "no CRL, exempt".to_owned(),
            };
            format!("`{}` {status}", l.subject)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
