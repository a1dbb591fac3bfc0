//! `certauth agent`: the long-running agent for the user's session. It loads the PKCS#11 modules
//! once, watches readers and cards (scanning the tokens again after each card event), keeps the
//! session's sign-ins and logins (dropping a card's the moment it is removed), and serves the local
//! API (`docs/agent-api.md`) on a Unix socket: newline-delimited JSON requests and responses, and a
//! stream of events to subscribers, for the user who runs it and no one else.

mod confirm;
mod connection;
mod control;
mod lines;
mod listen;
mod sessions;
mod signin;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use certauth::signin::cache::SignInCache;
use certauth::signin::secret_store::{self, MemoryOnly, SecretStore};
use certauth::token::inventory::{self, ModuleReport, ScanOptions, TokenReport};
use certauth::token::module::LoadedModule;
use serde_json::Value;
use tokio::sync::{broadcast, Semaphore};

use crate::cli::{AgentArgs, SessionStoreChoice};
use control::Control;
use sessions::Sessions;

/// Events kept for a slow subscriber before it is told some were lost.
const EVENT_BACKLOG: usize = 256;
/// The longest a sign-in is cached, in seconds, unless configured: 12 hours.
const DEFAULT_MAX_CACHE_LIFETIME: u32 = 43_200;

pub struct Agent {
    /// Loaded once: a module is initialised once per process (SoftHSM crashes when two threads
    /// initialise it at once).
    modules: Vec<LoadedModule>,
    /// The module reports; holding this lock is a scan's turn (scans never overlap).
    reports: Mutex<Vec<ModuleReport>>,
    /// Cached sign-ins and held token logins.
    sessions: Sessions,
    /// Runs `lock` and `status`'s look at the sessions, away from the sign-ins' blocking pool.
    control: Control,
    /// One permit per sign-in under way ([`connection::MAX_SIGN_INS`]).
    sign_ins: Arc<Semaphore>,
    socket: PathBuf,
    /// The uid this agent runs as: the only peer served.
    owner: u32,
    started: Instant,
    /// Reader, card, token and sign-in events, as JSON lines.
    events: broadcast::Sender<String>,
    /// Whether a card's sign-ins and logins are dropped when it is removed.
    lock_on_removal: bool,
    /// The longest a sign-in is cached, whatever expiry the server claims.
    max_cache_lifetime: time::Duration,
}

/// What one scan saw: the module reports (updated by the scan) and the tokens.
struct Scan {
    reports: Vec<ModuleReport>,
    tokens: Vec<TokenReport>,
    /// The time eligibility was judged at.
    now: time::OffsetDateTime,
}

impl Agent {
    /// Scans every token, taking its turn with other scans. (A scan that panicked left the
    /// reports as they were before it, so the next one goes on from them.)
    fn scan(&self) -> Scan {
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

    /// Sends an event to every subscriber.
    fn emit(&self, event: &Value) {
        let _ = self.events.send(connection::line_of(event));
    }
}

pub fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let (config, config_file) = certauth::config::load().context("cannot use the config file")?;
    let lock_on_removal = config.lock_on_removal && !args.no_lock_on_removal;
    let max_cache_lifetime = args
        .max_cache_lifetime
        .or(config.max_cache_lifetime.map(std::num::NonZeroU32::get))
        .unwrap_or(DEFAULT_MAX_CACHE_LIFETIME);
    let (modules, reports) = crate::tokens::load_with(&args.modules, config, config_file);
    let cache = open_cache(args.session_store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listening = listen::listen(args.socket.as_deref())?;
        let events = broadcast::channel(EVENT_BACKLOG).0;
        let agent = Arc::new(Agent {
            modules,
            reports: Mutex::new(reports),
            sessions: Sessions::new(cache, events.clone()),
            control: Control::start().context("cannot start the agent's control thread")?,
            sign_ins: Arc::new(Semaphore::new(connection::MAX_SIGN_INS)),
            socket: listening.path.clone(),
            owner: listening.owner,
            started: Instant::now(),
            events,
            lock_on_removal,
            max_cache_lifetime: time::Duration::seconds(i64::from(max_cache_lifetime)),
        });
        if lock_on_removal && !agent.sessions.is_empty() {
            // Sign-ins kept from an earlier run: the cards that made them may have gone since.
            agent.sessions.tokens_seen(&agent.scan().tokens);
        }
        let watching = Arc::clone(&agent);
        std::thread::Builder::new()
            .name("pcsc-watch".into())
            .spawn(move || watch_or_exit(watching))
            .context("cannot start watching readers")?;
        println!("certauth agent listening on {}", listening.path.display());
        let served = connection::serve(listening.listener, agent).await;
        if !listening.activated {
            let _ = std::fs::remove_file(&listening.path);
        }
        served
    })
}

/// The sign-in cache on the OS keyring, or in memory only when there is none (said once, here).
fn open_cache(choice: SessionStoreChoice) -> SignInCache {
    let store: Box<dyn SecretStore> = match choice {
        SessionStoreChoice::Memory => Box::new(MemoryOnly),
        SessionStoreChoice::Keyring => match secret_store::open_keyring() {
            Ok(store) => store,
            Err(e) => {
                eprintln!(
                    "certauth agent: no keyring is available ({e}); sign-ins are cached in memory only and are lost when the agent stops"
                );
                Box::new(MemoryOnly)
            }
        },
    };
    let (cache, problem) = SignInCache::open(store);
    if let Some(problem) = problem {
        eprintln!("certauth agent: {problem}");
    }
    tracing::info!(
        store = cache.store_kind(),
        cached = cache.len(),
        "sign-in cache"
    );
    cache
}

/// Watches readers and cards for as long as the agent runs; after each card event the tokens
/// are scanned again. Every event goes to the subscribers; a removed card's sign-ins and logins
/// are dropped right after its event. Should this thread ever die (a panic in a scan), the
/// agent drops everything it holds and exits rather than keep sign-ins no one watches over.
fn watch_or_exit(agent: Arc<Agent>) {
    let watching = Arc::clone(&agent);
    let watched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || watch(&watching)));
    if watched.is_err() {
        agent.sessions.lock();
        eprintln!("certauth agent: watching the readers failed; stopping");
        std::process::exit(1);
    }
}

fn watch(agent: &Agent) {
    let mut watcher = certauth::reader::Watcher::new();
    loop {
        let events = watcher.poll(crate::watch::POLL);
        for event in &events {
            tracing::debug!(%event, subscribers = agent.events.receiver_count(), "reader event");
            agent.emit(&crate::watch::event_json(event));
            if let certauth::reader::ReaderEvent::CardRemoved { reader } = event {
                if agent.lock_on_removal {
                    agent.sessions.card_removed(reader);
                }
            }
        }
        if events
            .iter()
            .any(certauth::reader::ReaderEvent::changes_cards)
        {
            tracing::debug!("scanning tokens after a card event");
            let scan = agent.scan();
            tracing::debug!(tokens = scan.tokens.len(), "scanned");
            if agent.lock_on_removal {
                agent.sessions.tokens_seen(&scan.tokens);
            }
            agent.emit(&crate::watch::tokens_json(&scan.tokens));
        }
    }
}
