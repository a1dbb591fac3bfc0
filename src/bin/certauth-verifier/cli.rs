//! Command-line arguments of `certauth-verifier`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The certauth reference verifier: decides, as Microsoft Entra certificate-based authentication
/// would, whether a certificate signs a user in.
#[derive(Debug, Parser)]
#[command(name = "certauth-verifier", version)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: crate::verbosity::Verbosity,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a CRL (DER or PEM): issuer, CRL number, delta indicator, dates and revoked serials.
    /// With --ca, also check that the CA issued and signed it.
    Crl(CrlArgs),
}

#[derive(Debug, clap::Args)]
pub struct CrlArgs {
    /// CRL files to show.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The issuing CA certificate (DER or PEM); verifies each CRL's issuer, AKI and signature.
    #[arg(long, value_name = "CERT")]
    pub ca: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
