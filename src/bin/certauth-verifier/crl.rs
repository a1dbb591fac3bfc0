//! `certauth-verifier crl`: shows CRLs and, with `--ca`, checks who signed them.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context};
use certauth::pki::crl::{parse_crl, verify_crl_signature, CrlFacts};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::cli::CrlArgs;

pub fn run(args: &CrlArgs) -> anyhow::Result<()> {
    let ca = match &args.ca {
        Some(path) => Some(read_der(path, "CERTIFICATE")?),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let mut shown = Vec::new();
    for file in &args.files {
        let der = read_der(file, "X509 CRL")?;
        let facts = parse_crl(&der).with_context(|| format!("{}", file.display()))?;
        if let Some(ca) = &ca {
            verify_crl_signature(&der, ca).with_context(|| format!("{}", file.display()))?;
        }
        if args.json {
            shown.push(to_json(file, &facts, ca.is_some()));
        } else {
            print_text(&mut out, file, &facts, ca.is_some())?;
        }
    }
    if args.json {
        serde_json::to_writer_pretty(&mut out, &shown)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Reads DER, or the first PEM block with `label`.
pub fn read_der(path: &Path, label: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
        .map_err(|e| anyhow!("{}: not valid PEM: {e}", path.display()))?;
    if pem.label != label {
        return Err(anyhow!(
            "{}: holds a PEM `{}` block where `{label}` was expected",
            path.display(),
            pem.label
        ));
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
) -> anyhow::Result<()> {
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
