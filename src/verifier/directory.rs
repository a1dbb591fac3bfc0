//! The user directory the engine decides against: users (UPN, onPremisesUserPrincipalName,
//! certificateUserIds) and groups, in Graph's JSON shapes. Entra's limits hold: at most 10
//! certificateUserIds per user, 1024 characters each, each value unique in the tenant.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::text_rules::{
    check_id, check_text, check_upn, Violation, MAX_DISPLAY_NAME_CHARS, MAX_UPN_CHARS,
};

pub const MAX_CERTIFICATE_USER_IDS: usize = 10;
pub const MAX_CERTIFICATE_USER_ID_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Graph's object id; the UPN when not given.
    #[serde(default)]
    pub id: String,
    pub user_principal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_premises_user_principal_name: Option<String>,
    #[serde(default)]
    pub authorization_info: AuthorizationInfo,
    /// Ids of the groups the user belongs to: read as ids, or as the directoryObjects Graph's
    /// `$expand=memberOf` gives (see [`group_ids`]); written as ids.
    #[serde(default, deserialize_with = "group_ids")]
    pub member_of: Vec<String>,
}

impl User {
    /// Entra's rules for one user, fields named relative to the user: the UPN's alphabet and
    /// length, an addressable id, bounded names, at most 10 certificateUserIds of at most 1024
    /// characters each, each starting `X509:<`.
    pub fn validate(&self) -> Result<(), Violation> {
        check_upn("userPrincipalName", &self.user_principal_name)?;
        check_id("id", &self.id)?;
        if let Some(upn) = &self.on_premises_user_principal_name {
            check_text("onPremisesUserPrincipalName", upn, MAX_UPN_CHARS)?;
        }
        if let Some(name) = &self.display_name {
            check_text("displayName", name, MAX_DISPLAY_NAME_CHARS)?;
        }
        let cuids = &self.authorization_info.certificate_user_ids;
        if cuids.len() > MAX_CERTIFICATE_USER_IDS {
            return Err(Violation::new(
                "authorizationInfo.certificateUserIds",
                format!("at most {MAX_CERTIFICATE_USER_IDS} values per user"),
            ));
        }
        for (j, value) in cuids.iter().enumerate() {
            let field = format!("authorizationInfo.certificateUserIds[{j}]");
            if value.chars().count() > MAX_CERTIFICATE_USER_ID_CHARS {
                return Err(Violation::new(
                    field,
                    format!("longer than {MAX_CERTIFICATE_USER_ID_CHARS} characters"),
                ));
            }
            check_text(&field, value, MAX_CERTIFICATE_USER_ID_CHARS)?;
            if !value.starts_with("X509:<") {
                return Err(Violation::new(
                    field,
                    format!("`{value}` does not start with X509:<tag>"),
                ));
            }
        }
        for (j, group) in self.member_of.iter().enumerate() {
            check_id(&format!("memberOf[{j}]"), group)?;
        }
        Ok(())
    }
}

