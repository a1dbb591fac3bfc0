//! Loading the PKCS#11 modules a command should see: the p11-kit registry, the config file,
//! `CERTAUTH_PKCS11_MODULE` and `--module`, each given `CERTAUTH_MODULE_TIMEOUT_MS` (10 s by
//! default) to initialise.

use anyhow::Context;
use certauth::token::discovery::{self, DiscoveryOptions};
use certauth::token::inventory::{self, ModuleReport};
use certauth::token::module::{self, LoadedModule};

use crate::cli::ModuleArgs;

/// Every module that loaded, and a report on every module tried.
pub fn load(args: &ModuleArgs) -> anyhow::Result<(Vec<LoadedModule>, Vec<ModuleReport>)> {
    let (config, config_file) = certauth::config::load().context("cannot use the config file")?;
    Ok(load_with(args, config, config_file))
}

/// As [`load`], with the config already read.
pub fn load_with(
    args: &ModuleArgs,
    config: certauth::config::Config,
    config_file: Option<std::path::PathBuf>,
) -> (Vec<LoadedModule>, Vec<ModuleReport>) {
    let options = DiscoveryOptions {
        registry_dirs: None,
        no_registry: args.no_p11_kit,
        config_modules: config.modules,
        config_file,
        command_line: args.modules.clone(),
    };
    let discovered = discovery::discover(&options);
    for skipped in &discovered.skipped {
        tracing::info!(file = %skipped.file.display(), reason = %skipped.reason, "p11-kit module skipped");
    }
    inventory::load_modules(&discovered, module::deadline_from_env())
}
