//! What the agent holds between requests: cached sign-ins (persisted through the keyring) and
//! token logins kept open for the next sign-in to the same endpoint, as the same user, with the
//! same certificate. Everything dropped is announced on the event stream (names only, never a
//! token).
//!
//! Every method may wait for the keyring (or close PKCS#11 sessions): call them from blocking
//! contexts, never on an async worker.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::cache::{CachedSignIn, Removal, SignInCache, Signer};
use super::protocol::Event;
use crate::signin::PreparedClient;
use crate::token::inventory::TokenReport;

/// The settings a login's HTTPS client was built with; a held login serves only the same ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub ca_file: Option<PathBuf>,
    pub chain_files: Vec<PathBuf>,
}

/// A logged-in token session, ready to sign again without a PIN, for what it was made for.
struct HeldLogin {
    signer: Signer,
    /// The sign-in URL and username the PIN was given for: the login serves only these.
    endpoint: String,
    username: String,
    settings: ClientSettings,
    client: Arc<PreparedClient>,
}

impl HeldLogin {
    fn serves(&self, endpoint: Option<&str>, username: Option<&str>) -> bool {
        endpoint.is_none_or(|e| e == self.endpoint) && username.is_none_or(|u| u == self.username)
    }
}

struct Held {
    cache: SignInCache,
    logins: Vec<HeldLogin>,
    /// Counts card removals and token scans: a sign-in that saw another value when it chose its
    /// token may have lost the card since, so it is neither cached nor held.
    generation: u64,
}

pub struct Sessions {
    held: Mutex<Held>,
    events: broadcast::Sender<String>,
}

/// What a drop did.
#[derive(Debug, Default, Clone)]
pub struct DropCount {
    pub sign_ins: usize,
    pub logins: usize,
    /// Why the keyring could not be updated, if it could not (the entries left memory anyway).
    pub store_error: Option<String>,
}

impl DropCount {
    /// The `forget` and `lock` result fields.
    pub fn to_json(&self) -> Value {
        let mut value = json!({ "signIns": self.sign_ins, "logins": self.logins });
        if let Some(error) = &self.store_error {
            value["storeError"] = json!(error);
        }
        value
    }
}

