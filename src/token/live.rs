//! The live inventory: the tokens as last read, each kept with a cheap fingerprint (its serial and
//! label, and the class, CKA_ID and label of each object a public session sees), so that a refresh
//! reads again only the tokens whose fingerprint changed. An unchanged token costs C_GetTokenInfo,
//! one object search and one small attribute read per object; its certificates are not read or
//! parsed again, only judged again at the new time. (Object handles would be cheaper still, but
//! SoftHSM hands out new ones whenever a token's last session closes.)

use std::path::PathBuf;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::slot::{Slot, TokenInfo};
use time::OffsetDateTime;

use super::inventory::{self, ModuleReport, ScanOptions, TokenFlags, TokenReport};
use super::module::LoadedModule;

/// What identifies a token's contents without reading them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    module: PathBuf,
    serial: String,
    label: String,
    /// What names each object a public session sees, sorted; `None` when they could not be
    /// listed.
    objects: Option<Vec<ObjectName>>,
}

impl Fingerprint {
    /// Whether both are of one token (module, serial and label), whatever its objects.
    fn same_token(&self, other: &Self) -> bool {
        (&self.module, &self.serial, &self.label) == (&other.module, &other.serial, &other.label)
    }
}

/// An object's class (as cryptoki names it: its width differs between platforms), CKA_ID and
/// CKA_LABEL.
type ObjectName = (String, Vec<u8>, Vec<u8>);

/// A token as last read, with the slot it was in and the fingerprint it had then.
#[derive(Debug)]
struct Held {
    slot: Slot,
    fingerprint: Fingerprint,
    report: TokenReport,
}

/// Which tokens a refresh looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every token.
    Every,
    /// Only tokens in slots that are not removable devices (SoftHSM, say), whose changes no
    /// card event announces; a card is left as last read.
    Fixed,
}

/// What a refresh found.
#[derive(Debug)]
pub struct Refreshed {
    /// Every token now present, as [`inventory::scan`] would give them.
    pub tokens: Vec<TokenReport>,
    /// How many tokens were read in full (new or changed).
    pub read: usize,
    /// Whether any token came, went or changed since the last refresh.
    pub changed: bool,
    /// How many tokens are gone since the last refresh (not merely changed).
    pub gone: usize,
}

/// The tokens of a set of modules, kept between refreshes.
#[derive(Debug, Default)]
pub struct LiveInventory {
    held: Vec<Held>,
}

impl LiveInventory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the tokens of `modules` in `scope` again, reading in full only the tokens that
    /// are new or whose fingerprint changed; the others keep their report, with their flags as the
    /// token gives them now and eligibility judged at `now`. A token whose slot lost it is
    /// dropped, and so are the tokens of a module that cannot list its slots (noted in
    /// `reports`).
    pub fn refresh(
        &mut self,
        modules: &[LoadedModule],
        reports: &mut [ModuleReport],
        now: OffsetDateTime,
        scope: Scope,
    ) -> Refreshed {
        let mut look = Look {
            previous: std::mem::take(&mut self.held),
            options: ScanOptions {
                now,
                ..ScanOptions::default()
            },
            scope,
            read: 0,
            kept: 0,
        };
        let before = look.previous.len();
        for module in modules {
            let _call = super::watched_call(&module.candidate.path);
            match module.pkcs11.get_slots_with_token() {
                Ok(slots) => {
                    inventory::note_module_working(module, reports);
                    for slot in slots {
                        self.held.extend(look.slot(module, slot));
                    }
                }
                Err(e) => inventory::note_module_failure(module, reports, &e),
            }
        }
        self.held.sort_by(|a, b| {
            (&a.report.module, &a.report.label, &a.report.serial).cmp(&(
                &b.report.module,
                &b.report.label,
                &b.report.serial,
            ))
        });
        let gone = look
            .previous
            .iter()
            .filter(|p| {
                !self
                    .held
                    .iter()
                    .any(|h| h.fingerprint.same_token(&p.fingerprint))
            })
            .count();
        Refreshed {
            tokens: self.held.iter().map(|h| h.report.clone()).collect(),
            read: look.read,
            changed: look.read > 0 || look.kept != before,
            gone,
        }
    }

    /// Forgets every token, so that the next refresh reads them all.
    pub fn forget(&mut self) {
        self.held.clear();
    }
}