impl Group {
    /// An addressable id and a bounded display name.
    pub fn validate(&self) -> Result<(), Violation> {
        check_id("id", &self.id)?;
        check_text("displayName", &self.display_name, MAX_DISPLAY_NAME_CHARS)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationInfo {
    #[serde(default)]
    pub certificate_user_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
}

/// Users and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: field `{field}`: {message}")]
pub struct DirectoryError {
    pub source_name: String,
    pub field: String,
    pub message: String,
}

impl Directory {
    /// Each user and group on its own ([`User::validate`], [`Group::validate`]), then across the
    /// directory: UPNs, ids and certificateUserIds values unique, groups known.
    pub fn validate(&self) -> Result<(), Violation> {
        for (i, group) in self.groups.iter().enumerate() {
            group
                .validate()
                .map_err(|v| v.under(|field| format!("groups[{i}].{field}")))?;
        }
        let groups: HashSet<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        let mut upns = HashSet::new();
        let mut ids = HashSet::new();
        let mut values: HashMap<String, &str> = HashMap::new();
        for (i, user) in self.users.iter().enumerate() {
            let at = |f: &str| format!("users[{i}].{f}");
            user.validate().map_err(|v| v.under(|field| at(field)))?;
            if !upns.insert(user.user_principal_name.to_lowercase()) {
                return Err(Violation::new(
                    at("userPrincipalName"),
                    format!("`{}` is used twice", user.user_principal_name),
                ));
            }
            if !ids.insert(user.id.as_str()) {
                return Err(Violation::new(
                    at("id"),
                    format!("id `{}` is used twice", user.id),
                ));
            }
            for (j, value) in user
                .authorization_info
                .certificate_user_ids
                .iter()
                .enumerate()
            {
                if let Some(owner) = values.insert(comparison_key(value), &user.user_principal_name)
                {
                    return Err(Violation::new(
                        at(&format!("authorizationInfo.certificateUserIds[{j}]")),
                        format!(
                            "`{value}` already belongs to {owner}; values are unique in a tenant"
                        ),
                    ));
                }
            }
            for (j, group) in user.member_of.iter().enumerate() {
                if !groups.contains(group.as_str()) {
                    return Err(Violation::new(
                        at(&format!("memberOf[{j}]")),
                        format!("unknown group `{group}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The user with this UPN (case-insensitive), as home realm discovery finds them.
    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
    }
}

/// certificateUserIds compare with the `X509:<tag>` exactly and the rest case-insensitively.
pub fn comparison_key(value: &str) -> String {
    match value.find('>') {
        Some(end) => format!("{}{}", &value[..=end], value[end + 1..].to_lowercase()),
        None => value.to_owned(),
    }
}

/// Graph's `@odata.type` of a group.
pub const GROUP_ODATA_TYPE: &str = "#microsoft.graph.group";
/// Graph's `@odata.type` of a user.
pub const USER_ODATA_TYPE: &str = "#microsoft.graph.user";

/// One entry of a `memberOf` or `members` list: a bare id, or a directoryObject as Graph expands
/// it (`{"@odata.type": "#microsoft.graph.group", "id": "...", "displayName": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "ObjectRepr")]
pub struct DirectoryObject {
    /// `None` for a bare id, or an object without `@odata.type`.
    pub odata_type: Option<String>,
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
}

impl DirectoryObject {
    /// Untyped (a bare id), or typed `type_name`.
    pub fn is(&self, type_name: &str) -> bool {
        self.odata_type.as_deref().is_none_or(|t| t == type_name)
    }
}

#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "expected an id, or a directory object with an `id` such as {\"@odata.type\": \"#microsoft.graph.group\", \"id\": \"...\"}"
)]
enum ObjectRepr {
    Id(String),
    #[serde(rename_all = "camelCase")]
    Object {
        #[serde(rename = "@odata.type", default)]
        odata_type: Option<String>,
        id: String,
        #[serde(default)]
        display_name: Option<String>,
        #[serde(default)]
        user_principal_name: Option<String>,
    },
}

impl From<ObjectRepr> for DirectoryObject {
    fn from(repr: ObjectRepr) -> Self {
        match repr {
            ObjectRepr::Id(id) => Self {
                odata_type: None,
                id,
                display_name: None,
                user_principal_name: None,
            },
            ObjectRepr::Object {
                odata_type,
                id,
                display_name,
                user_principal_name,
            } => Self {
                odata_type,
                id,
                display_name,
                user_principal_name,
            },
        }
    }
}

/// `memberOf` as group ids. Graph's memberOf also lists directory roles and administrative units;
/// a method policy can target neither, so they are left out.
fn group_ids<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let objects = Vec::<DirectoryObject>::deserialize(deserializer)?;
    Ok(objects
        .into_iter()
        .filter(|o| o.is(GROUP_ODATA_TYPE))
        .map(|o| o.id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::graph_files::{load_directory, GraphFileError};

    /// The field error reading `json` as a directory file gives.
    fn load_error(json: &[u8]) -> DirectoryError {
        match load_directory(json, "d.json", None) {
            Err(GraphFileError::Directory(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn certificate_user_ids_are_unique_in_the_tenant() {
        let json = br#"{"users": [
            {"userPrincipalName": "a@w.com", "authorizationInfo": {"certificateUserIds": ["X509:<PN>x@w.com"]}},
            {"userPrincipalName": "b@w.com", "authorizationInfo": {"certificateUserIds": ["X509:<PN>X@W.COM"]}}
        ]}"#;
        let err = load_error(json);
        assert_eq!(
            err.field,
            "users[1].authorizationInfo.certificateUserIds[0]"
        );
        assert!(err.message.contains("already belongs to a@w.com"));
    }

    #[test]
    fn limits_and_groups() {
        let many: Vec<String> = (0..11)
            .map(|i| format!("\"X509:<PN>u{i}@w.com\""))
            .collect();
        let json = format!(
            r#"{{"users": [{{"userPrincipalName": "a@w.com", "authorizationInfo": {{"certificateUserIds": [{}]}}}}]}}"#,
            many.join(",")
        );
        let err = load_error(json.as_bytes());
        assert_eq!(err.message, "at most 10 values per user");
        let json =
            br#"{"users": [{"userPrincipalName": "a@w.com", "memberOf": ["nope"]}], "groups": []}"#;
        let err = load_error(json);
        assert_eq!(err.field, "users[0].memberOf[0]");
    }

    #[test]
    fn tags_compare_exactly() {
        assert_eq!(comparison_key("X509:<PN>Bob@W.com"), "X509:<PN>bob@w.com");
        assert_ne!(
            comparison_key("X509:<pn>bob"),
            comparison_key("X509:<PN>bob")
        );
    }
}
