//! Microsoft Graph's declared properties for every resource the admin API writes (the x509
//! certificate method configuration and its complex types, users, groups, certificate
//! authorities), checked on the JSON of a write before the tolerant serde structs read it, and the
//! read-only properties a write may only repeat. A property Graph does not declare is refused, as
//! Graph refuses it, instead of being dropped (or, inside a complex value, silently defaulted);
//! names match case-sensitively, as Graph's JSON does. Files read by `eval` and `serve --tenant`
//! never come through here.
//!
//! Property lists are those of Graph v1.0's CSDL (microsoftgraph/msgraph-metadata
//! `schemas/v1.0-Prod.csdl` @f54f11b, the commit `reference/entra-cba-spec.md` cites), base types
//! included (`entity.id`, `directoryObject.deletedDateTime`, `authenticationMethodConfiguration`'s
//! `state` and `excludeTargets`), navigation properties too.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::text_rules::Violation;
use crate::x509::cert_info::CertInfo;
use crate::x509::dn::{normalized_dn, parse_dn};
use crate::x509::hex;

/// One Graph type: its name in the `microsoft.graph` namespace and its declared properties.
#[derive(Debug)]
pub struct GraphType {
    pub name: &'static str,
    /// The properties the verifier reads, with the shape their value is checked against.
    properties: &'static [(&'static str, Shape)],
    /// Every other property Graph declares, separated by whitespace: accepted, never looked into
    /// (the verifier does not model them).
    other: &'static str,
}

