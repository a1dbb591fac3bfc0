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
