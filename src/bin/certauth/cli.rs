//! Command-line arguments of the `certauth` agent.

use std::path::PathBuf;

use certauth::picker::choice::CertChoice;
use certauth::pin::PinSource;
use clap::{Parser, Subcommand};

/// Sign in with the certificate on your smartcard or HSM token.
#[derive(Debug, Parser)]
#[command(name = "certauth", version)]
pub struct Cli {
    #[command(flatten)]
    pub verbosity: certauth::logging::Verbosity,

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

    /// Sign in to a certauth endpoint with a certificate on your token (mutual TLS; the key never
    /// leaves the token). Exit codes: 0 signed in, 3 refused by the server, 4 no usable
    /// certificate, 5 PIN problem, 6 network or TLS error, 1 anything else.
    SignIn(SignInArgs),

    /// Send any HTTPS request with a certificate on your token as the TLS client identity, like
    /// curl with a PKCS#11 client certificate. Prints the response body.
    Request(RequestArgs),

    /// Forget the certificate remembered for ENDPOINT (or for every endpoint), and, when the agent
    /// runs, its cached sign-ins there.
    Forget(ForgetArgs),

    /// Tell the running agent to drop every cached sign-in and log out of every token.
    Lock(LockArgs),

    /// Provision the Woodgrove demo tenant onto SoftHSM tokens in a fresh directory, publish its
    /// CRLs on loopback, check them, and show what was made.
    Demo(DemoArgs),

    /// Provision a fixture spec onto SoftHSM tokens in DIR. Running it again on the same
    /// directory reports "already provisioned".
    Fixture(FixtureArgs),

    /// Run the agent for your session: serve the local API (docs/agent-api.md) on a Unix socket
    /// that only you can use, until stopped.
    Agent(AgentArgs),

    /// Print the man page or a shell completion script (for packagers).
    #[command(hide = true)]
    Generate(certauth::program_docs::GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub source: FixtureSource,

    /// Provision into DIR (new or empty) instead of a fresh temporary directory; DIR is kept.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the temporary directory when the demo ends (with --serve, it is removed on Ctrl-C).
    #[arg(long)]
    pub keep: bool,

    /// After the demo, keep the tokens, the CRL server and a verifier up and print sign-in lines
    /// for Alice and Bob; Ctrl-C stops both servers and removes the temporary directory.
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
pub struct AgentArgs {
    #[command(flatten)]
    pub modules: ModuleArgs,

    /// The socket to serve on (default: certauth/agent.sock in $XDG_RUNTIME_DIR). A socket passed
    /// by systemd (socket activation) is used instead when there is one.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Where cached sign-ins are kept: the OS keyring (falling back to memory when there is none),
    /// or memory only.
    #[arg(long, value_enum, default_value_t = SessionStoreChoice::Keyring)]
    pub session_store: SessionStoreChoice,

    /// Keep a card's cached sign-ins and logins when it is removed (the config file's
    /// `lock_on_removal = false` does the same).
    #[arg(long)]
    pub no_lock_on_removal: bool,

    /// Host each PKCS#11 module in a `p11-kit server` of its own, where a module that hangs or
    /// crashes is killed and restarted, instead of loading it into the agent.
    #[arg(long)]
    pub host_modules: bool,

    /// The longest a sign-in is cached, in seconds, whatever expiry the server's answer claims
    /// (default: the config file's `max_cache_lifetime`, else 43200, 12 hours).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_cache_lifetime: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SessionStoreChoice {
    Keyring,
    Memory,
}

/// Where a running agent is reached.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentSocketArgs {
    /// The agent's socket (default: certauth/agent.sock in $XDG_RUNTIME_DIR).
    #[arg(long, value_name = "PATH", env = "CERTAUTH_AGENT_SOCKET")]
    pub agent_socket: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub agent: AgentSocketArgs,
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

    /// Print JSON (schema in docs/list-json.md) instead of a table. When the agent runs (and no
    /// --module, --no-p11-kit, --token or --pin is given) the agent's scan is printed.
    #[arg(long)]
    pub json: bool,

    /// List here even when the agent runs.
    #[arg(long)]
    pub no_agent: bool,

    #[command(flatten)]
    pub agent: AgentSocketArgs,
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

    /// Watch here even when the agent runs.
    #[arg(long)]
    pub no_agent: bool,

    #[command(flatten)]
    pub agent: AgentSocketArgs,
}

/// Which certificate to use and how to unlock it: shared by `sign-in` and `request`.
#[derive(Debug, clap::Args)]
pub struct IdentityArgs {
    #[command(flatten)]
    pub modules: ModuleArgs,