/// What a property's value is checked against.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Anything: scalars, and collections of scalars, are serde's to check.
    Scalar,
    /// A complex value of this type.
    Object(&'static GraphType),
    /// A collection of complex values of this type.
    Objects(&'static GraphType),
}

use Shape::{Object, Objects, Scalar};

// --- The x509 certificate authentication method configuration -----------------------------------

/// `x509CertificateAuthenticationMethodConfiguration`, with `authenticationMethodConfiguration`'s
/// and `entity`'s properties.
pub static X509_METHOD_CONFIGURATION: GraphType = GraphType {
    name: "x509CertificateAuthenticationMethodConfiguration",
    properties: &[
        ("id", Scalar),
        ("state", Scalar),
        ("excludeTargets", Objects(&EXCLUDE_TARGET)),
        ("includeTargets", Objects(&AUTHENTICATION_METHOD_TARGET)),
        (
            "authenticationModeConfiguration",
            Object(&MODE_CONFIGURATION),
        ),
        ("certificateAuthorityScopes", Objects(&AUTHORITY_SCOPE)),
        ("certificateUserBindings", Objects(&USER_BINDING)),
        ("crlValidationConfiguration", Object(&CRL_VALIDATION)),
        ("issuerHintsConfiguration", Object(&ISSUER_HINTS)),
    ],
    other: "",
};

static AUTHENTICATION_METHOD_TARGET: GraphType = GraphType {
    name: "authenticationMethodTarget",
    properties: &[
        ("id", Scalar),
        ("isRegistrationRequired", Scalar),
        ("targetType", Scalar),
    ],
    other: "",
};

static EXCLUDE_TARGET: GraphType = GraphType {
    name: "excludeTarget",
    properties: &[("id", Scalar), ("targetType", Scalar)],
    other: "",
};

static INCLUDE_TARGET: GraphType = GraphType {
    name: "includeTarget",
    properties: &[("id", Scalar), ("targetType", Scalar)],
    other: "",
};

static MODE_CONFIGURATION: GraphType = GraphType {
    name: "x509CertificateAuthenticationModeConfiguration",
    properties: &[
        ("rules", Objects(&RULE)),
        ("x509CertificateAuthenticationDefaultMode", Scalar),
        ("x509CertificateDefaultRequiredAffinityLevel", Scalar),
    ],
    other: "",
};

static RULE: GraphType = GraphType {
    name: "x509CertificateRule",
    properties: &[
        ("identifier", Scalar),
        ("issuerSubjectIdentifier", Scalar),
        ("policyOidIdentifier", Scalar),
        ("x509CertificateAuthenticationMode", Scalar),
        ("x509CertificateRequiredAffinityLevel", Scalar),
        ("x509CertificateRuleType", Scalar),
    ],
    other: "",
};

static USER_BINDING: GraphType = GraphType {
    name: "x509CertificateUserBinding",
    properties: &[
        ("priority", Scalar),
        ("trustAffinityLevel", Scalar),
        ("userProperty", Scalar),
        ("x509CertificateField", Scalar),
    ],
    other: "",
};

static ISSUER_HINTS: GraphType = GraphType {
    name: "x509CertificateIssuerHintsConfiguration",
    properties: &[("state", Scalar)],
    other: "",
};

static CRL_VALIDATION: GraphType = GraphType {
    name: "x509CertificateCRLValidationConfiguration",
    properties: &[
        (
            "exemptedCertificateAuthoritiesSubjectKeyIdentifiers",
            Scalar,
        ),
        ("state", Scalar),
    ],
    other: "",
};

static AUTHORITY_SCOPE: GraphType = GraphType {
    name: "x509CertificateAuthorityScope",
    properties: &[
        ("includeTargets", Objects(&INCLUDE_TARGET)),
        ("publicKeyInfrastructureIdentifier", Scalar),
        ("subjectKeyIdentifier", Scalar),
    ],
    other: "",
};

// --- Users and groups --------------------------------------------------------------------------

/// `user`. The verifier reads `id`, the UPNs, `displayName`, `authorizationInfo` and `memberOf`
/// (which it takes as a list of group ids); Graph's other properties are accepted and ignored.
pub static USER: GraphType = GraphType {
    name: "user",
    properties: &[
        ("id", Scalar),
        ("userPrincipalName", Scalar),
        ("displayName", Scalar),
        ("onPremisesUserPrincipalName", Scalar),
        ("authorizationInfo", Object(&AUTHORIZATION_INFO)),
        ("memberOf", Scalar),
    ],
    // The CSDL's structural properties, then its navigation properties, as it lists them, then
    // directoryObject's.
    other: "\
        aboutMe accountEnabled ageGroup assignedLicenses assignedPlans \
        authorizationInfo birthday businessPhones city companyName \
        consentProvidedForMinor country createdDateTime creationType \
        customSecurityAttributes department deviceEnrollmentLimit displayName \
        employeeHireDate employeeId employeeLeaveDateTime employeeOrgData \
        employeeType externalUserState externalUserStateChangeDateTime faxNumber \
        givenName hireDate identities identityParentId imAddresses interests \
        isManagementRestricted isResourceAccount jobTitle lastPasswordChangeDateTime \
        legalAgeGroupClassification licenseAssignmentStates mail mailboxSettings \
        mailNickname mobilePhone mySite officeLocation onPremisesDistinguishedName \
        onPremisesDomainName onPremisesExtensionAttributes onPremisesImmutableId \
        onPremisesLastSyncDateTime onPremisesProvisioningErrors onPremisesSamAccountName \
        onPremisesSecurityIdentifier onPremisesSyncEnabled onPremisesUserPrincipalName \
        otherMails passwordPolicies passwordProfile pastProjects postalCode \
        preferredDataLocation preferredLanguage preferredName print provisionedPlans \
        proxyAddresses responsibilities schools securityIdentifier \
        serviceProvisioningErrors showInAddressList signInActivity \
        signInSessionsValidFromDateTime skills state streetAddress surname \
        usageLocation userPrincipalName userType \
        activities adhocCalls agreementAcceptances appRoleAssignments authentication \
        calendar calendarGroups calendars calendarView chats cloudClipboard \
        cloudPCs contactFolders contacts createdObjects dataSecurityAndGovernance \
        deviceManagementTroubleshootingEvents directReports drive drives \
        employeeExperience events extensions followedSites inferenceClassification \
        insights joinedTeams licenseDetails mailFolders managedAppRegistrations \
        managedDevices manager memberOf messages oauth2PermissionGrants onenote \
        onlineMeetings onPremisesSyncBehavior outlook ownedDevices ownedObjects \
        people permissionGrants photo photos planner presence registeredDevices \
        scopedRoleMemberOf settings solutions sponsorOf sponsors teamwork todo \
        transitiveMemberOf \
        deletedDateTime",
};

static AUTHORIZATION_INFO: GraphType = GraphType {
    name: "authorizationInfo",
    properties: &[("certificateUserIds", Scalar)],
    other: "",
};

/// `group`. The verifier reads `id` and `displayName`.
pub static GROUP: GraphType = GraphType {
    name: "group",
    properties: &[("id", Scalar), ("displayName", Scalar)],
    // As for USER.
    other: "\
        accessType allowExternalSenders assignedLabels assignedLicenses \
        autoSubscribeNewMembers classification createdDateTime description \
        displayName expirationDateTime groupTypes hasMembersWithLicenseErrors \
        hideFromAddressLists hideFromOutlookClients infoCatalogs isArchived \
        isAssignableToRole isFavorite isManagementRestricted isSubscribedByMail \
        licenseProcessingState mail mailEnabled mailNickname membershipRule \
        membershipRuleProcessingState onPremisesDomainName onPremisesExtensionAttributes \
        onPremisesLastSyncDateTime onPremisesNetBiosName onPremisesProvisioningErrors \
        onPremisesSamAccountName onPremisesSecurityIdentifier onPremisesSyncEnabled \
        organizationId preferredDataLocation preferredLanguage proxyAddresses \
        renewedDateTime resourceBehaviorOptions resourceProvisioningOptions \
        securityEnabled securityIdentifier serviceProvisioningErrors theme uniqueName \
        unseenConversationsCount unseenCount unseenMessagesCount visibility \
        welcomeMessageEnabled \
        acceptedSenders appRoleAssignments calendar calendarView conversations \
        createdOnBehalfOf drive drives events extensions groupLifecyclePolicies \
        memberOf members membersWithLicenseErrors onenote onPremisesSyncBehavior \
        owners permissionGrants photo photos planner rejectedSenders settings \
        sites team threads transitiveMemberOf transitiveMembers \
        deletedDateTime",
};

// --- Certificate authorities -------------------------------------------------------------------

/// `certificateAuthorityDetail` (the PKI store's CA), with `directoryObject`'s properties.
static CERTIFICATE_AUTHORITY_DETAIL: GraphType = GraphType {
    name: "certificateAuthorityDetail",
    properties: &[
        ("certificate", Scalar),
        ("certificateAuthorityType", Scalar),
        ("certificateRevocationListUrl", Scalar),
        ("createdDateTime", Scalar),
        ("deltaCertificateRevocationListUrl", Scalar),
        ("displayName", Scalar),
        ("expirationDateTime", Scalar),
        ("isIssuerHintEnabled", Scalar),
        ("issuer", Scalar),
        ("issuerSubjectKeyIdentifier", Scalar),
        ("thumbprint", Scalar),
        ("id", Scalar),
        ("deletedDateTime", Scalar),
    ],
    other: "",
};

/// The classic store's `certificateAuthority`. A complex type in Graph, so without an `id`; the
/// verifier keeps classic CAs in the same list as the others, where each has one.
static CERTIFICATE_AUTHORITY: GraphType = GraphType {
    name: "certificateAuthority",
    properties: &[
        ("certificate", Scalar),
        ("certificateRevocationListUrl", Scalar),
        ("deltaCertificateRevocationListUrl", Scalar),
        ("isRootAuthority", Scalar),
        ("issuer", Scalar),
        ("issuerSki", Scalar),
        ("id", Scalar),
    ],
    other: "",
};

/// Whether Graph declares `property` on `graph_type` (what `$select` may name).
pub fn declares(graph_type: &GraphType, property: &str) -> bool {
    declared(graph_type, property).is_some()
}

/// Whether either CA type declares `property`.
pub fn certificate_authority_declares(property: &str) -> bool {
    declares(&CERTIFICATE_AUTHORITY_DETAIL, property) || declares(&CERTIFICATE_AUTHORITY, property)
}

/// `certificateBasedAuthConfiguration` (the classic store, `POST /organization/{id}/
/// certificateBasedAuthConfiguration`): its CAs as classic `certificateAuthority` values.
pub static CERTIFICATE_BASED_AUTH_CONFIGURATION: GraphType = GraphType {
    name: "certificateBasedAuthConfiguration",
    properties: &[
        ("id", Scalar),
        ("certificateAuthorities", Objects(&CERTIFICATE_AUTHORITY)),
    ],
    other: "",
};

/// The classic store's `certificateAuthority`, as the classic envelope holds it.
pub fn classic_certificate_authority() -> &'static GraphType {
    &CERTIFICATE_AUTHORITY
}

