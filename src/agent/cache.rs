//! The agent's cache of successful sign-ins: one per endpoint and username, kept until the token
//! the server issued expires, and dropped at once when the card that signed it goes (the "lock on
//! removal" policy). Entries are persisted through a [`SecretStore`] (the OS keyring), never in a
//! plain file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::secret_store::{MemoryOnly, SecretStore, StoreError};
use crate::signin::protocol::SignInAnswer;
use crate::token::inventory::TokenReport;

/// The token and certificate that made a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    pub module: PathBuf,
    pub token_label: String,
    pub token_serial: String,
    /// The PKCS#11 slot description: the reader's name for a smart card.
    pub reader: String,
    /// Lowercase hex SHA-256 of the certificate.
    pub certificate_sha256: String,
    pub certificate_uri: String,
    /// The certificate as a direct sign-in names it (`identity::describe`: subject and user);
    /// empty in a sign-in cached before it was kept.
    #[serde(default)]
    pub certificate: String,
}

/// PKCS#11 slot descriptions are 64 bytes at most: a longer reader name arrives cut short.
const SLOT_DESCRIPTION_LENGTH: usize = 64;

impl Signer {
    /// Whether the signing token was a card in the PC/SC reader `reader` (its slot description
    /// is the reader's name, cut to 64 bytes when longer).
    pub fn was_in(&self, reader: &str) -> bool {
        let slot = self.reader.trim_end();
        !slot.is_empty()
            && (slot == reader
                || (self.reader.len() >= SLOT_DESCRIPTION_LENGTH - 1 && reader.starts_with(slot)))
    }

    /// Whether `token` is the token this signer used.
    pub fn is_on(&self, token: &TokenReport) -> bool {
        token.module == self.module
            && token.serial == self.token_serial
            && token.label == self.token_label
    }
}

/// One cached sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedSignIn {
    /// `scheme://host:port`, as `picker::remembered::endpoint_key` makes it.
    pub endpoint: String,
    pub username: String,
    pub answer: SignInAnswer,
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    pub signer: Signer,
}

/// Why a cached sign-in was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    CardRemoved,
    TokenGone,
    Expired,
    Forgotten,
    Locked,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CardRemoved => "cardRemoved",
            Self::TokenGone => "tokenGone",
            Self::Expired => "expired",
            Self::Forgotten => "forgotten",
            Self::Locked => "locked",
        }
    }
}

/// A dropped sign-in, for the event stream (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub endpoint: String,
    pub username: String,
    pub signer: Signer,
    pub reason: DropReason,
}

/// What a removal did: the entries dropped, and whether the store took the change. The entries
/// are gone from memory either way.
#[derive(Debug)]
pub struct Removal {
    pub dropped: Vec<Dropped>,
    pub saved: Result<(), StoreError>,
}

/// A sign-in within this long of its expiry is treated as expired: it would not outlive its use.
pub const EXPIRY_MARGIN: time::Duration = time::Duration::seconds(60);

/// The persisted form: one secret holds every entry.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    version: u32,
    entries: Vec<CachedSignIn>,
}

const PERSISTED_VERSION: u32 = 1;

/// The cached sign-ins and where they are kept.
pub struct SignInCache {
    entries: Vec<CachedSignIn>,
    store: Box<dyn SecretStore>,
}

impl SignInCache {
    /// Loads what the store holds. A store that cannot be read, or holds something this version
    /// does not understand, starts an empty cache (the error says why).
    pub fn open(store: Box<dyn SecretStore>) -> (Self, Option<StoreError>) {
        let (entries, problem) = match store.load() {
            Ok(None) => (Vec::new(), None),
            Ok(Some(text)) => match serde_json::from_str::<Persisted>(&text) {
                Ok(p) if p.version == PERSISTED_VERSION => (p.entries, None),
                Ok(p) => (
                    Vec::new(),
                    Some(StoreError(format!(
                        "the stored sign-ins are version {}; this agent reads {PERSISTED_VERSION}, so they were ignored",
                        p.version
                    ))),
                ),
                Err(e) => (
                    Vec::new(),
                    Some(StoreError(format!(
                        "the stored sign-ins could not be read ({e}), so they were ignored"
                    ))),
                ),
            },
            Err(e) => (Vec::new(), Some(e)),
        };
        (Self { entries, store }, problem)
    }

