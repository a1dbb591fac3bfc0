//! `certauth-verifier crl`: shows CRLs and, given a CA, checks who signed them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::CommandError;
use crate::pki::crl::{parse_crl, verify_crl_signature, CrlFacts};

/// What `crl` shows.
#[derive(Debug)]
pub struct CrlOptions {
    pub files: Vec<PathBuf>,
    /// The CA whose signature each CRL must carry.
    pub ca: Option<PathBuf>,
    pub json: bool,
}

/// Shows each CRL in `options.files` on `out`, as text or as one JSON array.
pub fn show(options: &CrlOptions, out: &mut impl Write) -> Result<(), CommandError> {
    let ca = match &options.ca {
        Some(path) => Some(read_der(path, "CERTIFICATE")?),
        None => None,
    };
    let mut shown = Vec::new();
    for file in &options.files {
        let der = read_der(file, "X509 CRL")?;
        let facts = parse_crl(&der).map_err(|source| crl_error(file, source))?;
        if let Some(ca) = &ca {
            verify_crl_signature(&der, ca).map_err(|source| crl_error(file, source))?;
        }
        if options.json {
            shown.push(to_json(file, &facts, ca.is_some()));
        } else {
            print_text(out, file, &facts, ca.is_some())?;
        }
    }
    if options.json {
        serde_json::to_writer_pretty(&mut *out, &shown)?;
        writeln!(out)?;
    }
    Ok(())
}

pub(super) fn crl_error(file: &Path, source: crate::pki::crl::CrlError) -> CommandError {
    CommandError::Crl {
        file: file.to_owned(),
        source,
    }
}

/// Reads DER, or the first PEM block with `label`.
pub fn read_der(path: &Path, label: &str) -> Result<Vec<u8>, CommandError> {
    let bytes = std::fs::read(path).map_err(CommandError::read(path))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|e| CommandError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if pem.label != label {
        return Err(CommandError::PemLabel {
            path: path.to_owned(),
            found: pem.label,
            expected: label.to_owned(),
        });
    }
    Ok(pem.contents)
}

fn time(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

fn print_text(
    out: &mut impl Write,
    file: &Path,
    facts: &CrlFacts,
    verified: bool,
) -> std::io::Result<()> {
    writeln!(out, "{}", file.display())?;
    writeln!(out, "  issuer       {}", facts.issuer)?;
    writeln!(
        out,
        "  CRL number   {}",
        facts.number.as_deref().unwrap_or("(none)")
    )?;
    if let Some(base) = &facts.delta_of {
        writeln!(out, "  delta CRL of base CRL number {base}")?;
    }
    writeln!(out, "  thisUpdate   {}", time(facts.this_update))?;
    match facts.next_update {
        Some(next) => writeln!(out, "  nextUpdate   {}", time(next))?,
        None => writeln!(out, "  nextUpdate   (none)")?,
    }
    if verified {
        writeln!(out, "  signature    verified with the given CA")?;
    }
    writeln!(out, "  revoked      {}", facts.revoked.len())?;
    for entry in &facts.revoked {
        let reason = entry
            .reason
            .map_or_else(|| "no reason given".to_owned(), |r| r.to_string());
        writeln!(
            out,
            "    {:<40} {}  {}",
            entry.serial,
            time(entry.revoked_at),
            reason
        )?;
    }
    Ok(())
}

fn to_json(file: &Path, facts: &CrlFacts, verified: bool) -> serde_json::Value {
    json!({
        "file": file.display().to_string(),
        "issuer": facts.issuer,
        "authorityKeyIdentifier": facts.authority_key_id,
        "crlNumber": facts.number,
        "deltaOf": facts.delta_of,
        "thisUpdate": time(facts.this_update),
        "nextUpdate": facts.next_update.map(time),
        "signatureVerified": verified,
        "revoked": facts.revoked.iter().map(|r| json!({
            "serial": r.serial,
            "revokedAt": time(r.revoked_at),
            "reason": r.reason.map(|x| x.to_string()),
        })).collect::<Vec<_>>(),
    })
}
