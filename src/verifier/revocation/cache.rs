//! The CRL cache: each CA's base and delta CRL, verified and indexed once, kept until its
//! nextUpdate (or Next CRL Publish, if sooner).
//!
//! One download per CRL however many sign-ins ask at once: callers that arrive while a download
//! runs wait for it and share its outcome, success or failure, and a failure is remembered for a
//! while so sign-ins fail closed at once instead of queueing behind one timeout after another.
//! A CRL must not go backwards: its number (then its thisUpdate) is checked against the newest one
//! accepted, a mark kept through [`CrlHighWater`] so that a restart does not forget it. A CRL
//! dated ahead of the clock by more than [`MAX_CLOCK_SKEW`] is refused. Verifying, indexing and
//! timing one CRL are `pki::crl`'s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::high_water::{order, CrlHighWater, CrlMark, HighWaterError, Order};
use super::source::{CrlSource, FetchError};
use crate::pki::crl::{timing, CrlError, CrlKind, RevocationList, Timing, MAX_CLOCK_SKEW};
use crate::verifier::outcome::ErrorCode;
use crate::verifier::trust::TrustedCa;
use crate::x509::cert_info::CertInfo;

/// Why a CA's CRL is unusable. The verifier fails closed on every one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlFailure {
    #[error("{kind} of `{ca}`: {source}")]
    Fetch {
        ca: String,
        kind: CrlKind,
        source: FetchError,
    },
    #[error("{kind} of `{ca}` is not usable: {source}")]
    Invalid {
        ca: String,
        kind: CrlKind,
        source: CrlError,
    },
    #[error("{kind} of `{ca}` expired at {next_update}, and no newer one could be had")]
    Expired {
        ca: String,
        kind: CrlKind,
        next_update: String,
    },
    #[error("{kind} of `{ca}` has CRL number {new}, lower than the {old} already seen (a replayed CRL?)")]
    NumberWentBackwards {
        ca: String,
        kind: CrlKind,
        old: String,
        new: String,
    },
    #[error("{kind} of `{ca}` is an earlier issue of CRL number {number} (thisUpdate {new}) than the one already seen ({old}): a replayed CRL?")]
    EarlierIssue {
        ca: String,
        kind: CrlKind,
        number: String,
        old: String,
        new: String,
    },
    #[error("{kind} of `{ca}` differs from the CRL number {number} of {this_update} already seen: the CA issued two lists under one number, so neither can be trusted to be current")]
    Conflicting {
        ca: String,
        kind: CrlKind,
        number: String,
        this_update: String,
    },
    #[error("{kind} of `{ca}` is dated {this_update}, more than {skew} minutes ahead of this verifier's clock ({now}): check the CA's clock and this machine's", skew = MAX_CLOCK_SKEW.whole_minutes())]
    NotYetValid {
        ca: String,
        kind: CrlKind,
        this_update: String,
        now: String,
    },
    #[error("the CRL numbers already seen for `{ca}` could not be read or kept, so its {kind} cannot be told from a replay; the verifier's log says why")]
    Unkept { ca: String, kind: CrlKind },
    #[error("`{ca}` published a {found} where its {expected} should be")]
    WrongKind {
        ca: String,
        expected: CrlKind,
        found: CrlKind,
    },
}

impl CrlFailure {
    /// The Entra error code a sign-in gets.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Fetch {
                source: FetchError::TooLarge { .. },
                ..
            } => ErrorCode::CrlTooLarge,
            Self::Fetch {
                source: FetchError::TimedOut { .. },
                ..
            } => ErrorCode::CrlDownloadTimedOut,
            Self::Fetch { .. } => ErrorCode::CrlDownloadFailed,
            Self::Invalid {
                source: CrlError::Malformed(_),
                ..
            } => ErrorCode::CrlNotDer,
            Self::Invalid { .. } => ErrorCode::CrlSignatureInvalid,
            // A CRL outside its validity window, either side.
            Self::Expired { .. } | Self::NotYetValid { .. } => ErrorCode::NotValidNow,
            Self::NumberWentBackwards { .. }
            | Self::EarlierIssue { .. }
            | Self::Conflicting { .. }
            | Self::WrongKind { .. } => ErrorCode::CrlUnusable,
            // An internal failure (the database): transient, and opaque to the user.
            Self::Unkept { .. } => ErrorCode::Transient,
        }
    }
}

