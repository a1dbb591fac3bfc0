//! `certauth demo` and `certauth fixture`: provision the fixture, publish and check its CRLs, and
//! tell the user what was made and what to run next.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use certauth::fixtures::crl_server::{CrlSite, PublishedCrl};
use certauth::fixtures::spec::Spec;
use certauth::fixtures::{self, Fixture, ProvisionOptions, Provisioning};
use certauth::verifier::revocation::crl::{parse_crl, verify_crl_signature};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::{DemoArgs, FixtureArgs, FixtureSource};

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let (spec, options) = load(&args.source)?;
    let temporary = match &args.dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("certauth-demo-")
                .tempdir()
                .context("cannot create a temporary directory for the demo")?,
        ),
    };
    let dir = match (&args.dir, &temporary) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_owned(),
        (None, None) => unreachable!("a temporary directory exists when no --dir is given"),
    };

    let started = Instant::now();
    let (fixture, outcome) = fixtures::provision(&spec, &dir, &options)?;
    let mut out = std::io::stdout().lock();
    print_fixture(&mut out, &fixture, outcome, started.elapsed())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(publish_crls(&mut out, &fixture, &args))?;
    drop(runtime);
    crate::demo_signin::run(&mut out, &fixture, &spec)?;

    let kept = match temporary {
        Some(temp) if args.keep => Some(temp.keep()),
        Some(temp) => {
            temp.close().context("cannot remove the demo directory")?;
            None
        }
        None => Some(dir),
    };
    print_next_steps(&mut out, &fixture, kept.as_deref())?;
    Ok(())
}

pub fn provision_only(args: FixtureArgs) -> anyhow::Result<()> {
    let (spec, options) = load(&args.source)?;
    let started = Instant::now();
    let (fixture, outcome) = fixtures::provision(&spec, &args.dir, &options)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &fixture.manifest)?;
        writeln!(out)?;
    } else {
        print_fixture(&mut out, &fixture, outcome, started.elapsed())?;
        writeln!(
            out,
            "\nUse the tokens with: export SOFTHSM2_CONF={}",
            fixture.softhsm2_conf().display()
        )?;
    }
    Ok(())
}

/// The spec to provision and the options to provision it with.
fn load(source: &FixtureSource) -> anyhow::Result<(Spec, ProvisionOptions)> {
    let spec = match &source.spec {
        Some(path) => Spec::load(path)?,
        None => Spec::embedded_woodgrove()?,
    };
    let options = ProvisionOptions {
        module: source.softhsm_module.clone(),
        ..ProvisionOptions::default()
    };
    Ok((spec, options))
}

fn print_fixture(
    out: &mut impl Write,
    fixture: &Fixture,
    outcome: Provisioning,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let m = &fixture.manifest;
    match outcome {
        Provisioning::Created => writeln!(
            out,
            "Provisioned the {} tenant in {:.1} s",
            m.tenant,
            elapsed.as_secs_f64()
        )?,
        Provisioning::AlreadyProvisioned => writeln!(
            out,
            "Already provisioned: {} holds the {} tenant from this spec (made {})",
            fixture.dir.display(),
            m.tenant,
            m.provisioned_at
        )?,
    }
    writeln!(out, "  directory       {}", fixture.dir.display())?;
    writeln!(
        out,
        "  SoftHSM config  {}",
        fixture.softhsm2_conf().display()
    )?;
    writeln!(out, "  SoftHSM module  {}", m.module.display())?;

    writeln!(out, "\nCertificate authorities")?;
    for ca in &m.authorities {
        let trust = if ca.trusted { "trusted" } else { "NOT trusted" };
        let kind = if ca.is_root { "root" } else { "issuing" };
        writeln!(
            out,
            "  {:<20} {:<8} {:<12} {}",
            ca.id, kind, trust, ca.subject
        )?;
    }

    let now = OffsetDateTime::now_utc();
    writeln!(
        out,
        "\nTokens (keys generated on the token, sensitive, not extractable)"
    )?;
    for token in &m.tokens {
        writeln!(out, "  {} (serial {})", token.label, token.serial)?;
        writeln!(
            out,
            "    {:<3} {:<22} {:<12} {:<7} {:<11} status",
            "id", "certificate", "key", "serial", "expires"
        )?;
        for cert in &token.certificates {
            let trusted = m.authority(&cert.issuer).is_some_and(|a| a.trusted);
            writeln!(
                out,
                "    {:<3} {:<22} {:<12} {:<7} {:<11} {}",
                cert.id,
                cert.name,
                cert.key_algorithm.to_string(),
                cert.serial,
                cert.not_after.get(..10).unwrap_or(&cert.not_after),
                status(cert, trusted, now)
            )?;
        }
    }

    writeln!(out, "\nUsers")?;
    for user in &m.users {
        writeln!(
            out,
            "  {:<22} groups: {:<24} certificateUserIds: {}",
            user.user_principal_name,
            user.member_of.join(", "),
            if user.authorization_info.certificate_user_ids.is_empty() {
                "(none)".to_owned()
            } else {
                user.authorization_info.certificate_user_ids.join(", ")
            }
        )?;
    }
    Ok(())
}