    /// The agent's cache: on the OS keyring unless `memory_only`, else (or when there is no
    /// keyring) in memory only; with what the agent should say about it once.
    pub fn open_for_agent(memory_only: bool) -> (Self, Vec<String>) {
        let mut notes = Vec::new();
        let store: Box<dyn SecretStore> = match memory_only {
            true => Box::new(MemoryOnly),
            false => super::secret_store::open_keyring().unwrap_or_else(|e| {
                notes.push(format!("no keyring is available ({e}); sign-ins are cached in memory only and are lost when the agent stops"));
                Box::new(MemoryOnly)
            }),
        };
        let (cache, problem) = Self::open(store);
        notes.extend(problem.map(|p| p.to_string()));
        tracing::info!(
            store = cache.store_kind(),
            cached = cache.len(),
            "sign-in cache"
        );
        (cache, notes)
    }

    /// Where entries are kept: `keyring` or `memory`.
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The valid sign-in for `endpoint` and `username` (made with a certificate `accepts` allows),
    /// dropping expired ones (and those within [`EXPIRY_MARGIN`] of it) first.
    pub fn get(
        &mut self,
        endpoint: &str,
        username: &str,
        now: OffsetDateTime,
        accepts: impl Fn(&Signer) -> bool,
    ) -> (Option<CachedSignIn>, Removal) {
        let expired = self.remove_where(DropReason::Expired, |e| e.expires <= now + EXPIRY_MARGIN);
        let found = self
            .entries
            .iter()
            .find(|e| e.endpoint == endpoint && e.username == username && accepts(&e.signer))
            .cloned();
        (found, expired)
    }

    /// Caches a sign-in, replacing the one for the same endpoint and username.
    pub fn insert(&mut self, entry: CachedSignIn) -> Result<(), StoreError> {
        self.entries
            .retain(|e| !(e.endpoint == entry.endpoint && e.username == entry.username));
        self.entries.push(entry);
        self.save()
    }

    /// Drops the sign-ins made with a card in `reader`.
    pub fn drop_reader(&mut self, reader: &str) -> Removal {
        self.remove_where(DropReason::CardRemoved, |e| e.signer.was_in(reader))
    }

    /// Drops the sign-ins whose token is not among `present`.
    pub fn drop_absent(&mut self, present: &[TokenReport]) -> Removal {
        self.remove_where(DropReason::TokenGone, |e| {
            !present.iter().any(|t| e.signer.is_on(t))
        })
    }

    /// Drops the sign-ins for `endpoint` and `username`, each if given (all if neither is).
    pub fn forget(&mut self, endpoint: Option<&str>, username: Option<&str>) -> Removal {
        self.remove_where(DropReason::Forgotten, |e| {
            endpoint.is_none_or(|x| x == e.endpoint) && username.is_none_or(|u| u == e.username)
        })
    }

    /// Drops every sign-in.
    pub fn lock(&mut self) -> Removal {
        self.remove_where(DropReason::Locked, |_| true)
    }

    fn remove_where(
        &mut self,
        reason: DropReason,
        doomed: impl Fn(&CachedSignIn) -> bool,
    ) -> Removal {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(doomed);
        self.entries = kept;
        if gone.is_empty() {
            return Removal {
                dropped: Vec::new(),
                saved: Ok(()),
            };
        }
        let dropped = gone
            .into_iter()
            .map(|e| Dropped {
                endpoint: e.endpoint,
                username: e.username,
                signer: e.signer,
                reason,
            })
            .collect();
        Removal {
            dropped,
            saved: self.save(),
        }
    }

    fn save(&self) -> Result<(), StoreError> {
        if self.entries.is_empty() {
            return self.store.clear();
        }
        let persisted = Persisted {
            version: PERSISTED_VERSION,
            entries: self.entries.clone(),
        };
        let text = serde_json::to_string(&persisted)
            .map_err(|e| StoreError(format!("cannot encode the cached sign-ins: {e}")))?;
        self.store.save(&text)
    }
}

