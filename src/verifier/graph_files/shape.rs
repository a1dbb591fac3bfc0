//! What shape a JSON file has: a user, group or CA list, a directory, the x509Certificate method
//! configuration, the whole authenticationMethodsPolicy, or something else, described for a person
//! ("a JSON object with keys `foo`"). Told from `@odata.context` and `@odata.type` where Graph
//! gives them, else from the keys only one kind of object has.

use serde_json::{Map, Value};

use crate::verifier::directory::{GROUP_ODATA_TYPE, USER_ODATA_TYPE};
use crate::verifier::policy::ODATA_TYPE as X509_ODATA_TYPE;

/// Graph's `@odata.type` of the whole authentication methods policy.
const METHODS_POLICY_ODATA_TYPE: &str = "#microsoft.graph.authenticationMethodsPolicy";
/// The list of method configurations inside it.
pub(super) const CONFIGURATIONS: &str = "authenticationMethodConfigurations";
/// Keys only the x509Certificate method configuration has.
const X509_KEYS: [&str; 5] = [
    "certificateUserBindings",
    "authenticationModeConfiguration",
    "crlValidationConfiguration",
    "issuerHintsConfiguration",
    "certificateAuthorityScopes",
];
/// Keys every method configuration has.
const METHOD_KEYS: [&str; 3] = ["state", "includeTargets", "excludeTargets"];
/// Keys only a group has (a user carries none of them).
const GROUP_KEYS: [&str; 4] = ["members", "groupTypes", "securityEnabled", "mailEnabled"];

/// What a file is meant to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Users,
    Groups,
    Policy,
    CertificateAuthorities,
}

impl FileKind {
    /// The shapes taken for this kind, for an error message.
    pub fn expected(self) -> &'static str {
        match self {
            Self::Users => "a user list: Graph's `{\"value\": [...]}` (GET /users, with $expand=memberOf for memberships), an array of users, or `{\"users\": [...], \"groups\": [...]}`",
            Self::Groups => "a group list: Graph's `{\"value\": [...]}` (GET /groups, with $expand=members for members) or an array of groups",
            Self::Policy => "the x509Certificate method configuration (GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate) or the whole authenticationMethodsPolicy holding it (GET /policies/authenticationMethodsPolicy)",
            Self::CertificateAuthorities => "a list of certificate authorities",
        }
    }
}

/// The shape a file turned out to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    UserList {
        count: usize,
    },
    GroupList {
        count: usize,
    },
    /// Objects with an `id` and nothing that says user or group: groups as the verifier lists
    /// them, or users selected without their UPN.
    IdList {
        count: usize,
        keys: String,
    },
    CertificateAuthorityList,
    /// `{"users": [...], "groups": [...]}`, as a fixture's `fixture.json`.
    Directory,
    /// The x509Certificate method configuration.
    X509Configuration,
    /// The whole authenticationMethodsPolicy with an x509Certificate entry.
    MethodsPolicy,
    /// The whole authenticationMethodsPolicy without one; the ids of the entries it has.
    MethodsPolicyWithoutX509 {
        methods: Vec<String>,
    },
    /// Another method's configuration (Fido2, Sms, ...).
    OtherMethodConfiguration {
        id: String,
    },
    User {
        user_principal_name: String,
    },
    Group,
    CertificateAuthority,
    /// `[]`, or `{"value": []}` that says nothing of what it lists.
    EmptyList,
    /// A list of objects of more than one kind.
    Mixed {
        kinds: String,
    },
    /// Anything else, described.
    Other(String),
}

impl Found {
    /// The kind of file this is, if it is one the verifier reads.
    pub fn kind(&self) -> Option<FileKind> {
        match self {
            Self::UserList { .. } | Self::Directory | Self::User { .. } => Some(FileKind::Users),
            Self::GroupList { .. } | Self::Group => Some(FileKind::Groups),
            Self::X509Configuration
            | Self::MethodsPolicy
            | Self::MethodsPolicyWithoutX509 { .. }
            | Self::OtherMethodConfiguration { .. } => Some(FileKind::Policy),
            Self::CertificateAuthorityList | Self::CertificateAuthority => {
                Some(FileKind::CertificateAuthorities)
            }
            Self::IdList { .. } | Self::EmptyList | Self::Mixed { .. } | Self::Other(_) => None,
        }
    }
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        match self {
            Self::UserList { count } => write!(f, "a user list ({})", plural(*count, "user", "users")),
            Self::GroupList { count } => {
                write!(f, "a group list ({})", plural(*count, "group", "groups"))
            }
            Self::IdList { count, keys } => write!(
                f,
                "a list of {} with no userPrincipalName (the first has keys {keys})",
                plural(*count, "object", "objects")
            ),
            Self::CertificateAuthorityList => f.write_str("a list of certificate authorities"),
            Self::Directory => f.write_str("a directory of `users` and `groups`"),
            Self::X509Configuration => f.write_str("the x509Certificate method configuration (a policy)"),
            Self::MethodsPolicy => f.write_str("the whole authenticationMethodsPolicy (a policy)"),
            Self::MethodsPolicyWithoutX509 { methods } if methods.is_empty() => f.write_str(
                "an authenticationMethodsPolicy whose authenticationMethodConfigurations are empty: it has no x509Certificate entry",
            ),
            Self::MethodsPolicyWithoutX509 { methods } => write!(
                f,
                "an authenticationMethodsPolicy with no x509Certificate entry in authenticationMethodConfigurations (only {})",
                quoted(methods.iter().map(String::as_str))
            ),
            Self::OtherMethodConfiguration { id } => {
                write!(f, "the method configuration of `{id}`, not of x509Certificate")
            }
            Self::User { user_principal_name } => {
                write!(f, "a single user (`{user_principal_name}`), not a list")
            }
            Self::Group => f.write_str("a single group, not a list"),
            Self::CertificateAuthority => f.write_str("a single certificate authority"),
            Self::EmptyList => f.write_str("an empty list"),
            Self::Mixed { kinds } => write!(f, "a list mixing {kinds}"),
            Self::Other(description) => f.write_str(description),
        }
    }
}