/// How long a failed download is remembered when the caller does not say (`serve`'s default).
pub const DEFAULT_FAILURE_MEMORY: Duration = Duration::from_secs(30);

/// One CA's CRL of one kind.
#[derive(Debug, Default)]
struct Slot {
    /// Held for the whole of a download, by the task doing it: that is what makes callers wait
    /// for one download instead of starting their own.
    state: Arc<tokio::sync::Mutex<SlotState>>,
    /// Downloads ended so far. A caller that sees this change while it waited for `state` takes
    /// the outcome of the download it waited through.
    ended: AtomicU64,
}

#[derive(Debug, Default)]
struct SlotState {
    list: Option<Arc<RevocationList>>,
    /// The newest CRL accepted; `None` until read from the high-water store.
    mark: Option<Option<CrlMark>>,
    /// The last download's failure and when it ended; cleared by a success.
    failure: Option<(CrlFailure, Instant)>,
}

/// Verified CRLs by CA and kind.
#[derive(Debug)]
pub struct CrlCache {
    source: Arc<CrlSource>,
    /// Where the marks outlive the process; `None` keeps them in memory (offline evaluation).
    high_water: Option<Arc<dyn CrlHighWater>>,
    failure_memory: Duration,
    slots: Mutex<HashMap<(String, CrlKind), Arc<Slot>>>,
}

impl CrlCache {
    /// A cache whose marks live in memory only, for one-off decisions.
    pub fn new(source: CrlSource) -> Self {
        Self {
            source: Arc::new(source),
            high_water: None,
            failure_memory: DEFAULT_FAILURE_MEMORY,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// A cache for a verifier that serves, shared as its engines hold it: the marks persist in
    /// `high_water`, and a failed download fails sign-ins at once for `failure_memory` before
    /// another is tried.
    pub fn persistent(
        source: CrlSource,
        high_water: Arc<dyn CrlHighWater>,
        failure_memory: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            high_water: Some(high_water),
            failure_memory,
            ..Self::new(source)
        })
    }

    pub fn source(&self) -> &CrlSource {
        &self.source
    }

    fn slot(&self, ca: &TrustedCa, kind: CrlKind) -> Arc<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.entry((ca.ski.clone(), kind)).or_default().clone()
    }

    /// The current CRL of `kind` for `ca`, fetching it if the cached one is stale or missing.
    pub async fn get(
        &self,
        ca: &TrustedCa,
        kind: CrlKind,
        now: OffsetDateTime,
    ) -> Result<Arc<RevocationList>, CrlFailure> {
        let slot = self.slot(ca, kind);
        let ended_before = slot.ended.load(Ordering::Acquire);
        let state = slot.state.clone().lock_owned().await;
        if let Some(list) = state.list.as_ref() {
            if list.fresh_until().is_some_and(|until| now < until) {
                return Ok(list.clone());
            }
        }
        let waited_through_one = slot.ended.load(Ordering::Acquire) != ended_before;
        match (&state.failure, &state.list) {
            (Some((failure, at)), _)
                if waited_through_one || at.elapsed() < self.failure_memory =>
            {
                return Err(failure.clone());
            }
            (None, Some(list)) if waited_through_one => return Ok(list.clone()),
            _ => {}
        }
        // The download runs in a task of its own, which holds the slot: a sign-in that gives up
        // (its client went away) does not cancel the download the others are waiting for.
        let refresh = Refresh {
            source: self.source.clone(),
            high_water: self.high_water.clone(),
            ca: ca.clone(),
            kind,
            now,
        };
        match tokio::spawn(refresh.run(state, slot)).await {
            Ok(outcome) => outcome,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Only a runtime shutting down cancels the task.
                Err(_) => Err(CrlFailure::Fetch {
                    ca: ca.info.subject.clone(),
                    kind,
                    source: FetchError::Unreachable {
                        url: url_of(ca, kind),
                        reason: "the verifier is shutting down".into(),
                    },
                }),
            },
        }
    }
}