/// The type a CA upload is in: the one its `@odata.type` names, else the classic
/// `certificateAuthority` when it uses a property only that type has (`isRootAuthority`,
/// `issuerSki`), else `certificateAuthorityDetail`.
pub fn certificate_authority_type(entry: &Value) -> &'static GraphType {
    let named = entry
        .get("@odata.type")
        .and_then(Value::as_str)
        .is_some_and(|t| names_type(t, &CERTIFICATE_AUTHORITY));
    let classic_only = ["isRootAuthority", "issuerSki"]
        .iter()
        .any(|key| entry.get(key).is_some());
    if named || (entry.get("@odata.type").is_none() && classic_only) {
        &CERTIFICATE_AUTHORITY
    } else {
        &CERTIFICATE_AUTHORITY_DETAIL
    }
}

// --- Checking a body ---------------------------------------------------------------------------

/// Refuses any property `body` holds that `graph_type` (or, at any depth, the type of a complex
/// value within) does not declare, naming it and where it is. Accepted besides the declared
/// properties: OData's instance annotations (`@odata.context`, `@odata.etag`...) and property
/// annotations of a declared property (`includeTargets@odata.context`), as a GET returns them;
/// `@odata.type` only when it names the type Graph declares there (with or without the `#`).
pub fn check(body: &Value, graph_type: &GraphType) -> Result<(), Violation> {
    match body {
        Value::Object(object) => check_object(object, graph_type),
        _ => Err(Violation::new(
            "(body)",
            format!("the body must be a JSON object (a {})", graph_type.name),
        )),
    }
}

