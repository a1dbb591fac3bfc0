//! The tenant's rows: the method policy, CAs, users and groups. Every admin write is one
//! immediate transaction on rows, and the schema's own uniqueness (CA by SKI and thumbprint, UPN,
//! certificateUserIds value, ids) decides races. Loading is per row: a row that cannot load is
//! named in [`Loaded::problems`] and left out, and what depends on it fails closed, so stored
//! data never stops the server from starting.

use rusqlite::{params, OptionalExtension, Transaction};

use super::{Store, StoreError};
use crate::verifier::ca_detail;
use crate::verifier::decide::Tenant;
use crate::verifier::directory::{comparison_key, Directory, Group, User};
use crate::verifier::policy::CbaPolicy;
use crate::verifier::trust::{TrustStore, TrustedCa};

/// Migration 3: CA keys as columns and certificateUserIds as rows, so uniqueness lives in the
/// schema. The unique indexes come after [`backfill`] has filled them.
pub(super) const MIGRATION: &str = "
    ALTER TABLE certificate_authorities ADD COLUMN ski TEXT;
    ALTER TABLE certificate_authorities ADD COLUMN sha256 TEXT;
    CREATE TABLE certificate_user_ids (
        key TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE ON UPDATE CASCADE);
    CREATE INDEX certificate_user_ids_by_user ON certificate_user_ids (user_id);";

/// Fills migration 2's columns and rows from the stored JSON. A row that does not parse, or
/// repeats a key an earlier row holds, keeps NULL keys: loading names it, and the admin API can
/// delete it.
pub(super) fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = tx
        .prepare("SELECT id, json FROM certificate_authorities ORDER BY created, id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, json) in rows {
        if let Ok(ca) = parse_ca(&json) {
            tx.execute(
                "UPDATE certificate_authorities SET ski = ?2, sha256 = ?3 WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM certificate_authorities WHERE ski = ?2 OR sha256 = ?3)",
                params![id, ca.ski, ca.info.sha256],
            )?;
        }
    }
    let users: Vec<(String, String)> = tx
        .prepare("SELECT id, json FROM users")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, json) in users {
        if let Ok(user) = serde_json::from_str::<User>(&json) {
            for value in &user.authorization_info.certificate_user_ids {
                tx.execute(
                    "INSERT OR IGNORE INTO certificate_user_ids (key, user_id) VALUES (?1, ?2)",
                    params![comparison_key(value), id],
                )?;
            }
        }
    }
    tx.execute_batch(
        "CREATE UNIQUE INDEX certificate_authorities_by_ski ON certificate_authorities (ski);
         CREATE UNIQUE INDEX certificate_authorities_by_sha256 ON certificate_authorities (sha256);",
    )?;
    Ok(())
}

/// A stored row that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProblem {
    /// `policy`, `certificateAuthorities`, `users` or `groups`.
    pub table: &'static str,
    pub id: String,
    pub reason: String,
}

impl std::fmt::Display for StoredProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stored {} row `{}` cannot be loaded: {}",
            self.table, self.id, self.reason
        )
    }
}

/// The tenant as loaded, with the rows left out.
#[derive(Debug)]
pub struct Loaded {
    pub tenant: Tenant,
    pub problems: Vec<StoredProblem>,
}

fn parse_ca(json: &str) -> Result<TrustedCa, String> {
    let store = TrustStore::from_json(format!("[{json}]").as_bytes(), "stored CA")
        .map_err(|e| e.to_string())?;
    store
        .cas()
        .first()
        .cloned()
        .ok_or_else(|| "no CA in the row".to_owned())
}

/// A user or group found by id or (for users) UPN, case-insensitively.
pub(super) const USER_BY_ID_OR_UPN: &str =
    "SELECT id, json FROM users WHERE id = ?1 OR upn = ?1 COLLATE NOCASE LIMIT 1";

