//! PKCS#11, and the only module that uses `cryptoki`: which modules to load (p11-kit registry,
//! config, environment, command line), loading each in isolation, the inventory of tokens,
//! certificates and keys (and the live one the agent keeps), sessions and the one lockout-safe login, signing mechanisms, putting
//! objects on a token, and [`error::TokenError`] for any call that failed on a token.
//!
//! Tokens are identified by module, serial and label, never by slot id: slot ids change when a
//! module re-initialises. Nothing here talks to the user: PINs come through
//! [`login::PinPrompt`].

pub mod discovery;
pub mod encoding;
pub mod error;
#[cfg(unix)]
pub mod host;
pub mod info;
pub mod inventory;
pub mod live;
pub mod loading;
pub mod login;
pub mod module;
pub mod objects;
pub mod pin_length;
pub mod provision;
pub mod session;
pub mod sign;
pub mod softhsm_conf;
pub mod uri;

/// Marks a call into the module at `module` for the watchdog when it is hosted out of process
/// ([`host::call`]); nothing where modules are never hosted.
#[cfg(unix)]
pub(crate) fn watched_call(module: &std::path::Path) -> Option<host::CallGuard> {
    host::call(module)
}

/// Modules are never hosted here: nothing to watch.
#[cfg(not(unix))]
pub(crate) fn watched_call(_module: &std::path::Path) -> Option<()> {
    None
}
