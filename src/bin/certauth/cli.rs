//! Command-line arguments of the `certauth` agent.

use std::path::PathBuf;

use certauth::pin::PinSource;
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
    /// List the certificates on your tokens that can sign in, grouped by reader and token, and
    /// say why any other certificate can't.
    List(ListArgs),

    /// Print smart card reader and card events as they happen, and the tokens after each card
    /// event, until interrupted.
    Watch(WatchArgs),

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

/// Which PKCS#11 modules to load besides the configured ones.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    /// Load this PKCS#11 module too (repeatable). `CERTAUTH_PKCS11_MODULE` and the config file's
    /// `modules` add more.
    #[arg(long = "module", value_name = "PATH")]
    pub modules: Vec<PathBuf>,

    /// Skip the p11-kit module registry.
    #[arg(long)]
    pub no_p11_kit: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub modules: ModuleArgs,

    /// Include certificates that cannot sign in, with the reasons.
    #[arg(long)]
    pub all: bool,

    /// Only the token with this label.
    #[arg(long, value_name = "LABEL")]
    pub token: Option<String>,

    /// Log in to the --token to see its private keys, with the PIN from env:VARIABLE or
    /// file:PATH. A token on its final PIN try is never tried.
    #[arg(long, value_name = "SOURCE", requires = "token")]
    pub pin: Option<PinSource>,

    /// Print JSON (schema in docs/list-json.md) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub modules: ModuleArgs,

    /// Print one JSON object per event instead of text.
    #[arg(long)]
    pub json: bool,

    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub events: Option<usize>,
}