fn url_of(ca: &TrustedCa, kind: CrlKind) -> String {
    match kind {
        CrlKind::Base => ca.crl_url.clone(),
        CrlKind::Delta => ca.delta_crl_url.clone(),
    }
    .unwrap_or_default()
}

/// One download, with what it needs to outlive the caller that started it.
struct Refresh {
    source: Arc<CrlSource>,
    high_water: Option<Arc<dyn CrlHighWater>>,
    ca: TrustedCa,
    kind: CrlKind,
    now: OffsetDateTime,
}

impl Refresh {
    async fn run(
        self,
        mut state: tokio::sync::OwnedMutexGuard<SlotState>,
        slot: Arc<Slot>,
    ) -> Result<Arc<RevocationList>, CrlFailure> {
        let outcome = self.fetch_and_admit(&mut state).await;
        match &outcome {
            Ok(list) => {
                state.list = Some(list.clone());
                state.failure = None;
            }
            Err(failure) => state.failure = Some((failure.clone(), Instant::now())),
        }
        // Counted before the slot is released, so every caller waiting on it sees the count move.
        slot.ended.fetch_add(1, Ordering::Release);
        drop(state);
        outcome
    }

    async fn fetch_and_admit(
        &self,
        state: &mut SlotState,
    ) -> Result<Arc<RevocationList>, CrlFailure> {
        let (ca, kind) = (&self.ca, self.kind);
        let subject = || ca.info.subject.clone();
        let seen = self.seen(state)?;
        let der = self
            .source
            .get(ca, kind)
            .await
            .map_err(|source| CrlFailure::Fetch {
                ca: subject(),
                kind,
                source,
            })?;
        let list = index_off_the_runtime(&der, &ca.info).map_err(|source| CrlFailure::Invalid {
            ca: subject(),
            kind,
            source,
        })?;
        let found = if list.delta_of.is_some() {
            CrlKind::Delta
        } else {
            CrlKind::Base
        };
        if found != kind {
            return Err(CrlFailure::WrongKind {
                ca: subject(),
                expected: kind,
                found,
            });
        }
        let timing = timing(&list, self.now);
        if let Timing::Ahead { this_update } = timing {
            return Err(CrlFailure::NotYetValid {
                ca: subject(),
                kind,
                this_update: this_update.to_string(),
                now: self.now.to_string(),
            });
        }
        let mark = CrlMark::of(&list);
        let order = self.order(seen.as_ref(), &mark)?;
        if let Timing::Expired { next_update } = timing {
            return Err(CrlFailure::Expired {
                ca: subject(),
                kind,
                next_update: next_update.to_string(),
            });
        }
        if order == Order::Newer {
            // Kept before the CRL is used: a CRL whose mark could not be kept could be replaced
            // by an older one after a restart.
            if let Some(store) = &self.high_water {
                store
                    .record(&ca.ski, kind, &mark)
                    .map_err(|e| self.unkept(e))?;
            }
            state.mark = Some(Some(mark));
        }
        Ok(Arc::new(list))
    }

    /// The newest CRL accepted so far, read from the high-water store on first use.
    fn seen(&self, state: &mut SlotState) -> Result<Option<CrlMark>, CrlFailure> {
        if let Some(seen) = &state.mark {
            return Ok(seen.clone());
        }
        let loaded = match &self.high_water {
            Some(store) => store
                .load(&self.ca.ski, self.kind)
                .map_err(|e| self.unkept(e))?,
            None => None,
        };
        state.mark = Some(loaded.clone());
        Ok(loaded)
    }

