//! `certauth watch`: the options into the library's watcher ([`certauth::listing::watch`]), or
//! the running agent's events when it can answer for this command.

use certauth::listing::watch::{follow, watch, WatchOptions};

use crate::cli::WatchArgs;

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let options = WatchOptions {
        json: args.json,
        events: args.events,
    };
    let out = &mut std::io::stdout().lock();
    let here = args.no_agent || !args.modules.modules.is_empty() || args.modules.no_p11_kit;
    if let Some(agent) = crate::agent_client::running(&args.agent).filter(|_| !here) {
        return Ok(follow(agent.subscribe()?, options, out)?);
    }
    Ok(watch(crate::tokens::load(&args.modules)?, options, out)?)
}