/// One refresh under way: what was held before it, and what it has read and kept so far.
struct Look {
    previous: Vec<Held>,
    options: ScanOptions,
    scope: Scope,
    read: usize,
    kept: usize,
}

impl Look {
    /// The token now in `slot` of `module`: kept as it was held when it is a card and only fixed
    /// slots are looked at, or when its fingerprint is unchanged; else read in full. `None` when
    /// the slot has no initialised token.
    fn slot(&mut self, module: &LoadedModule, slot: Slot) -> Option<Held> {
        let path = &module.candidate.path;
        let is_card = |h: &Held| h.slot == slot && &h.report.module == path && h.report.removable;
        if self.scope == Scope::Fixed {
            if let Some(at) = self.previous.iter().position(is_card) {
                self.kept += 1;
                return Some(self.previous.swap_remove(at));
            }
        }
        let (info, fingerprint) = look_at(module, slot)?;
        let same = |h: &Held| fingerprint.objects.is_some() && h.fingerprint == fingerprint;
        if let Some(at) = self.previous.iter().position(same) {
            self.kept += 1;
            let mut held = self.previous.swap_remove(at);
            refresh_report(&mut held.report, &info, self.options.now);
            return Some(held);
        }
        self.read += 1;
        let report = inventory::scan_token(module, slot, &info, &self.options);
        Some(Held {
            slot,
            fingerprint,
            report,
        })
    }
}

/// The token in `slot` and its fingerprint; `None` when it is gone or not initialised. A token
/// whose objects cannot be listed gets a fingerprint that matches nothing held, so it is read
/// (and its error reported) every time.
fn look_at(module: &LoadedModule, slot: Slot) -> Option<(TokenInfo, Fingerprint)> {
    let p11 = &module.pkcs11;
    let info = match super::info::token_info(p11, slot) {
        Ok(info) if info.token_initialized() => info,
        _ => return None,
    };
    let objects = match object_names(p11, slot) {
        Ok(objects) => Some(objects),
        Err(CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _)) => return None,
        Err(_) => None,
    };
    let fingerprint = Fingerprint {
        module: module.candidate.path.clone(),
        serial: info.serial_number().to_owned(),
        label: info.label().to_owned(),
        objects,
    };
    Some((info, fingerprint))
}

/// The class, CKA_ID and CKA_LABEL of every object a public session on `slot` sees, sorted.
fn object_names(p11: &cryptoki::context::Pkcs11, slot: Slot) -> Result<Vec<ObjectName>, CkError> {
    let session = p11.open_ro_session(slot)?;
    let wanted = [
        AttributeType::Class,
        AttributeType::Id,
        AttributeType::Label,
    ];
    let mut names = Vec::new();
    for handle in session.find_objects(&[])? {
        let mut name: ObjectName = (String::new(), Vec::new(), Vec::new());
        for attribute in session.get_attributes(handle, &wanted)? {
            match attribute {
                Attribute::Class(class) => name.0 = class.to_string(),
                Attribute::Id(id) => name.1 = id,
                Attribute::Label(label) => name.2 = label,
                _ => {}
            }
        }
        names.push(name);
    }
    names.sort_unstable();
    Ok(names)
}

/// A kept report brought up to date without reading the token's objects: the flags (PIN
/// counters) as the token gives them now, and each certificate judged at `now`.
fn refresh_report(report: &mut TokenReport, info: &TokenInfo, now: OffsetDateTime) {
    report.flags = TokenFlags::from_info(info);
    for certificate in &mut report.certificates {
        certificate.judge_at(now);
    }
}
