//! The two programs under test, and one command builder for each: every test that runs
//! `certauth` or `certauth-verifier` starts from these, so the machine's own state (a user's
//! PKCS#11 module, agent, proxy or log level) is kept out in one place.

use std::process::Command;

/// The `certauth` binary `cargo test` built, for tests that run it through another program
/// (`nsenter`, `unshare`, tmux, a shell).
pub const CERTAUTH: &str = env!("CARGO_BIN_EXE_certauth");

/// The `certauth-verifier` binary `cargo test` built.
pub const VERIFIER: &str = env!("CARGO_BIN_EXE_certauth-verifier");

/// `certauth` with nothing from the machine: see [`isolate`].
pub fn certauth() -> Command {
    let mut command = Command::new(CERTAUTH);
    isolate(&mut command);
    command
}

/// `certauth-verifier` with no log filter from the environment.
pub fn verifier() -> Command {
    let mut command = Command::new(VERIFIER);
    command.env_remove("RUST_LOG");
    command
}

/// Keeps the machine's state out of `command` (and whatever it starts): no PKCS#11 module from
/// the environment or the p11-kit registry's extra directories, no log level, no running agent of
/// the machine's user to find, and no proxy (with one, the server is not checked before the PIN).
pub fn isolate(command: &mut Command) -> &mut Command {
    command
        .env_remove("CERTAUTH_PKCS11_MODULE")
        .env_remove("CERTAUTH_P11KIT_MODULE_DIRS")
        .env_remove("RUST_LOG")
        .env_remove("CERTAUTH_AGENT_SOCKET")
        .env_remove("XDG_RUNTIME_DIR");
    for proxy in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
        command.env_remove(proxy);
    }
    command
}
