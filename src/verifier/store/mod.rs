//! The verifier's state in SQLite: the method policy, CAs, users, groups, admin API keys (hashed),
//! the JWT signing key, and the sign-in log. WAL with full synchronisation, so a write that
//! returned is on disk; the file is created owner-only. Schema migrations are numbered with
//! SQLite's `user_version`.

mod crl_marks;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

mod membership;
mod sign_in_log;
mod tenant;

pub use membership::MemberChange;
pub use sign_in_log::{log_time, Retention, SignInRecord};
pub use tenant::{Loaded, StoredProblem};

/// A schema step and, for some, the Rust that fills what SQL alone cannot.
type Backfill = fn(&Transaction<'_>) -> Result<(), StoreError>;

/// Migrations, in order; `user_version` counts how many have run.
const MIGRATIONS: &[(&str, Option<Backfill>)] = &[(
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
    None,
    ),
    // 2: the newest CRL number seen per CA and kind, so a restart does not forget it.
    (crl_marks::MIGRATION, None),
    // 3: uniqueness in the schema (CA keys, certificateUserIds rows).
    (tenant::MIGRATION, Some(tenant::backfill)),
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
    #[error("another object with the same value for property {property} already exists")]
    Conflict { property: String },
    #[error("no such object")]
    NotFound,
    #[error("{field}: {message}")]
    Rejected { field: String, message: String },
    #[error("the database {path} is empty (0 bytes) in a state directory that was used before: it was truncated or never written; restore it from a backup, or move it away to start an empty tenant")]
    EmptyDatabase { path: String },
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
        refuse_truncated(path)?;
        create_private(path);
        let mut conn = Connection::open(path).map_err(open_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        // A write that returned is on disk: PATCH answers 204 only after this.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_error)?;
        migrate(&mut conn)?;
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

    /// Runs `f` in one immediate transaction (the write lock taken at its start, so what it
    /// reads stays true until it commits), and commits if it returns `Ok`.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_with(f)
    }

    /// [`Store::write`] for callers whose checks have their own error type.
    pub(crate) fn write_with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(StoreError::from(e)))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| E::from(StoreError::from(e)))?;
        Ok(value)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::TooNew {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (index, (migration, backfill)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = index + 1;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(migration)?;
        if let Some(backfill) = backfill {
            backfill(&tx)?;
        }
        tx.pragma_update(None, "user_version", next as i64)?;
        tx.commit()?;
        tracing::info!(version = next, "database migrated");
    }
    Ok(())
}

/// A 0-byte database beside other state (the server's TLS identity) was truncated or lost:
/// opening it would silently start an empty tenant with a new Global Administrator key.
fn refuse_truncated(path: &Path) -> Result<(), StoreError> {
    let empty = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0);
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let used = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|entry| {
            let other = entry.file_name().to_string_lossy().into_owned();
            !other.starts_with(&name)
        })
    });
    if empty && used {
        return Err(StoreError::EmptyDatabase {
            path: path.display().to_string(),
        });
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
    use crate::verifier::policy::CbaPolicy;

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
