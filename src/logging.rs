//! Log setup shared by both binaries: `tracing` to stderr, quiet by default, `-v` for more.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity` counts `-v` flags; `RUST_LOG` overrides it.
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // cryptoki logs every mechanism it has no name for as an error; tokens list such mechanisms
    // as a matter of course, so that is noise.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},cryptoki::mechanism=off")));
    // A second init (in tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
