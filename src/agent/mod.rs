//! The long-running agent for the user's session. It holds the PKCS#11 modules loaded once,
//! watches readers and cards (scanning the tokens again after each card event), keeps the
//! session's sign-ins and logins (dropping a card's the moment it is removed), and serves the local
//! API (`docs/agent-api.md`) on a Unix socket: newline-delimited JSON requests and responses, and a
//! stream of events to subscribers, for the user who runs it and no one else.
//!
//! [`protocol`] is the wire, shared with [`client`]; [`sessions`] what is held between requests;
//! [`conversation`] a sign-in's dialogue with its client; [`server`] the connections.

pub mod cache;
pub mod client;
#[cfg(unix)]
mod confirm;
#[cfg(unix)]
mod control;
#[cfg(unix)]
mod conversation;
#[cfg(unix)]
mod lines;
pub mod protocol;
pub mod secret_store;
#[cfg(unix)]
mod server;
#[cfg(unix)]
mod sessions;
#[cfg(unix)]
mod sign_in;
#[cfg(unix)]
pub mod socket;

#[cfg(unix)]
pub use running::{Agent, AgentSettings};
#[cfg(unix)]
pub use server::serve;

#[cfg(unix)]
mod running {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use tokio::sync::{broadcast, Semaphore};

    use super::cache::SignInCache;
    use super::control::Control;
    use super::sessions::Sessions;
    use crate::reader::{ReaderEvent, Watcher};
    use crate::token::inventory::{self, ModuleReport, ScanOptions, TokenReport};
    use crate::token::module::LoadedModule;

    /// Events kept for a slow subscriber before it is told some were lost.
    const EVENT_BACKLOG: usize = 256;

    /// How the agent treats what it holds.
    #[derive(Debug, Clone, Copy)]
    pub struct AgentSettings {
        /// Whether a card's sign-ins and logins are dropped when it is removed.
        pub lock_on_removal: bool,
        /// The longest a sign-in is cached, whatever expiry the server claims.
        pub max_cache_lifetime: time::Duration,
    }

    pub struct Agent {
        /// Loaded once: a module is initialised once per process (SoftHSM crashes when two
        /// threads initialise it at once).
        pub(super) modules: Vec<LoadedModule>,
        /// The module reports; holding this lock is a scan's turn (scans never overlap).
        reports: Mutex<Vec<ModuleReport>>,
        /// Cached sign-ins and held token logins.
        pub(super) sessions: Sessions,
        /// Runs `lock` and `status`'s look at the sessions, away from the sign-ins' blocking pool.
        pub(super) control: Control,
        /// One permit per sign-in under way ([`super::server::MAX_SIGN_INS`]).
        pub(super) sign_ins: Arc<Semaphore>,
        pub(super) socket: PathBuf,
        /// The uid this agent runs as: the only peer served.
        pub(super) owner: u32,
        pub(super) started: Instant,
        /// Reader, card, token and sign-in events, as JSON lines.
        pub(super) events: broadcast::Sender<String>,
        pub(super) settings: AgentSettings,
    }

    /// What one scan saw: the module reports (updated by the scan) and the tokens.
    pub(super) struct Scan {
        pub reports: Vec<ModuleReport>,
        pub tokens: Vec<TokenReport>,
        /// The time eligibility was judged at.
        pub now: time::OffsetDateTime,
    }

    impl Agent {
        /// An agent for `owner` on `socket`, with the modules loaded and the cache opened. Sign-ins
        /// kept from an earlier run whose tokens have gone since are dropped at once (with
        /// lock-on-removal).
        pub fn new(
            (modules, reports): (Vec<LoadedModule>, Vec<ModuleReport>),
            cache: SignInCache,
            settings: AgentSettings,
            socket: PathBuf,
            owner: u32,
        ) -> std::io::Result<Arc<Self>> {
            let events = broadcast::channel(EVENT_BACKLOG).0;
            let agent = Arc::new(Self {
                modules,
                reports: Mutex::new(reports),
                sessions: Sessions::new(cache, events.clone()),
                control: Control::start()?,
                sign_ins: Arc::new(Semaphore::new(super::server::MAX_SIGN_INS)),
                socket,
                owner,
                started: Instant::now(),
                events,
                settings,
            });
            if settings.lock_on_removal && !agent.sessions.is_empty() {
                agent.sessions.tokens_seen(&agent.scan().tokens);
            }
            Ok(agent)
        }

        /// Scans every token, taking its turn with other scans. (A scan that panicked left the
        /// reports as they were before it, so the next one goes on from them.)
        pub(super) fn scan(&self) -> Scan {
            let mut reports = self
                .reports
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let options = ScanOptions::default();
            let tokens = inventory::scan(&self.modules, &mut reports, &options);
            Scan {
                reports: reports.clone(),
                tokens,
                now: options.now,
            }
        }

        /// Sends an event line to every subscriber.
        pub(super) fn emit(&self, line: String) {
            let _ = self.events.send(line);
        }

        /// Drops every cached sign-in and closes every held login.
        pub fn lock(&self) {
            self.sessions.lock();
        }

        /// Watches readers and cards for as long as the agent runs; after each card event the
        /// tokens are scanned again. Every event goes to the subscribers; a removed card's
        /// sign-ins and logins are dropped right after its event. Returns only by panicking:
        /// whoever runs it must then [`Self::lock`] rather than keep sign-ins no one watches over.
        pub fn watch_cards(&self) {
            let mut watcher = Watcher::new();
            loop {
                let events = watcher.poll(crate::listing::WATCH_POLL);
                for event in &events {
                    tracing::debug!(%event, subscribers = self.events.receiver_count(), "reader event");
                    self.emit(super::protocol::line_of(&crate::listing::event_json(event)));
                    if let ReaderEvent::CardRemoved { reader } = event {
                        if self.settings.lock_on_removal {
                            self.sessions.card_removed(reader);
                        }
                    }
                }
                if events.iter().any(ReaderEvent::changes_cards) {
                    tracing::debug!("scanning tokens after a card event");
                    let scan = self.scan();
                    tracing::debug!(tokens = scan.tokens.len(), "scanned");
                    if self.settings.lock_on_removal {
                        self.sessions.tokens_seen(&scan.tokens);
                    }
                    self.emit(super::protocol::line_of(&crate::listing::tokens_json(
                        &scan.tokens,
                    )));
                }
            }
        }
    }
}
