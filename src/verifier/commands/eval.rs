//! `certauth-verifier eval`: one decision, offline, and the report of how it was reached.

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::crl::{crl_error, read_der};
use super::CommandError;
use crate::pki::crl::{parse_crl, CrlKind};
use crate::verifier::decide::{Decision, Engine};
use crate::verifier::graph_files::{load_directory, load_policy};
use crate::verifier::outcome::AuthenticationStrength;
use crate::verifier::policy::{affinity_name, field_name, property_name};
use crate::verifier::revocation::source::{CrlSource, FetchLimits};
use crate::verifier::trust::TrustStore;
use crate::x509::user_ids::SerialOrder;

/// The files and the sign-in to decide.
#[derive(Debug)]
pub struct EvalOptions {
    pub policy: PathBuf,
    /// A CA file, or a directory of them.
    pub cas: PathBuf,
    pub users: PathBuf,
    pub groups: Option<PathBuf>,
    pub cert: PathBuf,
    pub username: String,
    /// CRLs given up front, each for the trusted CA that issued it.
    pub crls: Vec<PathBuf>,
    /// No CRL downloads: only the CRLs given.
    pub offline: bool,
    /// The moment to decide at; now when `None`.
    pub at: Option<OffsetDateTime>,
    pub serial_order: SerialOrder,
}

/// Decides the sign-in. A directory file that left something out is reported to `warn`, once per
/// note, before deciding.
pub fn evaluate(
    options: &EvalOptions,
    warn: &mut dyn FnMut(&str),
) -> Result<Decision, CommandError> {
    let read = |path: &Path| {
        std::fs::read(path)
            .map(|bytes| (bytes, path.display().to_string()))
            .map_err(CommandError::read(path))
    };
    let (json, name) = read(&options.policy)?;
    let policy = load_policy(&json, &name)?;
    let store = TrustStore::load(&options.cas)?;
    let (users, users_name) = read(&options.users)?;
    let groups = options.groups.as_deref().map(read).transpose()?;
    let groups = groups
        .as_ref()
        .map(|(json, name)| (json.as_slice(), name.as_str()));
    let files = load_directory(&users, &users_name, groups)?;
    for note in &files.incomplete {
        warn(&note.to_string());
    }
    let leaf = read_der(&options.cert, "CERTIFICATE")?;
    let now = options.at.unwrap_or_else(OffsetDateTime::now_utc);
    let source = if options.offline {
        CrlSource::offline()
    } else {
        CrlSource::http(FetchLimits::default())
    };
    provide_crls(&source, &store, &options.crls)?;
    let mut engine = Engine::new(policy, store, files.directory, source);
    engine.serial_order = options.serial_order;
    let runtime = super::runtime(Some(2))?;
    Ok(runtime.block_on(engine.decide(&leaf, &options.username, now)))
}

/// Hands each CRL file to `source` as its issuing CA's base or delta CRL.
fn provide_crls(
    source: &CrlSource,
    store: &TrustStore,
    files: &[PathBuf],
) -> Result<(), CommandError> {
    for file in files {
        let der = read_der(file, "X509 CRL")?;
        let facts = parse_crl(&der).map_err(|source| crl_error(file, source))?;
        let ca = store
            .cas()
            .iter()
            .find(|ca| {
                Some(&ca.ski) == facts.authority_key_id.as_ref()
                    || ca.info.subject_der == facts.issuer_der
            })
            .ok_or_else(|| CommandError::UnknownCrlIssuer {
                file: file.clone(),
                issuer: facts.issuer.clone(),
            })?;
        let kind = if facts.is_delta() {
            CrlKind::Delta
        } else {
            CrlKind::Base
        };
        source.provide(&ca.ski, kind, der);
    }
    Ok(())
}

/// Writes the decision on `out`: as pretty JSON, or as the report a person reads.
pub fn write_report(
    out: &mut impl Write,
    decision: &Decision,
    json: bool,
) -> Result<(), CommandError> {
    if json {
        serde_json::to_writer_pretty(&mut *out, decision)?;
        writeln!(out)?;
    } else {
        write_text(out, decision)?;
    }
    Ok(())
}

fn write_text(out: &mut impl Write, decision: &Decision) -> std::io::Result<()> {
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
            AuthenticationStrength::from(rule.x509_certificate_authentication_mode).as_str(),
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
