//! The verifier's state in SQLite: the method policy, CAs, users, groups, admin API keys (hashed),
//! the JWT signing key, and the sign-in log. WAL with full synchronisation, so a write that
//! returned is on disk; the file is created owner-only. Schema migrations are numbered with
//! SQLite's `user_version`.

mod crl_marks;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::decide::Tenant;
use super::directory::{Directory, Group, User};
use super::policy::CbaPolicy;
use super::trust::TrustStore;

/// Migrations, in order; `user_version` counts how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE policy (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL);
     CREATE TABLE certificate_authorities (id TEXT PRIMARY KEY, json TEXT NOT NULL, created TEXT NOT NULL);
     CREATE TABLE users (id TEXT PRIMARY KEY, upn TEXT NOT NULL UNIQUE COLLATE NOCASE, json TEXT NOT NULL);
     CREATE TABLE groups (id TEXT PRIMARY KEY, json TEXT NOT NULL);
     CREATE TABLE api_keys (hash TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL, created TEXT NOT NULL);
     CREATE TABLE jwt_keys (kid TEXT PRIMARY KEY, pkcs8 BLOB NOT NULL, created TEXT NOT NULL);
     CREATE TABLE sign_ins (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        username TEXT NOT NULL,
        result TEXT NOT NULL,
        error_code TEXT,
        json TEXT NOT NULL);
     CREATE INDEX sign_ins_by_time ON sign_ins (created);
     CREATE INDEX sign_ins_by_user ON sign_ins (username COLLATE NOCASE);",
    // 2: the newest CRL number seen per CA and kind, so a restart does not forget it.
    crl_marks::MIGRATION,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored JSON does not read back: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored data is invalid: {0}")]
    Invalid(String),
    #[error(
        "the database is newer (schema {found}) than this certauth-verifier understands ({known})"
    )]
    TooNew { found: i64, known: usize },
}

/// An admin role, after Entra's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// May change everything, including the CAs.
    GlobalAdministrator,
    /// May change the method policy, users and groups.
    AuthenticationPolicyAdministrator,
    /// May read.
    Reader,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::GlobalAdministrator => "globalAdministrator",
            Self::AuthenticationPolicyAdministrator => "authenticationPolicyAdministrator",
            Self::Reader => "reader",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "globalAdministrator" => Self::GlobalAdministrator,
            "authenticationPolicyAdministrator" => Self::AuthenticationPolicyAdministrator,
            "reader" => Self::Reader,
            _ => return None,
        })
    }
}

/// One sign-in attempt, as the log keeps it (the fields Entra's sign-in log shows for CBA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInRecord {
    pub id: String,
    pub created_date_time: String,
    pub user_principal_name: String,
    pub client_address: String,
    /// `success` or `failure`.
    pub status: String,
    pub error_code: Option<String>,
    pub failure_reason: Option<String>,
    pub authentication_strength: Option<String>,
    pub certificate: Option<serde_json::Value>,
    pub username_binding: Option<serde_json::Value>,
    pub authentication_rule: Option<serde_json::Value>,
    pub revocation: serde_json::Value,
}

