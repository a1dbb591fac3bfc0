//! `certauth-verifier serve`: the verifier's two listeners over a state directory, with the demo
//! tenant made fresh when none is given, and the start-up banner that says where everything is.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use super::{CommandError, DATABASE};
use crate::fixtures::crl_server::CrlSite;
use crate::fixtures::spec::Spec;
use crate::fixtures::{self, Fixture, ProvisionOptions};
use crate::secret_text::SecretText;
use crate::shell_words::{shell_path, shell_word};
use crate::stop_signal::stop_signal;
use crate::verifier::graph_files::{load_directory, load_policy};
use crate::verifier::policy::CbaPolicy;
use crate::verifier::revocation::source::CrlSource;
use crate::verifier::server::admin::create_api_key;
use crate::verifier::server::settings::Settings;
use crate::verifier::server::tls::ServerIdentity;
use crate::verifier::server::{self, now_text, App};
use crate::verifier::store::{Role, Store};

/// The seed's Step 5 policy, the demo tenant's default.
const STEP5_POLICY: &str = include_str!("../../../softhsm-fixtures/policy-step5.json");

/// Where `serve` keeps its state, what it serves, and where it listens.
#[derive(Debug)]
pub struct ServeOptions {
    /// `None`: the demo tenant in a temporary directory, removed at the end.
    pub state_dir: Option<PathBuf>,
    /// A fixture directory whose tenant a new state starts with and whose CRLs are published.
    pub tenant: Option<PathBuf>,
    /// The policy a new state starts with.
    pub policy: Option<PathBuf>,
    pub certauth_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// The server's certificate and key; `None`: a CA and certificate kept in the state directory.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub settings: Settings,
}

/// Serves until SIGTERM or Ctrl-C. The banner goes to `out`; a failure to write it is only
/// logged, as a server whose stdout went away keeps serving.
pub fn run(options: &ServeOptions, out: &mut impl Write) -> Result<(), CommandError> {
    super::runtime(None)?.block_on(serve(options, out))
}

/// The state directory, and the tenant's fixture if there is one.
struct State {
    dir: PathBuf,
    tenant: Option<PathBuf>,
    /// The demo tenant's spec, for the demo PINs the banner's sign-in lines carry.
    demo: Option<Spec>,
    /// Holds the demo tenant's directory until the server stops.
    _temporary: Option<tempfile::TempDir>,
}

impl State {
    fn prepare(options: &ServeOptions) -> Result<Self, CommandError> {
        let state = match &options.state_dir {
            Some(dir) => Self {
                dir: dir.clone(),
                tenant: options.tenant.clone(),
                demo: None,
                _temporary: None,
            },
            None => {
                let temporary = tempfile::Builder::new()
                    .prefix("certauth-verifier-")
                    .tempdir()?;
                let fixture_dir = temporary.path().join("woodgrove");
                let spec = Spec::embedded_woodgrove()?;
                fixtures::provision(&spec, &fixture_dir, &ProvisionOptions::default())?;
                Self {
                    dir: temporary.path().to_owned(),
                    tenant: Some(fixture_dir),
                    demo: Some(spec),
                    _temporary: Some(temporary),
                }
            }
        };
        std::fs::create_dir_all(&state.dir).map_err(CommandError::create(&state.dir))?;
        Ok(state)
    }
}

async fn serve(options: &ServeOptions, out: &mut impl Write) -> Result<(), CommandError> {
    // SIGTERM and Ctrl-C are caught from the start: one during start-up (provisioning the demo
    // tenant takes seconds) stops the server once it is up, and the temporary directory is
    // removed whole, instead of the default action killing us with it half-made.
    let shutdown = stop_signal().map_err(CommandError::StopSignals)?;
    let state = State::prepare(options)?;
    let store = Store::open(&state.dir.join(DATABASE))?;
    let identity = match &options.tls {
        Some((cert, key)) => ServerIdentity::from_files(cert, key)?,
        None => ServerIdentity::in_directory(&state.dir)?,
    };
    let (stop_crls, crls_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut source = CrlSource::http(options.settings.crl_fetch);
    let mut tenant = None;
    if let Some(dir) = &state.tenant {
        let fixture = Fixture::open(dir)?;
        source = publish_crls(&fixture, source, async {
            let _ = crls_stopped.await;
        })
        .await?;
        if store.certificate_authorities()?.is_empty() {
            import(&store, &fixture, options.policy.as_deref())?;
        }
        tenant = Some(fixture);
    } else if let Some(policy) = &options.policy {
        if store.certificate_authorities()?.is_empty() {
            store.set_policy(&read_policy(policy)?)?;
        }
    }
    let admin_key = match store.count_api_keys()? {
        0 => Some(create_api_key(
            &store,
            Role::GlobalAdministrator,
            "created at first start",
        )?),
        _ => None,
    };
    let app = Arc::new(App::new(store, identity, source, options.settings.clone())?);
    let certauth = listen(options.certauth_listen).await?;
    let admin = listen(options.admin_listen).await?;
    let banner = Banner {
        state: &state,
        certauth_url: format!("https://{}", certauth.local_addr()?),
        admin_address: admin.local_addr()?,
        own_identity: options.tls.is_none(),
        admin_key: admin_key.as_ref(),
        tenant: tenant.as_ref(),
    };
    if let Err(e) = out
        .write_all(banner.text().as_bytes())
        .and_then(|()| out.flush())
    {
        tracing::warn!(error = %e, "could not print the start-up banner");
    }
    server::serve(app, certauth, admin, shutdown).await?;
    let _ = stop_crls.send(());
    Ok(())
}

async fn listen(address: SocketAddr) -> Result<TcpListener, CommandError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| CommandError::Listen { address, source })
}