/// [`check`] of a body already known to be an object.
pub fn check_object(object: &Map<String, Value>, graph_type: &GraphType) -> Result<(), Violation> {
    check_at(object, graph_type, "")
}

fn check_at(
    object: &Map<String, Value>,
    graph_type: &GraphType,
    path: &str,
) -> Result<(), Violation> {
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    for (key, value) in object {
        if key == "@odata.type" {
            match value.as_str() {
                Some(named) if names_type(named, graph_type) => continue,
                _ => {
                    return Err(Violation::new(
                        at(key),
                        format!(
                            "The @odata.type {value} at {} does not name microsoft.graph.{}, the type declared there.",
                            at(key),
                            graph_type.name
                        ),
                    ))
                }
            }
        }
        if key.starts_with("@odata.") {
            continue;
        }
        let (property, annotation) = match key.split_once('@') {
            Some((property, annotation)) => (property, Some(annotation)),
            None => (key.as_str(), None),
        };
        let shape = declared(graph_type, property);
        let annotation_ok = annotation.is_none_or(|a| a.starts_with("odata."));
        let Some(shape) = shape.filter(|_| annotation_ok && !property.is_empty()) else {
            return Err(Violation::new(
                at(key),
                undeclared(key, property, graph_type, &at(key)),
            ));
        };
        if annotation.is_some() {
            continue;
        }
        match (shape, value) {
            (Object(inner), Value::Object(object)) => check_at(object, inner, &at(key))?,
            (Objects(inner), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Object(object) = item {
                        check_at(object, inner, &format!("{}[{i}]", at(key)))?;
                    }
                }
            }
            // Nulls and values of the wrong JSON kind are serde's to name.
            _ => {}
        }
    }
    Ok(())
}

