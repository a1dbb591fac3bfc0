//! The `-v` flag both binaries share.

/// How much to log on stderr.
#[derive(Debug, clap::Args)]
pub struct Verbosity {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}
