//! The files a tenant is read from (`eval`'s users, groups and policy; `serve`'s tenant and
//! policy), in the shapes Microsoft Graph returns: list responses (`{"@odata.context", "value":
//! [...]}`), memberships as ids or as `$expand`ed directoryObjects, and the x509Certificate method
//! configuration alone or inside the whole authenticationMethodsPolicy. A file of any other shape
//! is an error that names the shape expected and the shape found: it never loads as an empty
//! directory or a default (disabled) policy, which would turn a wrong file into a verdict.

use crate::verifier::text_rules::Violation;
use serde::de::DeserializeOwned;
use serde_json::Value;

mod shape;

pub use shape::{identify, FileKind, Found};

use super::directory::{
    Directory, DirectoryError, DirectoryObject, Group, User, GROUP_ODATA_TYPE, USER_ODATA_TYPE,
};
use super::policy::{CbaPolicy, PolicyError};
use shape::{describe, x509_entries, CONFIGURATIONS};

/// A file that cannot be read as what it was given as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphFileError {
    #[error("{source_name} is not JSON: {message}")]
    NotJson {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: expected {}; found {found}", expected.expected())]
    Shape {
        source_name: String,
        expected: FileKind,
        found: Found,
    },
    /// The shape is right; a field in it is not.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

impl GraphFileError {
    /// What the file holds instead, when it holds another of the verifier's files.
    pub fn found_kind(&self) -> Option<FileKind> {
        match self {
            Self::Shape { found, .. } => found.kind(),
            _ => None,
        }
    }
}

/// A list that is one page of a longer one (`@odata.nextLink`, or an `@odata.count` above what it
/// holds): whoever is on the other pages is missing from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub source_name: String,
    /// Where the list is in the file: `value`, or `value[3].memberOf`.
    pub at: String,
    pub listed: usize,
    pub count: Option<u64>,
    pub next_link: bool,
}

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` holds {}",
            self.source_name, self.at, self.listed
        )?;
        if let Some(count) = self.count {
            write!(f, " of {count}")?;
        }
        f.write_str(" entries, one page of a longer list")?;
        if self.next_link {
            f.write_str(" (it has an @odata.nextLink)")?;
        }
        f.write_str("; what the other pages hold is missing: follow @odata.nextLink and join the pages' `value` arrays")
    }
}

/// A directory read from files, and the lists in them that were only one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryFiles {
    pub directory: Directory,
    pub incomplete: Vec<Incomplete>,
}

/// Reads the method policy: the x509Certificate configuration alone, or the whole
/// authenticationMethodsPolicy (whose x509Certificate entry is taken).
pub fn load_policy(json: &[u8], source_name: &str) -> Result<CbaPolicy, GraphFileError> {
    let value = parse(json, source_name)?;
    match identify(&value) {
        Found::X509Configuration => Ok(CbaPolicy::from_json(json, source_name)?),
        Found::MethodsPolicy => {
            let entries = value[CONFIGURATIONS]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            let at = x509_entries(entries);
            let (&first, rest) = at.split_first().ok_or_else(|| {
                shape(
                    source_name,
                    FileKind::Policy,
                    Found::MethodsPolicyWithoutX509 { methods: vec![] },
                )
            })?;
            if let Some(second) = rest.first() {
                return Err(PolicyError {
                    source_name: source_name.to_owned(),
                    field: format!("{CONFIGURATIONS}[{second}]"),
                    message: format!(
                        "a second x509Certificate entry (the first is [{first}]); a tenant has one"
                    ),
                }
                .into());
            }
            CbaPolicy::from_value(&entries[first], source_name).map_err(|mut e| {
                let entry = format!("{CONFIGURATIONS}[{first}]");
                e.field = if e.field == "(document)" {
                    entry
                } else {
                    format!("{entry}.{}", e.field)
                };
                e.into()
            })
        }
        found => Err(shape(source_name, FileKind::Policy, found)),
    }
}

/// Reads users (and the groups their file may hold) and, optionally, a file of groups; group
/// membership may be given from either side, and both end up in each user's `memberOf`.
///
/// A user's `memberOf` entry typed `#microsoft.graph.group` is a group of the directory even when
/// no group list names it (Graph said it is one); a bare id must name a listed group. A group's
/// `members` are users by id (or UPN); a nested group is refused, since membership through one is
/// not modelled, and other objects (devices, service principals) are left out.
pub fn load_directory(
    users: &[u8],
    users_name: &str,
    groups: Option<(&[u8], &str)>,
) -> Result<DirectoryFiles, GraphFileError> {
    let mut incomplete = Vec::new();
    let users_value = parse(users, users_name)?;
    let mut group_lists = Vec::new();
    let user_list = match identify(&users_value) {
        Found::UserList { .. } | Found::EmptyList => {
            list_in(&users_value, users_name, &mut incomplete)
        }
        Found::Directory => {
            if let Some(list) = member_list(&users_value, "groups", users_name)? {
                group_lists.push(list);
            }
            member_list(&users_value, "users", users_name)?.unwrap_or(List {
                source_name: users_name,
                at: "users".into(),
                items: &[],
            })
        }
        found => return Err(shape(users_name, FileKind::Users, found)),
    };
    let groups_value = groups
        .map(|(json, name)| parse(json, name).map(|value| (value, name)))
        .transpose()?;
    if let Some((value, name)) = &groups_value {
        match identify(value) {
            Found::GroupList { .. } | Found::IdList { .. } | Found::EmptyList => {
                group_lists.push(list_in(value, name, &mut incomplete));
            }
            found => return Err(shape(name, FileKind::Groups, found)),
        }
    }

    let (users, declared) = read_users(&user_list, &mut incomplete)?;
    let (mut groups, memberships) = read_groups(&group_lists, &mut incomplete)?;
    for group in declared {
        if groups.iter().all(|g| g.id != group.object.id) {
            let declared = Group {
                id: group.object.id,
                display_name: group.object.display_name.unwrap_or_default(),
            };
            declared
                .validate()
                .map_err(|Violation { field: f, message }| {
                    field_error(group.source_name, format!("{}.{f}", group.at), message)
                })?;
            groups.push(declared);
        }
    }
    let mut directory = Directory { users, groups };
    for membership in memberships {
        add_member(&mut directory.users, membership, users_name)?;
    }
    directory
        .validate()
        .map_err(|Violation { field, message }| {
            // Directory::validate names users as `users[i]`; say where they are in the file.
            let field = match field.strip_prefix("users") {
                Some(rest) if rest.starts_with('[') => format!("{}{rest}", user_list.at),
                _ => field,
            };
            field_error(users_name, field, message)
        })?;
    Ok(DirectoryFiles {
        directory,
        incomplete,
    })
}

