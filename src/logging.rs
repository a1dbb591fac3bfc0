//! Log setup shared by both binaries: `tracing` to stderr, quiet by default, `-v` for more.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The `-v` flag both programs share: how much to log on stderr.
#[derive(Debug, clap::Args)]
pub struct Verbosity {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Installs the global subscriber. `verbosity` counts `-v` flags; `RUST_LOG` overrides it.
pub fn init(verbosity: u8) {
    init_with(verbosity, Format::Text);
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// As [`init`], choosing the format.
pub fn init_with(verbosity: u8, format: Format) {
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second init (in tests) keeps the first subscriber.
    let _ = match format {
        Format::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        Format::Json => builder.json().try_init(),
    };
}
