//! What the agent holds between requests: cached sign-ins (persisted through the keyring) and
//! token logins kept open for the next sign-in with the same certificate. Everything dropped is
//! announced on the event stream (names only, never a token).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use certauth::signin::cache::{CachedSignIn, Dropped, SignInCache, Signer};
use certauth::signin::PreparedClient;
use certauth::token::inventory::TokenReport;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// The settings a login's HTTPS client was built with; a held login serves only the same ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub ca_file: Option<PathBuf>,
    pub chain_files: Vec<PathBuf>,
}

/// A logged-in token session, ready to sign again without a PIN.
struct HeldLogin {
    signer: Signer,
    settings: ClientSettings,
    client: Arc<PreparedClient>,
}

struct Held {
    cache: SignInCache,
    logins: Vec<HeldLogin>,
}

pub struct Sessions {
    held: Mutex<Held>,
    events: broadcast::Sender<String>,
}

/// How many of each were dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct DropCount {
    pub sign_ins: usize,
    pub logins: usize,
}

impl Sessions {
    pub fn new(cache: SignInCache, events: broadcast::Sender<String>) -> Self {
        Self {
            held: Mutex::new(Held {
                cache,
                logins: Vec::new(),
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

    /// The cached sign-in for `endpoint` and `username` made with a certificate `accepts` allows.
    pub fn cached(
        &self,
        endpoint: &str,
        username: &str,
        accepts: impl Fn(&Signer) -> bool,
    ) -> Option<CachedSignIn> {
        let mut held = self.held();
        match held
            .cache
            .get(endpoint, username, time::OffsetDateTime::now_utc(), accepts)
        {
            Ok((found, dropped)) => {
                self.announce_sign_ins(&dropped);
                found
            }
            Err(e) => {
                tracing::warn!(error = %e, "the sign-in cache could not be updated");
                None
            }
        }
    }

    /// Caches a sign-in (a keyring failure is logged; the entry stays in memory).
    pub fn cache(&self, entry: CachedSignIn) {
        if let Err(e) = self.held().cache.insert(entry) {
            tracing::warn!(error = %e, "the sign-in could not be saved to the keyring; it is cached in memory only");
        }
    }

    /// The held login for the certificate with this thumbprint and these settings.
    pub fn login_for(
        &self,
        certificate_sha256: &str,
        settings: &ClientSettings,
    ) -> Option<Arc<PreparedClient>> {
        self.held()
            .logins
            .iter()
            .find(|l| l.signer.certificate_sha256 == certificate_sha256 && &l.settings == settings)
            .map(|l| Arc::clone(&l.client))
    }

    /// Keeps a login open for later sign-ins, unless its client holds a PIN in memory.
    pub fn hold_login(
        &self,
        signer: Signer,
        settings: ClientSettings,
        client: Arc<PreparedClient>,
    ) {
        if client.holds_pin() {
            return;
        }
        let mut held = self.held();
        held.logins
            .retain(|l| !(l.signer == signer && l.settings == settings));
        held.logins.push(HeldLogin {
            signer,
            settings,
            client,
        });
    }

    /// Closes the held login `signer` used, after a sign-in with it failed.
    pub fn release_login(&self, signer: &Signer) {
        self.drop_where("signInFailed", |_| Ok(Vec::new()), |s| s == signer);
    }

    /// A card left `reader`: its sign-ins and logins go at once.
    pub fn card_removed(&self, reader: &str) {
        self.drop_where(
            "cardRemoved",
            |c| c.drop_reader(reader),
            |s| s.reader == reader,
        );
    }

    /// A scan saw `tokens`: sign-ins and logins of tokens not among them go.
    pub fn tokens_seen(&self, tokens: &[TokenReport]) {
        self.drop_where(
            "tokenGone",
            |c| c.drop_absent(tokens),
            |s| !tokens.iter().any(|t| s.is_on(t)),
        );
    }

    /// Drops the sign-ins for `endpoint` and `username` (each if given).
    pub fn forget(&self, endpoint: Option<&str>, username: Option<&str>) -> DropCount {
        self.drop_where("forgotten", |c| c.forget(endpoint, username), |_| false)
    }

    /// Drops every sign-in and closes every held login.
    pub fn lock(&self) -> DropCount {
        self.drop_where("locked", SignInCache::lock, |_| true)
    }

    fn drop_where(
        &self,
        reason: &str,
        drop_sign_ins: impl FnOnce(
            &mut SignInCache,
        )
            -> Result<Vec<Dropped>, certauth::signin::secret_store::StoreError>,
        drops_login: impl Fn(&Signer) -> bool,
    ) -> DropCount {
        let mut held = self.held();
        let dropped = drop_sign_ins(&mut held.cache).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the keyring could not be updated after dropping sign-ins");
            Vec::new()
        });
        let (closed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut held.logins)
            .into_iter()
            .partition(|l| drops_login(&l.signer));
        held.logins = kept;
        drop(held);
        self.announce_sign_ins(&dropped);
        for login in &closed {
            self.emit(&json!({
                "event": "loginClosed",
                "token": login.signer.token_label,
                "reader": login.signer.reader,
                "reason": reason,
            }));
        }
        // Dropping the clients closes their PKCS#11 sessions, which logs the tokens out.
        let count = DropCount {
            sign_ins: dropped.len(),
            logins: closed.len(),
        };
        drop(closed);
        count
    }

    fn announce_sign_ins(&self, dropped: &[Dropped]) {
        for d in dropped {
            tracing::info!(endpoint = %d.endpoint, username = %d.username, reason = d.reason.as_str(), "dropped a cached sign-in");
            self.emit(&json!({
                "event": "signInDropped",
                "endpoint": d.endpoint,
                "username": d.username,
                "token": d.signer.token_label,
                "reason": d.reason.as_str(),
            }));
        }
    }

    fn emit(&self, event: &Value) {
        let _ = self.events.send(super::connection::line_of(event));
    }
}
