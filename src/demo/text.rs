//! What the demo prints: the provisioned fixture, the sign-in lines to paste while it serves,
//! and the next steps when it ends.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::ExposeSecret;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{DemoError, Step};
use super::verifier_process::VerifierProcess;
use crate::fixtures::spec::Spec;
use crate::fixtures::{self, Fixture, Provisioning};
use crate::shell_words::{shell_path, shell_word};

pub fn print_fixture(
    out: &mut impl Write,
    fixture: &Fixture,
    outcome: Provisioning,
    elapsed: Duration,
) -> Result<(), DemoError> {
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

    print_tokens(out, fixture)?;

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

/// The fixture's tokens and their certificates, each with its status at a glance.
fn print_tokens(out: &mut impl Write, fixture: &Fixture) -> Result<(), DemoError> {
    let m = &fixture.manifest;
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

/// A sign-in the user can paste: who, with which certificate, and the line itself.
pub struct PasteLine {
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
pub fn sign_in_lines(
    fixture: &Fixture,
    spec: &Spec,
    verifier: &VerifierProcess,
) -> Result<Vec<PasteLine>, DemoError> {
    let exe = std::env::current_exe().step(|| "cannot find this program's path".to_owned())?;
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
pub fn print_serving(
    out: &mut impl Write,
    fixture: &Fixture,
    verifier: &VerifierProcess,
    crls: SocketAddr,
    lines: &[PasteLine],
    temporary: bool,
) -> Result<(), DemoError> {
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

fn print_token_commands(
    out: &mut impl Write,
    fixture: &Fixture,
    dir: &Path,
) -> Result<(), DemoError> {
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

pub fn print_next_steps(
    out: &mut impl Write,
    fixture: &Fixture,
    spec: &Spec,
    kept: Option<&Path>,
) -> Result<(), DemoError> {
    let exe = std::env::current_exe().step(|| "cannot find this program's path".to_owned())?;
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