    /// How `mark` orders against the newest CRL seen; a CRL that is not newer or the same is
    /// refused as a replay or a conflict.
    fn order(&self, seen: Option<&CrlMark>, mark: &CrlMark) -> Result<Order, CrlFailure> {
        let (ca, kind) = (self.ca.info.subject.clone(), self.kind);
        let Some(seen) = seen else {
            return Ok(Order::Newer);
        };
        match order(seen, mark) {
            found @ (Order::Newer | Order::Same) => Ok(found),
            Order::LowerNumber => Err(CrlFailure::NumberWentBackwards {
                ca,
                kind,
                old: seen.number.to_string(),
                new: mark.number.to_string(),
            }),
            Order::EarlierIssue => Err(CrlFailure::EarlierIssue {
                ca,
                kind,
                number: mark.number.to_string(),
                old: seen.this_update.to_string(),
                new: mark.this_update.to_string(),
            }),
            Order::Conflicting => Err(CrlFailure::Conflicting {
                ca,
                kind,
                number: seen.number.to_string(),
                this_update: seen.this_update.to_string(),
            }),
        }
    }

    fn unkept(&self, error: HighWaterError) -> CrlFailure {
        tracing::error!(ca = %self.ca.info.subject, kind = %self.kind, error = %error, "the CRL high-water mark could not be read or kept");
        CrlFailure::Unkept {
            ca: self.ca.info.subject.clone(),
            kind: self.kind,
        }
    }
}

