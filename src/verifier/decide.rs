//! The decision: who a certificate signs in, and how strongly, as Entra CBA would decide it.
//!
//! The typed username picks the user first (home realm discovery); then targets, the chain to a
//! trusted root, revocation up the chain, CA scoping, the authentication binding (single- or
//! multi-factor, and the affinity required) and finally the username bindings. Every step adds a
//! line to the explanation. Only this module makes a [`Decision`].

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use super::directory::{comparison_key, Directory, User};
use super::outcome::{AuthenticationStrength, ErrorCode};
use super::policy::{
    affinity_name, field_name, property_name, Affinity, CbaPolicy, Rule, RuleType, State, Strength,
    TargetType, UserBinding, UserProperty, ALL_USERS,
};
use super::revocation::cache::CrlCache;
use super::revocation::check::{check_chain, LinkStatus};
use super::revocation::source::CrlSource;
use super::trust::{verify_chain, TrustStore, VerifiedChain};
use crate::x509::cert_info::{rfc3339, CertInfo};
use crate::x509::dn::normalized_dn;
use crate::x509::user_ids::{certificate_user_id, BindingField, SerialOrder};

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
        if self.tenant.policy.state != State::Enabled {
            return trail.fail(
                ErrorCode::BlockedByPolicy,
                "certificate-based authentication is not enabled in this tenant",
            );
        }
        trail.step("Certificate-based authentication is enabled.");

        let Some(user) = self.tenant.directory.user_by_upn(username) else {
            return trail.fail(
                ErrorCode::UserNotFound,
                format!("the user account `{username}` does not exist in the directory"),
            );
        };
        trail.decision.user_principal_name = Some(user.user_principal_name.clone());
        trail.step(format!(
            "User `{}` found by the username typed.",
            user.user_principal_name
        ));

        if let Err(why) = self.in_scope(user) {
            return trail.fail(
                ErrorCode::BlockedByPolicy,
                format!("sign-in was blocked due to user credential policy: {why}"),
            );
        }
        trail.step("The user is in the method's targets.");

        let chain = match verify_chain(leaf_der, &self.tenant.store, now) {
            Ok(chain) => chain,
            Err(e) => {
                if let Ok(info) = CertInfo::from_der(leaf_der) {
                    trail.decision.certificate = Some(CertificateFacts::of(&info));
                }
                return trail.fail(e.error_code(), e.to_string());
            }
        };
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

        match check_chain(
            &chain,
            &self.crls,
            &self.tenant.policy.crl_validation_configuration,
            now,
        )
        .await
        {
            Ok(proof) => {
                trail.decision.revocation = proof.links().to_vec();
                trail.step(format!(
                    "Revocation checked for every certificate in the chain: {}.",
                    describe_links(proof.links())
                ));
            }
            Err(failure) => {
                trail.decision.revocation = failure.links;
                return trail.fail(failure.error_code, failure.message);
            }
        }

        if let Err(why) = self.ca_scoping(&chain, user) {
            return trail.fail(ErrorCode::CaScopingDenied, why);
        }
        trail.step("CA scoping allows the user.");

        let rule = self.authentication_binding(leaf);
        trail.step(match rule.x509_certificate_rule_type.as_str() {
            "default" => format!(
                "No authentication binding rule matches: the tenant default applies ({}, {} affinity).",
                rule.x509_certificate_authentication_mode.protocol_name(),
                affinity_name(rule.x509_certificate_required_affinity_level)
            ),
            kind => format!(
                "Authentication binding: the {kind} rule `{}` gives {} and requires {} affinity.",
                rule.identifier.as_deref().unwrap_or_default(),
                rule.x509_certificate_authentication_mode.protocol_name(),
                affinity_name(rule.x509_certificate_required_affinity_level)
            ),
        });

        match self.username_binding(
            leaf,
            user,
            rule.x509_certificate_required_affinity_level,
            &mut trail,
        ) {
            Ok(binding) => {
                trail.step(format!(
                    "Signed in as {} ({}).",
                    user.user_principal_name,
                    rule.x509_certificate_authentication_mode.protocol_name()
                ));
                let d = &mut trail.decision;
                d.result = Outcome::Success;
                d.message = format!("signed in as {}", user.user_principal_name);
                d.authentication_strength = Some(rule.x509_certificate_authentication_mode.into());
                d.username_binding = Some(binding);
                d.authentication_rule = Some(rule);
                trail.decision
            }
            Err(refusal) => {
                trail.decision.authentication_rule = Some(rule);
                trail.fail(refusal.code, refusal.message)
            }
        }
    }

    fn in_scope(&self, user: &User) -> Result<(), String> {
        fn hits<'t>(
            targets: &'t [super::policy::Target],
            user: &User,
        ) -> Option<&'t super::policy::Target> {
            targets.iter().find(|t| match t.target_type {
                TargetType::User => {
                    t.id == user.id || t.id.eq_ignore_ascii_case(&user.user_principal_name)
                }
                TargetType::Group => t.id == ALL_USERS || user.member_of.contains(&t.id),
            })
        }
        if hits(&self.tenant.policy.include_targets, user).is_none() {
            return Err(format!(
                "`{}` is not in the method's included targets",
                user.user_principal_name
            ));
        }
        if let Some(target) = hits(&self.tenant.policy.exclude_targets, user) {
            return Err(format!(
                "`{}` is excluded by the {} target `{}`",
                user.user_principal_name,
                match target.target_type {
                    TargetType::User => "user",
                    TargetType::Group => "group",
                },
                target.id
            ));
        }
        Ok(())
    }

    /// Every CA in the chain with a scoping rule must admit the user.
    fn ca_scoping(&self, chain: &VerifiedChain, user: &User) -> Result<(), String> {
        for ca in chain.cas() {
            for scope in self
                .tenant
                .policy
                .certificate_authority_scopes
                .iter()
                .filter(|s| s.subject_key_identifier.eq_ignore_ascii_case(&ca.ski))
            {
                let admitted = scope.include_targets.iter().any(|t| match t.target_type {
                    TargetType::Group => t.id == ALL_USERS || user.member_of.contains(&t.id),
                    TargetType::User => t.id == user.id,
                });
                if !admitted {
                    return Err(format!(
                        "`{}` is scoped to {}, and `{}` is not in it",
                        ca.info.subject,
                        scope
                            .include_targets
                            .iter()
                            .map(|t| format!("`{}`", t.id))
                            .collect::<Vec<_>>()
                            .join(", "),
                        user.user_principal_name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Issuer+OID rules beat OID rules, which beat issuer rules; conflicting modes give
    /// single-factor; no match gives the tenant default.
    fn authentication_binding(&self, leaf: &CertInfo) -> AuthenticationRule {
        let config = &self.tenant.policy.authentication_mode_configuration;
        let issuer = normalized_dn(&leaf.issuer);
        let issuer_matches =
            |rule: &Rule| rule.issuer().is_some_and(|i| normalized_dn(i) == issuer);
        let oid_matches = |rule: &Rule| {
            rule.policy_oid()
                .is_some_and(|oid| leaf.policies.iter().any(|p| p == oid))
        };
        let of_type = |kind: RuleType| {
            config
                .rules
                .iter()
                .filter(move |r| r.x509_certificate_rule_type == kind)
        };
        let tiers: [Vec<&Rule>; 3] = [
            of_type(RuleType::IssuerSubjectAndPolicyOid)
                .filter(|r| issuer_matches(r) && oid_matches(r))
                .collect(),
            of_type(RuleType::PolicyOid)
                .filter(|r| oid_matches(r))
                .collect(),
            of_type(RuleType::IssuerSubject)
                .filter(|r| issuer_matches(r))
                .collect(),
        ];
        let Some(winners) = tiers.into_iter().find(|tier| !tier.is_empty()) else {
            return AuthenticationRule {
                x509_certificate_rule_type: "default".into(),
                identifier: None,
                x509_certificate_authentication_mode: config
                    .x509_certificate_authentication_default_mode,
                x509_certificate_required_affinity_level: config
                    .x509_certificate_default_required_affinity_level,
            };
        };
        let mode = if winners
            .iter()
            .all(|r| r.x509_certificate_authentication_mode == Strength::MultiFactor)
        {
            Strength::MultiFactor
        } else {
            Strength::SingleFactor
        };
        let rule = winners
            .iter()
            .find(|r| r.x509_certificate_authentication_mode == mode)
            .unwrap_or(&winners[0]);
        // A matching rule's affinity replaces the tenant default; with several, the strictest.
        let affinity = winners
            .iter()
            .map(|r| {
                r.x509_certificate_required_affinity_level
                    .unwrap_or(config.x509_certificate_default_required_affinity_level)
            })
            .max()
            .unwrap_or_default();
        let (kind, identifier) = match rule.x509_certificate_rule_type {
            RuleType::IssuerSubject => ("issuerSubject", rule.identifier.clone()),
            RuleType::PolicyOid => ("policyOID", rule.identifier.clone()),
            RuleType::IssuerSubjectAndPolicyOid => (
                "issuerSubjectAndPolicyOID",
                Some(format!(
                    "{} + {}",
                    rule.issuer_subject_identifier
                        .as_deref()
                        .unwrap_or_default(),
                    rule.policy_oid_identifier.as_deref().unwrap_or_default()
                )),
            ),
        };
        AuthenticationRule {
            x509_certificate_rule_type: kind.into(),
            identifier,
            x509_certificate_authentication_mode: mode,
            x509_certificate_required_affinity_level: affinity,
        }
    }

    /// Bindings by priority; a missing field or a mismatch moves on to the next.
    fn username_binding(
        &self,
        leaf: &CertInfo,
        user: &User,
        required: Affinity,
        trail: &mut Trail,
    ) -> Result<MatchedBinding, Refusal> {
        let mut bindings: Vec<&UserBinding> = self
            .tenant
            .policy
            .certificate_user_bindings
            .iter()
            .collect();
        bindings.sort_by_key(|b| b.priority);
        if required == Affinity::High {
            trail.step("High affinity is required: low-affinity bindings are skipped.");
            bindings.retain(|b| b.affinity() == Affinity::High);
        }
        let mut any_value = false;
        for binding in bindings {
            let field = binding.x509_certificate_field;
            let name = format!(
                "{} -> {} (priority {})",
                field_name(field),
                property_name(binding.user_property),
                binding.priority
            );
            let Some(identifier) = certificate_user_id(leaf, field, self.serial_order) else {
                trail.step(format!(
                    "Binding {name}: the certificate has no {}; next.",
                    field_name(field)
                ));
                continue;
            };
            any_value = true;
            // PrincipalName and RFC822Name compare their raw value with UPN attributes.
            let raw = identifier
                .split_once('>')
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_else(|| identifier.clone());
            let matched = match binding.user_property {
                UserProperty::UserPrincipalName => {
                    user.user_principal_name.eq_ignore_ascii_case(&raw)
                }
                UserProperty::OnPremisesUserPrincipalName => user
                    .on_premises_user_principal_name
                    .as_deref()
                    .is_some_and(|on_prem| on_prem.eq_ignore_ascii_case(&raw)),
                UserProperty::CertificateUserIds => {
                    let wanted = comparison_key(&identifier);
                    user.authorization_info
                        .certificate_user_ids
                        .iter()
                        .any(|value| comparison_key(value) == wanted)
                }
            };
            let value = match binding.user_property {
                UserProperty::CertificateUserIds => identifier,
                _ => raw,
            };
            if matched {
                trail.step(format!("Binding {name}: `{value}` matches the user."));
                return Ok(MatchedBinding {
                    x509_certificate_field: field,
                    user_property: binding.user_property,
                    priority: binding.priority,
                    trust_affinity_level: binding.affinity(),
                    value,
                });
            }
            trail.step(format!(
                "Binding {name}: `{value}` does not match the user; next."
            ));
        }
        if any_value {
            Err(Refusal {
                code: ErrorCode::UserNotFound,
                message: format!(
                    "the certificate does not match `{}` through any username binding",
                    user.user_principal_name
                ),
            })
        } else {
            Err(Refusal {
                code: ErrorCode::BindingValueMissing,
                message: "unable to acquire the value specified in a binding from the certificate"
                    .to_owned(),
            })
        }
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
