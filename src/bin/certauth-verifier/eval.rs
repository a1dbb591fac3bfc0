//! `certauth-verifier eval`: one decision, offline, with its explanation.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use certauth::pki::crl::{parse_crl, CrlKind};
use certauth::verifier::decide::{Decision, Engine};
use certauth::verifier::graph_files::{load_directory, load_policy, FileKind, GraphFileError};
use certauth::verifier::policy::{affinity_name, field_name, property_name};
use certauth::verifier::revocation::source::{CrlSource, FetchLimits};
use certauth::verifier::trust::TrustStore;
use certauth::x509::user_ids::SerialOrder;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::cli::EvalArgs;
use crate::crl::read_der;

/// A refused sign-in.
const EXIT_REFUSED: u8 = 3;

pub fn run(args: &EvalArgs) -> ExitCode {
    match evaluate(args) {
        Ok(decision) if decision.succeeded() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_REFUSED),
        Err(e) => crate::report::exit_with("certauth-verifier", &e),
    }
}

fn evaluate(args: &EvalArgs) -> anyhow::Result<Decision> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| (bytes, path.display().to_string()))
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let (json, name) = read(&args.policy)?;
    let policy = load_policy(&json, &name).map_err(with_hint)?;
    let store = TrustStore::load(&args.cas)?;
    let (users, users_name) = read(&args.users)?;
    let groups = args.groups.as_deref().map(read).transpose()?;
    let files = load_directory(
        &users,
        &users_name,
        groups
            .as_ref()
            .map(|(json, name)| (json.as_slice(), name.as_str())),
    )
    .map_err(with_hint)?;
    for note in &files.incomplete {
        eprintln!("certauth-verifier: warning: {note}");
    }
    let directory = files.directory;
    let leaf = read_der(&args.cert, "CERTIFICATE")?;
    let now = match &args.at {
        Some(at) => OffsetDateTime::parse(at, &Rfc3339).with_context(|| {
            format!("--at `{at}` is not an RFC 3339 time such as 2026-11-28T12:00:00Z")
        })?,
        None => OffsetDateTime::now_utc(),
    };
    let source = if args.offline {
        CrlSource::offline()
    } else {
        CrlSource::http(FetchLimits::default())
    };
    for file in &args.crls {
        let der = read_der(file, "X509 CRL")?;
        let facts = parse_crl(&der).with_context(|| format!("{}", file.display()))?;
        let ca = store
            .cas()
            .iter()
            .find(|ca| {
                Some(&ca.ski) == facts.authority_key_id.as_ref()
                    || ca.info.subject_der == facts.issuer_der
            })
            .ok_or_else(|| {
                anyhow!(
                    "{}: issued by `{}`, which is not among the trusted CAs",
                    file.display(),
                    facts.issuer
                )
            })?;
        let kind = if facts.is_delta() {
            CrlKind::Delta
        } else {
            CrlKind::Base
        };
        source.provide(&ca.ski, kind, der);
    }
    let mut engine = Engine::new(policy, store, directory, source);
    engine.serial_order = if args.serial_big_endian {
        SerialOrder::BigEndian
    } else {
        SerialOrder::LittleEndian
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let decision = runtime.block_on(engine.decide(&leaf, &args.username, now));
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &decision)?;
        writeln!(out)?;
    } else {
        print(&mut out, &decision)?;
    }
    Ok(decision)
}

/// A file of another kind than its flag takes, which is often two files swapped: say so.
fn with_hint(err: GraphFileError) -> anyhow::Error {
    let flag = |kind| match kind {
        FileKind::Users => "--users",
        FileKind::Groups => "--groups",
        FileKind::Policy => "--policy",
        FileKind::CertificateAuthorities => "--cas",
    };
    if let GraphFileError::Shape { expected, .. } = &err {
        if let Some(kind) = err.found_kind().filter(|kind| kind != expected) {
            return anyhow!(
                "{err} — did you swap {} and {}?",
                flag(*expected),
                flag(kind)
            );
        }
    }
    err.into()
}

fn print(out: &mut impl Write, decision: &Decision) -> std::io::Result<()> {
    if decision.succeeded() {
        writeln!(
            out,
            "SIGNED IN as {} ({})",
            decision.user_principal_name.as_deref().unwrap_or_default(),
            decision
                .authentication_strength
                .map(|strength| strength.as_str())
                .unwrap_or_default()
        )?;
    } else {
        writeln!(
            out,
            "REFUSED: {}: {}",
            decision
                .error_code
                .map(|code| code.as_str())
                .unwrap_or_default(),
            decision.message
        )?;
    }
    if let Some(binding) = &decision.username_binding {
        writeln!(
            out,
            "  username binding  {} -> {} (priority {}, {} affinity): {}",
            field_name(binding.x509_certificate_field),
            property_name(binding.user_property),
            binding.priority,
            affinity_name(binding.trust_affinity_level),
            binding.value
        )?;
    }
    if let Some(rule) = &decision.authentication_rule {
        writeln!(
            out,
            "  rule              {}{} -> {} ({} affinity required)",
            rule.x509_certificate_rule_type,
            rule.identifier
                .as_deref()
                .map(|i| format!(" {i}"))
                .unwrap_or_default(),
            rule.x509_certificate_authentication_mode.protocol_name(),
            affinity_name(rule.x509_certificate_required_affinity_level)
        )?;
    }
    if let Some(cert) = &decision.certificate {
        writeln!(
            out,
            "  certificate       {} (serial {})",
            cert.subject, cert.serial_number
        )?;
    }
    writeln!(out, "\nHow it was decided:")?;
    for (i, step) in decision.explanation.iter().enumerate() {
        writeln!(out, "  {}. {step}", i + 1)?;
    }
    Ok(())
}