/// What a parsed file holds.
pub fn identify(value: &Value) -> Found {
    match value {
        Value::Array(items) => list(items, None),
        Value::Object(object) => object_shape(object),
        other => Found::Other(describe(other)),
    }
}

fn object_shape(object: &Map<String, Value>) -> Found {
    let odata_type = object.get("@odata.type").and_then(Value::as_str);
    // `https://graph.microsoft.com/v1.0/$metadata#users(id,memberOf())` names `users`.
    let entity = object
        .get("@odata.context")
        .and_then(Value::as_str)
        .and_then(|c| c.split_once("$metadata#"))
        .and_then(|(_, entity)| entity.split(['(', '/']).next());
    if let Some(value) = object.get("value") {
        return match value {
            Value::Array(items) => list(items, entity),
            other => Found::Other(format!(
                "a JSON object whose `value` is {}, not a list",
                describe(other)
            )),
        };
    }
    if object.contains_key(CONFIGURATIONS)
        || odata_type == Some(METHODS_POLICY_ODATA_TYPE)
        || entity == Some("authenticationMethodsPolicy")
    {
        return match object.get(CONFIGURATIONS) {
            Some(Value::Array(entries)) if !x509_entries(entries).is_empty() => {
                Found::MethodsPolicy
            }
            Some(Value::Array(entries)) => Found::MethodsPolicyWithoutX509 {
                methods: entries
                    .iter()
                    .map(|e| e["id"].as_str().unwrap_or("(no id)").to_owned())
                    .collect(),
            },
            Some(other) => Found::Other(format!(
                "an authenticationMethodsPolicy whose {CONFIGURATIONS} is {}, not a list",
                describe(other)
            )),
            None => Found::MethodsPolicyWithoutX509 { methods: vec![] },
        };
    }
    if object.contains_key("certificateAuthorities") {
        return Found::CertificateAuthorityList;
    }
    if is_x509_configuration(object) {
        return Found::X509Configuration;
    }
    if let Some(odata_type) =
        odata_type.filter(|t| t.ends_with("AuthenticationMethodConfiguration"))
    {
        return Found::OtherMethodConfiguration {
            id: object
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(odata_type)
                .to_owned(),
        };
    }
    if object.contains_key("users") || object.contains_key("groups") {
        return Found::Directory;
    }
    match item(object) {
        Item::User => Found::User {
            user_principal_name: object
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        },
        Item::Group => Found::Group,
        Item::CertificateAuthority => Found::CertificateAuthority,
        _ => Found::Other(describe_object(object)),
    }
}

fn is_x509_configuration(object: &Map<String, Value>) -> bool {
    let odata_type = object.get("@odata.type").and_then(Value::as_str);
    let id = object.get("id").and_then(Value::as_str);
    odata_type == Some(X509_ODATA_TYPE)
        || id.is_some_and(|id| id.eq_ignore_ascii_case("X509Certificate"))
        || (odata_type.is_none()
            && X509_KEYS
                .iter()
                .chain(&METHOD_KEYS)
                .any(|k| object.contains_key(*k)))
}

/// Indexes of the x509Certificate entries among a policy's method configurations.
pub(super) fn x509_entries(entries: &[Value]) -> Vec<usize> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.get("@odata.type").and_then(Value::as_str) == Some(X509_ODATA_TYPE)
                || e.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case("X509Certificate"))
        })
        .map(|(i, _)| i)
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    User,
    Group,
    /// An `id` and nothing that says what it is of.
    Unmarked,
    CertificateAuthority,
    MethodConfiguration,
    Other,
}

impl Item {
    fn plural(self) -> &'static str {
        match self {
            Self::User => "users",
            Self::Group => "groups",
            Self::Unmarked => "objects with only an id",
            Self::CertificateAuthority => "certificate authorities",
            Self::MethodConfiguration => "method configurations",
            Self::Other => "other values",
        }
    }
}

