//! The username bindings: which certificate field, compared with which user attribute, ties the
//! certificate to the user the username named, in priority order.

use super::{MatchedBinding, Refusal, Trail};
use crate::verifier::directory::{comparison_key, User};
use crate::verifier::outcome::ErrorCode;
use crate::verifier::policy::{field_name, property_name, Affinity, UserBinding, UserProperty};
use crate::x509::cert_info::CertInfo;
use crate::x509::user_ids::{certificate_user_id, SerialOrder};

/// Bindings by priority; a missing field or a mismatch moves on to the next.
pub(super) fn username_binding(
    bindings: &[UserBinding],
    serial_order: SerialOrder,
    leaf: &CertInfo,
    user: &User,
    required: Affinity,
    trail: &mut Trail,
) -> Result<MatchedBinding, Refusal> {
    let mut bindings: Vec<&UserBinding> = bindings.iter().collect();
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
        let Some(identifier) = certificate_user_id(leaf, field, serial_order) else {
            trail.step(format!(
                "Binding {name}: the certificate has no {}; next.",
                field_name(field)
            ));
            continue;
        };
        any_value = true;
        let (matched, value) = compare(binding.user_property, identifier, user);
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

/// Whether the certificate's `identifier` matches the user's `property`, and the value compared.
/// PrincipalName and RFC822Name compare their raw value (after `X509:<...>`) with UPN attributes;
/// certificateUserIds compare the whole identifier.
fn compare(property: UserProperty, identifier: String, user: &User) -> (bool, String) {
    let raw = identifier
        .split_once('>')
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| identifier.clone());
    match property {
        UserProperty::UserPrincipalName => {
            (user.user_principal_name.eq_ignore_ascii_case(&raw), raw)
        }
        UserProperty::OnPremisesUserPrincipalName => {
            let matched = user
                .on_premises_user_principal_name
                .as_deref()
                .is_some_and(|on_prem| on_prem.eq_ignore_ascii_case(&raw));
            (matched, raw)
        }
        UserProperty::CertificateUserIds => {
            let wanted = comparison_key(&identifier);
            let matched = user
                .authorization_info
                .certificate_user_ids
                .iter()
                .any(|value| comparison_key(value) == wanted);
            (matched, identifier)
        }
    }
}
