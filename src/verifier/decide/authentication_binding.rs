//! The authentication binding: which rule, if any, sets a certificate's strength (single- or
//! multi-factor) and the username-binding affinity it requires.

use super::AuthenticationRule;
use crate::verifier::policy::{ModeConfiguration, Rule, RuleType, Strength};
use crate::x509::cert_info::CertInfo;
use crate::x509::dn::normalized_dn;

/// Issuer+OID rules beat OID rules, which beat issuer rules; conflicting modes give
/// single-factor; no match gives the tenant default.
pub(super) fn authentication_binding(
    config: &ModeConfiguration,
    leaf: &CertInfo,
) -> AuthenticationRule {
    let issuer = normalized_dn(&leaf.issuer);
    let issuer_matches = |rule: &Rule| rule.issuer().is_some_and(|i| normalized_dn(i) == issuer);
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