impl Store {
    /// The method policy; Entra's default when none was ever set.
    pub fn policy(&self) -> Result<CbaPolicy, StoreError> {
        self.with(|conn| {
            let json: Option<String> = conn
                .query_row("SELECT json FROM policy WHERE id = 1", [], |row| row.get(0))
                .optional()?;
            match json {
                Some(json) => Ok(serde_json::from_str(&json)?),
                None => Ok(CbaPolicy::default()),
            }
        })
    }

    pub fn set_policy(&self, policy: &CbaPolicy) -> Result<(), StoreError> {
        self.write(|tx| write_policy(tx, policy))
    }

    /// Reads, changes and writes the policy in one transaction, so concurrent changes of
    /// different fields all stay. A stored policy that cannot be read is changed from the
    /// default.
    pub fn update_policy<E: From<StoreError>>(
        &self,
        change: impl FnOnce(CbaPolicy) -> Result<CbaPolicy, E>,
    ) -> Result<(), E> {
        self.write_with(|tx| {
            let json: Option<String> = tx
                .query_row("SELECT json FROM policy WHERE id = 1", [], |row| row.get(0))
                .optional()
                .map_err(StoreError::from)?;
            let current = json
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default();
            let changed = change(current)?;
            write_policy(tx, &changed)?;
            Ok(())
        })
    }