/// An entry somewhere in a file: what, which file, where in it.
struct Entry<'v, T> {
    object: T,
    source_name: &'v str,
    at: String,
}

/// Users, with the groups their `memberOf` objects declare.
fn read_users<'v>(
    list: &List<'v>,
    incomplete: &mut Vec<Incomplete>,
) -> Result<(Vec<User>, Vec<Entry<'v, DirectoryObject>>), GraphFileError> {
    let mut users = Vec::new();
    let mut declared = Vec::new();
    for (i, item) in list.items.iter().enumerate() {
        let at = list.path(i);
        let mut user: User = typed(item, list.source_name, &at)?;
        if user.id.is_empty() {
            user.id.clone_from(&user.user_principal_name);
        }
        if let Some(member_of) = item.get("memberOf") {
            let at = format!("{at}.memberOf");
            let objects: Vec<DirectoryObject> = typed(member_of, list.source_name, &at)?;
            for (j, object) in objects.into_iter().enumerate() {
                if object.odata_type.as_deref() == Some(GROUP_ODATA_TYPE) {
                    declared.push(Entry {
                        object,
                        source_name: list.source_name,
                        at: format!("{at}[{j}]"),
                    });
                }
            }
            incomplete.extend(next_page(
                item,
                "memberOf",
                list.source_name,
                &at,
                member_of,
            ));
        }
        users.push(user);
    }
    Ok((users, declared))
}

/// A group's id and one of its `members`.
type Membership<'v> = Entry<'v, (String, DirectoryObject)>;

/// Groups, each listed once, with the users their `members` name.
fn read_groups<'v>(
    lists: &[List<'v>],
    incomplete: &mut Vec<Incomplete>,
) -> Result<(Vec<Group>, Vec<Membership<'v>>), GraphFileError> {
    let mut groups: Vec<Group> = Vec::new();
    let mut memberships = Vec::new();
    for list in lists {
        for (i, item) in list.items.iter().enumerate() {
            let at = list.path(i);
            let field = |f: &str| format!("{at}.{f}");
            let group: Group = typed(item, list.source_name, &at)?;
            group
                .validate()
                .map_err(|Violation { field: f, message }| {
                    field_error(list.source_name, field(&f), message)
                })?;
            if groups.iter().any(|g| g.id == group.id) {
                return Err(field_error(
                    list.source_name,
                    field("id"),
                    format!("group `{}` is listed twice", group.id),
                ));
            }
            if let Some(members) = item.get("members") {
                let objects: Vec<DirectoryObject> =
                    typed(members, list.source_name, &field("members"))?;
                for (j, member) in objects.into_iter().enumerate() {
                    let at = field(&format!("members[{j}]"));
                    if member.odata_type.as_deref() == Some(GROUP_ODATA_TYPE) {
                        return Err(field_error(
                            list.source_name,
                            at,
                            format!("`{}` is a group inside group `{}`; membership through a nested group is not modelled: list its users as members instead", member.id, group.id),
                        ));
                    }
                    if member.is(USER_ODATA_TYPE) {
                        memberships.push(Entry {
                            object: (group.id.clone(), member),
                            source_name: list.source_name,
                            at,
                        });
                    }
                }
                incomplete.extend(next_page(
                    item,
                    "members",
                    list.source_name,
                    &field("members"),
                    members,
                ));
            }
            groups.push(group);
        }
    }
    Ok((groups, memberships))
}

