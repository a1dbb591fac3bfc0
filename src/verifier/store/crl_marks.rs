//! The CRL high-water marks in the database: per CA (by SKI) and kind, the CRL number, thisUpdate
//! and TBS digest of the newest CRL accepted, so a restart does not forget them and an older,
//! validly signed CRL cannot un-revoke a certificate. Numbers are kept as decimal text (a CRL
//! number may be 20 octets) and compared in Rust; a mark is never lowered.

use rusqlite::{params, OptionalExtension};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;

use super::{Store, StoreError};
use crate::pki::crl::CrlKind;
use crate::verifier::revocation::high_water::{
    order, CrlHighWater, CrlMark, HighWaterError, Order,
};
use crate::x509::hex;

/// Migration 2: the table of marks.
pub(super) const MIGRATION: &str = "CREATE TABLE crl_marks (
        ca_ski TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('base', 'delta')),
        number TEXT NOT NULL,
        this_update INTEGER NOT NULL,
        tbs_sha256 TEXT NOT NULL,
        recorded TEXT NOT NULL,
        PRIMARY KEY (ca_ski, kind))";

fn kind_name(kind: CrlKind) -> &'static str {
    match kind {
        CrlKind::Base => "base",
        CrlKind::Delta => "delta",
    }
}

impl Store {
    /// The mark kept for a CA and kind, if any.
    pub fn crl_mark(&self, ca_ski: &str, kind: CrlKind) -> Result<Option<CrlMark>, StoreError> {
        self.with(|conn| read_mark(conn, ca_ski, kind))
    }

    /// Raises the mark for a CA and kind to `mark`, in one transaction; a newer mark already kept
    /// is left alone and reported.
    pub fn raise_crl_mark(
        &self,
        ca_ski: &str,
        kind: CrlKind,
        mark: &CrlMark,
        recorded: &str,
    ) -> Result<(), StoreError> {
        // Immediate, like every write: a read that later upgrades to a write would fail at
        // once (SQLITE_BUSY) whenever another write came in between.
        self.write(|tx| {
            if let Some(kept) = read_mark(tx, ca_ski, kind)? {
                if !matches!(order(&kept, mark), Order::Newer | Order::Same) {
                    return Err(StoreError::Invalid(format!(
                        "a newer CRL (number {}) is already recorded for {ca_ski} than number {}",
                        kept.number, mark.number
                    )));
                }
            }
            tx.execute(
                "INSERT INTO crl_marks (ca_ski, kind, number, this_update, tbs_sha256, recorded)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (ca_ski, kind) DO UPDATE SET number = ?3, this_update = ?4,
                   tbs_sha256 = ?5, recorded = ?6",
                params![
                    ca_ski,
                    kind_name(kind),
                    mark.number.to_string(),
                    mark.this_update.unix_timestamp(),
                    hex(&mark.tbs_sha256),
                    recorded
                ],
            )?;
            Ok(())
        })
    }
}

fn read_mark(
    conn: &rusqlite::Connection,
    ca_ski: &str,
    kind: CrlKind,
) -> Result<Option<CrlMark>, StoreError> {
    let row: Option<(String, i64, String)> = conn
        .query_row(
            "SELECT number, this_update, tbs_sha256 FROM crl_marks WHERE ca_ski = ?1 AND kind = ?2",
            params![ca_ski, kind_name(kind)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((number, this_update, digest)) = row else {
        return Ok(None);
    };
    let invalid = |what: &str| StoreError::Invalid(format!("CRL mark of {ca_ski}: {what}"));
    let number = BigUint::parse_bytes(number.as_bytes(), 10).ok_or_else(|| invalid("number"))?;
    let this_update =
        OffsetDateTime::from_unix_timestamp(this_update).map_err(|_| invalid("thisUpdate"))?;
    let mut tbs_sha256 = [0u8; 32];
    if digest.len() != 64 {
        return Err(invalid("digest"));
    }
    for (byte, pair) in tbs_sha256.iter_mut().zip(digest.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| invalid("digest"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid("digest"))?;
    }
    Ok(Some(CrlMark {
        number,
        this_update,
        tbs_sha256,
    }))
}

impl CrlHighWater for Store {
    fn load(&self, ca_ski: &str, kind: CrlKind) -> Result<Option<CrlMark>, HighWaterError> {
        self.crl_mark(ca_ski, kind)
            .map_err(|e| HighWaterError(e.to_string()))
    }

    fn record(&self, ca_ski: &str, kind: CrlKind, mark: &CrlMark) -> Result<(), HighWaterError> {
        let now = OffsetDateTime::now_utc();
        let recorded = now.format(&Rfc3339).unwrap_or_else(|_| now.to_string());
        self.raise_crl_mark(ca_ski, kind, mark, &recorded)
            .map_err(|e| HighWaterError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(number: u64, this_update: i64, digest: u8) -> CrlMark {
        CrlMark {
            number: BigUint::from(number),
            this_update: OffsetDateTime::from_unix_timestamp(this_update).unwrap(),
            tbs_sha256: [digest; 32],
        }
    }

    #[test]
    fn crl_marks_survive_a_reopen_and_never_go_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verifier.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.crl_mark("ab", CrlKind::Base).unwrap(), None);
        let big = CrlMark {
            number: BigUint::parse_bytes(b"1461501637330902918203684832716283019655932542975", 10)
                .unwrap(),
            ..mark(0, 1_700_000_000, 0xa5)
        };
        store
            .record("ab", CrlKind::Base, &mark(41, 1_700_000_000, 1))
            .unwrap();
        store.record("ab", CrlKind::Delta, &big).unwrap();
        // A lower number is refused and the mark stays.
        assert!(store
            .record("ab", CrlKind::Base, &mark(40, 1_800_000_000, 2))
            .is_err());
        drop(store);
        let again = Store::open(&path).unwrap();
        assert_eq!(
            again.load("ab", CrlKind::Base).unwrap(),
            Some(mark(41, 1_700_000_000, 1))
        );
        assert_eq!(again.load("ab", CrlKind::Delta).unwrap(), Some(big));
        assert_eq!(again.load("cd", CrlKind::Base).unwrap(), None);
    }
}
