//! The CBA method policy in Microsoft Graph's own JSON shape
//! (`x509CertificateAuthenticationMethodConfiguration`), so an admin can paste what
//! `GET .../authenticationMethodConfigurations/x509Certificate` returns from a real tenant.
//!
//! Unknown fields (Graph's `@odata.*` keys and anything newer) are tolerated; enum strings are
//! Graph's; every validation error names the field (`certificateUserBindings[2].priority`).

use crate::verifier::text_rules::{is_hex, Violation};
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::x509::user_ids::BindingField;

/// The only `@odata.type` a PATCH body may carry.
pub const ODATA_TYPE: &str = "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration";

/// The whole method configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CbaPolicy {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(default = "default_id")]
    pub id: String,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub include_targets: Vec<Target>,
    #[serde(default)]
    pub exclude_targets: Vec<Target>,
    #[serde(default = "default_bindings")]
    pub certificate_user_bindings: Vec<UserBinding>,
    #[serde(default)]
    pub authentication_mode_configuration: ModeConfiguration,
    #[serde(default)]
    pub issuer_hints_configuration: IssuerHints,
    #[serde(default)]
    pub crl_validation_configuration: CrlValidation,
    #[serde(default)]
    pub certificate_authority_scopes: Vec<AuthorityScope>,
}

fn default_id() -> String {
    "X509Certificate".to_owned()
}

/// Entra's defaults: PrincipalName and RFC822Name to userPrincipalName, SKI to certificateUserIds.
fn default_bindings() -> Vec<UserBinding> {
    vec![
        UserBinding::new(
            BindingField::PrincipalName,
            UserProperty::UserPrincipalName,
            1,
        ),
        UserBinding::new(BindingField::Rfc822Name, UserProperty::UserPrincipalName, 2),
        UserBinding::new(BindingField::Ski, UserProperty::CertificateUserIds, 3),
    ]
}

impl Default for CbaPolicy {
    /// What `DELETE` restores: CBA off, all users targeted, the default bindings.
    fn default() -> Self {
        Self {
            odata_type: Some(ODATA_TYPE.to_owned()),
            id: default_id(),
            state: State::Disabled,
            include_targets: vec![Target {
                target_type: TargetType::Group,
                id: ALL_USERS.to_owned(),
                is_registration_required: Some(false),
            }],
            exclude_targets: Vec::new(),
            certificate_user_bindings: default_bindings(),
            authentication_mode_configuration: ModeConfiguration::default(),
            issuer_hints_configuration: IssuerHints::default(),
            crl_validation_configuration: CrlValidation::default(),
            certificate_authority_scopes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Enabled,
    #[default]
    Disabled,
}

/// The special group id meaning every user.
pub const ALL_USERS: &str = "all_users";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub target_type: TargetType,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_registration_required: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    User,
    Group,
}

/// One username binding: a certificate field compared with a user attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBinding {
    pub x509_certificate_field: BindingField,
    pub user_property: UserProperty,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_affinity_level: Option<Affinity>,
}

impl UserBinding {
    fn new(field: BindingField, property: UserProperty, priority: i64) -> Self {
        Self {
            x509_certificate_field: field,
            user_property: property,
            priority,
            trust_affinity_level: Some(affinity_of(field)),
        }
    }

    /// The affinity the field gives, whatever the JSON says (Entra derives it from the field).
    pub fn affinity(&self) -> Affinity {
        affinity_of(self.x509_certificate_field)
    }
}

fn affinity_of(field: BindingField) -> Affinity {
    if field.is_high_affinity() {
        Affinity::High
    } else {
        Affinity::Low
    }
}

/// A user attribute a binding compares with. Graph clients send these in varying case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UserProperty {
    UserPrincipalName,
    OnPremisesUserPrincipalName,
    CertificateUserIds,
}