fn item(object: &Map<String, Value>) -> Item {
    let odata_type = object.get("@odata.type").and_then(Value::as_str);
    if odata_type == Some(USER_ODATA_TYPE) || object.contains_key("userPrincipalName") {
        Item::User
    } else if odata_type == Some(GROUP_ODATA_TYPE)
        || GROUP_KEYS.iter().any(|k| object.contains_key(*k))
    {
        Item::Group
    } else if object.contains_key("certificate") {
        Item::CertificateAuthority
    } else if odata_type.is_some_and(|t| t.ends_with("AuthenticationMethodConfiguration")) {
        Item::MethodConfiguration
    } else if odata_type.is_none() && object.contains_key("id") {
        Item::Unmarked
    } else {
        Item::Other
    }
}

/// A list, by what its `@odata.context` says it lists or else by its items.
fn list(items: &[Value], entity: Option<&str>) -> Found {
    let count = items.len();
    match entity {
        Some("users") => return Found::UserList { count },
        Some("groups") => return Found::GroupList { count },
        _ => {}
    }
    let Some(first) = items.first() else {
        return Found::EmptyList;
    };
    let kinds: Vec<Item> = items
        .iter()
        .map(|v| v.as_object().map_or(Item::Other, item))
        .collect();
    let all = |allowed: &[Item]| kinds.iter().all(|k| allowed.contains(k));
    let any = |kind: Item| kinds.contains(&kind);
    if all(&[Item::User, Item::Unmarked]) && any(Item::User) {
        Found::UserList { count }
    } else if all(&[Item::Group, Item::Unmarked]) && any(Item::Group) {
        Found::GroupList { count }
    } else if all(&[Item::Unmarked]) {
        Found::IdList {
            count,
            keys: first.as_object().map(keys).unwrap_or_default(),
        }
    } else if all(&[Item::CertificateAuthority]) {
        Found::CertificateAuthorityList
    } else if all(&[Item::Other]) {
        Found::Other(format!("a list whose first item is {}", describe(first)))
    } else {
        let mut seen: Vec<Item> = Vec::new();
        for kind in kinds {
            if !seen.contains(&kind) {
                seen.push(kind);
            }
        }
        Found::Mixed {
            kinds: seen
                .iter()
                .map(|k| k.plural())
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }
}

pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a JSON boolean".into(),
        Value::Number(_) => "a JSON number".into(),
        Value::String(_) => "a JSON string".into(),
        Value::Array(items) if items.is_empty() => "an empty array".into(),
        Value::Array(items) => format!("an array of {} values", items.len()),
        Value::Object(object) => describe_object(object),
    }
}

fn describe_object(object: &Map<String, Value>) -> String {
    if object.is_empty() {
        "an empty JSON object".into()
    } else {
        format!("a JSON object with keys {}", keys(object))
    }
}

/// `` `a`, `b`, `c` ``, at most eight.
fn keys(object: &Map<String, Value>) -> String {
    const SHOWN: usize = 8;
    let mut text = quoted(object.keys().take(SHOWN).map(String::as_str));
    if object.len() > SHOWN {
        text += &format!(" and {} more", object.len() - SHOWN);
    }
    text
}

fn quoted<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(json: &str) -> Found {
        identify(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn shapes_are_told_apart() {
        assert_eq!(
            found(
                r##"{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": []}"##
            ),
            Found::UserList { count: 0 }
        );
        assert_eq!(
            found(
                r##"{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id,displayName)", "value": []}"##
            ),
            Found::GroupList { count: 0 }
        );
        assert_eq!(
            found(r##"[{"userPrincipalName": "a@w.com"}]"##),
            Found::UserList { count: 1 }
        );
        assert_eq!(
            found(r##"{"value": [{"id": "g1", "displayName": "G"}]}"##),
            Found::IdList {
                count: 1,
                keys: "`id`, `displayName`".into()
            }
        );
        assert_eq!(found(r##"{"state": "enabled"}"##), Found::X509Configuration);
        assert_eq!(
            found(r##"{"authenticationMethodConfigurations": [{"id": "Fido2"}]}"##),
            Found::MethodsPolicyWithoutX509 {
                methods: vec!["Fido2".into()]
            }
        );
        assert_eq!(
            found(
                r##"{"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "id": "Fido2"}"##
            ),
            Found::OtherMethodConfiguration { id: "Fido2".into() }
        );
        assert_eq!(found("[]"), Found::EmptyList);
        assert_eq!(
            found(r##"{"foo": 1}"##),
            Found::Other("a JSON object with keys `foo`".into())
        );
        assert_eq!(
            found(
                r##"[{"userPrincipalName": "a@w.com"}, {"@odata.type": "#microsoft.graph.group", "id": "g"}]"##
            ),
            Found::Mixed {
                kinds: "users and groups".into()
            }
        );
        assert_eq!(found("3"), Found::Other("a JSON number".into()));
    }
}
