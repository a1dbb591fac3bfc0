//! The long-running agent for the user's session. It holds the PKCS#11 modules loaded once,
//! watches readers and cards and keeps a live inventory of the tokens ([`crate::token::live`]), keeps the
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
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Instant;

    use tokio::sync::{broadcast, Semaphore};

    use super::cache::SignInCache;
    use super::control::Control;
    use super::sessions::Sessions;
    use crate::reader::{ReaderEvent, Watcher};
    use crate::token::inventory::{ModuleReport, TokenReport};
    use crate::token::live::{LiveInventory, Scope};
    use crate::token::module::LoadedModule;

    /// How often the tokens are looked at when no card event comes.
    pub const TOKEN_POLL: std::time::Duration = std::time::Duration::from_secs(2);

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
        /// The module reports and the live inventory; holding this lock is a scan's turn (scans
        /// never overlap).
        inventory: Mutex<Held>,
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
        /// Whether the watcher has looked at the tokens once.
        first_look: Latch,
    }

    /// A flag set once, that threads can wait for.
    #[derive(Default)]
    struct Latch {
        set: Mutex<bool>,
        changed: Condvar,
    }

    impl Latch {
        fn done(&self) {
            *self.set.lock().unwrap_or_else(|p| p.into_inner()) = true;
            self.changed.notify_all();
        }

        fn wait(&self, longest: std::time::Duration) {
            let set = self.set.lock().unwrap_or_else(|p| p.into_inner());
            let _ = self.changed.wait_timeout_while(set, longest, |set| !*set);
        }
    }

    /// What the agent knows of its modules and tokens between scans.
    struct Held {
        reports: Vec<ModuleReport>,
        live: LiveInventory,
        /// A change the watcher has not yet acted on.
        unseen_change: Change,
    }

    /// What changed among the tokens.
    #[derive(Debug, Clone, Copy, Default)]
    struct Change {
        /// A token came, went or changed.
        changed: bool,
        /// A token went.
        gone: bool,
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
                inventory: Mutex::new(Held {
                    reports,
                    live: LiveInventory::new(),
                    unseen_change: Change::default(),
                }),
                sessions: Sessions::new(cache, events.clone()),
                control: Control::start()?,
                sign_ins: Arc::new(Semaphore::new(super::server::MAX_SIGN_INS)),
                socket,
                owner,
                started: Instant::now(),
                events,
                settings,
                first_look: Latch::default(),
            });
            if settings.lock_on_removal && !agent.sessions.is_empty() {
                agent.sessions.tokens_seen(&agent.scan().tokens);
            }
            Ok(agent)
        }

        /// The tokens as they are now, taking its turn with other scans: the live inventory
        /// reads again only the tokens that changed since it last looked. (A scan that panicked
        /// left the inventory as it was before it, so the next one goes on from there.)
        pub(super) fn scan(&self) -> Scan {
            self.refresh(Scope::Every, false).0
        }

        /// As [`Self::scan`]; with `for_watcher`, also whether any token came, went or changed
        /// since the watcher last asked (whoever's refresh saw it).
        fn refresh(&self, scope: Scope, for_watcher: bool) -> (Scan, Change) {
            let mut held = self
                .inventory
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let Held {
                reports,
                live,
                unseen_change,
            } = &mut *held;
            let now = time::OffsetDateTime::now_utc();
            let refreshed = live.refresh(&self.modules, reports, now, scope);
            tracing::debug!(
                tokens = refreshed.tokens.len(),
                read = refreshed.read,
                "tokens refreshed"
            );
            let scan = Scan {
                reports: reports.clone(),
                tokens: refreshed.tokens,
                now,
            };
            unseen_change.changed |= refreshed.changed;
            unseen_change.gone |= refreshed.gone > 0;
            let change = if for_watcher {
                std::mem::take(unseen_change)
            } else {
                Change::default()
            };
            (scan, change)
        }

        /// Waits (up to `longest`) until the watcher has looked at the tokens once, so that what
        /// is said of them reflects the agent's first scan.
        pub(super) fn await_first_look(&self, longest: std::time::Duration) {
            self.first_look.wait(longest);
        }

        /// Sends an event line to every subscriber.
        pub(super) fn emit(&self, line: String) {
            let _ = self.events.send(line);
        }

        /// Drops every cached sign-in and closes every held login.
        pub fn lock(&self) {
            self.sessions.lock();
        }

        /// Watches readers and cards for as long as the agent runs, and looks at the tokens: all
        /// of them first and after each card event, and those in fixed slots every
        /// [`TOKEN_POLL`] (SoftHSM's, say, which change with no card event; a card is not
        /// touched between its events). Every reader event goes to the subscribers, and a tokens
        /// event when they changed; a removed card's sign-ins and logins are dropped right after
        /// its event. Returns only by panicking: whoever runs it must then [`Self::lock`] rather
        /// than keep sign-ins no one watches over.
        pub fn watch_cards(&self) {
            let mut watcher = Watcher::new();
            let mut first = true;
            let mut looked = Instant::now();
            loop {
                // The first poll tells the readers and cards already there.
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
                if first || events.iter().any(ReaderEvent::changes_cards) {
                    looked = Instant::now();
                    self.look_at_tokens(Scope::Every);
                    if std::mem::take(&mut first) {
                        self.first_look.done();
                    }
                } else if looked.elapsed() >= TOKEN_POLL {
                    looked = Instant::now();
                    self.look_at_tokens(Scope::Fixed);
                }
            }
        }

        /// Refreshes the inventory; when the tokens changed, tells the subscribers, and when a
        /// token went, drops its sessions (with lock-on-removal).
        fn look_at_tokens(&self, scope: Scope) {
            let (scan, change) = self.refresh(scope, true);
            if change.gone && self.settings.lock_on_removal {
                self.sessions.tokens_seen(&scan.tokens);
            }
            if change.changed {
                self.emit(super::protocol::line_of(&crate::listing::tokens_json(
                    &scan.tokens,
                )));
            }
        }
    }
}
