//! The documented JSON of the agent half's inventory (`docs/list-json.md`): the `certauth list
//! --json` document (which the agent's `list` answers with too), and the reader, card and token
//! events of `certauth watch --json` (which the agent's `subscribe` streams); and the same
//! listing as a table for a person ([`text`]).

pub mod table;
pub mod text;
pub mod watch;

use std::time::Duration;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::reader::{PcscStatus, ReaderEvent};
use crate::token::inventory::{CertificateReport, ModuleReport, TokenReport};
use crate::x509::cert_info::{eku_name, rfc3339};
use crate::x509::hex;

/// The `schema` value of `certauth list --json`.
pub const SCHEMA: &str = "certauth.list/1";

/// How long one wait for a PC/SC change lasts before looking again.
pub const WATCH_POLL: Duration = Duration::from_millis(500);

/// The time now, as events carry it.
pub fn now() -> String {
    let t = OffsetDateTime::now_utc();
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The certificates of `token` a listing shows: the eligible ones, or all.
pub fn shown(token: &TokenReport, all: bool) -> impl Iterator<Item = &CertificateReport> {
    token
        .certificates
        .iter()
        .filter(move |c| all || c.eligibility.is_eligible())
}

/// Who scanned the tokens a `list` document shows: its `source`.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The running agent, answering `certauth list --json`.
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

/// The failure of a module marked critical, as a list document (`docs/list-json.md`) tells it.
pub fn critical_failure(document: &Value) -> Option<String> {
    let modules = document["modules"].as_array()?;
    let module = modules
        .iter()
        .find(|m| m["critical"] == true && !m["error"].is_null())?;
    Some(format!(
        "the PKCS#11 module {} is marked critical and could not be used: {}",
        module["path"].as_str().unwrap_or("?"),
        module["error"].as_str().unwrap_or("?")
    ))
}

/// Keeps only the token labelled `label`; an error naming the tokens present when there is none.
pub fn keep_only(tokens: &mut Vec<TokenReport>, label: &str) -> Result<(), String> {
    let seen: Vec<String> = tokens.iter().map(|t| format!("`{}`", t.label)).collect();
    tokens.retain(|t| t.label == label);
    if !tokens.is_empty() {
        return Ok(());
    }
    let seen = if seen.is_empty() {
        "none".to_owned()
    } else {
        seen.join(", ")
    };
    Err(format!(
        "no token labelled `{label}`; tokens present: {seen}"
    ))
}

/// One reader event as `certauth watch --json` prints it (and the agent's `subscribe` sends it).
pub fn event_json(event: &ReaderEvent) -> Value {
    let mut value = match event {
        ReaderEvent::ServiceStarted => json!({"event": "serviceStarted"}),
        ReaderEvent::ServiceStopped => json!({"event": "serviceStopped"}),
        ReaderEvent::ReaderAdded { reader } => json!({"event": "readerAdded", "reader": reader}),
        ReaderEvent::ReaderRemoved { reader } => {
            json!({"event": "readerRemoved", "reader": reader})
        }
        ReaderEvent::CardInserted { reader, atr } => {
            json!({"event": "cardInserted", "reader": reader, "atr": hex(atr)})
        }
        ReaderEvent::CardRemoved { reader } => json!({"event": "cardRemoved", "reader": reader}),
    };
    value["time"] = json!(now());
    value
}

/// The reader event `value` carries (as [`event_json`] writes it); `None` for any other event.
pub fn event_from_json(value: &Value) -> Option<ReaderEvent> {
    let reader = || value["reader"].as_str().map(str::to_owned);
    Some(match value["event"].as_str()? {
        "serviceStarted" => ReaderEvent::ServiceStarted,
        "serviceStopped" => ReaderEvent::ServiceStopped,
        "readerAdded" => ReaderEvent::ReaderAdded { reader: reader()? },
        "readerRemoved" => ReaderEvent::ReaderRemoved { reader: reader()? },
        "cardInserted" => ReaderEvent::CardInserted {
            reader: reader()?,
            atr: crate::x509::unhex(value["atr"].as_str()?)?,
        },
        "cardRemoved" => ReaderEvent::CardRemoved { reader: reader()? },
        _ => return None,
    })
}

/// The tokens after a card event, as `certauth watch --json` prints them.
pub fn tokens_json(tokens: &[TokenReport]) -> Value {
    let tokens: Vec<_> = tokens
        .iter()
        .map(|t| {
            json!({
                "label": t.label,
                "serial": t.serial,
                "module": t.module,
                "slotDescription": t.slot_description,
                "certificates": t.certificates.len(),
                "eligible": t.certificates.iter().filter(|c| c.eligibility.is_eligible()).count(),
            })
        })
        .collect();
    json!({"event": "tokens", "time": now(), "tokens": tokens})
}