impl Sessions {
    pub fn new(cache: SignInCache, events: broadcast::Sender<String>) -> Self {
        Self {
            held: Mutex::new(Held {
                cache,
                logins: Vec::new(),
                generation: 0,
            }),
            events,
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        // A panic while holding the lock leaves nothing half-written that matters here.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.held().cache.is_empty()
    }

    /// `status`'s view: the store, and how much is held.
    pub fn describe(&self) -> Value {
        let held = self.held();
        json!({
            "store": held.cache.store_kind(),
            "cachedSignIns": held.cache.len(),
            "heldLogins": held.logins.len(),
        })
    }

    /// The current generation, to hand back to [`Self::keep`].
    pub fn generation(&self) -> u64 {
        self.held().generation
    }

    /// The cached sign-in for `endpoint` and `username` made with a certificate `accepts` allows.
    pub fn cached(
        &self,
        endpoint: &str,
        username: &str,
        accepts: impl Fn(&Signer) -> bool,
    ) -> Option<CachedSignIn> {
        let (found, expired) =
            self.held()
                .cache
                .get(endpoint, username, time::OffsetDateTime::now_utc(), accepts);
        self.announce("expired", expired);
        found
    }

    /// Caches a successful sign-in and holds its login (unless its client keeps a PIN in
    /// memory), if no card was removed and no scan ran since `generation`. A keyring failure is
    /// logged; the entry stays in memory.
    pub fn keep(
        &self,
        generation: u64,
        entry: CachedSignIn,
        settings: ClientSettings,
        client: Arc<PreparedClient>,
    ) {
        let mut held = self.held();
        if held.generation != generation {
            tracing::info!(
                endpoint = %entry.endpoint,
                "a card was removed or the tokens rescanned during the sign-in; it is not cached"
            );
            return;
        }
        let signer = entry.signer.clone();
        let (endpoint, username) = (entry.endpoint.clone(), entry.username.clone());
        if let Err(e) = held.cache.insert(entry) {
            tracing::warn!(error = %e, "the sign-in could not be saved to the keyring; it is cached in memory only");
        }
        if !client.holds_pin() {
            held.logins.retain(|l| {
                !(l.signer == signer
                    && l.settings == settings
                    && l.serves(Some(&endpoint), Some(&username)))
            });
            held.logins.push(HeldLogin {
                signer,
                endpoint,
                username,
                settings,
                client,
            });
        }
    }

    /// The login held for signing in to `endpoint` as `username` with the certificate with this
    /// thumbprint and these settings. A login made for another endpoint or user never serves.
    pub fn login_for(
        &self,
        endpoint: &str,
        username: &str,
        certificate_sha256: &str,
        settings: &ClientSettings,
    ) -> Option<Arc<PreparedClient>> {
        self.held()
            .logins
            .iter()
            .find(|l| {
                l.signer.certificate_sha256 == certificate_sha256
                    && &l.settings == settings
                    && l.serves(Some(endpoint), Some(username))
            })
            .map(|l| Arc::clone(&l.client))
    }

    /// Closes the held logins of `signer`'s certificate, after a sign-in with one failed.
    pub fn release_login(&self, signer: &Signer) {
        self.drop_where("signInFailed", false, |_| None, |l| &l.signer == signer);
    }

    /// A card left `reader`: its sign-ins and logins go at once.
    pub fn card_removed(&self, reader: &str) {
        self.drop_where(
            "cardRemoved",
            true,
            |c| Some(c.drop_reader(reader)),
            |l| l.signer.was_in(reader),
        );
    }

    /// A scan saw `tokens`: sign-ins and logins of tokens not among them go.
    pub fn tokens_seen(&self, tokens: &[TokenReport]) {
        self.drop_where(
            "tokenGone",
            true,
            |c| Some(c.drop_absent(tokens)),
            |l| !tokens.iter().any(|t| l.signer.is_on(t)),
        );
    }

    /// Drops the sign-ins and closes the logins held for `endpoint` and `username` (each if
    /// given).
    pub fn forget(&self, endpoint: Option<&str>, username: Option<&str>) -> DropCount {
        self.drop_where(
            "forgotten",
            false,
            |c| Some(c.forget(endpoint, username)),
            |l| l.serves(endpoint, username),
        )
    }

    /// Drops every sign-in and closes every held login.
    pub fn lock(&self) -> DropCount {
        self.drop_where("locked", false, |c| Some(c.lock()), |_| true)
    }

    /// Drops the sign-ins `drop_sign_ins` removes and the logins `drops_login` names, and
    /// announces both; with `new_generation`, sign-ins still under way are not kept.
    fn drop_where(
        &self,
        reason: &str,
        new_generation: bool,
        drop_sign_ins: impl FnOnce(&mut SignInCache) -> Option<Removal>,
        drops_login: impl Fn(&HeldLogin) -> bool,
    ) -> DropCount {
        let mut held = self.held();
        if new_generation {
            held.generation += 1;
        }
        let removal = drop_sign_ins(&mut held.cache);
        let (closed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut held.logins)
            .into_iter()
            .partition(|l| drops_login(l));
        held.logins = kept;
        drop(held);
        let mut count =
            removal.map_or_else(DropCount::default, |removal| self.announce(reason, removal));
        count.logins = closed.len();
        for login in &closed {
            self.emit(Event::LoginClosed {
                endpoint: &login.endpoint,
                token_label: &login.signer.token_label,
                reader: &login.signer.reader,
                reason,
            });
        }
        // Dropping the clients closes their PKCS#11 sessions, which logs the tokens out.
        drop(closed);
        count
    }

    /// Announces the dropped sign-ins of `removal`, and counts them.
    fn announce(&self, reason: &str, removal: Removal) -> DropCount {
        for d in &removal.dropped {
            tracing::info!(endpoint = %d.endpoint, username = %d.username, reason, "dropped a cached sign-in");
            self.emit(Event::SignInDropped {
                endpoint: &d.endpoint,
                username: &d.username,
                token_label: &d.signer.token_label,
                reason: d.reason.as_str(),
            });
        }
        let store_error = removal.saved.err().map(|e| {
            tracing::warn!(error = %e, "the keyring could not be updated after dropping sign-ins");
            e.to_string()
        });
        DropCount {
            sign_ins: removal.dropped.len(),
            logins: 0,
            store_error,
        }
    }

    fn emit(&self, event: Event<'_>) {
        let _ = self.events.send(event.line());
    }
}
