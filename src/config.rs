//! certauth's configuration file, `config.toml` in the user's config directory (for example
//! `~/.config/certauth/config.toml`), or the file `CERTAUTH_CONFIG` names.
//!
//! ```toml
//! # Extra PKCS#11 modules, loaded after the p11-kit registry.
//! modules = ["/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"]
//! # With exactly one certificate that can sign in, use it without asking (default true).
//! auto_select_single = true
//! # The agent drops a card's cached sign-ins and logins the moment it is removed (default true).
//! lock_on_removal = true
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::file_safety::{self, Holds, OpenError, UnsafeFile};
use crate::toml_file::TomlError;

/// Names a config file to use instead of the default one.
pub const CONFIG_ENV: &str = "CERTAUTH_CONFIG";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// PKCS#11 modules to load besides those p11-kit registers.
    #[serde(default)]
    pub modules: Vec<PathBuf>,
    /// Use the only eligible certificate without showing the picker.
    #[serde(default = "yes")]
    pub auto_select_single: bool,
    /// The agent drops cached sign-ins and logins of a card when it is removed.
    #[serde(default = "yes")]
    pub lock_on_removal: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            modules: Vec::new(),
            auto_select_single: true,
            lock_on_removal: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] TomlError),
    /// Owned or writable by someone else (see [`file_safety`]).
    #[error(transparent)]
    Unsafe(#[from] UnsafeFile),
}

/// The config file certauth reads: `CERTAUTH_CONFIG`, else the user's config directory.
pub fn path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CONFIG_ENV) {
        return Some(PathBuf::from(path));
    }
    directories::ProjectDirs::from("", "", "certauth")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

/// Loads the config. A missing default file is an empty config; a missing file that
/// `CERTAUTH_CONFIG` names is an error, and so is one someone else could have written.
pub fn load() -> Result<(Config, Option<PathBuf>), ConfigError> {
    let explicit = std::env::var_os(CONFIG_ENV).is_some();
    let Some(path) = path() else {
        return Ok((Config::default(), None));
    };
    match file_safety::read_to_string(&path, Holds::Settings) {
        Ok(text) => Ok((parse(&text, &path)?, Some(path))),
        Err(e) if e.is_not_found() && !explicit => Ok((Config::default(), None)),
        Err(OpenError::Io(source)) => Err(ConfigError::Read { path, source }),
        Err(OpenError::Unsafe(refused)) => Err(refused.into()),
    }
}

/// Parses config text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    Ok(crate::toml_file::parse(text, path)?)
}