/// Puts a group a user is a member of into the user's `memberOf`.
fn add_member(
    users: &mut [User],
    membership: Membership<'_>,
    users_name: &str,
) -> Result<(), GraphFileError> {
    let (group, member) = membership.object;
    let user = users
        .iter_mut()
        .find(|u| {
            u.id == member.id
                || u.user_principal_name.eq_ignore_ascii_case(&member.id)
                || member
                    .user_principal_name
                    .as_deref()
                    .is_some_and(|upn| u.user_principal_name.eq_ignore_ascii_case(upn))
        })
        .ok_or_else(|| {
            field_error(
                membership.source_name,
                membership.at,
                format!(
                    "member `{}` of group `{group}` is not among the users in {users_name}",
                    member.id
                ),
            )
        })?;
    if !user.member_of.contains(&group) {
        user.member_of.push(group);
    }
    Ok(())
}

/// The list of objects in a file: its items and where they are.
struct List<'v> {
    source_name: &'v str,
    /// `value`, `users`, `groups`, or empty for a bare array.
    at: String,
    items: &'v [Value],
}

impl List<'_> {
    fn path(&self, i: usize) -> String {
        format!("{}[{i}]", self.at)
    }
}

/// The items of a list response or a bare array, noting a list that is one page.
fn list_in<'v>(
    value: &'v Value,
    source_name: &'v str,
    incomplete: &mut Vec<Incomplete>,
) -> List<'v> {
    match value {
        Value::Array(items) => List {
            source_name,
            at: String::new(),
            items,
        },
        _ => {
            let items = value["value"].as_array().map_or(&[][..], Vec::as_slice);
            incomplete.extend(page_note(value, source_name, "value", items.len()));
            List {
                source_name,
                at: "value".into(),
                items,
            }
        }
    }
}

/// `users` or `groups` of a directory file; an error if it is there but not a list.
fn member_list<'v>(
    value: &'v Value,
    key: &str,
    source_name: &'v str,
) -> Result<Option<List<'v>>, GraphFileError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(List {
            source_name,
            at: key.to_owned(),
            items,
        })),
        Some(other) => Err(field_error(
            source_name,
            key.to_owned(),
            format!("must be an array, not {}", describe(other)),
        )),
    }
}

/// An `@odata.nextLink` or `@odata.count` beyond what a list holds.
fn page_note(object: &Value, source_name: &str, at: &str, listed: usize) -> Option<Incomplete> {
    let next_link = object.get("@odata.nextLink").is_some_and(|l| !l.is_null());
    let count = object.get("@odata.count").and_then(Value::as_u64);
    let more = count.is_some_and(|c| usize::try_from(c).map_or(true, |c| c > listed));
    (next_link || more).then(|| Incomplete {
        source_name: source_name.to_owned(),
        at: at.to_owned(),
        listed,
        count,
        next_link,
    })
}

/// An expanded relation (`memberOf`, `members`) that Graph cut short: its
/// `memberOf@odata.nextLink` sits beside it.
fn next_page(
    item: &Value,
    relation: &str,
    source_name: &str,
    at: &str,
    list: &Value,
) -> Option<Incomplete> {
    let link = item.get(format!("{relation}@odata.nextLink"))?;
    (!link.is_null()).then(|| Incomplete {
        source_name: source_name.to_owned(),
        at: at.to_owned(),
        listed: list.as_array().map_or(0, Vec::len),
        count: None,
        next_link: true,
    })
}

fn parse(json: &[u8], source_name: &str) -> Result<Value, GraphFileError> {
    serde_json::from_slice(json).map_err(|e| GraphFileError::NotJson {
        source_name: source_name.to_owned(),
        message: e.to_string(),
    })
}