    /// The certificate to use: a pkcs11: URI or a SHA-256 thumbprint (see `certauth list`).
    #[arg(long, value_name = "URI|SHA256")]
    pub cert: Option<CertChoice>,

    /// Where the PIN comes from: prompt (the default on a terminal), pinentry[:PROGRAM],
    /// env:VARIABLE or file:PATH. Never the command line itself.
    #[arg(long, value_name = "SOURCE")]
    pub pin: Option<PinSource>,

    /// Send the PIN even when the token says a wrong one would lock it.
    #[arg(long)]
    pub allow_final_try: bool,

    /// Show the picker even when only one certificate can sign in.
    #[arg(long)]
    pub always_pick: bool,

    /// Trust server certificates issued by the CAs in this PEM file instead of the system's roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// PEM file with the intermediate (and root) CAs of your certificate, so the chain can be sent
    /// and matched against the CAs the server accepts (repeatable).
    #[arg(long = "chain", value_name = "PEM")]
    pub chain_files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SignInArgs {
    /// The certauth endpoint, e.g. https://certauth.example.com (the sign-in goes to
    /// /certauth/signin unless the URL has a path).
    pub url: reqwest::Url,

    /// Your user principal name.
    #[arg(long, value_name = "UPN")]
    pub username: String,

    #[command(flatten)]
    pub identity: IdentityArgs,

    /// Do not remember the certificate chosen for this endpoint and username.
    #[arg(long)]
    pub no_remember: bool,

    /// Print the server's answer as JSON.
    #[arg(long)]
    pub json: bool,

    /// Sign in through the agent, and fail if none is running. Without it, a running agent of
    /// yours (`certauth agent`) is used anyway unless --no-agent, --module or --no-p11-kit is
    /// given: it answers from a cached sign-in that is still valid, or signs in with its login,
    /// asking here for what it needs.
    #[arg(long, conflicts_with = "no_agent")]
    pub via_agent: bool,

    /// Sign in here even when the agent runs.
    #[arg(long)]
    pub no_agent: bool,

    /// Through the agent: sign in afresh even if it has a cached sign-in.
    #[arg(long, conflicts_with = "no_agent")]
    pub fresh: bool,

    #[command(flatten)]
    pub agent: AgentSocketArgs,
}

#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    pub url: reqwest::Url,

    /// The HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: reqwest::Method,

    /// The request body; with @FILE, the file's contents.
    #[arg(long, short = 'd')]
    pub data: Option<String>,

    /// A header, "Name: value" (repeatable).
    #[arg(long, short = 'H', value_name = "HEADER")]
    pub header: Vec<String>,

    /// Exit 22 when the server answers with an HTTP error status, like curl --fail.
    #[arg(long, short = 'f')]
    pub fail: bool,

    /// Follow redirects, like curl -L, but only within the URL's origin (scheme, host, port) and
    /// never to http:; any other redirect is an error (exit 6). Without it no redirect is followed.
    #[arg(long = "location", short = 'L')]
    pub follow_redirects: bool,

    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// The endpoint URL; without it, every remembered choice is forgotten.
    pub endpoint: Option<reqwest::Url>,

    #[command(flatten)]
    pub agent: AgentSocketArgs,
}
