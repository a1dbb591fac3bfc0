//! The PKCS#11 modules a command should see, from its `--module` and `--no-p11-kit` and the
//! config file ([`certauth::token::loading`]).

use anyhow::Context;
use certauth::token::inventory::ModuleReport;
use certauth::token::loading::load_configured;
use certauth::token::module::LoadedModule;

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
    load_configured(&args.modules, args.no_p11_kit, config, config_file)
}