/// The shape of `property` if `graph_type` declares it.
fn declared(graph_type: &GraphType, property: &str) -> Option<Shape> {
    graph_type
        .properties
        .iter()
        .find(|(name, _)| *name == property)
        .map(|(_, shape)| *shape)
        .or_else(|| {
            graph_type
                .other
                .split_whitespace()
                .any(|name| name == property)
                .then_some(Scalar)
        })
}

/// Graph's words (Microsoft.OData.Core's, which Graph answers with), with the path, and the
/// declared spelling when only the case differs.
fn undeclared(key: &str, property: &str, graph_type: &GraphType, path: &str) -> String {
    let spelled = graph_type
        .properties
        .iter()
        .map(|(name, _)| *name)
        .chain(graph_type.other.split_whitespace())
        .find(|name| name.eq_ignore_ascii_case(property) && *name != property);
    let hint = spelled.map_or_else(String::new, |name| {
        format!(" Property names are case-sensitive: did you mean '{name}'?")
    });
    format!(
        "The property '{key}' does not exist on type 'microsoft.graph.{}' (at {path}). Make sure to only use property names that are defined by the type.{hint}",
        graph_type.name
    )
}

fn names_type(named: &str, graph_type: &GraphType) -> bool {
    named
        .strip_prefix('#')
        .unwrap_or(named)
        .strip_prefix("microsoft.graph.")
        == Some(graph_type.name)
}

// --- Read-only properties ----------------------------------------------------------------------

/// `id` is the object's key: a write may repeat it, never change it.
pub fn check_key(body: &Map<String, Value>, current: &str) -> Result<(), Violation> {
    match body.get("id") {
        None => Ok(()),
        Some(Value::String(id)) if id == current => Ok(()),
        Some(other) => Err(Violation::new(
            "id",
            format!(
                "Property 'id' is read-only: it is \"{current}\" and cannot be changed to {other}."
            ),
        )),
    }
}

