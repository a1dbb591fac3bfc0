//! `certauth list`'s table for a person: grouped by reader and token, one row per certificate.
//! What a token or a reader says of itself is shown through `printable`.

use std::io::Write;

use super::shown;
use super::table::Table;
use crate::printable::printable;
use crate::reader::PcscStatus;
use crate::token::inventory::{CertificateReport, ModuleReport, TokenReport};
use crate::x509::eligibility::KeyPresence;
use crate::x509::hex;

pub fn print_human(
    out: &mut impl Write,
    pcsc: &PcscStatus,
    modules: &[ModuleReport],
    tokens: &[TokenReport],
    all: bool,
) -> anyhow::Result<()> {
    let readers = match pcsc {
        PcscStatus::Running { readers } => readers.as_slice(),
        _ => &[],
    };
    match pcsc {
        PcscStatus::Running { .. } => {}
        other => writeln!(out, "Note: {}.\n", printable(&other.describe()))?,
    }
    for reader in readers {
        let on_reader: Vec<&TokenReport> = tokens
            .iter()
            .filter(|t| t.slot_description == reader.name)
            .collect();
        let name = printable(&reader.name);
        match &reader.atr {
            Some(atr) => writeln!(out, "Reader {name} (card present, ATR {})", hex(atr))?,
            None => writeln!(out, "Reader {name} (no card)")?,
        }
        if reader.card_present && on_reader.is_empty() {
            writeln!(out, "  no PKCS#11 module recognises this card")?;
        }
        for token in on_reader {
            print_token(out, token, all, "  ")?;
        }
        writeln!(out)?;
    }
    let elsewhere: Vec<&TokenReport> = tokens
        .iter()
        .filter(|t| !readers.iter().any(|r| r.name == t.slot_description))
        .collect();
    for token in &elsewhere {
        print_token(out, token, all, "")?;
        writeln!(out)?;
    }
    if tokens.is_empty() {
        writeln!(out, "No tokens found.\n")?;
    }
    let failed: Vec<&ModuleReport> = modules.iter().filter(|m| m.error.is_some()).collect();
    if !failed.is_empty() {
        writeln!(out, "Modules that could not be used:")?;
        for module in failed {
            writeln!(
                out,
                "  {} (from {}): {}",
                module.path.display(),
                module.origin,
                printable(module.error.as_deref().unwrap_or_default())
            )?;
        }
    }
    Ok(())
}

fn print_token(
    out: &mut impl Write,
    token: &TokenReport,
    all: bool,
    indent: &str,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{indent}Token `{}`: {} {}, serial {}",
        printable(&token.label),
        printable(&token.manufacturer),
        printable(&token.model),
        printable(&token.serial)
    )?;
    writeln!(out, "{indent}  module {}", token.module.display())?;
    let mut flags = Vec::new();
    let f = &token.flags;
    for (set, name) in [
        (f.protected_authentication_path, "PIN pad"),
        (f.user_pin_count_low, "PIN count low"),
        (f.user_pin_final_try, "PIN on its FINAL TRY"),
        (f.user_pin_locked, "PIN LOCKED"),
        (f.user_pin_to_be_changed, "PIN must be changed"),
    ] {
        if set {
            flags.push(name);
        }
    }
    if !flags.is_empty() {
        writeln!(out, "{indent}  {}", flags.join(", "))?;
    }
    if let Some(problem) = &token.login_problem {
        writeln!(out, "{indent}  not logged in: {}", printable(problem))?;
    }
    if let Some(error) = &token.error {
        writeln!(out, "{indent}  error: {}", printable(error))?;
    }
    let mut table = Table::new(&[
        "ID",
        "CERTIFICATE",
        "ISSUER",
        "KEY",
        "EXPIRES",
        "PRIVATE KEY",
        "SIGN-IN",
    ]);
    for cert in shown(token, all) {
        table.row(certificate_row(cert));
    }
    let hidden = token.certificates.len() - shown(token, all).count();
    if table.is_empty() {
        writeln!(out, "{indent}  no certificate can sign in")?;
    } else {
        table.write(out, &format!("{indent}  "))?;
    }
    if hidden > 0 {
        writeln!(
            out,
            "{indent}  ({hidden} certificate(s) that cannot sign in are hidden; --all shows them)"
        )?;
    }
    if token
        .certificates
        .iter()
        .any(|c| c.key.presence == KeyPresence::NeedsLogin)
    {
        writeln!(
            out,
            "{indent}  Private keys on this token are hidden until you log in: --token '{}' --pin env:VAR checks them.",
            printable(&token.label)
        )?;
    }
    Ok(())
}

fn certificate_row(cert: &CertificateReport) -> Vec<String> {
    let verdict = if cert.eligibility.is_eligible() {
        "yes".to_owned()
    } else {
        format!("no: {}", cert.eligibility.describe())
    };
    let key = match cert.key.presence {
        KeyPresence::Present if cert.key.always_authenticate == Some(true) => "yes (PIN each use)",
        KeyPresence::Present => "yes",
        KeyPresence::Absent => "no",
        KeyPresence::NeedsLogin => "after login",
    };
    match &cert.cert {
        Ok(info) => vec![
            hex(&cert.id),
            crate::picker::select::describe(info),
            info.issuer_display_name(),
            info.key_description(),
            info.not_after.date().to_string(),
            key.to_owned(),
            verdict,
        ],
        Err(_) => vec![
            hex(&cert.id),
            format!("`{}` (unreadable)", cert.label),
            "?".into(),
            "?".into(),
            "?".into(),
            key.to_owned(),
            verdict,
        ],
    }
}
