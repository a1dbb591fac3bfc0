//! `certauth-verifier serve` and `certauth-verifier api-key`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use certauth::fixtures::crl_server::CrlSite;
use certauth::fixtures::spec::Spec;
use certauth::fixtures::{self, Fixture, ProvisionOptions};
use certauth::verifier::graph_files::{load_directory, load_policy};
use certauth::verifier::policy::CbaPolicy;
use certauth::verifier::revocation::source::{CrlSource, FetchLimits};
use certauth::verifier::server::admin::create_api_key;
use certauth::verifier::server::settings::Settings;
use certauth::verifier::server::tls::ServerIdentity;
use certauth::verifier::server::{self, now_text, App};
use certauth::verifier::store::{Role, Store};
use secrecy::ExposeSecret;

use crate::cli::{ApiKeyArgs, ServeArgs};
use certauth::shell_words::{shell_path, shell_word};
use certauth::stop_signal::stop_signal;

/// The seed's Step 5 policy, the demo tenant's default.
const STEP5_POLICY: &str = include_str!("../../../softhsm-fixtures/policy-step5.json");
pub const DATABASE: &str = "verifier.db";

pub fn api_key(args: &ApiKeyArgs) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).ok_or_else(|| {
        anyhow!("`{}` is not a role: use globalAdministrator, authenticationPolicyAdministrator or reader", args.role)
    })?;
    if !args.state_dir.is_dir() {
        let dir = args.state_dir.display();
        anyhow::bail!(
            "the state directory {dir} does not exist; run `certauth-verifier serve --state-dir {dir}` first (or create it)"
        );
    }
    let store = Store::open(&args.state_dir.join(DATABASE))?;
    let key = create_api_key(&store, role, &args.name)?;
    println!("{}", key.expose());
    Ok(())
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    // SIGTERM and Ctrl-C are caught from the start: one during start-up (provisioning the demo
    // tenant takes seconds) stops the server once it is up, and the temporary directory is
    // removed whole, instead of the default action killing us with it half-made.
    let shutdown = stop_signal().context("cannot listen for stop signals")?;
    // No state directory: the demo tenant, made fresh. Its spec is kept for the demo PINs that
    // the banner's sign-in lines carry.
    let temporary;
    let mut demo_spec = None;
    let (state_dir, tenant_dir): (PathBuf, Option<PathBuf>) = match &args.state_dir {
        Some(dir) => (dir.clone(), args.tenant.clone()),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("certauth-verifier-")
                .tempdir()?;
            let fixture_dir = temporary.path().join("woodgrove");
            let spec = Spec::embedded_woodgrove()?;
            fixtures::provision(&spec, &fixture_dir, &ProvisionOptions::default())?;
            demo_spec = Some(spec);
            (temporary.path().to_owned(), Some(fixture_dir))
        }
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let store = Store::open(&state_dir.join(DATABASE))?;
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => ServerIdentity::from_files(cert, key)?,
        _ => ServerIdentity::in_directory(&state_dir)?,
    };

    let (stop_crls, crls_stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = Settings {
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        body_timeout: args.body_timeout,
        crl_fetch: FetchLimits {
            timeout: args.crl_fetch_timeout,
            ..FetchLimits::default()
        },
        crl_failure_memory: args.crl_failure_memory,
        log_retention: std::time::Duration::from_secs(args.log_retention_days * 24 * 3600),
        log_max_rows: args.log_max_rows,
    };
    let mut source = CrlSource::http(settings.crl_fetch);
    let mut tenant = None;
    if let Some(dir) = &tenant_dir {
        let fixture = Fixture::open(dir)?;
        // The tenant's CRLs, published on loopback at the paths their URLs name.
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let site = CrlSite::for_fixture(&fixture);
        for crl in site.crls() {
            if let Some(origin) = crl.url.strip_suffix(&crl.path) {
                source = source.redirect(format!("{origin}/"), format!("http://{address}/"));
            }
        }
        tokio::spawn(site.serve(listener, async {
            let _ = crls_stopped.await;
        }));
        if store.certificate_authorities()?.is_empty() {
            import(&store, &fixture, args.policy.as_deref())?;
        }
        tenant = Some(fixture);
    } else if let Some(policy) = &args.policy {
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
    let app = Arc::new(App::new(store, identity, source, settings)?);
    let certauth = tokio::net::TcpListener::bind(args.certauth_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.certauth_listen))?;
    let admin = tokio::net::TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.admin_listen))?;
    let certauth_url = format!("https://{}", certauth.local_addr()?);
    let mut banner = format!(
        "certauth-verifier is serving the tenant in {}\n",
        state_dir.display()
    );
    banner += &format!("  certauth endpoint  {certauth_url}\n");
    banner += &format!("  admin API          https://{}\n", admin.local_addr()?);
    if args.tls_cert.is_none() {
        banner += &format!(
            "  server CA          {}\n",
            state_dir.join("server-ca.pem").display()
        );
    }
    if let Some(key) = &admin_key {
        banner += &format!("  admin API key      {}\n", key.expose());
        banner += "                     (globalAdministrator; shown once, stored hashed)\n";
    }
    if let Some(fixture) = &tenant {
        let server_ca = state_dir.join("server-ca.pem");
        banner += &sign_in_example(fixture, demo_spec.as_ref(), &certauth_url, &server_ca);
    }
    // A server whose stdout went away keeps serving.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(error = %e, "could not print the start-up banner");
    }
    drop(stdout);
    server::serve(app, certauth, admin, shutdown).await?;
    let _ = stop_crls.send(());
    Ok(())
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
fn import(store: &Store, fixture: &Fixture, policy: Option<&Path>) -> anyhow::Result<()> {
    let cas: serde_json::Value = serde_json::from_slice(&std::fs::read(
        fixture.path(&fixture.manifest.trusted_authorities),
    )?)?;
    for ca in cas["value"].as_array().into_iter().flatten() {
        let mut ca = ca.clone();
        let id = certauth::verifier::jwt::random_id();
        ca["id"] = serde_json::json!(id);
        store.add_certificate_authority(&id, &ca, &now_text())?;
    }
    let path = fixture.path("fixture.json");
    let json = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
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

/// `--policy`: the x509Certificate configuration or the whole authenticationMethodsPolicy.
fn read_policy(path: &Path) -> anyhow::Result<CbaPolicy> {
    let json = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(load_policy(&json, &path.display().to_string())?)
}
