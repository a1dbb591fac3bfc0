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

    /// Run the verifier: the certauth mutual-TLS endpoint and the Graph-shaped admin API, on
    /// loopback. With no arguments it serves the Woodgrove demo tenant from a fresh directory.
    Serve(ServeArgs),

    /// Create an admin API key for a role, in a verifier's state directory. The key is printed
    /// once and stored only hashed.
    ApiKey(ApiKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where the database and the server's TLS identity live (made on first start). Without it, a
    /// fresh temporary directory with the Woodgrove demo tenant.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A provisioned fixture directory (`certauth fixture --dir`) to import on first start: its
    /// CAs, users and groups; its CRLs are published on loopback by the verifier itself.
    #[arg(long, value_name = "DIR")]
    pub tenant: Option<PathBuf>,

    /// The method policy (Graph JSON) to import on first start; the seed's Step 5 policy by
    /// default when a tenant is imported.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Address of the certauth (mutual-TLS sign-in) listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub certauth_listen: std::net::SocketAddr,

    /// Address of the admin API listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub admin_listen: std::net::SocketAddr,

    /// The server's TLS certificate chain (PEM); with --tls-key. By default a certificate from a
    /// local CA made in the state directory (server-ca.pem, for clients' --ca-file).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log lines as JSON.
    #[arg(long)]
    pub log_json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApiKeyArgs {
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,

    /// globalAdministrator, authenticationPolicyAdministrator or reader.
    #[arg(long)]
    pub role: String,

    /// A name to recognise the key by.
    #[arg(long, default_value = "api key")]
    pub name: String,
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
