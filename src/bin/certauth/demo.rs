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
use certauth::pki::crl::{parse_crl, verify_crl_signature};
use secrecy::ExposeSecret;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::{DemoArgs, FixtureArgs, FixtureSource};
use crate::shell::{shell_path, shell_word};
use crate::stop_signal::stop_signal;

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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let started = Instant::now();
    let (fixture, outcome) = fixtures::provision(&spec, &dir, &options)?;
    let mut out = std::io::stdout().lock();
    print_fixture(&mut out, &fixture, outcome, started.elapsed())?;

    let crls = runtime.block_on(CrlServer::start(&fixture, args.crl_port))?;
    writeln!(out, "\nCRLs published on http://{}", crls.addr)?;
    runtime.block_on(check_crls(&mut out, &fixture, &crls))?;
    let verifier = crate::demo_signin::run(&mut out, &fixture, &spec)?;

    if args.serve {
        // Ctrl-C and SIGTERM are caught from here on, before the lines that invite them are
        // printed, and end in the clean-up below. Not earlier: at the demo's own PIN prompt a
        // Ctrl-C must still stop the demo (the verifier, in the same process group, stops too).
        let stop = {
            let _context = runtime.enter();
            stop_signal()?
        };
        let lines = sign_in_lines(&fixture, &spec, &verifier)?;
        print_serving(
            &mut out,
            &fixture,
            &verifier,
            crls.addr,
            &lines,
            temporary.is_some(),
        )?;
        out.flush()?;
        let mut verifier = verifier;
        let ended = runtime.block_on(serve_until(stop, &mut verifier));
        // The verifier first: its state directory is inside the fixture's.
        drop(verifier);
        runtime.block_on(crls.stop())?;
        let removed = match temporary {
            Some(temp) => {
                let path = temp.path().to_owned();
                temp.close()
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                format!(" and removed {}", path.display())
            }
            None => String::new(),
        };
        return match ended {
            None => {
                writeln!(out, "\nStopped the verifier and the CRL server{removed}.")?;
                Ok(())
            }
            Some(status) => Err(anyhow!(
                "the verifier stopped on its own ({status}); stopped the CRL server{removed}"
            )),
        };
    }

    drop(verifier);
    runtime.block_on(crls.stop())?;
    let kept = match temporary {
        Some(temp) if args.keep => Some(temp.keep()),
        Some(temp) => {
            temp.close().context("cannot remove the demo directory")?;
            None
        }
        None => Some(dir),
    };
    print_next_steps(&mut out, &fixture, &spec, kept.as_deref())?;
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

/// The fixture's CRLs, served on loopback until stopped.
struct CrlServer {
    addr: SocketAddr,
    site: CrlSite,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl CrlServer {
    async fn start(fixture: &Fixture, port: u16) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let site = CrlSite::for_fixture(fixture);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(site.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            site,
            stop,
            task,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| anyhow!("the CRL server task failed: {e}"))?
            .context("the CRL server failed")
    }
}