/// When a successful answer's token expires, from its `expiresAt`.
pub fn answer_expiry(answer: &SignInAnswer) -> Option<OffsetDateTime> {
    let text = answer.expires_at.as_deref()?;
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// How long a sign-in is cached: until its token expires, but never longer than `max` from `now`
/// (the expiry is the server's claim, and a server can claim anything).
pub fn capped_expiry(
    claimed: OffsetDateTime,
    now: OffsetDateTime,
    max: time::Duration,
) -> OffsetDateTime {
    claimed.min(now + max)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use time::Duration;

    use super::*;

    /// A store that keeps what was saved where the test can see it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Option<String>>>);

    impl SecretStore for Shared {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn load(&self) -> Result<Option<String>, StoreError> {
            Ok(self.0.lock().unwrap().clone())
        }
        fn save(&self, text: &str) -> Result<(), StoreError> {
            *self.0.lock().unwrap() = Some(text.to_owned());
            Ok(())
        }
        fn clear(&self) -> Result<(), StoreError> {
            *self.0.lock().unwrap() = None;
            Ok(())
        }
    }

    fn signer(reader: &str, serial: &str) -> Signer {
        Signer {
            module: "/usr/lib/opensc-pkcs11.so".into(),
            token_label: "Alice".into(),
            token_serial: serial.into(),
            reader: reader.into(),
            certificate_sha256: "ab".repeat(32),
            certificate_uri: "pkcs11:id=%01".into(),
            certificate: "Alice <alice@example.com>".into(),
        }
    }

    #[test]
    fn a_claimed_expiry_is_capped_at_the_maximum_lifetime() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let max = Duration::hours(12);
        let far = now + Duration::days(3650);
        assert_eq!(capped_expiry(far, now, max), now + max);
        let soon = now + Duration::minutes(5);
        assert_eq!(capped_expiry(soon, now, max), soon);
    }

    fn entry(endpoint: &str, username: &str, expires: OffsetDateTime, s: Signer) -> CachedSignIn {
        CachedSignIn {
            endpoint: endpoint.into(),
            username: username.into(),
            answer: SignInAnswer {
                status: "success".into(),
                token: Some("eyJ.secret.token".into()),
                ..Default::default()
            },
            expires,
            signer: s,
        }
    }

    #[test]
    fn entries_live_until_they_expire_and_survive_a_reopen() {
        let store = Shared::default();
        let now = OffsetDateTime::now_utc();
        let (mut cache, problem) = SignInCache::open(Box::new(store.clone()));
        assert!(problem.is_none());
        cache
            .insert(entry(
                "https://a:443",
                "bob",
                now + Duration::minutes(5),
                signer("Reader 1", "1"),
            ))
            .unwrap();
        cache
            .insert(entry(
                "https://a:443",
                "eve",
                now + Duration::seconds(1),
                signer("Reader 1", "1"),
            ))
            .unwrap();

        let (mut reopened, _) = SignInCache::open(Box::new(store.clone()));
        assert_eq!(reopened.len(), 2);
        // Eve's expires within the margin: the first lookup drops it.
        let (found, expired) = reopened.get("https://a:443", "bob", now, |_| true);
        assert!(found.is_some());
        assert_eq!(expired.dropped.len(), 1);
        assert_eq!(expired.dropped[0].reason, DropReason::Expired);
        assert_eq!(expired.dropped[0].username, "eve");
        assert!(expired.saved.is_ok());
        assert!(reopened
            .get("https://a:443", "eve", now, |_| true)
            .0
            .is_none());
        assert!(reopened
            .get("https://b:443", "bob", now, |_| true)
            .0
            .is_none());
        assert!(!store.0.lock().unwrap().as_ref().unwrap().contains("eve"));
    }

    #[test]
    fn a_certificate_filter_can_refuse_a_cached_entry() {
        let (mut cache, _) = SignInCache::open(Box::new(Shared::default()));
        let now = OffsetDateTime::now_utc();
        cache
            .insert(entry(
                "e",
                "bob",
                now + Duration::hours(1),
                signer("R", "1"),
            ))
            .unwrap();
        let (found, _) = cache.get("e", "bob", now, |s| s.token_serial == "2");
        assert!(found.is_none());
    }

    #[test]
    fn removal_forget_and_lock_drop_what_they_name() {
        let store = Shared::default();
        let (mut cache, _) = SignInCache::open(Box::new(store.clone()));
        let later = OffsetDateTime::now_utc() + Duration::hours(1);
        cache
            .insert(entry("e1", "bob", later, signer("Reader 1", "1")))
            .unwrap();
        cache
            .insert(entry("e2", "bob", later, signer("Reader 2", "2")))
            .unwrap();
        cache
            .insert(entry("e3", "ann", later, signer("Reader 2", "2")))
            .unwrap();

        let dropped = cache.drop_reader("Reader 1").dropped;
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].endpoint, "e1");
        assert_eq!(dropped[0].reason, DropReason::CardRemoved);
        assert!(cache.drop_reader("Reader 1").dropped.is_empty());

        let dropped = cache.forget(None, Some("ann")).dropped;
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].endpoint, "e3");

        let dropped = cache.lock().dropped;
        assert_eq!(dropped.len(), 1);
        assert!(cache.is_empty());
        assert!(
            store.0.lock().unwrap().is_none(),
            "an empty cache clears the secret"
        );
    }

    #[test]
    fn a_reader_name_matches_its_slot_description_even_cut_to_64_bytes() {
        let long = "Yubico YubiKey OTP+FIDO+CCID (0001234567) 00 00 with a very long name indeed";
        let mut s = signer(&long[..64], "1");
        assert!(s.was_in(long));
        assert!(!s.was_in("Yubico"));
        s.reader = "Reader 1".into();
        assert!(s.was_in("Reader 1"));
        assert!(
            !s.was_in("Reader 10"),
            "a short name is never a prefix match"
        );
        s.reader = String::new();
        assert!(!s.was_in(""), "a token with no slot description is no card");
    }

    #[test]
    fn a_failed_save_still_reports_what_was_dropped() {
        struct Broken;
        impl SecretStore for Broken {
            fn kind(&self) -> &'static str {
                "broken"
            }
            fn load(&self) -> Result<Option<String>, StoreError> {
                Ok(None)
            }
            fn save(&self, _: &str) -> Result<(), StoreError> {
                Err(StoreError("locked".into()))
            }
            fn clear(&self) -> Result<(), StoreError> {
                Err(StoreError("locked".into()))
            }
        }
        let (mut cache, _) = SignInCache::open(Box::new(Broken));
        let later = OffsetDateTime::now_utc() + Duration::hours(1);
        assert!(cache
            .insert(entry("e", "bob", later, signer("R", "1")))
            .is_err());
        let removal = cache.lock();
        assert_eq!(removal.dropped.len(), 1, "dropped from memory all the same");
        assert_eq!(removal.saved, Err(StoreError("locked".into())));
        assert!(cache.is_empty());
    }

    #[test]
    fn unreadable_stored_data_starts_empty_and_says_why() {
        let store = Shared::default();
        *store.0.lock().unwrap() = Some("{not json".into());
        let (cache, problem) = SignInCache::open(Box::new(store.clone()));
        assert!(cache.is_empty());
        assert!(problem.unwrap().0.contains("could not be read"));

        *store.0.lock().unwrap() = Some(r#"{"version":99,"entries":[]}"#.into());
        let (_, problem) = SignInCache::open(Box::new(store));
        assert!(problem.unwrap().0.contains("version 99"));
    }

    #[test]
    fn expiry_comes_from_the_answer() {
        let answer = SignInAnswer {
            expires_at: Some("2026-11-28T12:00:00Z".into()),
            ..Default::default()
        };
        assert_eq!(
            answer_expiry(&answer).unwrap().unix_timestamp(),
            1_795_867_200
        );
        assert!(answer_expiry(&SignInAnswer::default()).is_none());
    }
}