/// Deserializes `value`, found at `at` in the file, naming the field at fault.
fn typed<T: DeserializeOwned>(
    value: &Value,
    source_name: &str,
    at: &str,
) -> Result<T, GraphFileError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let field = match inner.as_str() {
            "." => at.to_owned(),
            _ if at.is_empty() => inner,
            _ if inner.starts_with('[') => format!("{at}{inner}"),
            _ => format!("{at}.{inner}"),
        };
        field_error(source_name, field, e.into_inner().to_string())
    })
}

fn field_error(source_name: &str, field: String, message: String) -> GraphFileError {
    GraphFileError::Directory(DirectoryError {
        source_name: source_name.to_owned(),
        field,
        message,
    })
}

fn shape(source_name: &str, expected: FileKind, found: Found) -> GraphFileError {
    GraphFileError::Shape {
        source_name: source_name.to_owned(),
        expected,
        found,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn directory(users: &str, groups: Option<&str>) -> Result<Directory, GraphFileError> {
        load_directory(
            users.as_bytes(),
            "users.json",
            groups.map(|g| (g.as_bytes(), "groups.json")),
        )
        .map(|files| files.directory)
    }

    #[test]
    fn memberships_from_either_side_agree() {
        let users = r##"{"value": [
            {"id": "u1", "userPrincipalName": "a@w.com", "memberOf": [
                {"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "One"},
                {"@odata.type": "#microsoft.graph.directoryRole", "id": "r1"}]},
            {"id": "u2", "userPrincipalName": "b@w.com"}]}"##;
        let groups = r##"{"value": [{"id": "g2", "displayName": "Two", "members": [
            {"@odata.type": "#microsoft.graph.user", "id": "u2"},
            {"@odata.type": "#microsoft.graph.device", "id": "d1"},
            "a@w.com"]}]}"##;
        let d = directory(users, Some(groups)).unwrap();
        assert_eq!(d.users[0].member_of, ["g1", "g2"]);
        assert_eq!(d.users[1].member_of, ["g2"]);
        let ids: Vec<&str> = d.groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["g2", "g1"]);
        assert_eq!(d.groups[1].display_name, "One");
    }

    #[test]
    fn membership_errors_name_the_entry() {
        let users = r##"[{"userPrincipalName": "a@w.com", "memberOf": ["nope"]}]"##;
        let GraphFileError::Directory(e) = directory(users, None).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.field, "[0].memberOf[0]");
        let groups =
            r##"[{"id": "g", "members": [{"@odata.type": "#microsoft.graph.group", "id": "h"}]}]"##;
        let GraphFileError::Directory(e) = directory("[]", Some(groups)).unwrap_err() else {
            panic!()
        };
        assert_eq!(
            (e.source_name.as_str(), e.field.as_str()),
            ("groups.json", "[0].members[0]")
        );
        assert!(e.message.contains("nested group"), "{}", e.message);
        let groups = r##"[{"id": "g", "members": ["ghost"]}]"##;
        let GraphFileError::Directory(e) = directory("[]", Some(groups)).unwrap_err() else {
            panic!()
        };
        assert_eq!(
            e.message,
            "member `ghost` of group `g` is not among the users in users.json"
        );
    }

    #[test]
    fn a_page_of_a_longer_list_is_noted() {
        let users = r##"{"@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=x",
            "value": [{"userPrincipalName": "a@w.com"}]}"##;
        let files = load_directory(users.as_bytes(), "users.json", None).unwrap();
        assert_eq!(files.incomplete.len(), 1);
        assert!(files.incomplete[0]
            .to_string()
            .starts_with("users.json: `value` holds 1 entries, one page"));
    }

    #[test]
    fn the_x509_entry_is_taken_from_the_whole_policy() {
        let doc = r##"{"authenticationMethodConfigurations": [
            {"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration", "id": "Fido2", "state": "enabled"},
            {"@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration", "id": "X509Certificate", "state": "enabled",
             "certificateUserBindings": [{"x509CertificateField": "PrincipalName", "userProperty": "userPrincipalName", "priority": 1, "trustAffinityLevel": "high"}]}]}"##;
        let GraphFileError::Policy(e) = load_policy(doc.as_bytes(), "p.json").unwrap_err() else {
            panic!()
        };
        assert_eq!(
            e.field,
            "authenticationMethodConfigurations[1].certificateUserBindings[0].trustAffinityLevel"
        );
        let policy = load_policy(doc.replace("\"high\"", "\"low\"").as_bytes(), "p.json").unwrap();
        assert_eq!(policy.state, crate::verifier::policy::State::Enabled);
    }
}
