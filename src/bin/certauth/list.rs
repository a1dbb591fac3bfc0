//! `certauth list`: the certificates on every token, as a table grouped by reader and token, or as
//! JSON in the schema `docs/list-json.md` documents. What a token or a reader says of itself is
//! shown through `printable`; the JSON keeps it exact.

use std::io::Write;

use anyhow::anyhow;
use certauth::picker::eligibility::KeyPresence;
use certauth::printable::{self, printable};
use certauth::reader::{self, PcscStatus};
use certauth::token::inventory::{
    self, CertificateReport, Login, ModuleReport, ScanOptions, TokenReport,
};
use certauth::x509::cert_info::{eku_name, rfc3339};
use certauth::x509::hex;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::cli::ListArgs;
use crate::table::Table;

/// The `schema` value of `certauth list --json`.
pub const SCHEMA: &str = "certauth.list/1";

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
        let document = to_json(
            Source::Local,
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
    let Some(mut agent) = crate::agent_client::AgentConnection::running(&args.agent) else {
        return Ok(None);
    };
    let document = agent.call("list", json!({ "all": args.all }))?;
    Ok(Some(document))
}

fn shown(token: &TokenReport, all: bool) -> impl Iterator<Item = &CertificateReport> {
    token
        .certificates
        .iter()
        .filter(move |c| all || c.eligibility.is_eligible())
}

/// Who scanned the tokens a `list` document shows: its `source`.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The running agent, answering `certauth list --json`.
    #[cfg_attr(not(unix), allow(dead_code, reason = "the agent is Unix's"))]
    Agent,
    /// The `certauth list` process itself.
    Local,
}

/// The `certauth list --json` document (docs/list-json.md); the agent's `list` answers with it too.
pub fn to_json(
    source: Source,
    pcsc: &PcscStatus,
    modules: &[ModuleReport],
    tokens: &[TokenReport],
    all: bool,
    now: OffsetDateTime,
) -> Value {
    let (status, readers) = match pcsc {
        PcscStatus::Running { readers } => ("running", readers.clone()),
        PcscStatus::NotRunning => ("notRunning", Vec::new()),
        PcscStatus::Failed(_) => ("failed", Vec::new()),
    };
    let reader_names: Vec<&str> = readers.iter().map(|r| r.name.as_str()).collect();
    json!({
        "schema": SCHEMA,
        "generatedAt": rfc3339(now),
        "source": match source {
            Source::Agent => "agent",
            Source::Local => "local",
        },
        "pcsc": { "status": status, "message": pcsc.describe(), "readers": readers },
        "modules": modules.iter().map(|m| json!({
            "path": m.path,
            "origin": m.origin,
            "critical": m.critical,
            "library": m.info,
            "error": m.error,
        })).collect::<Vec<_>>(),
        "tokens": tokens.iter().map(|t| json!({
            "module": t.module,
            "slotDescription": t.slot_description,
            "reader": reader_names.iter().find(|r| **r == t.slot_description),
            "removable": t.removable,
            "label": t.label,
            "serial": t.serial,
            "manufacturer": t.manufacturer,
            "model": t.model,
            "flags": t.flags,
            "loggedIn": t.logged_in,
            "loginProblem": t.login_problem,
            "mechanisms": t.mechanisms,
            "error": t.error,
            "certificates": shown(t, all).map(certificate_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn certificate_json(c: &CertificateReport) -> Value {
    let mut value = json!({
        "label": c.label,
        "id": hex(&c.id),
        "uri": c.uri,
        "eligible": c.eligibility.is_eligible(),
        "ineligibleReasons": c.eligibility.reasons.iter().map(|r| json!({
            "code": r.code(),
            "message": r.to_string(),
        })).collect::<Vec<_>>(),
        "privateKey": {
            "presence": c.key.presence,
            "sensitive": c.key.sensitive,
            "extractable": c.key.extractable,
            "alwaysAuthenticate": c.key.always_authenticate,
            "publicKeyPresent": c.key.public_key_present,
        },
        "signMechanisms": c.sign_mechanisms,
        "certificateUserIds": c.user_ids,
        "parseError": c.cert.as_ref().err().map(ToString::to_string),
    });
    if let (Ok(cert), Some(object)) = (&c.cert, value.as_object_mut()) {
        let facts = json!({
            "subject": cert.subject,
            "issuer": cert.issuer,
            "serialNumber": cert.serial_hex(),
            "notBefore": rfc3339(cert.not_before),
            "notAfter": rfc3339(cert.not_after),
            "userPrincipalNames": cert.upns,
            "rfc822Names": cert.rfc822_names,
            "extendedKeyUsage": cert.extended_key_usage.as_ref().map(|ekus| ekus.iter().map(|oid| json!({
                "oid": oid,
                "name": eku_name(oid),
            })).collect::<Vec<_>>()),
            "keyUsage": cert.key_usage.as_ref().map(|ku| ku.names()),
            "policies": cert.policies,
            "subjectKeyIdentifier": cert.subject_key_identifier.as_deref().map(hex),
            "authorityKeyIdentifier": cert.authority_key_identifier.as_deref().map(hex),
            "sha1": cert.sha1,
            "sha256": cert.sha256,
            "keyType": cert.key.kind,
            "keySize": cert.key.bits,
            "curve": cert.key.curve,
        });
        if let Value::Object(facts) = facts {
            object.extend(facts);
        }
    }
    value
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
