//! Loading the PKCS#11 modules a command should see: the p11-kit registry, the config file,
//! `CERTAUTH_PKCS11_MODULE` and the modules named on the command line, each given
//! `CERTAUTH_MODULE_TIMEOUT_MS` (10 s by default) to initialise.

use std::path::PathBuf;

use super::discovery::{self, DiscoveryOptions};
use super::inventory::{self, ModuleReport};
use super::module::{self, LoadedModule};
use crate::config::Config;

/// Every module that loaded, and a report on every module tried. `named` are the modules the
/// user named; `no_registry` skips p11-kit's.
pub fn load_configured(
    named: &[PathBuf],
    no_registry: bool,
    config: Config,
    config_file: Option<PathBuf>,
) -> (Vec<LoadedModule>, Vec<ModuleReport>) {
    let options = DiscoveryOptions {
        registry_dirs: None,
        no_registry,
        config_modules: config.modules,
        config_file,
        command_line: named.to_vec(),
    };
    let discovered = discovery::discover(&options);
    for skipped in &discovered.skipped {
        tracing::info!(file = %skipped.file.display(), reason = %skipped.reason, "p11-kit module skipped");
    }
    inventory::load_modules(&discovered, module::deadline_from_env())
}