/// Fetches each CRL back over HTTP and checks it.
async fn check_crls(
    out: &mut impl Write,
    fixture: &Fixture,
    server: &CrlServer,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    for crl in server.site.crls() {
        let url = CrlSite::local_url(server.addr, crl);
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

/// A sign-in the user can paste: who, with which certificate, and the line itself.
struct PasteLine {
    title: String,
    line: String,
}

/// The certificates the pasted sign-ins use: each user's first valid one, named with `--cert` so
/// no picker is needed (Alice and Bob both have several on their tokens).
const PASTE_SIGN_INS: [(&str, &str, &str, &str); 2] = [
    (
        "Alice",
        "alice@woodgrove.com",
        "alice-p384",
        "her everyday certificate, single-factor",
    ),
    (
        "Bob",
        "bob@woodgrove.com",
        "bob-p256-rfc822",
        "his P-256 certificate, RFC 822 name only",
    ),
];

/// The sign-in lines for Alice and Bob against the demo's verifier, each with the demo PIN of the
/// user's token in `CERTAUTH_PIN` on the same line and this program by its absolute path.
fn sign_in_lines(
    fixture: &Fixture,
    spec: &Spec,
    verifier: &crate::demo_signin::VerifierProcess,
) -> anyhow::Result<Vec<PasteLine>> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let mut lines = Vec::new();
    for (who, username, name, what) in PASTE_SIGN_INS {
        let Some((token, cert)) = fixture.manifest.tokens.iter().find_map(|t| {
            t.certificates
                .iter()
                .find(|c| c.name == name)
                .map(|c| (t, c))
        }) else {
            continue;
        };
        let Some(pin) = spec.token(&token.label) else {
            continue;
        };
        let pin = pin.pin.expose_secret();
        let line = [
            format!("CERTAUTH_PIN={}", shell_word(pin)),
            format!("SOFTHSM2_CONF={}", shell_path(&fixture.softhsm2_conf())),
            shell_path(&exe),
            "sign-in".to_owned(),
            shell_word(verifier.url.as_str()),
            "--username".to_owned(),
            shell_word(username),
            "--cert".to_owned(),
            shell_word(&cert.sha256),
            "--module".to_owned(),
            shell_path(&fixture.manifest.module),
            "--ca-file".to_owned(),
            shell_path(&verifier.server_ca),
            "--pin env:CERTAUTH_PIN".to_owned(),
        ]
        .join(" ");
        lines.push(PasteLine {
            title: format!(
                "Sign in as {who} with {name} ({what}); {pin} is the demo PIN of `{}`, a fixture PIN, not a secret:",
                token.label
            ),
            line,
        });
    }
    Ok(lines)
}

/// What `--serve` keeps up, and the lines to use it with.
fn print_serving(
    out: &mut impl Write,
    fixture: &Fixture,
    verifier: &crate::demo_signin::VerifierProcess,
    crls: SocketAddr,
    lines: &[PasteLine],
    temporary: bool,
) -> anyhow::Result<()> {
    writeln!(out, "\nServing until Ctrl-C")?;
    writeln!(out, "  verifier        {}", verifier.url)?;
    writeln!(out, "  server CA       {}", verifier.server_ca.display())?;
    writeln!(out, "  CRLs            http://{crls}")?;
    writeln!(out, "  tokens          {}", fixture.dir.display())?;
    writeln!(out, "\nNext: paste these into another terminal")?;
    for paste in lines {
        writeln!(out, "  {}", paste.title)?;
        writeln!(out, "    {}", paste.line)?;
    }
    print_token_commands(out, fixture, &fixture.dir)?;
    writeln!(
        out,
        "  Ctrl-C (or SIGTERM) stops the verifier and the CRL server{}.",
        if temporary {
            format!(" and removes {}", fixture.dir.display())
        } else {
            format!("; {} stays", fixture.dir.display())
        }
    )?;
    Ok(())
}

fn print_token_commands(out: &mut impl Write, fixture: &Fixture, dir: &Path) -> anyhow::Result<()> {
    let conf: PathBuf = dir.join(&fixture.manifest.softhsm2_conf);
    writeln!(out, "  Look at the tokens:")?;
    for token in &fixture.manifest.tokens {
        writeln!(
            out,
            "    SOFTHSM2_CONF={} pkcs11-tool --module {} --list-objects --type cert --token-label {}",
            shell_path(&conf),
            shell_path(&fixture.manifest.module),
            shell_word(&token.label)
        )?;
    }
    Ok(())
}

fn print_next_steps(
    out: &mut impl Write,
    fixture: &Fixture,
    spec: &Spec,
    kept: Option<&Path>,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let verifier = exe.with_file_name(format!("certauth-verifier{}", std::env::consts::EXE_SUFFIX));
    let pins: Vec<String> = fixture
        .manifest
        .tokens
        .iter()
        .filter_map(|t| {
            let pin = spec.token(&t.label)?.pin.expose_secret().to_owned();
            Some(format!("`{}` {pin}", t.label))
        })
        .collect();
    let bob_pin = spec
        .token("Woodgrove Bob")
        .map_or_else(|| "…".to_owned(), |t| shell_word(t.pin.expose_secret()));
    writeln!(out, "\nNext")?;
    writeln!(
        out,
        "  Sign in yourself: serve the tenant, then paste the sign-in line it prints into another terminal."
    )?;
    writeln!(out, "    {} serve", shell_path(&verifier))?;
    writeln!(
        out,
        "      serves a fresh Woodgrove tenant; its banner prints, for Bob, a line such as"
    )?;
    writeln!(
        out,
        "      CERTAUTH_PIN={bob_pin} SOFTHSM2_CONF=… {} sign-in https://127.0.0.1:… --username bob@woodgrove.com --cert … --module … --ca-file … --pin env:CERTAUTH_PIN",
        shell_path(&exe)
    )?;
    writeln!(out, "    {} demo --keep --serve", shell_path(&exe))?;
    writeln!(
        out,
        "      this demo again, then the verifier and the CRL server stay up until Ctrl-C, and it prints such a line for Alice and for Bob"
    )?;
    writeln!(
        out,
        "  The demo PINs (fixture PINs, not secrets): {}.",
        pins.join(", ")
    )?;
    match kept {
        Some(dir) => {
            writeln!(out, "  The fixture stays in {}.", dir.display())?;
            print_token_commands(out, fixture, dir)?;
        }
        None => writeln!(out, "  The demo directory was removed.")?,
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

/// Waits for `stop`; `Some` with the verifier's exit status if it ended first. A Ctrl-C on the
/// terminal reaches the verifier too (same process group), so a verifier that just ended is given
/// a moment for the signal to arrive here as well before it counts as having stopped on its own.
async fn serve_until(
    stop: impl std::future::Future<Output = ()>,
    verifier: &mut crate::demo_signin::VerifierProcess,
) -> Option<std::process::ExitStatus> {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return None,
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Some(status) = verifier.exited() {
                    return match tokio::time::timeout(Duration::from_secs(1), &mut stop).await {
                        Ok(()) => None,
                        Err(_) => Some(status),
                    };
                }
            }
        }
    }
}
