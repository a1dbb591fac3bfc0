//! The sign-in log: one row per attempt, written before any answer is given (an attempt that
//! cannot be logged is refused by the caller), with the stored username and failure reason capped
//! so that attempts cannot grow the log without limit, and retention by age and row count
//! enforced in the same transaction as each write.

use std::ops::ControlFlow;
use std::time::Duration;

use rusqlite::params;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError};

/// The longest username the log keeps (Entra's UPNs are at most 113 characters); a longer one is
/// cut and marked with `…`.
pub const MAX_LOGGED_USERNAME_CHARS: usize = 256;
/// The longest failure reason the log keeps.
pub const MAX_LOGGED_REASON_CHARS: usize = 1024;

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

/// How long, and how much, the log keeps.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_rows: u64,
}

/// `text` cut to `max` characters, marked with `…` when cut.
pub fn capped(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

impl Store {
    /// Writes one attempt (username and reason capped), then drops rows past `retention`, in
    /// one transaction. An error means the attempt is not on record.
    pub fn log_sign_in(
        &self,
        record: &SignInRecord,
        retention: Retention,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut record = record.clone();
        record.user_principal_name = capped(&record.user_principal_name, MAX_LOGGED_USERNAME_CHARS);
        record.failure_reason = record
            .failure_reason
            .map(|reason| capped(&reason, MAX_LOGGED_REASON_CHARS));
        let json = serde_json::to_string(&record)?;
        let oldest = log_time(now - retention.max_age);
        let keep = i64::try_from(retention.max_rows).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sign_ins (id, created, username, result, error_code, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![record.id, record.created_date_time, record.user_principal_name, record.status, record.error_code, json],
            )?;
            tx.execute("DELETE FROM sign_ins WHERE created < ?1", params![oldest])?;
            // Rowids only grow (rows go from the old end), so the newest `keep` rows are those above
            // max(rowid) - keep: an index lookup, where an OFFSET would walk the whole log.
            tx.execute(
                "DELETE FROM sign_ins WHERE rowid <= (SELECT max(rowid) FROM sign_ins) - ?1",
                params![keep],
            )?;
            Ok(())
        })
    }

    /// Feeds the sign-in log to `each`, newest first (by time, then id), starting after
    /// `after` (a time and id) when given, until `each` breaks.
    pub fn each_sign_in(
        &self,
        after: Option<(&str, &str)>,
        mut each: impl FnMut(SignInRecord) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (created, id) = after.unzip();
        self.with(|conn| {
            let mut statement = conn.prepare(
                "SELECT json FROM sign_ins
                 WHERE ?1 IS NULL OR created < ?1 OR (created = ?1 AND id < ?2)
                 ORDER BY created DESC, id DESC",
            )?;
            let mut rows = statement.query(params![created, id])?;
            while let Some(row) = rows.next()? {
                let record = serde_json::from_str(&row.get::<_, String>(0)?)?;
                if each(record).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }
}

/// A sign-in's time as the log writes it: RFC 3339 in UTC with seven fractional digits, as
/// Graph writes them, so that the text sorts as the time does.
pub fn log_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
    );
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(&format).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn record(id: usize, created: &str, username: &str) -> SignInRecord {
        SignInRecord {
            id: format!("r{id}"),
            created_date_time: created.into(),
            user_principal_name: username.into(),
            client_address: "127.0.0.1".into(),
            status: "failure".into(),
            error_code: Some("AADSTS50034".into()),
            failure_reason: Some(username.repeat(3)),
            authentication_strength: None,
            certificate: None,
            username_binding: None,
            authentication_rule: None,
            revocation: serde_json::Value::Null,
        }
    }

    #[test]
    fn the_log_caps_usernames_and_keeps_to_its_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("verifier.db")).unwrap();
        let now = OffsetDateTime::now_utc();
        let retention = Retention {
            max_age: Duration::from_secs(24 * 3600),
            max_rows: 3,
        };
        let old = (now - Duration::from_secs(48 * 3600))
            .format(&Rfc3339)
            .unwrap();
        store
            .log_sign_in(&record(0, &old, "old@w.com"), retention, now)
            .unwrap();
        let huge = "x".repeat(16 * 1024);
        for i in 1..=5 {
            let created = log_time(now);
            store
                .log_sign_in(&record(i, &created, &huge), retention, now)
                .unwrap();
        }
        let mut kept = Vec::new();
        store
            .each_sign_in(None, |r| {
                kept.push(r);
                ControlFlow::Continue(())
            })
            .unwrap();
        let ids: Vec<&str> = kept.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r5", "r4", "r3"]);
        assert_eq!(
            kept[0].user_principal_name.chars().count(),
            MAX_LOGGED_USERNAME_CHARS + 1
        );
        assert!(kept[0].user_principal_name.ends_with('…'));
        assert!(
            kept[0].failure_reason.as_ref().unwrap().chars().count() <= MAX_LOGGED_REASON_CHARS + 1
        );
    }
}