    /// `DELETE` on the policy: back to Entra's default.
    pub fn reset_policy(&self) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM policy", [])?;
            Ok(())
        })
    }

    /// The CAs, each in the one shape [`ca_detail::detail`] gives, whatever shape it was
    /// uploaded in (rows that do not read back are left out; [`Store::tenant`] names them).
    pub fn certificate_authorities(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare(
                "SELECT id, json, created FROM certificate_authorities ORDER BY created, id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            let mut cas = Vec::new();
            for row in rows {
                let (id, json, created) = row?;
                if let Ok(ca) = parse_ca(&json) {
                    cas.push(ca_detail::detail(&id, &created, &ca));
                }
            }
            Ok(cas)
        })
    }

    /// The CA with this id, as [`Store::certificate_authorities`] shows it.
    pub fn certificate_authority(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row: Option<(String, String)> = self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT json, created FROM certificate_authorities WHERE id = ?1",
                    params![id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?)
        })?;
        row.map(|(json, created)| {
            parse_ca(&json)
                .map(|ca| ca_detail::detail(id, &created, &ca))
                .map_err(StoreError::Invalid)
        })
        .transpose()
    }

    /// Adds CAs, each `(id, upload)`, in one transaction: `check` sees the CAs stored now (as a
    /// trust store, with those of `entries` before it) and each parsed upload, and may refuse it;
    /// the schema refuses a second CA with the same SKI or certificate. All are added or none.
    pub fn add_certificate_authorities_checked<E: From<StoreError>>(
        &self,
        entries: &[(String, serde_json::Value)],
        created: &str,
        mut check: impl FnMut(&mut TrustStore, TrustedCa) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut parsed = Vec::new();
        for (id, json) in entries {
            let text = serde_json::to_string(json).map_err(StoreError::from)?;
            let ca = parse_ca(&text).map_err(|reason| StoreError::Rejected {
                field: "certificate".into(),
                message: reason,
            })?;
            parsed.push((id, text, ca));
        }
        self.write_with(|tx| {
            let mut existing = TrustStore::default();
            for (_, json) in rows_in(
                tx,
                "SELECT id, json FROM certificate_authorities ORDER BY created, id",
            )? {
                if let Ok(stored) = parse_ca(&json) {
                    // A duplicate already stored is named at load; here it only must not
                    // hide the upload's own checks.
                    let _ = existing.insert_stored(stored);
                }
            }
            for (id, text, ca) in parsed {
                check(&mut existing, ca.clone())?;
                insert_ca(tx, id, &text, &ca, created)?;
            }
            Ok(())
        })
    }

    /// Adds a CA as an import does (first start, from a fixture).
    pub fn add_certificate_authority(
        &self,
        id: &str,
        json: &serde_json::Value,
        created: &str,
    ) -> Result<(), StoreError> {
        self.add_certificate_authorities_checked(
            &[(id.to_owned(), json.clone())],
            created,
            |_, _| Ok::<_, StoreError>(()),
        )
    }

    /// `true` if there was such a CA. Works on any row, loadable or not.
    pub fn delete_certificate_authority(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM certificate_authorities WHERE id = ?1",
                params![id],
            )? > 0)
        })
    }

    /// Users that load, by UPN.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self
            .rows("SELECT id, json FROM users ORDER BY upn")?
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect())
    }

    /// The user with this id or UPN.
    pub fn user(&self, id_or_upn: &str) -> Result<Option<User>, StoreError> {
        self.with(|conn| {
            let row: Option<(String, String)> = conn
                .query_row(USER_BY_ID_OR_UPN, params![id_or_upn], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            row.map(|(_, json)| Ok(serde_json::from_str(&json)?))
                .transpose()
        })
    }

    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        Ok(self
            .rows("SELECT id, json FROM groups ORDER BY id")?
            .into_iter()
            .filter_map(|(_, json)| serde_json::from_str(&json).ok())
            .collect())
    }

    /// Creates a user (already valid on its own); the schema refuses a UPN, id or
    /// certificateUserIds value another user has.
    pub fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.write(|tx| {
            check_groups(tx, user)?;
            insert_user(tx, user)
        })
    }

    /// Reads, changes and writes one user in one transaction. The id never changes.
    pub fn update_user<E: From<StoreError>>(
        &self,
        id_or_upn: &str,
        change: impl FnOnce(User) -> Result<User, E>,
    ) -> Result<(), E> {
        self.write_with(|tx| {
            let (id, json): (String, String) = tx
                .query_row(USER_BY_ID_OR_UPN, params![id_or_upn], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
                .map_err(StoreError::from)?
                .ok_or(StoreError::NotFound)?;
            let current: User = serde_json::from_str(&json).map_err(|e| StoreError::Rejected {
                field: "id".into(),
                message: format!(
                    "the stored user `{id}` cannot be read ({e}); delete it and create it again"
                ),
            })?;
            let mut changed = change(current)?;
            changed.id = id.clone();
            check_groups(tx, &changed)?;
            tx.execute(
                "DELETE FROM certificate_user_ids WHERE user_id = ?1",
                params![id],
            )
            .map_err(StoreError::from)?;
            tx.execute("DELETE FROM users WHERE id = ?1", params![id])
                .map_err(StoreError::from)?;
            insert_user(tx, &changed)?;
            Ok(())
        })
    }

    /// `true` if there was such a user. Works on any row, loadable or not.
    pub fn delete_user(&self, id_or_upn: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM users WHERE id = ?1 OR upn = ?1 COLLATE NOCASE",
                params![id_or_upn],
            )? > 0)
        })
    }

    pub fn create_group(&self, group: &Group) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO groups (id, json) VALUES (?1, ?2)",
                params![group.id, serde_json::to_string(group)?],
            )
            .map_err(|e| conflict(e, "groups.id", "id"))?;
            Ok(())
        })
    }

    /// Replaces the whole directory in one transaction (after it was validated whole).
    pub fn replace_directory(&self, directory: &Directory) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM users", [])?;
            tx.execute("DELETE FROM groups", [])?;
            for group in &directory.groups {
                tx.execute(
                    "INSERT INTO groups (id, json) VALUES (?1, ?2)",
                    params![group.id, serde_json::to_string(group)?],
                )?;
            }
            for user in &directory.users {
                insert_user(tx, user)?;
            }
            Ok(())
        })
    }

    /// Replaces the tenant's configuration (policy, CAs, users, groups; keys, the sign-in log and
    /// CRL marks stay) in one transaction, with what was read and checked whole. A state that
    /// holds any of them is refused unless `replace`.
    pub fn replace_tenant(
        &self,
        files: &crate::verifier::tenant_files::TenantFiles,
        replace: bool,
    ) -> Result<(), StoreError> {
        let mut cas = Vec::new();
        for ca in &files.cas {
            let text = serde_json::to_string(&ca.entry)?;
            let parsed = parse_ca(&text).map_err(StoreError::Invalid)?;
            cas.push((ca, text, parsed));
        }
        self.write(|tx| {
            if !replace {
                let used: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM policy) OR EXISTS (SELECT 1 FROM certificate_authorities)
                     OR EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM groups)",
                    [],
                    |row| row.get(0),
                )?;
                if used {
                    return Err(StoreError::Rejected {
                        field: "state".into(),
                        message: "the state directory already holds a tenant (a policy, CAs, users or groups); give --replace to replace it".into(),
                    });
                }
            }
            tx.execute_batch(
                "DELETE FROM policy; DELETE FROM certificate_authorities; DELETE FROM users; DELETE FROM groups;",
            )?;
            write_policy(tx, &files.policy)?;
            for (ca, text, parsed) in &cas {
                insert_ca(tx, &ca.id, text, parsed, &ca.created)?;
            }
            for group in &files.directory.groups {
                tx.execute(
                    "INSERT INTO groups (id, json) VALUES (?1, ?2)",
                    params![group.id, serde_json::to_string(group)?],
                )?;
            }
            for user in &files.directory.users {
                insert_user(tx, user)?;
            }
            Ok(())
        })
    }

    /// The tenant as the engine needs it, row by row: what cannot load is named and left out,
    /// and fails closed (an unreadable policy disables the method; a CA whose row is a duplicate
    /// or unreadable takes no part in chains).
    pub fn tenant(&self) -> Result<Loaded, StoreError> {
        let mut problems = Vec::new();
        let policy = self.load_policy(&mut problems)?;
        let store = self.load_cas(&mut problems)?;
        let directory = Directory {
            groups: self.load_groups(&mut problems)?,
            users: self.load_users(&mut problems)?,
        };
        Ok(Loaded {
            tenant: Tenant {
                policy,
                store,
                directory,
            },
            problems,
        })
    }

    /// The policy; an unreadable one is a problem, and the default (the method off) stands in.
    fn load_policy(&self, problems: &mut Vec<StoredProblem>) -> Result<CbaPolicy, StoreError> {
        let policy = self
            .with(|conn| {
                Ok(conn
                    .query_row("SELECT json FROM policy WHERE id = 1", [], |row| {
                        row.get::<_, String>(0)
                    })
                    .optional()?)
            })?
            .map_or_else(
                || Ok(CbaPolicy::default()),
                |json| serde_json::from_str::<CbaPolicy>(&json),
            )
            .unwrap_or_else(|e| {
                problems.push(StoredProblem {
                    table: "policy",
                    id: "x509Certificate".into(),
                    reason: format!(
                        "{e}; certificate-based authentication is off until the policy is set again"
                    ),
                });
                CbaPolicy::default()
            });
        Ok(policy)
    }

    /// The CAs; a row that does not parse, or repeats another's key identifier, is a problem and
    /// left out.
    fn load_cas(&self, problems: &mut Vec<StoredProblem>) -> Result<TrustStore, StoreError> {
        let mut store = TrustStore::default();
        let mut row_of_ski: Vec<(String, String)> = Vec::new();
        for (id, json) in
            self.rows("SELECT id, json FROM certificate_authorities ORDER BY created, id")?
        {
            match parse_ca(&json) {
                Ok(ca) => {
                    let ski = ca.ski.clone();
                    if let Err(reason) = store.insert_stored(ca) {
                        let other = row_of_ski
                            .iter()
                            .find(|(s, _)| *s == ski)
                            .map_or("another row", |(_, row)| row.as_str());
                        problems.push(StoredProblem {
                            table: "certificateAuthorities",
                            id,
                            reason: format!("{reason} (row `{other}`); sign-ins through it are refused until one of the two rows is deleted"),
                        });
                    } else {
                        row_of_ski.push((ski, id));
                    }
                }
                Err(reason) => problems.push(StoredProblem {
                    table: "certificateAuthorities",
                    id,
                    reason: format!("{reason}; certificates it issued are refused"),
                }),
            }
        }
        Ok(store)
    }

    /// The groups; one that does not parse is a problem and left out.
    fn load_groups(&self, problems: &mut Vec<StoredProblem>) -> Result<Vec<Group>, StoreError> {
        let mut groups = Vec::new();
        for (id, json) in self.rows("SELECT id, json FROM groups ORDER BY id")? {
            match serde_json::from_str(&json) {
                Ok(group) => groups.push(group),
                Err(e) => problems.push(StoredProblem {
                    table: "groups",
                    id,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(groups)
    }

    /// The users; one that does not parse is a problem and left out.
    fn load_users(&self, problems: &mut Vec<StoredProblem>) -> Result<Vec<User>, StoreError> {
        let mut users = Vec::new();
        // The schema's rows say whose each certificateUserIds value is; a value a user's JSON
        // holds but the schema gave to another (a database from before the rows) is left out.
        let owners: std::collections::HashMap<String, String> = self
            .rows("SELECT key, user_id FROM certificate_user_ids")?
            .into_iter()
            .collect();
        for (id, json) in self.rows("SELECT id, json FROM users ORDER BY upn")? {
            match serde_json::from_str::<User>(&json) {
                Ok(mut user) => {
                    let values = &mut user.authorization_info.certificate_user_ids;
                    let before = values.len();
                    values.retain(|v| owners.get(&comparison_key(v)) == Some(&id));
                    if values.len() != before {
                        problems.push(StoredProblem {
                            table: "users",
                            id: id.clone(),
                            reason: "some of its certificateUserIds belong to another user and are left out; set them again".into(),
                        });
                    }
                    users.push(user);
                }
                Err(e) => problems.push(StoredProblem {
                    table: "users",
                    id,
                    reason: format!("{e}; the user cannot sign in"),
                }),
            }
        }
        Ok(users)
    }

    fn rows(&self, sql: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|conn| rows_in(conn, sql))
    }
}

fn rows_in(conn: &rusqlite::Connection, sql: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn write_policy(tx: &Transaction<'_>, policy: &CbaPolicy) -> Result<(), StoreError> {
    let json = serde_json::to_string(policy)?;
    tx.execute(
        "INSERT INTO policy (id, json) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET json = ?1",
        params![json],
    )?;
    Ok(())
}

fn insert_ca(
    tx: &Transaction<'_>,
    id: &str,
    json: &str,
    ca: &TrustedCa,
    created: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO certificate_authorities (id, json, created, ski, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, json, created, ca.ski, ca.info.sha256],
    )
    .map_err(|e| {
        let e = conflict(e, "certificate_authorities.ski", "certificate");
        match e {
            StoreError::Sql(e) => conflict(e, "certificate_authorities.sha256", "certificate"),
            other => other,
        }
    })?;
    Ok(())
}

fn insert_user(tx: &Transaction<'_>, user: &User) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO users (id, upn, json) VALUES (?1, ?2, ?3)",
        params![
            user.id,
            user.user_principal_name,
            serde_json::to_string(user)?
        ],
    )
    .map_err(|e| match conflict(e, "users.upn", "userPrincipalName") {
        StoreError::Sql(e) => conflict(e, "users.id", "id"),
        other => other,
    })?;
    for (i, value) in user
        .authorization_info
        .certificate_user_ids
        .iter()
        .enumerate()
    {
        tx.execute(
            "INSERT INTO certificate_user_ids (key, user_id) VALUES (?1, ?2)",
            params![comparison_key(value), user.id],
        )
        .map_err(|e| match conflict(e, "certificate_user_ids.key", "certificateUserIds") {
            StoreError::Conflict { .. } => {
                let owner: String = tx
                    .query_row(
                        "SELECT users.upn FROM certificate_user_ids JOIN users ON users.id = certificate_user_ids.user_id WHERE key = ?1",
                        params![comparison_key(value)],
                        |row| row.get(0),
                    )
                    .unwrap_or_else(|_| "another user".into());
                StoreError::Rejected {
                    field: format!("authorizationInfo.certificateUserIds[{i}]"),
                    message: format!(
                        "`{value}` already belongs to {owner}; values are unique in a tenant"
                    ),
                }
            }
            other => other,
        })?;
    }
    Ok(())
}

/// Every group a user is a member of must exist.
fn check_groups(tx: &Transaction<'_>, user: &User) -> Result<(), StoreError> {
    for (i, group) in user.member_of.iter().enumerate() {
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM groups WHERE id = ?1)",
            params![group],
            |row| row.get(0),
        )?;
        if !exists {
            return Err(StoreError::Rejected {
                field: format!("memberOf[{i}]"),
                message: format!("unknown group `{group}`"),
            });
        }
    }
    Ok(())
}

