//! The CRL cache: each CA's base and delta CRL, verified and indexed once, kept until its
//! nextUpdate (or Next CRL Publish, if sooner). One download per CRL however many sign-ins ask at
//! once, and a CRL whose number goes backwards is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use super::crl::CrlError;
use super::index::RevocationList;
use super::source::{CrlKind, CrlSource, FetchError};
use crate::verifier::trust::TrustedCa;

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
    #[error("`{ca}` published a {found} where its {expected} should be")]
    WrongKind {
        ca: String,
        expected: CrlKind,
        found: CrlKind,
    },
}

impl CrlFailure {
    /// The Entra error code a sign-in gets.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::Fetch {
                source: FetchError::TooLarge { .. },
                ..
            } => "AADSTS2205014",
            Self::Fetch {
                source: FetchError::TimedOut { .. },
                ..
            } => "AADSTS2205012",
            Self::Fetch { .. } => "AADSTS500173",
            Self::Invalid {
                source: CrlError::Malformed(_),
                ..
            } => "AADSTS2205011",
            Self::Invalid { .. } => "AADSTS2205015",
            Self::Expired { .. } => "AADSTS500172",
            Self::NumberWentBackwards { .. } | Self::WrongKind { .. } => "AADSTS500174",
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<RevocationList>>>>;

/// Verified CRLs by CA and kind.
#[derive(Debug)]
pub struct CrlCache {
    source: CrlSource,
    slots: Mutex<HashMap<(String, CrlKind), Slot>>,
}

impl CrlCache {
    pub fn new(source: CrlSource) -> Self {
        Self {
            source,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn source(&self) -> &CrlSource {
        &self.source
    }

    fn slot(&self, ca: &TrustedCa, kind: CrlKind) -> Slot {
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
        // Holding the slot's lock across the download makes concurrent callers wait for, and
        // then share, this one download.
        let mut cached = slot.lock().await;
        if let Some(list) = cached.as_ref() {
            if list.fresh_until().is_some_and(|until| now < until) {
                return Ok(list.clone());
            }
        }
        let subject = || ca.info.subject.clone();
        let der = self
            .source
            .get(ca, kind)
            .await
            .map_err(|source| CrlFailure::Fetch {
                ca: subject(),
                kind,
                source,
            })?;
        let list = index_off_the_runtime(&der, ca).map_err(|source| CrlFailure::Invalid {
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
        if let Some(old) = cached.as_ref() {
            if list.number < old.number {
                return Err(CrlFailure::NumberWentBackwards {
                    ca: subject(),
                    kind,
                    old: old.number.to_string(),
                    new: list.number.to_string(),
                });
            }
        }
        if let Some(next_update) = list.next_update.filter(|next| *next <= now) {
            return Err(CrlFailure::Expired {
                ca: subject(),
                kind,
                next_update: next_update.to_string(),
            });
        }
        let list = Arc::new(list);
        *cached = Some(list.clone());
        Ok(list)
    }
}

/// Parsing and indexing a large CRL is CPU work: keep it off the async workers when possible.
fn index_off_the_runtime(der: &[u8], ca: &TrustedCa) -> Result<RevocationList, CrlError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| RevocationList::verify_and_index(der, ca))
        }
        _ => RevocationList::verify_and_index(der, ca),
    }
}
