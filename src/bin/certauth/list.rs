//! `certauth list`: the certificates on every token, as a table grouped by reader and token, or as
//! JSON in the schema `docs/list-json.md` documents. What a token or a reader says of itself is
//! shown through `printable`; the JSON keeps it exact.

use std::io::Write;

use anyhow::anyhow;
use certauth::listing::{self, shown};
use certauth::picker::eligibility::KeyPresence;
use certauth::printable::{self, printable};
use certauth::reader::{self, PcscStatus};
use certauth::token::inventory::{
    self, CertificateReport, Login, ModuleReport, ScanOptions, TokenReport,
};
use certauth::x509::hex;
use serde_json::json;

use crate::cli::ListArgs;
use crate::table::Table;

pub fn run(args: &ListArgs) -> anyhow::Result<()> {
    if let Some(document) = from_agent(args)? {
        let mut out = std::io::stdout().lock();
        printable::write_json(&mut out, &document, true)?;
        writeln!(out)?;
        out.flush()?;
        return match document["modules"].as_array().and_then(|modules| {
            modules
                .iter()
                .find(|m| m["critical"] == true && !m["error"].is_null())
        }) {
            Some(module) => Err(anyhow!(
                "the PKCS#11 module {} is marked critical and could not be used: {}",
                module["path"].as_str().unwrap_or("?"),
                module["error"].as_str().unwrap_or("?")
            )),
            None => Ok(()),
        };
    }
    let (modules, mut reports) = crate::tokens::load(&args.modules)?;
    let login = match (&args.pin, &args.token) {
        (Some(source), Some(label)) => Some(Login {
            token_label: label.clone(),
            pin: source.read()?,
        }),
        _ => None,
    };
    let options = ScanOptions {
        login,
        ..ScanOptions::default()
    };
    let mut tokens = inventory::scan(&modules, &mut reports, &options);
    if let Some(label) = &args.token {
        let seen: Vec<String> = tokens.iter().map(|t| format!("`{}`", t.label)).collect();
        tokens.retain(|t| &t.label == label);
        if tokens.is_empty() {
            return Err(anyhow!(
                "no token labelled `{label}`; tokens present: {}",
                if seen.is_empty() {
                    "none".to_owned()
                } else {
                    seen.join(", ")
                }
            ));
        }
    }
    let pcsc = reader::status();
    let mut out = std::io::stdout().lock();
    if args.json {
        let document = listing::to_json(
            listing::Source::Local,
            &pcsc,
            &reports,
            &tokens,
            args.all,
            options.now,
        );
        printable::write_json(&mut out, &document, true)?;
        writeln!(out)?;
    } else {
        print_human(&mut out, &pcsc, &reports, &tokens, args.all)?;
    }
    out.flush()?;
    if let Some(module) = reports.iter().find(|m| m.critical && m.error.is_some()) {
        return Err(anyhow!(
            "the PKCS#11 module {} is marked critical in {} and could not be used: {}",
            module.path.display(),
            module.origin,
            module.error.as_deref().unwrap_or_default()
        ));
    }
    if let Some(problem) = tokens.iter().find_map(|t| {
        t.login_problem
            .as_ref()
            .map(|p| format!("could not log in to `{}`: {p}", t.label))
    }) {
        return Err(anyhow!(problem));
    }
    Ok(())
}

/// The running agent's `list --json` document, when the agent can answer for this command: JSON
/// output, no module options of its own, no login. `None` means list here.
fn from_agent(args: &ListArgs) -> anyhow::Result<Option<serde_json::Value>> {
    let local_only = !args.json
        || args.no_agent
        || args.token.is_some()
        || args.pin.is_some()
        || !args.modules.modules.is_empty()
        || args.modules.no_p11_kit;
    if local_only {
        return Ok(None);
    }
    let Some(mut agent) = crate::agent_client::running(&args.agent) else {
        return Ok(None);
    };
    let document = agent.call("list", json!({ "all": args.all }))?;
    Ok(Some(document))
}

fn print_human(
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
            certauth::signin::identity::describe(info),
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