/// What a person needs to know about a certificate at a glance.
fn status(
    cert: &fixtures::manifest::ManifestCertificate,
    trusted_issuer: bool,
    now: OffsetDateTime,
) -> String {
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    let mut notes = Vec::new();
    match (parse(&cert.not_before), parse(&cert.not_after)) {
        (Some(from), _) if now < from => notes.push("not yet valid".to_owned()),
        (_, Some(until)) if now > until => notes.push("expired".to_owned()),
        _ => {}
    }
    if let Some(list) = cert.revoked_in {
        notes.push(format!("revoked in the {list} CRL"));
    }
    if !trusted_issuer {
        notes.push("issuer not trusted".to_owned());
    }
    if notes.is_empty() {
        "valid".to_owned()
    } else {
        notes.join(", ")
    }
}

/// Serves the CRLs on loopback, fetches each back over HTTP and checks it, then keeps serving if
/// asked to.
async fn publish_crls(
    out: &mut impl Write,
    fixture: &Fixture,
    args: &DemoArgs,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, args.crl_port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.crl_port))?;
    let addr = listener.local_addr()?;
    let site = CrlSite::for_fixture(fixture);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(site.clone().serve(listener, async {
        let _ = stopped.await;
    }));

    writeln!(out, "\nCRLs published on http://{addr}")?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let checked = check_crls(out, fixture, &site, addr, &client).await;

    if checked.is_ok() && args.serve {
        writeln!(out, "\nServing the CRLs until Ctrl-C ...")?;
        out.flush()?;
        tokio::signal::ctrl_c().await?;
    }
    let _ = stop.send(());
    server
        .await
        .map_err(|e| anyhow!("the CRL server task failed: {e}"))?
        .context("the CRL server failed")?;
    checked
}

async fn check_crls(
    out: &mut impl Write,
    fixture: &Fixture,
    site: &CrlSite,
    addr: SocketAddr,
    client: &reqwest::Client,
) -> anyhow::Result<()> {
    for crl in site.crls() {
        let url = CrlSite::local_url(addr, crl);
        let served = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("cannot fetch {url}"))?
            .bytes()
            .await
            .with_context(|| format!("cannot read {url}"))?;
        let on_disk = std::fs::read(&crl.file)
            .with_context(|| format!("cannot read {}", crl.file.display()))?;
        if served.as_ref() != on_disk.as_slice() {
            return Err(anyhow!(
                "{url} served other bytes than {}",
                crl.file.display()
            ));
        }
        let ca_der = issuer_certificate(fixture, crl)?;
        verify_crl_signature(&served, &ca_der).with_context(|| url.clone())?;
        let facts = parse_crl(&served).with_context(|| url.clone())?;
        let number = facts.number.as_deref().unwrap_or("?");
        let kind = match &facts.delta_of {
            Some(base) => format!("delta CRL #{number} (of base #{base})"),
            None => format!("base CRL #{number}"),
        };
        let revoked: Vec<&str> = facts.revoked.iter().map(|r| r.serial.as_str()).collect();
        writeln!(
            out,
            "  {url}\n      {kind}, signature verified, revoked: {}",
            if revoked.is_empty() {
                "none".to_owned()
            } else {
                revoked.join(", ")
            }
        )?;
    }
    Ok(())
}

/// The DER certificate of the CA that publishes `crl`.
fn issuer_certificate(fixture: &Fixture, crl: &PublishedCrl) -> anyhow::Result<Vec<u8>> {
    let authority = fixture
        .manifest
        .authorities
        .iter()
        .find(|a| a.crl.url == crl.url || a.delta_crl.as_ref().is_some_and(|d| d.url == crl.url))
        .ok_or_else(|| anyhow!("no authority publishes {}", crl.url))?;
    let path = fixture.path(&authority.certificate_der);
    std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn print_next_steps(
    out: &mut impl Write,
    fixture: &Fixture,
    kept: Option<&Path>,
) -> anyhow::Result<()> {
    writeln!(out, "\nNext")?;
    match kept {
        Some(dir) => {
            let conf: PathBuf = dir.join(&fixture.manifest.softhsm2_conf);
            writeln!(out, "  The fixture stays in {}. Look at the tokens with:", dir.display())?;
            for token in &fixture.manifest.tokens {
                writeln!(
                    out,
                    "    SOFTHSM2_CONF={} pkcs11-tool --module {} --list-objects --type cert --token-label '{}'",
                    conf.display(),
                    fixture.manifest.module.display(),
                    token.label
                )?;
            }
        }
        None => writeln!(
            out,
            "  The demo directory was removed. `certauth demo --keep --serve` keeps the tokens and the CRL server up."
        )?,
    }
    writeln!(
        out,
        "  `certauth fixture --dir DIR` provisions the same tenant into a directory of your own."
    )?;
    writeln!(
        out,
        "  `cargo test` runs the whole suite against real SoftHSM tokens."
    )?;
    Ok(())
}