impl<'de> Deserialize<'de> for UserProperty {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_lowercase().as_str() {
            "userprincipalname" => Ok(Self::UserPrincipalName),
            "onpremisesuserprincipalname" => Ok(Self::OnPremisesUserPrincipalName),
            "certificateuserids" => Ok(Self::CertificateUserIds),
            _ => Err(serde::de::Error::custom(format!(
                "unknown userProperty `{text}`; expected userPrincipalName, onPremisesUserPrincipalName or certificateUserIds"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Affinity {
    #[default]
    Low,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Strength {
    #[default]
    #[serde(rename = "x509CertificateSingleFactor")]
    SingleFactor,
    #[serde(rename = "x509CertificateMultiFactor")]
    MultiFactor,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeConfiguration {
    #[serde(default)]
    pub x509_certificate_authentication_default_mode: Strength,
    #[serde(default)]
    pub x509_certificate_default_required_affinity_level: Affinity,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// An authentication binding rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub x509_certificate_rule_type: RuleType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_subject_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_oid_identifier: Option<String>,
    pub x509_certificate_authentication_mode: Strength,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_required_affinity_level: Option<Affinity>,
}

impl Rule {
    /// The issuer the rule names, if it names one.
    pub fn issuer(&self) -> Option<&str> {
        match self.x509_certificate_rule_type {
            RuleType::IssuerSubject => self.identifier.as_deref(),
            RuleType::IssuerSubjectAndPolicyOid => self.issuer_subject_identifier.as_deref(),
            RuleType::PolicyOid => None,
        }
    }

    /// The policy OID the rule names, if it names one.
    pub fn policy_oid(&self) -> Option<&str> {
        match self.x509_certificate_rule_type {
            RuleType::PolicyOid => self.identifier.as_deref(),
            RuleType::IssuerSubjectAndPolicyOid => self.policy_oid_identifier.as_deref(),
            RuleType::IssuerSubject => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleType {
    #[serde(rename = "issuerSubject")]
    IssuerSubject,
    #[serde(rename = "policyOID")]
    PolicyOid,
    #[serde(rename = "issuerSubjectAndPolicyOID")]
    IssuerSubjectAndPolicyOid,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerHints {
    #[serde(default)]
    pub state: Switch,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlValidation {
    #[serde(default)]
    pub state: Switch,
    #[serde(default)]
    pub exempted_certificate_authorities_subject_key_identifiers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Switch {
    Enabled,
    #[default]
    Disabled,
}

/// CA scoping: users must be in the group bound to a CA (by SKI) to use its certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorityScope {
    pub subject_key_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_infrastructure_identifier: Option<String>,
    #[serde(default)]
    pub include_targets: Vec<Target>,
}

/// A policy that does not load, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: field `{field}`: {message}")]
pub struct PolicyError {
    /// The file or request it came from.
    pub source_name: String,
    pub field: String,
    pub message: String,
}

/// Limits from Entra's documentation.
const MAX_SCOPES: usize = 30;

impl CbaPolicy {
    /// Parses Graph JSON and validates it. `source_name` names it in errors.
    pub fn from_json(json: &[u8], source_name: &str) -> Result<Self, PolicyError> {
        Self::from_deserializer(&mut serde_json::Deserializer::from_slice(json), source_name)
    }

    /// As [`CbaPolicy::from_json`], for a configuration already parsed (the x509Certificate
    /// entry of a whole authenticationMethodsPolicy). Field names are relative to `value`.
    pub fn from_value(value: &serde_json::Value, source_name: &str) -> Result<Self, PolicyError> {
        Self::from_deserializer(value, source_name)
    }

    fn from_deserializer<'de, D>(deserializer: D, source_name: &str) -> Result<Self, PolicyError>
    where
        D: serde::Deserializer<'de, Error = serde_json::Error>,
    {
        let policy: CbaPolicy = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            PolicyError {
                source_name: source_name.to_owned(),
                field: if field == "." {
                    "(document)".into()
                } else {
                    field
                },
                // serde_json's message ends with the line and column, which helps find the spot.
                message: e.inner().to_string(),
            }
        })?;
        policy
            .validate()
            .map_err(|Violation { field, message }| PolicyError {
                source_name: source_name.to_owned(),
                field,
                message,
            })?;
        Ok(policy)
    }

    /// Checks what JSON shape alone cannot.
    pub fn validate(&self) -> Result<(), Violation> {
        if let Some(odata) = &self.odata_type {
            if odata != ODATA_TYPE {
                return Err(Violation::new(
                    "@odata.type",
                    format!("must be `{ODATA_TYPE}`, not `{odata}`"),
                ));
            }
        }
        self.validate_bindings()?;
        self.validate_rules()?;
        self.validate_crl_exemptions()?;
        self.validate_scopes()
    }

    /// Username bindings: distinct non-negative priorities, and each field bound to a property it
    /// can be bound to, at the field's own affinity.
    fn validate_bindings(&self) -> Result<(), Violation> {
        let mut priorities = HashSet::new();
        for (i, binding) in self.certificate_user_bindings.iter().enumerate() {
            let at = |f: &str| format!("certificateUserBindings[{i}].{f}");
            if binding.priority < 0 {
                return Err(Violation::new(
                    at("priority"),
                    "a priority is a non-negative integer",
                ));
            }
            if !priorities.insert(binding.priority) {
                return Err(Violation::new(
                    at("priority"),
                    format!(
                        "priority {} is used twice; each binding needs its own",
                        binding.priority
                    ),
                ));
            }
            let field = binding.x509_certificate_field;
            let only_certificate_user_ids = !matches!(
                field,
                BindingField::PrincipalName | BindingField::Rfc822Name
            );
            if only_certificate_user_ids
                && binding.user_property != UserProperty::CertificateUserIds
            {
                return Err(Violation::new(
                    at("userProperty"),
                    format!(
                        "{} can only be bound to certificateUserIds, not {}",
                        field_name(field),
                        property_name(binding.user_property)
                    ),
                ));
            }
            if let Some(level) = binding.trust_affinity_level {
                if level != binding.affinity() {
                    return Err(Violation::new(
                        at("trustAffinityLevel"),
                        format!(
                            "{} is a {}-affinity field",
                            field_name(field),
                            affinity_name(binding.affinity())
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Authentication binding rules: issuers as distinguished names with one mode each, and
    /// policy OIDs in dotted form.
    fn validate_rules(&self) -> Result<(), Violation> {
        let mut issuer_modes: Vec<(String, Strength)> = Vec::new();
        for (i, rule) in self
            .authentication_mode_configuration
            .rules
            .iter()
            .enumerate()
        {
            let at = |f: &str| format!("authenticationModeConfiguration.rules[{i}].{f}");
            let (issuer_field, oid_field) = match rule.x509_certificate_rule_type {
                RuleType::IssuerSubject => ("identifier", None),
                RuleType::PolicyOid => ("", Some("identifier")),
                RuleType::IssuerSubjectAndPolicyOid => {
                    ("issuerSubjectIdentifier", Some("policyOidIdentifier"))
                }
            };
            if !issuer_field.is_empty() {
                let issuer = rule.issuer().unwrap_or_default();
                if crate::x509::dn::parse_dn(issuer).is_none() {
                    return Err(Violation::new(at(issuer_field), format!("`{issuer}` is not an issuer distinguished name such as CN=Woodgrove Issuing CA,O=Woodgrove")));
                }
                if rule.x509_certificate_rule_type == RuleType::IssuerSubject {
                    let key = crate::x509::dn::normalized_dn(issuer);
                    if let Some((_, other)) = issuer_modes.iter().find(|(k, _)| *k == key) {
                        if *other != rule.x509_certificate_authentication_mode {
                            return Err(Violation::new(at("x509CertificateAuthenticationMode"), "an issuer can have only one authentication binding: another rule gives it a different mode"));
                        }
                    }
                    issuer_modes.push((key, rule.x509_certificate_authentication_mode));
                }
            }
            if let Some(oid_field) = oid_field {
                let oid = rule.policy_oid().unwrap_or_default();
                if !is_dotted_oid(oid) {
                    return Err(Violation::new(
                        at(oid_field),
                        format!("`{oid}` is not a policy OID in dotted form such as 1.2.3.4 (\"All Issuance Policies\" is 2.5.29.32.0)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// CRL exemptions name CAs by subject key identifier, in hex.
    fn validate_crl_exemptions(&self) -> Result<(), Violation> {
        for (i, ski) in self
            .crl_validation_configuration
            .exempted_certificate_authorities_subject_key_identifiers
            .iter()
            .enumerate()
        {
            if !is_hex(ski) {
                return Err(Violation::new(
                    format!("crlValidationConfiguration.exemptedCertificateAuthoritiesSubjectKeyIdentifiers[{i}]"),
                    format!("`{ski}` is not a subject key identifier in hex"),
                ));
            }
        }
        Ok(())
    }

    /// CA scopes: at most [`MAX_SCOPES`], each naming its CA in hex and at most one group.
    fn validate_scopes(&self) -> Result<(), Violation> {
        if self.certificate_authority_scopes.len() > MAX_SCOPES {
            return Err(Violation::new(
                "certificateAuthorityScopes",
                format!("at most {MAX_SCOPES} scoping rules are allowed"),
            ));
        }
        for (i, scope) in self.certificate_authority_scopes.iter().enumerate() {
            if !is_hex(&scope.subject_key_identifier) {
                return Err(Violation::new(
                    format!("certificateAuthorityScopes[{i}].subjectKeyIdentifier"),
                    format!(
                        "`{}` is not a subject key identifier in hex",
                        scope.subject_key_identifier
                    ),
                ));
            }
            if scope
                .include_targets
                .iter()
                .filter(|t| t.target_type == TargetType::Group)
                .count()
                > 1
            {
                return Err(Violation::new(
                    format!("certificateAuthorityScopes[{i}].includeTargets"),
                    "a CA can be scoped to one group only",
                ));
            }
        }
        Ok(())
    }
}

/// `^[0-2](\.(0|[1-9][0-9]*))+$`
pub fn is_dotted_oid(text: &str) -> bool {
    let mut arcs = text.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = arcs.all(|arc| {
        count += 1;
        !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'))
    });
    first_ok && rest_ok && count >= 1
}

/// Graph's name for a binding field.
pub fn field_name(field: BindingField) -> &'static str {
    match field {
        BindingField::PrincipalName => "PrincipalName",
        BindingField::Rfc822Name => "RFC822Name",
        BindingField::IssuerAndSubject => "IssuerAndSubject",
        BindingField::Subject => "Subject",
        BindingField::Ski => "SubjectKeyIdentifier",
        BindingField::Sha1PublicKey => "SHA1PublicKey",
        BindingField::IssuerAndSerialNumber => "IssuerAndSerialNumber",
    }
}

pub fn property_name(property: UserProperty) -> &'static str {
    match property {
        UserProperty::UserPrincipalName => "userPrincipalName",
        UserProperty::OnPremisesUserPrincipalName => "onPremisesUserPrincipalName",
        UserProperty::CertificateUserIds => "certificateUserIds",
    }
}

pub fn affinity_name(affinity: Affinity) -> &'static str {
    match affinity {
        Affinity::Low => "low",
        Affinity::High => "high",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_oids() {
        assert!(is_dotted_oid("1.2.3.4"));
        assert!(is_dotted_oid("2.5.29.32.0"));
        assert!(!is_dotted_oid("All Issuance Policies"));
        assert!(!is_dotted_oid("1.02.3"));
        assert!(!is_dotted_oid("3.1"));
        assert!(!is_dotted_oid("1"));
        assert!(!is_dotted_oid("1..2"));
    }

    #[test]
    fn defaults_are_entras() {
        let policy = CbaPolicy::default();
        assert_eq!(policy.state, State::Disabled);
        assert_eq!(policy.certificate_user_bindings.len(), 3);
        assert_eq!(
            policy.certificate_user_bindings[2].affinity(),
            Affinity::High
        );
        policy.validate().unwrap();
    }
}
