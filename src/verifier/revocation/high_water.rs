//! The high-water mark of each CA's CRLs: the newest base and delta CRL accepted, by CRL number and
//! thisUpdate. Kept behind [`CrlHighWater`] so a verifier that serves can persist it (a restart must
//! not forget it, or an older, validly signed CRL un-revokes a certificate), while offline
//! evaluation keeps it in memory only. This module does no I/O itself.

use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;

use crate::pki::crl::{CrlKind, RevocationList};

/// The newest CRL of one kind accepted for one CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlMark {
    pub number: BigUint,
    pub this_update: OffsetDateTime,
    /// SHA-256 of the signed TBSCertList: the same CRL re-fetched (or re-signed unchanged) is not
    /// a conflict, a different list under the same number and date is.
    pub tbs_sha256: [u8; 32],
}

impl CrlMark {
    pub fn of(list: &RevocationList) -> Self {
        Self {
            number: list.number.clone(),
            this_update: list.this_update,
            tbs_sha256: list.tbs_sha256,
        }
    }
}

/// How a CRL compares with the mark already kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// A higher CRL number, or the same number issued again later: it raises the mark.
    Newer,
    /// The very CRL the mark was taken from.
    Same,
    /// A lower CRL number: a replay.
    LowerNumber,
    /// The same number with an earlier thisUpdate: an older issue of that number.
    EarlierIssue,
    /// The same number and thisUpdate with other contents: the CA broke RFC 5280's one number per
    /// CRL, and which list is current cannot be told.
    Conflicting,
}

/// Orders `new` against the mark `seen`. CRLs order by number (RFC 5280 §5.2.3: monotonically
/// increasing), then by thisUpdate, for CAs that re-issue a number later.
pub fn order(seen: &CrlMark, new: &CrlMark) -> Order {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (
        new.number.cmp(&seen.number),
        new.this_update.cmp(&seen.this_update),
    ) {
        (Greater, _) | (Equal, Greater) => Order::Newer,
        (Less, _) => Order::LowerNumber,
        (Equal, Less) => Order::EarlierIssue,
        (Equal, Equal) if new.tbs_sha256 == seen.tbs_sha256 => Order::Same,
        (Equal, Equal) => Order::Conflicting,
    }
}

/// Why a mark could not be read or kept. The detail is for the verifier's log, not for users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HighWaterError(pub String);

/// Where the marks live across restarts (the verifier's database).
pub trait CrlHighWater: Send + Sync + std::fmt::Debug {
    /// The mark kept for the CA with this SKI (lowercase hex), if any.
    fn load(&self, ca_ski: &str, kind: CrlKind) -> Result<Option<CrlMark>, HighWaterError>;

    /// Raises the mark to `mark`. Never lowers it: if a newer mark is already kept, that is an
    /// error (someone else accepted a newer CRL), and the caller fails closed.
    fn record(&self, ca_ski: &str, kind: CrlKind, mark: &CrlMark) -> Result<(), HighWaterError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(number: u32, minutes: i64, digest: u8) -> CrlMark {
        CrlMark {
            number: BigUint::from(number),
            this_update: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes),
            tbs_sha256: [digest; 32],
        }
    }

    #[test]
    fn crls_order_by_number_then_this_update_and_ties_must_be_identical() {
        let seen = mark(41, 100, 1);
        assert_eq!(order(&seen, &mark(42, 0, 2)), Order::Newer);
        assert_eq!(order(&seen, &mark(41, 101, 2)), Order::Newer);
        assert_eq!(order(&seen, &mark(41, 100, 1)), Order::Same);
        assert_eq!(order(&seen, &mark(40, 200, 2)), Order::LowerNumber);
        assert_eq!(order(&seen, &mark(41, 99, 2)), Order::EarlierIssue);
        assert_eq!(order(&seen, &mark(41, 100, 2)), Order::Conflicting);
    }
}
