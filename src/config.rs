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
//! # The longest the agent keeps a sign-in, in seconds, whatever expiry the server claims
//! # (default 43200, 12 h; `certauth agent --max-cache-lifetime` overrides it).
//! max_cache_lifetime = 3600
//! # A pinentry program the agent asks itself when an endpoint wants confirmation.
//! confirm_program = "/usr/bin/pinentry-gnome3"
//!
//! # Endpoints that want the user's confirmation before the agent answers a sign-in from its
//! # cache or with a login it holds (`docs/agent-api.md`, "Trust model").
//! [[endpoint]]
//! url = "https://verifier.example:8443"
//! confirm = true
//! ```
//!
//! `docs/config.md` is the reference for every key; a unit test below holds it to this struct.

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
    /// The longest the agent caches a sign-in, in seconds.
    #[serde(default)]
    pub max_cache_lifetime: Option<std::num::NonZeroU32>,
    /// A pinentry program the agent runs itself to ask for confirmation.
    #[serde(default)]
    pub confirm_program: Option<PathBuf>,
    /// Settings for particular endpoints.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            modules: Vec::new(),
            auto_select_single: true,
            lock_on_removal: true,
            max_cache_lifetime: None,
            confirm_program: None,
            endpoints: Vec::new(),
        }
    }
}

/// One `[[endpoint]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// The endpoint: an https URL, of which the scheme, host and port count.
    #[serde(deserialize_with = "https_url")]
    pub url: reqwest::Url,
    /// Ask the user before the agent answers a sign-in to it without a PIN.
    #[serde(default)]
    pub confirm: bool,
}

impl Config {
    /// Whether sign-ins to `url` want confirmation: an `[[endpoint]]` with `confirm = true` has
    /// the same scheme, host and port.
    pub fn confirms(&self, url: &reqwest::Url) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.confirm && e.url.origin() == url.origin())
    }
}

fn https_url<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<reqwest::Url, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(deserializer)?;
    let url = reqwest::Url::parse(&text)
        .map_err(|e| D::Error::custom(format!("`{text}` is not a URL: {e}")))?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(D::Error::custom(format!(
            "`{text}` is not an https URL with a host"
        )));
    }
    Ok(url)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn endpoints_that_want_confirmation_match_on_scheme_host_and_port() {
        let config = parse(
            "max_cache_lifetime = 600\n[[endpoint]]\nurl = 'https://verifier.example:8443/certauth/signin'\nconfirm = true\n[[endpoint]]\nurl = 'https://other.example'\n",
            Path::new("config.toml"),
        )
        .unwrap();
        assert_eq!(
            config.max_cache_lifetime.map(std::num::NonZeroU32::get),
            Some(600)
        );
        assert!(config.confirms(&url("https://verifier.example:8443")));
        assert!(config.confirms(&url("https://VERIFIER.example:8443/elsewhere")));
        assert!(!config.confirms(&url("https://verifier.example")));
        assert!(!config.confirms(&url("https://other.example")));
        assert!(!Config::default().confirms(&url("https://verifier.example:8443")));
    }

    /// The keys `docs/config.md` must document: every field of `Config` and `EndpointConfig`, by
    /// its TOML name. The patterns are exhaustive, so a new field does not compile until it is
    /// named here, and then the test below fails until the doc has a section for it.
    fn keys(config: &Config) -> Vec<&'static str> {
        let Config {
            modules: _,
            auto_select_single: _,
            lock_on_removal: _,
            max_cache_lifetime: _,
            confirm_program: _,
            endpoints,
        } = config;
        let mut keys = vec![
            "modules",
            "auto_select_single",
            "lock_on_removal",
            "max_cache_lifetime",
            "confirm_program",
            "endpoint",
        ];
        if let Some(EndpointConfig { url: _, confirm: _ }) = endpoints.first() {
            keys.extend(["endpoint.url", "endpoint.confirm"]);
        }
        keys
    }

    const REFERENCE: &str = include_str!("../docs/config.md");

    /// The `### `key`` headings of docs/config.md, in order.
    fn documented_keys() -> Vec<&'static str> {
        REFERENCE
            .lines()
            .filter_map(|line| line.strip_prefix("### `")?.strip_suffix('`'))
            .collect()
    }

    /// The TOML block under "## Complete example".
    fn complete_example() -> &'static str {
        let after = REFERENCE
            .split("## Complete example")
            .nth(1)
            .expect("docs/config.md has a \"## Complete example\" section");
        let block = after
            .split("```toml\n")
            .nth(1)
            .expect("the complete example is a ```toml block");
        block.split("```").next().unwrap()
    }

    #[test]
    fn the_reference_documents_every_key_and_its_example_parses() {
        // Parsed by the real parser: unknown keys are errors, so a key the doc made up fails here.
        let example = parse(complete_example(), Path::new("docs/config.md")).unwrap();
        let keys = keys(&example);
        assert!(
            keys.contains(&"endpoint.url"),
            "the complete example has no [[endpoint]]"
        );
        assert_eq!(documented_keys(), keys, "docs/config.md's key sections");
        // The complete example sets every key, and not to its default.
        for key in &keys {
            let name = key.rsplit('.').next().unwrap();
            let set = if *key == "endpoint" {
                "[[endpoint]]\n".to_owned()
            } else {
                format!("\n{name} = ")
            };
            assert!(
                complete_example().contains(&set),
                "the complete example does not set {key}"
            );
        }
        let Config {
            modules,
            auto_select_single,
            lock_on_removal,
            max_cache_lifetime,
            confirm_program,
            endpoints,
        } = &example;
        let default = Config::default();
        assert!(!modules.is_empty() && modules != &default.modules);
        assert_ne!(*auto_select_single, default.auto_select_single);
        assert_ne!(*lock_on_removal, default.lock_on_removal);
        assert!(max_cache_lifetime.is_some() && confirm_program.is_some());
        assert!(endpoints.iter().any(|e| e.confirm));
        // Each key's section says its type and default.
        for (key, section) in REFERENCE.split("\n### `").skip(1).map(|s| {
            let (key, rest) = s.split_once('`').unwrap();
            (key, rest.split("\n## ").next().unwrap())
        }) {
            assert!(
                section.contains("\n- Type: ") && section.contains("\n- Default: "),
                "docs/config.md: `{key}` lacks its type or default"
            );
        }
    }

    #[test]
    fn an_endpoint_must_be_an_https_url_and_the_cache_lifetime_positive() {
        for (text, expected) in [
            (
                "[[endpoint]]\nurl = 'http://verifier.example'\n",
                "not an https URL",
            ),
            ("[[endpoint]]\nurl = 'verifier.example'\n", "is not a URL"),
            (
                "[[endpoint]]\nurl = 'https://x'\nconfim = true\n",
                "unknown field",
            ),
            ("max_cache_lifetime = 0\n", "max_cache_lifetime"),
        ] {
            let error = parse(text, Path::new("config.toml"))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
