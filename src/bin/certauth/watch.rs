//! `certauth watch`: the options into the library's watcher ([`certauth::listing::watch`]).

use certauth::listing::watch::{watch, WatchOptions};

use crate::cli::WatchArgs;

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let modules = crate::tokens::load(&args.modules)?;
    let options = WatchOptions {
        json: args.json,
        events: args.events,
    };
    Ok(watch(modules, options, &mut std::io::stdout().lock())?)
}