/// The database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating, owner-only) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        create_private(path);
        let conn = Connection::open(path).map_err(open_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        // A write that returned is on disk: PATCH answers 204 only after this.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        migrate(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }

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
        let json = serde_json::to_string(policy)?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO policy (id, json) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET json = ?1",
                params![json],
            )?;
            Ok(())
        })
    }

    /// `DELETE` on the policy: back to Entra's default.
    pub fn reset_policy(&self) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute("DELETE FROM policy", [])?;
            Ok(())
        })
    }

    /// The CAs, each a Graph certificateAuthorityDetail object with its `id`.
    pub fn certificate_authorities(&self) -> Result<Vec<serde_json::Value>, StoreError> {
        self.with(|conn| {
            let mut statement =
                conn.prepare("SELECT json FROM certificate_authorities ORDER BY created, id")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
        })
    }

    pub fn add_certificate_authority(
        &self,
        id: &str,
        json: &serde_json::Value,
        created: &str,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(json)?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO certificate_authorities (id, json, created) VALUES (?1, ?2, ?3)",
                params![id, text, created],
            )?;
            Ok(())
        })
    }

    /// `true` if there was such a CA.
    pub fn delete_certificate_authority(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|conn| {
            Ok(conn.execute(
                "DELETE FROM certificate_authorities WHERE id = ?1",
                params![id],
            )? > 0)
        })
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare("SELECT json FROM users ORDER BY upn")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
        })
    }

    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare("SELECT json FROM groups ORDER BY id")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
        })
    }

    /// Replaces the whole directory in one transaction (after it was validated whole).
    pub fn replace_directory(&self, directory: &Directory) -> Result<(), StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM users", [])?;
            tx.execute("DELETE FROM groups", [])?;
            for group in &directory.groups {
                tx.execute(
                    "INSERT INTO groups (id, json) VALUES (?1, ?2)",
                    params![group.id, serde_json::to_string(group)?],
                )?;
            }
            for user in &directory.users {
                tx.execute(
                    "INSERT INTO users (id, upn, json) VALUES (?1, ?2, ?3)",
                    params![
                        user.id,
                        user.user_principal_name,
                        serde_json::to_string(user)?
                    ],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Stores an API key by the SHA-256 of its secret.
    pub fn add_api_key(
        &self,
        hash: &str,
        role: Role,
        name: &str,
        created: &str,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO api_keys (hash, role, name, created) VALUES (?1, ?2, ?3, ?4)",
                params![hash, role.name(), name, created],
            )?;
            Ok(())
        })
    }

    /// Every key hash with its role, for a constant-time comparison by the caller.
    pub fn api_keys(&self) -> Result<Vec<(String, Role)>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare("SELECT hash, role FROM api_keys")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            rows.map(|row| {
                let (hash, role) = row?;
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown role `{role}`")))?;
                Ok((hash, role))
            })
            .collect()
        })
    }

    pub fn count_api_keys(&self) -> Result<i64, StoreError> {
        self.with(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM api_keys", [], |row| row.get(0))?))
    }

    /// The JWT signing key (PKCS#8) and its key id, if one was made.
    pub fn jwt_key(&self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT kid, pkcs8 FROM jwt_keys ORDER BY created DESC LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?)
        })
    }

    pub fn add_jwt_key(&self, kid: &str, pkcs8: &[u8], created: &str) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO jwt_keys (kid, pkcs8, created) VALUES (?1, ?2, ?3)",
                params![kid, pkcs8, created],
            )?;
            Ok(())
        })
    }

    pub fn log_sign_in(&self, record: &SignInRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)?;
        self.with(|conn| {
            conn.execute(
                "INSERT INTO sign_ins (id, created, username, result, error_code, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![record.id, record.created_date_time, record.user_principal_name, record.status, record.error_code, json],
            )?;
            Ok(())
        })
    }

    /// The sign-in log, newest first, filtered by user and status when given.
    pub fn sign_ins(
        &self,
        user: Option<&str>,
        status: Option<&str>,
        top: usize,
    ) -> Result<Vec<SignInRecord>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare(
                "SELECT json FROM sign_ins
                 WHERE (?1 IS NULL OR username = ?1 COLLATE NOCASE) AND (?2 IS NULL OR result = ?2)
                 ORDER BY created DESC, rowid DESC LIMIT ?3",
            )?;
            let rows = statement.query_map(params![user, status, top as i64], |row| {
                row.get::<_, String>(0)
            })?;
            rows.map(|json| Ok(serde_json::from_str(&json?)?)).collect()
        })
    }

    /// The tenant as the engine needs it.
    pub fn tenant(&self) -> Result<Tenant, StoreError> {
        let cas = self.certificate_authorities()?;
        let store = TrustStore::from_json(serde_json::to_string(&cas)?.as_bytes(), "database")
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let directory = Directory {
            users: self.users()?,
            groups: self.groups()?,
        };
        Ok(Tenant {
            policy: self.policy()?,
            store,
            directory,
        })
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index + 1;
        conn.execute_batch(&format!(
            "BEGIN; {migration}; PRAGMA user_version = {next}; COMMIT;"
        ))?;
        tracing::info!(version = next, "database migrated");
    }
    Ok(())
}

/// Creates the database file owner-only before SQLite opens it (it holds keys).
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verifier.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.policy().unwrap(), CbaPolicy::default());
        let mut policy = CbaPolicy::default();
        policy.state = super::super::policy::State::Enabled;
        store.set_policy(&policy).unwrap();
        drop(store);
        let again = Store::open(&path).unwrap();
        assert_eq!(
            again.policy().unwrap().state,
            super::super::policy::State::Enabled
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
