//! Command-line arguments of the `certauth` agent.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Sign in with the certificate on your smartcard or HSM token.
#[derive(Debug, Parser)]
#[command(name = "certauth", version)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: crate::verbosity::Verbosity,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provision the Woodgrove demo tenant onto SoftHSM tokens in a fresh directory, publish its
    /// CRLs on loopback, check them, and show what was made.
    Demo(DemoArgs),

    /// Provision a fixture spec onto SoftHSM tokens in DIR. Running it again on the same
    /// directory reports "already provisioned".
    Fixture(FixtureArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub source: FixtureSource,

    /// Provision into DIR (new or empty) instead of a fresh temporary directory; DIR is kept.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the temporary directory when the demo ends.
    #[arg(long)]
    pub keep: bool,

    /// Keep serving the CRLs until Ctrl-C.
    #[arg(long)]
    pub serve: bool,

    /// Loopback port for the CRL server (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub crl_port: u16,
}

#[derive(Debug, clap::Args)]
pub struct FixtureArgs {
    /// Directory to provision into: new, empty, or already provisioned from the same spec.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    #[command(flatten)]
    pub source: FixtureSource,

    /// Print the fixture manifest (fixture.json) instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// What to provision, and with which SoftHSM.
#[derive(Debug, clap::Args)]
pub struct FixtureSource {
    /// Fixture spec to use instead of the embedded Woodgrove spec.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// SoftHSM module to use instead of the one found in the usual places.
    #[arg(long, value_name = "PATH", env = "CERTAUTH_SOFTHSM_MODULE")]
    pub softhsm_module: Option<PathBuf>,
}
