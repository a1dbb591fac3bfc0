//! `certauth agent`: reads the configuration, opens the sign-in cache, starts the runtime and the
//! card watcher, listens, and hands the connections to the library's agent
//! ([`certauth::agent`]).

use std::sync::Arc;

use anyhow::Context;
use certauth::agent::cache::SignInCache;
use certauth::agent::socket::ListenError;
use certauth::agent::{Agent, AgentSettings};

use crate::cli::{AgentArgs, SessionStoreChoice};

/// The longest a sign-in is cached, in seconds, unless configured: 12 hours.
const DEFAULT_MAX_CACHE_LIFETIME: u32 = 43_200;

pub fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let (config, config_file) = certauth::config::load().context("cannot use the config file")?;
    let max_cache_lifetime = args
        .max_cache_lifetime
        .or(config.max_cache_lifetime.map(std::num::NonZeroU32::get))
        .unwrap_or(DEFAULT_MAX_CACHE_LIFETIME);
    let settings = AgentSettings {
        lock_on_removal: config.lock_on_removal && !args.no_lock_on_removal,
        max_cache_lifetime: time::Duration::seconds(i64::from(max_cache_lifetime)),
    };
    let _hosts = args
        .host_modules
        .then(certauth::token::host::enable_private)
        .and_then(|hosting| {
            hosting
                .map_err(|e| {
                    eprintln!("certauth agent: {e}; the modules are loaded into the agent")
                })
                .ok()
        });
    let modules = crate::tokens::load_with(&args.modules, config, config_file);
    let cache = open_cache(args.session_store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listening =
            certauth::agent::socket::listen(args.socket.as_deref()).map_err(|e| match e {
                ListenError::NoRuntimeDir => anyhow::anyhow!("{e}; give one with --socket"),
                ListenError::NotASocket { .. } => {
                    anyhow::anyhow!("{e}. Choose another --socket path, or move it away")
                }
                e => e.into(),
            })?;
        let agent = Agent::new(
            modules,
            cache,
            settings,
            listening.path.clone(),
            listening.owner,
        )
        .context("cannot start the agent's control thread")?;
        let watching = Arc::clone(&agent);
        std::thread::Builder::new()
            .name("pcsc-watch".into())
            .spawn(move || watch_or_exit(&watching))
            .context("cannot start watching readers")?;
        println!("certauth agent listening on {}", listening.path.display());
        let served = certauth::agent::serve(listening.listener, agent).await;
        if !listening.activated {
            let _ = std::fs::remove_file(&listening.path);
        }
        certauth::token::host::stop_all();
        Ok(served?)
    })
}

/// The sign-in cache on the OS keyring, or in memory only when there is none (said once, here).
fn open_cache(choice: SessionStoreChoice) -> SignInCache {
    let (cache, notes) = SignInCache::open_for_agent(choice == SessionStoreChoice::Memory);
    for note in notes {
        eprintln!("certauth agent: {note}");
    }
    cache
}

/// Watches the cards for as long as the agent runs. Should watching ever fail (a panic in a
/// scan), the agent drops everything it holds and exits rather than keep sign-ins no one
/// watches over.
fn watch_or_exit(agent: &Agent) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| agent.watch_cards()));
    agent.lock();
    eprintln!("certauth agent: watching the readers failed; stopping");
    std::process::exit(1);
}