/// A uniqueness violation of `constraint` (`table.column`) as a conflict on `property`.
fn conflict(error: rusqlite::Error, constraint: &str, property: &str) -> StoreError {
    let unique = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation)
    ) && error.to_string().contains(constraint);
    if unique {
        StoreError::Conflict {
            property: property.to_owned(),
        }
    } else {
        StoreError::Sql(error)
    }
}

#[cfg(test)]
mod tests {
    use super::super::MIGRATIONS;
    use super::*;

    fn root_ca_json() -> String {
        use base64::Engine;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Migrated Root");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        serde_json::json!({
            "certificate": base64::engine::general_purpose::STANDARD.encode(cert.der()),
            "certificateAuthorityType": "root",
        })
        .to_string()
    }

    /// A database an earlier verifier bricked (the same CA stored twice, a certificateUserIds
    /// value on two users) migrates, starts, and names what it left out.
    #[test]
    fn a_bricked_first_schema_database_migrates_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verifier.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0].0).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let ca = root_ca_json();
            for id in ["first", "second"] {
                conn.execute(
                    "INSERT INTO certificate_authorities (id, json, created) VALUES (?1, ?2, ?1)",
                    params![id, ca],
                )
                .unwrap();
            }
            for upn in ["a@w.com", "b@w.com"] {
                let user = serde_json::json!({"id": upn, "userPrincipalName": upn,
                    "authorizationInfo": {"certificateUserIds": ["X509:<PN>same@w.com"]}});
                conn.execute(
                    "INSERT INTO users (id, upn, json) VALUES (?1, ?1, ?2)",
                    params![upn, user.to_string()],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let loaded = store.tenant().unwrap();
        assert_eq!(loaded.tenant.store.cas().len(), 1);
        assert_eq!(loaded.problems.len(), 2, "{:?}", loaded.problems);
        assert_eq!(loaded.problems[0].table, "certificateAuthorities");
        assert_eq!(loaded.problems[0].id, "second");
        assert_eq!(loaded.problems[1].table, "users");
        assert_eq!(loaded.problems[1].id, "b@w.com");
        let b = loaded.tenant.directory.user_by_upn("b@w.com").unwrap();
        assert!(b.authorization_info.certificate_user_ids.is_empty());
        // Sign-ins through the duplicated CA fail closed until the bad row is deleted.
        let ski = loaded.tenant.store.cas()[0].ski.clone();
        assert!(loaded.tenant.store.quarantined(&ski).is_some());
        assert!(store.delete_certificate_authority("second").unwrap());
        let loaded = store.tenant().unwrap();
        assert_eq!(loaded.problems.len(), 1);
        assert!(loaded.tenant.store.quarantined(&ski).is_none());
        // The value now belongs to one user in the schema: the other cannot take it again.
        let b = store.user("b@w.com").unwrap().unwrap();
        let error = store
            .update_user("b@w.com", |_| Ok::<_, StoreError>(b))
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::Rejected { message, .. } if message.contains("already belongs to a@w.com")),
            "{error}"
        );
    }
}