/// The CA properties Graph calculates from the certificate (`thumbprint`, `issuer`,
/// `issuerSubjectKeyIdentifier` or the classic `issuerSki`, `expirationDateTime`): an upload may
/// give them only as the certificate says them.
///
/// `thumbprint` is the SHA-1 of the certificate and the SKIs its subject key identifier, in hex of
/// either case. Graph describes `issuer` only as "the issuer of the certificate authority", and the
/// classic store's `TrustedIssuer` is the CA's own subject: a DN naming either the CA or the CA's
/// issuer is taken, in either RDN order.
pub fn check_derived_ca_properties(
    entry: &Map<String, Value>,
    certificate: &CertInfo,
) -> Result<(), Violation> {
    let ski = certificate
        .subject_key_identifier
        .as_deref()
        .map(hex)
        .unwrap_or_default();
    let expires = certificate
        .not_after
        .format(&Rfc3339)
        .unwrap_or_else(|_| certificate.not_after.to_string());
    for property in [
        "thumbprint",
        "issuer",
        "issuerSubjectKeyIdentifier",
        "issuerSki",
        "expirationDateTime",
    ] {
        let given = match entry.get(property) {
            None | Some(Value::Null) => continue,
            Some(Value::String(given)) => given.as_str(),
            Some(other) => {
                return Err(Violation::new(
                    property,
                    format!("Property '{property}' is a string, not {other}."),
                ))
            }
        };
        let (agrees, says) = match property {
            "thumbprint" => (
                given.eq_ignore_ascii_case(&certificate.sha1),
                certificate.sha1.to_uppercase(),
            ),
            "issuer" => (
                parse_dn(given).is_some()
                    && [&certificate.subject, &certificate.issuer]
                        .iter()
                        .any(|name| normalized_dn(name) == normalized_dn(given)),
                certificate.subject.clone(),
            ),
            "expirationDateTime" => (
                OffsetDateTime::parse(given, &Rfc3339).is_ok_and(|at| at == certificate.not_after),
                expires.clone(),
            ),
            _ => (given.eq_ignore_ascii_case(&ski), ski.to_uppercase()),
        };
        if !agrees {
            return Err(Violation::new(
                property,
                format!(
                    "Property '{property}' is read-only: it is calculated from the certificate, which says \"{says}\", not \"{given}\"."
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn undeclared_properties_are_named_with_their_path() {
        let body = json!({"@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
            "authenticationModeConfiguration": {"rules": [{"x509CertificateRuleType": "policyOID", "identifer": "1.2.3.4"}]}});
        let Violation { field, message } = check(&body, &X509_METHOD_CONFIGURATION).unwrap_err();
        assert_eq!(field, "authenticationModeConfiguration.rules[0].identifer");
        assert!(
            message.contains(
                "'identifer' does not exist on type 'microsoft.graph.x509CertificateRule'"
            ),
            "{message}"
        );
        let Violation { field, message } =
            check(&json!({"authorizationinfo": {}}), &USER).unwrap_err();
        assert_eq!(field, "authorizationinfo");
        assert!(
            message.contains("did you mean 'authorizationInfo'?"),
            "{message}"
        );
    }

    #[test]
    fn annotations_and_declared_types_are_accepted() {
        let body = json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x",
            "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
            "includeTargets@odata.context": "https://graph.microsoft.com/v1.0/$metadata#y",
            "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
            "authenticationModeConfiguration": {"@odata.type": "microsoft.graph.x509CertificateAuthenticationModeConfiguration",
                "rules": [{"@odata.type": "#microsoft.graph.x509CertificateRule"}]}});
        assert_eq!(check(&body, &X509_METHOD_CONFIGURATION), Ok(()));
        let wrong = json!({"certificateUserBindings": [{"@odata.type": "#microsoft.graph.x509CertificateRule"}]});
        assert_eq!(
            check(&wrong, &X509_METHOD_CONFIGURATION).unwrap_err().field,
            "certificateUserBindings[0].@odata.type"
        );
        assert!(check(&json!({"nope@odata.context": "x"}), &USER).is_err());
        assert!(check(&json!({"mail@other": "x"}), &USER).is_err());
        assert_eq!(
            check(&json!({"accountEnabled": false, "mail": "a@w.com"}), &USER),
            Ok(())
        );
    }

    #[test]
    fn excluded_targets_have_no_registration_flag() {
        let body = json!({"excludeTargets": [{"targetType": "group", "id": "x", "isRegistrationRequired": false}]});
        assert_eq!(
            check(&body, &X509_METHOD_CONFIGURATION).unwrap_err().field,
            "excludeTargets[0].isRegistrationRequired"
        );
    }

    #[test]
    fn the_ca_type_follows_the_upload() {
        assert_eq!(
            certificate_authority_type(&json!({"isRootAuthority": true})).name,
            "certificateAuthority"
        );
        assert_eq!(
            certificate_authority_type(&json!({"certificateAuthorityType": "root"})).name,
            "certificateAuthorityDetail"
        );
        let mixed = json!({"@odata.type": "#microsoft.graph.certificateAuthorityDetail", "isRootAuthority": true});
        let graph_type = certificate_authority_type(&mixed);
        assert_eq!(
            check(&mixed, graph_type).unwrap_err().field,
            "isRootAuthority"
        );
    }

    #[test]
    fn keys_may_be_repeated_not_changed() {
        let body = |id: Value| json!({"id": id}).as_object().unwrap().clone();
        assert_eq!(
            check_key(&body(json!("X509Certificate")), "X509Certificate"),
            Ok(())
        );
        assert_eq!(
            check_key(&body(json!("other")), "X509Certificate")
                .unwrap_err()
                .field,
            "id"
        );
        assert!(check_key(&body(json!(null)), "X509Certificate").is_err());
    }
}