/// Publishes the tenant's CRLs on loopback at the paths their URLs name, until `stop`; returns
/// `source` sending those URLs there.
async fn publish_crls(
    fixture: &Fixture,
    mut source: CrlSource,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<CrlSource, CommandError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = listener.local_addr()?;
    let site = CrlSite::for_fixture(fixture);
    for crl in site.crls() {
        if let Some(origin) = crl.url.strip_suffix(&crl.path) {
            source = source.redirect(format!("{origin}/"), format!("http://{address}/"));
        }
    }
    tokio::spawn(site.serve(listener, stop));
    Ok(source)
}

/// What the start-up banner shows.
struct Banner<'a> {
    state: &'a State,
    certauth_url: String,
    admin_address: SocketAddr,
    /// The server's certificate comes from the CA in the state directory.
    own_identity: bool,
    /// The first start's administrator key, shown this once.
    admin_key: Option<&'a SecretText>,
    tenant: Option<&'a Fixture>,
}

impl Banner<'_> {
    fn text(&self) -> String {
        let dir = &self.state.dir;
        let server_ca = dir.join("server-ca.pem");
        let mut banner = format!(
            "certauth-verifier is serving the tenant in {}\n",
            dir.display()
        );
        banner += &format!("  certauth endpoint  {}\n", self.certauth_url);
        banner += &format!("  admin API          https://{}\n", self.admin_address);
        if self.own_identity {
            banner += &format!("  server CA          {}\n", server_ca.display());
        }
        if let Some(key) = self.admin_key {
            banner += &format!("  admin API key      {}\n", key.expose());
            banner += "                     (globalAdministrator; shown once, stored hashed)\n";
        }
        if let Some(fixture) = self.tenant {
            let demo = self.state.demo.as_ref();
            banner += &sign_in_example(fixture, demo, &self.certauth_url, &server_ca);
        }
        banner
    }
}

/// The banner's sign-in lines, to paste into another terminal: with the demo tenant, Bob's and
/// Alice's, each naming its certificate (they have several) and carrying its token's demo PIN; with
/// a tenant of the user's, one without a certificate or PIN.
fn sign_in_example(fixture: &Fixture, demo: Option<&Spec>, url: &str, server_ca: &Path) -> String {
    let certauth = certauth_program();
    let conf = shell_path(&fixture.softhsm2_conf());
    let ca = shell_path(server_ca);
    let Some(spec) = demo else {
        return format!(
            "Sign in, for example:\n  SOFTHSM2_CONF={conf} {certauth} sign-in {url} --username bob@woodgrove.com --ca-file {ca}\n"
        );
    };
    let mut text = String::from(
        "Sign in, for example (paste into another terminal; the PINs are the demo tokens' fixture PINs, not secrets):\n",
    );
    let module = shell_path(&fixture.manifest.module);
    for (username, name) in [
        ("bob@woodgrove.com", "bob-p256-rfc822"),
        ("alice@woodgrove.com", "alice-p384"),
    ] {
        let found = fixture.manifest.tokens.iter().find_map(|token| {
            let cert = token.certificates.iter().find(|c| c.name == name)?;
            Some((spec.token(&token.label)?, cert))
        });
        let Some((token, cert)) = found else {
            continue;
        };
        text += &format!(
            "  CERTAUTH_PIN={} SOFTHSM2_CONF={conf} {certauth} sign-in {url} --username {username} --cert {} --module {module} --ca-file {ca} --pin env:CERTAUTH_PIN\n",
            shell_word(token.pin.expose_secret()),
            shell_word(&cert.sha256),
        );
    }
    text
}

/// `certauth` beside this program when it is there (a build's target directory, or an install),
/// by its absolute path so the line works when pasted; otherwise as found on PATH.
fn certauth_program() -> String {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(format!("certauth{}", std::env::consts::EXE_SUFFIX)))
        .filter(|path| path.is_file())
        .map_or_else(|| "certauth".to_owned(), |path| shell_path(&path))
}

/// The demo tenant's CAs, users and groups, and the policy.
fn import(store: &Store, fixture: &Fixture, policy: Option<&Path>) -> Result<(), CommandError> {
    let cas: serde_json::Value = serde_json::from_slice(&std::fs::read(
        fixture.path(&fixture.manifest.trusted_authorities),
    )?)?;
    for ca in cas["value"].as_array().into_iter().flatten() {
        let mut ca = ca.clone();
        let id = crate::verifier::stamps::random_id();
        ca["id"] = serde_json::json!(id);
        store.add_certificate_authority(&id, &ca, &now_text())?;
    }
    let path = fixture.path("fixture.json");
    let json = std::fs::read(&path).map_err(CommandError::read(&path))?;
    let files = load_directory(&json, &path.display().to_string(), None)?;
    for note in &files.incomplete {
        tracing::warn!("{note}");
    }
    store.replace_directory(&files.directory)?;
    let policy = match policy {
        Some(path) => read_policy(path)?,
        None => load_policy(STEP5_POLICY.as_bytes(), "policy-step5.json")?,
    };
    store.set_policy(&policy)?;
    Ok(())
}

/// The x509Certificate configuration or the whole authenticationMethodsPolicy.
fn read_policy(path: &Path) -> Result<CbaPolicy, CommandError> {
    let json = std::fs::read(path).map_err(CommandError::read(path))?;
    Ok(load_policy(&json, &path.display().to_string())?)
}