/// Parsing and indexing a large CRL is CPU work: keep it off the async workers when possible.
fn index_off_the_runtime(der: &[u8], ca: &CertInfo) -> Result<RevocationList, CrlError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| RevocationList::verify_and_index(der, ca))
        }
        _ => RevocationList::verify_and_index(der, ca),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::crl::test_ca::CrlTestCa;

    /// A self-signed CA and its key, as a trusted CA with a CRL URL.
    fn ca() -> (TrustedCa, CrlTestCa) {
        let test_ca = CrlTestCa::new("Cache Test CA");
        let info = test_ca.info.clone();
        let ski = crate::x509::hex(info.subject_key_identifier.as_deref().unwrap());
        let ca = TrustedCa {
            info,
            is_root: true,
            crl_url: Some("http://crl.test/ca.crl".into()),
            delta_crl_url: None,
            display_name: None,
            issuer_hint: false,
            ski,
        };
        (ca, test_ca)
    }

    /// A base CRL valid for a week.
    fn crl(key: &CrlTestCa, number: u64, this_update: OffsetDateTime) -> Vec<u8> {
        key.crl(
            number,
            None,
            (this_update, this_update + time::Duration::days(7)),
            &[],
        )
    }

    fn serving(der: Vec<u8>, ca: &TrustedCa) -> CrlSource {
        let source = CrlSource::offline();
        source.provide(&ca.ski, CrlKind::Base, der);
        source
    }

    /// The marks in memory, standing in for the database across a "restart".
    #[derive(Debug, Default)]
    struct Marks(Mutex<HashMap<(String, CrlKind), CrlMark>>);

    impl CrlHighWater for Marks {
        fn load(&self, ca_ski: &str, kind: CrlKind) -> Result<Option<CrlMark>, HighWaterError> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .get(&(ca_ski.to_owned(), kind))
                .cloned())
        }

        fn record(
            &self,
            ca_ski: &str,
            kind: CrlKind,
            mark: &CrlMark,
        ) -> Result<(), HighWaterError> {
            self.0
                .lock()
                .unwrap()
                .insert((ca_ski.to_owned(), kind), mark.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_crl_dated_beyond_the_clock_skew_is_refused() {
        let (ca, key) = ca();
        let now = OffsetDateTime::now_utc();
        let ahead = crl(&key, 7, now + MAX_CLOCK_SKEW + time::Duration::minutes(1));
        let cache = CrlCache::new(serving(ahead, &ca));
        let err = cache.get(&ca, CrlKind::Base, now).await.unwrap_err();
        assert!(matches!(err, CrlFailure::NotYetValid { .. }), "{err:?}");
        assert_eq!(err.error_code(), ErrorCode::NotValidNow);
        assert!(
            err.to_string().contains("more than 5 minutes ahead"),
            "{err}"
        );

        // Within the skew it is taken.
        let slightly = crl(&key, 7, now + time::Duration::minutes(4));
        let cache = CrlCache::new(serving(slightly, &ca));
        assert!(cache.get(&ca, CrlKind::Base, now).await.is_ok());
    }

    #[tokio::test]
    async fn crl_marks_outlive_the_cache_so_an_older_crl_is_a_replay() {
        let (ca, key) = ca();
        let now = OffsetDateTime::now_utc();
        let issued = now - time::Duration::hours(1);
        let marks = Arc::new(Marks::default());
        let newer = crl(&key, 41, issued);
        let first =
            CrlCache::persistent(serving(newer.clone(), &ca), marks.clone(), Duration::ZERO);
        assert_eq!(
            first.get(&ca, CrlKind::Base, now).await.unwrap().number,
            41u32.into()
        );
        drop(first);

        // A new cache (a restart) over the same marks.
        let restarted =
            |der| CrlCache::persistent(serving(der, &ca), marks.clone(), Duration::ZERO);
        let err = restarted(crl(&key, 40, issued))
            .get(&ca, CrlKind::Base, now)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CrlFailure::NumberWentBackwards { .. }),
            "{err:?}"
        );
        assert_eq!(err.error_code(), ErrorCode::CrlUnusable);
        let err = restarted(crl(&key, 41, issued - time::Duration::minutes(1)))
            .get(&ca, CrlKind::Base, now)
            .await
            .unwrap_err();
        assert!(matches!(err, CrlFailure::EarlierIssue { .. }), "{err:?}");
        // Same number and thisUpdate, other contents (a later nextUpdate).
        let other = key.crl(41, None, (issued, issued + time::Duration::days(8)), &[]);
        let err = restarted(other)
            .get(&ca, CrlKind::Base, now)
            .await
            .unwrap_err();
        assert!(matches!(err, CrlFailure::Conflicting { .. }), "{err:?}");
        assert_eq!(err.error_code(), ErrorCode::CrlUnusable);

        // The same CRL fetched again after the restart is fine, and so is a newer one.
        assert!(restarted(newer).get(&ca, CrlKind::Base, now).await.is_ok());
        assert!(restarted(crl(&key, 42, issued))
            .get(&ca, CrlKind::Base, now)
            .await
            .is_ok());
        assert_eq!(
            marks.load(&ca.ski, CrlKind::Base).unwrap().unwrap().number,
            42u32.into()
        );
    }

    #[tokio::test]
    async fn a_failed_download_is_remembered_for_the_failure_memory() {
        let (ca, key) = ca();
        let now = OffsetDateTime::now_utc();
        let good = crl(&key, 3, now - time::Duration::hours(1));

        // Nothing to fetch yet: the failure is remembered, and nothing is fetched again.
        let cache = CrlCache::persistent(
            CrlSource::offline(),
            Arc::new(Marks::default()),
            Duration::from_secs(3600),
        );
        let first = cache.get(&ca, CrlKind::Base, now).await.unwrap_err();
        cache.source().provide(&ca.ski, CrlKind::Base, good.clone());
        let again = cache.get(&ca, CrlKind::Base, now).await.unwrap_err();
        assert_eq!(first, again);
        assert_eq!(cache.source().fetch_count(), 1);

        // Once the memory has passed, another download is tried.
        let cache = CrlCache::persistent(
            CrlSource::offline(),
            Arc::new(Marks::default()),
            Duration::ZERO,
        );
        assert!(cache.get(&ca, CrlKind::Base, now).await.is_err());
        cache.source().provide(&ca.ski, CrlKind::Base, good);
        assert!(cache.get(&ca, CrlKind::Base, now).await.is_ok());
        assert_eq!(cache.source().fetch_count(), 2);
    }
}
