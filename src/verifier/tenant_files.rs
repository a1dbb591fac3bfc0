//! A tenant's configuration as a folder of the Graph GET responses an admin would save (from Graph
//! Explorer, or `certauth-verifier tenant export`): the method policy, the CAs, the users and the
//! groups. Reading checks the whole folder, every file through the loaders `eval` uses, before
//! anything is written; a bad file is an error naming it.

use crate::verifier::text_rules::Violation;
use std::path::Path;

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ca_detail;
use super::directory::Directory;
use super::graph_files::{load_directory, load_policy};
use super::graph_schema::check_derived_ca_properties;
use super::policy::CbaPolicy;
use super::stamps::{now_text, random_id};
use super::text_rules::check_id;
use super::trust::TrustStore;

/// `GET .../authenticationMethodConfigurations/x509Certificate` (or, on import, the whole
/// `GET /policies/authenticationMethodsPolicy`).
pub const POLICY_FILE: &str = "x509Certificate.json";
/// `GET /directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/{id}/certificateAuthorities`.
pub const CAS_FILE: &str = "certificateAuthorities.json";
/// `GET /users` (memberships as ids, or with `$expand=memberOf`).
pub const USERS_FILE: &str = "users.json";
/// `GET /groups` (with or without `$expand=members`); optional on import.
pub const GROUPS_FILE: &str = "groups.json";

pub const USERS_CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#users";
pub const GROUPS_CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#groups";
pub const CAS_CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#directory/publicKeyInfrastructure/certificateBasedAuthConfigurations('default')/certificateAuthorities";

/// A file of the folder that cannot be imported; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TenantFileError(String);

/// A stored CA as an import writes it.
#[derive(Debug, Clone)]
pub struct ImportedCa {
    pub id: String,
    pub created: String,
    /// The entry as uploaded, without what the service assigns, with its id.
    pub entry: Value,
}

/// A folder read and checked whole.
#[derive(Debug, Clone)]
pub struct TenantFiles {
    pub policy: CbaPolicy,
    pub cas: Vec<ImportedCa>,
    pub directory: Directory,
}

/// Reads the folder `dir`: every file is read and checked before this returns.
pub fn read(dir: &Path) -> Result<TenantFiles, TenantFileError> {
    let read = |name: &str| -> Result<Option<(Vec<u8>, String)>, TenantFileError> {
        let path = dir.join(name);
        let shown = path.display().to_string();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some((bytes, shown))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TenantFileError(format!("cannot read {shown}: {e}"))),
        }
    };
    let required = |name: &str| {
        read(name)?.ok_or_else(|| {
            TenantFileError(format!(
                "{} is missing (a tenant folder holds {POLICY_FILE}, {CAS_FILE}, {USERS_FILE} and optionally {GROUPS_FILE})",
                dir.join(name).display()
            ))
        })
    };
    let (policy, policy_name) = required(POLICY_FILE)?;
    let policy = load_policy(&policy, &policy_name).map_err(|e| TenantFileError(e.to_string()))?;
    let (cas, cas_name) = required(CAS_FILE)?;
    let cas = read_cas(&cas, &cas_name)?;
    let (users, users_name) = required(USERS_FILE)?;
    let groups = read(GROUPS_FILE)?;
    let files = load_directory(
        &users,
        &users_name,
        groups
            .as_ref()
            .map(|(bytes, name)| (bytes.as_slice(), name.as_str())),
    )
    .map_err(|e| TenantFileError(e.to_string()))?;
    if let Some(page) = files.incomplete.first() {
        return Err(TenantFileError(page.to_string()));
    }
    Ok(TenantFiles {
        policy,
        cas,
        directory: files.directory,
    })
}

/// A CA list (`{"value": [...]}`, an array, or `{"certificateAuthorities": [...]}`): every
/// certificate a CA, no two alike, the properties derived from each certificate agreeing with it.
/// Ids and creation times in the file are kept (a restore keeps the tenant's ids), else assigned.
fn read_cas(json: &[u8], name: &str) -> Result<Vec<ImportedCa>, TenantFileError> {
    let fail = |at: String, message: String| TenantFileError(format!("{name}: {at}: {message}"));
    let store = TrustStore::from_json(json, name).map_err(|e| TenantFileError(e.to_string()))?;
    let value: Value =
        serde_json::from_slice(json).map_err(|e| fail("(document)".into(), e.to_string()))?;
    let entries = match &value {
        Value::Array(list) => list,
        Value::Object(object) => object
            .get("value")
            .or_else(|| object.get("certificateAuthorities"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                fail(
                    "(document)".into(),
                    "not a list of certificate authorities".into(),
                )
            })?,
        _ => {
            return Err(fail(
                "(document)".into(),
                "not a list of certificate authorities".into(),
            ))
        }
    };
    let mut cas: Vec<ImportedCa> = Vec::new();
    for (i, (entry, ca)) in entries.iter().zip(store.cas()).enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        let mut entry: Map<String, Value> = entry.as_object().cloned().unwrap_or_default();
        check_derived_ca_properties(&entry, &ca.info).map_err(
            |Violation {
                 field: f,
                 message: m,
             }| fail(at(&f), m),
        )?;
        let id = match entry.get("id") {
            Some(Value::String(id)) => {
                check_id("id", id).map_err(
                    |Violation {
                         field: f,
                         message: m,
                     }| fail(at(&f), m),
                )?;
                id.clone()
            }
            _ => random_id(),
        };
        if cas.iter().any(|c| c.id == id) {
            return Err(fail(at("id"), format!("id `{id}` is used twice")));
        }
        let created = match entry.get("createdDateTime").and_then(Value::as_str) {
            Some(at_text) => {
                OffsetDateTime::parse(at_text, &Rfc3339).map_err(|e| {
                    fail(
                        at("createdDateTime"),
                        format!("`{at_text}` is not an RFC 3339 time: {e}"),
                    )
                })?;
                at_text.to_owned()
            }
            None => now_text(),
        };
        ca_detail::strip_assigned(&mut entry);
        entry.insert("id".into(), json!(id));
        cas.push(ImportedCa {
            id,
            created,
            entry: Value::Object(entry),
        });
    }
    Ok(cas)
}
