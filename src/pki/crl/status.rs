//! What verified CRLs say at a given time: whether a CRL is in effect (not dated ahead of the
//! clock beyond [`MAX_CLOCK_SKEW`], not past its nextUpdate), and what a base CRL and its delta
//! say together of one serial. Pure: the caller brings the lists and `now`.

use time::OffsetDateTime;
use x509_parser::num_bigint::BigUint;

use super::index::{Entry, RevocationList, REASON_REMOVE_FROM_CRL};
use super::CrlKind;

/// How far a CRL's thisUpdate may be ahead of the verifier's clock. Clocks drift, and a CA that
/// publishes the moment it signs runs ahead of a verifier a little behind; beyond this the CRL is
/// not in effect yet, so it is refused and its number is not kept as the high-water mark.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Whether a CRL is in effect at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Issued (within the skew) and not past its nextUpdate.
    Current,
    /// Dated more than [`MAX_CLOCK_SKEW`] ahead of the clock: not in effect yet.
    Ahead { this_update: OffsetDateTime },
    /// Past its nextUpdate.
    Expired { next_update: OffsetDateTime },
}

/// Whether `list` is in effect at `now`. A CRL dated ahead counts as ahead even if its
/// nextUpdate has also passed.
pub fn timing(list: &RevocationList, now: OffsetDateTime) -> Timing {
    if list.this_update > now + MAX_CLOCK_SKEW {
        return Timing::Ahead {
            this_update: list.this_update,
        };
    }
    match list.next_update.filter(|next| *next <= now) {
        Some(next_update) => Timing::Expired { next_update },
        None => Timing::Current,
    }
}

/// Where a serial is listed as revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    pub kind: CrlKind,
    pub entry: Entry,
}

/// A delta CRL that completes a base CRL newer than the one at hand, so the two cannot be read
/// together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaAhead {
    /// The base CRL number the delta completes.
    pub delta_of: BigUint,
    /// The number of the base CRL at hand.
    pub base: BigUint,
}

/// What `base` and its `delta` say of `serial` (DER INTEGER content octets): `None` when it is
/// not revoked. An entry on the delta wins over the base; a delta's removeFromCRL un-revokes a
/// certificate the base lists (on hold). A delta applies to its base or any later one.
pub fn listed_on(
    serial: &[u8],
    base: &RevocationList,
    delta: Option<&RevocationList>,
) -> Result<Option<Listing>, DeltaAhead> {
    if let Some(delta_of) = delta.and_then(|d| d.delta_of.as_ref()) {
        if *delta_of > base.number {
            return Err(DeltaAhead {
                delta_of: delta_of.clone(),
                base: base.number.clone(),
            });
        }
    }
    let listing = |kind, entry| Listing { kind, entry };
    Ok(match delta.and_then(|d| d.lookup(serial)) {
        Some(entry) if entry.reason == Some(REASON_REMOVE_FROM_CRL) => None,
        Some(entry) => Some(listing(CrlKind::Delta, entry)),
        None => base
            .lookup(serial)
            .map(|entry| listing(CrlKind::Base, entry)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::crl::test_ca::CrlTestCa;
    use crate::fixtures::crl::RevokedEntry;
    use crate::fixtures::spec::RevocationReason;

    fn ca() -> CrlTestCa {
        CrlTestCa::new("Status Test CA")
    }

    const ON_HOLD: u8 = 0x07;
    const COMPROMISED: u8 = 0x09;

    /// A CRL valid for a day from `this_update`, verified and indexed.
    fn list(
        ca: &CrlTestCa,
        number: u64,
        delta_of: Option<u64>,
        this_update: OffsetDateTime,
        entries: &[(u8, RevocationReason)],
    ) -> RevocationList {
        let entries: Vec<RevokedEntry> = entries
            .iter()
            .map(|(serial, reason)| RevokedEntry {
                serial: vec![*serial],
                revoked_at: this_update,
                reason: *reason,
            })
            .collect();
        let validity = (this_update, this_update + time::Duration::days(1));
        let der = ca.crl(number, delta_of, validity, &entries);
        RevocationList::verify_and_index(&der, &ca.info).unwrap()
    }

    #[test]
    fn a_delta_wins_over_its_base_and_remove_from_crl_takes_a_hold_off() {
        let ca = ca();
        let now = OffsetDateTime::now_utc();
        let base = list(
            &ca,
            5,
            None,
            now,
            &[
                (ON_HOLD, RevocationReason::CertificateHold),
                (COMPROMISED, RevocationReason::KeyCompromise),
            ],
        );
        let delta = list(
            &ca,
            6,
            Some(5),
            now,
            &[(ON_HOLD, RevocationReason::RemoveFromCrl)],
        );
        assert_eq!(listed_on(&[ON_HOLD], &base, Some(&delta)), Ok(None));
        let on_base = listed_on(&[COMPROMISED], &base, Some(&delta)).unwrap();
        assert_eq!(on_base.map(|l| l.kind), Some(CrlKind::Base));
        assert_eq!(
            listed_on(&[ON_HOLD], &base, None).unwrap().map(|l| l.kind),
            Some(CrlKind::Base)
        );
        // A serial with a sign-padding zero is the same number.
        assert!(listed_on(&[0, COMPROMISED], &base, None).unwrap().is_some());
        assert_eq!(listed_on(&[0x42], &base, Some(&delta)), Ok(None));
    }

    #[test]
    fn a_delta_of_a_newer_base_cannot_be_read_with_an_older_one() {
        let ca = ca();
        let now = OffsetDateTime::now_utc();
        let base = list(&ca, 5, None, now, &[]);
        let delta = list(&ca, 8, Some(7), now, &[]);
        assert_eq!(
            listed_on(&[1], &base, Some(&delta)),
            Err(DeltaAhead {
                delta_of: 7u32.into(),
                base: 5u32.into()
            })
        );
        // A delta of an older base still applies.
        let older = list(&ca, 8, Some(4), now, &[]);
        assert_eq!(listed_on(&[1], &base, Some(&older)), Ok(None));
    }

    #[test]
    fn a_crl_is_in_effect_from_its_this_update_less_the_skew_until_its_next_update() {
        let ca = ca();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let current = list(&ca, 1, None, now - time::Duration::hours(1), &[]);
        assert_eq!(timing(&current, now), Timing::Current);
        let within_skew = list(&ca, 1, None, now + time::Duration::minutes(4), &[]);
        assert_eq!(timing(&within_skew, now), Timing::Current);
        let ahead_at = now + MAX_CLOCK_SKEW + time::Duration::minutes(1);
        let ahead = list(&ca, 1, None, ahead_at, &[]);
        assert_eq!(
            timing(&ahead, now),
            Timing::Ahead {
                this_update: ahead_at
            }
        );
        let expired = list(&ca, 1, None, now - time::Duration::days(2), &[]);
        assert_eq!(
            timing(&expired, now),
            Timing::Expired {
                next_update: now - time::Duration::days(1)
            }
        );
    }
}
