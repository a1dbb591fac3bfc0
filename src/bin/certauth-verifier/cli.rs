//! Command-line arguments of `certauth-verifier`.

use std::path::PathBuf;

use certauth::verifier::commands::duration::parse_duration;
use clap::{Parser, Subcommand};

/// The certauth reference verifier: decides, as Microsoft Entra certificate-based authentication
/// would, whether a certificate signs a user in.
#[derive(Debug, Parser)]
#[command(name = "certauth-verifier", version)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: certauth::logging::Verbosity,

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

    /// Export a verifier's tenant as a folder of Graph GET responses, or import such a folder
    /// (saved from Graph Explorer, or exported) into a state directory.
    #[command(subcommand)]
    Tenant(TenantCommand),

    /// Create an admin API key for a role, in a verifier's state directory. The key is printed
    /// once and stored only hashed.
    ApiKey(ApiKeyArgs),

    /// Print the man page or a shell completion script (for packagers).
    #[command(hide = true)]
    Generate(certauth::program_docs::GenerateArgs),
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

    /// The method policy to import on first start, as Graph returns it: the x509Certificate
    /// configuration or the whole authenticationMethodsPolicy. The seed's Step 5 policy by default
    /// when a tenant is imported.
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

    /// Open connections each listener admits; more are refused with a clear close.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// How long a client may take to send a request body (e.g. 30s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: std::time::Duration,

    /// How long one CRL download may take before the sign-ins waiting for it fail closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub crl_fetch_timeout: std::time::Duration,

    /// How long a failed CRL download is remembered: sign-ins meanwhile fail closed at once.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub crl_failure_memory: std::time::Duration,

    /// Sign-in log rows older than this many days are deleted.
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub log_retention_days: u64,

    /// The sign-in log keeps at most this many rows (the newest).
    #[arg(long, value_name = "ROWS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_max_rows: u64,
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
    /// The method policy as Microsoft Graph returns it (JSON): the x509Certificate method
    /// configuration, or the whole authenticationMethodsPolicy (its x509Certificate entry is used).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,

    /// The trusted CAs: a Graph JSON list of certificateAuthorityDetail, a PEM/DER certificate,
    /// or a directory of them.
    #[arg(long, value_name = "DIR|FILE")]
    pub cas: PathBuf,

    /// The users: Graph's list response (GET /users; with $expand=memberOf for group
    /// memberships), an array of users, or {"users": [...], "groups": [...]}.
    #[arg(long, value_name = "FILE")]
    pub users: PathBuf,

    /// The groups: Graph's list response (GET /groups; with $expand=members for members) or an
    /// array of groups. Members count as the users' memberOf.
    #[arg(long, value_name = "FILE")]
    pub groups: Option<PathBuf>,

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

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Write the tenant's policy, CAs, users and groups into OUT as the Graph GET responses an
    /// admin would save: x509Certificate.json, certificateAuthorities.json, users.json, groups.json.
    Export {
        /// The verifier's state directory.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// The folder to write (made if missing; the four files in it are overwritten).
        #[arg(value_name = "OUT")]
        out: PathBuf,
    },
    /// Read a folder of Graph GET responses (x509Certificate.json: the x509Certificate
    /// configuration or the whole authenticationMethodsPolicy; certificateAuthorities.json,
    /// users.json: list responses; groups.json, optional: a list response, with or without
    /// members) and make it the state directory's tenant. Every file is checked before anything is
    /// written; a bad file is exit 1 naming it, and the state is unchanged. Keys and the sign-in
    /// log stay.
    Import {
        /// The verifier's state directory (made if missing).
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// Replace a tenant the state directory already holds (without it, such a state is
        /// refused).
        #[arg(long)]
        replace: bool,
        /// The folder to read.
        #[arg(value_name = "IN")]
        input: PathBuf,
    },
}
