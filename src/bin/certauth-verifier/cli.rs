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

    /// Decide offline whether a certificate would sign a user in, and how strongly, under a CBA
    /// policy: for testing a policy before rolling it out. Exit codes: 0 signed in, 3 refused,
    /// 1 bad input.
    Eval(EvalArgs),
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The x509Certificate method configuration, as Microsoft Graph returns it (JSON).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// The trusted CAs: a Graph JSON list of certificateAuthorityDetail, a PEM/DER certificate,
    /// or a directory of them.
    #[arg(long, value_name = "DIR|FILE")]
    pub cas: PathBuf,

    /// The users and groups: JSON with "users" and "groups" in Graph's shapes.
    #[arg(long, value_name = "FILE")]
    pub users: PathBuf,

    /// The user's certificate (PEM or DER).
    #[arg(long, value_name = "PEM")]
    pub cert: PathBuf,

    /// The username typed at sign-in.
    #[arg(long, value_name = "UPN")]
    pub username: String,

    /// A CRL (base or delta, DER or PEM) to use instead of fetching its CA's URL (repeatable).
    #[arg(long = "crl", value_name = "FILE")]
    pub crls: Vec<PathBuf>,

    /// Never fetch CRLs over the network: a CA with a CRL URL and no --crl file fails closed.
    #[arg(long)]
    pub offline: bool,

    /// Decide as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,

    /// certificateUserIds <SR> serials in big-endian order (the default is little-endian, as
    /// Entra's documentation prescribes).
    #[arg(long)]
    pub serial_big_endian: bool,

    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
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
