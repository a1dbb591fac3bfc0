//! Who the method applies to: its include and exclude targets, and the CA scoping of the chain.

use crate::verifier::directory::User;
use crate::verifier::policy::{CbaPolicy, Target, TargetType, ALL_USERS};
use crate::verifier::trust::VerifiedChain;

/// Whether the user is in the method's included targets and not in an excluded one.
pub(super) fn in_scope(policy: &CbaPolicy, user: &User) -> Result<(), String> {
    fn hits<'t>(targets: &'t [Target], user: &User) -> Option<&'t Target> {
        targets.iter().find(|t| match t.target_type {
            TargetType::User => {
                t.id == user.id || t.id.eq_ignore_ascii_case(&user.user_principal_name)
            }
            TargetType::Group => t.id == ALL_USERS || user.member_of.contains(&t.id),
        })
    }
    if hits(&policy.include_targets, user).is_none() {
        return Err(format!(
            "`{}` is not in the method's included targets",
            user.user_principal_name
        ));
    }
    if let Some(target) = hits(&policy.exclude_targets, user) {
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
pub(super) fn ca_scoping(
    policy: &CbaPolicy,
    chain: &VerifiedChain,
    user: &User,
) -> Result<(), String> {
    for ca in chain.cas() {
        for scope in policy
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
