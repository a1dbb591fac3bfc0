//! The inventory: every initialised token on every loaded module, and every certificate on it with
//! its facts, its private key (by CKA_ID), the sign mechanisms the token offers for it, its
//! `pkcs11:` URI, the certificateUserIds it would match, and whether it can sign in.

use std::path::PathBuf;
use std::time::Duration;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use cryptoki::slot::{Slot, TokenInfo};
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use super::discovery::{Discovered, ModuleOrigin};
use super::login::{
    self, FinalTry, LoginError, LoginRules, LoginTarget, PinPad, PinPrompt, PinPromptError,
    PinRequest,
};
use super::module::{self, LibraryInfo, LoadedModule, ModuleError};
use super::objects::find_one;
use super::uri::ObjectUri;
use crate::x509::cert_info::{CertInfo, CertParseError, KeyKind};
use crate::x509::eligibility::{self, Eligibility, KeyPresence};
use crate::x509::user_ids::{certificate_user_ids, CertificateUserId, SerialOrder};

/// Log in to one token, by label, to see private keys.
pub struct Login {
    pub token_label: String,
    pub pin: SecretString,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("token_label", &self.token_label)
            .finish_non_exhaustive()
    }
}

/// Choices for one scan.
#[derive(Debug)]
pub struct ScanOptions {
    pub login: Option<Login>,
    pub now: OffsetDateTime,
    pub serial_order: SerialOrder,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            login: None,
            now: OffsetDateTime::now_utc(),
            serial_order: SerialOrder::default(),
        }
    }
}

/// How a module fared.
#[derive(Debug, Clone)]
pub struct ModuleReport {
    pub path: PathBuf,
    pub origin: ModuleOrigin,
    /// p11-kit's `critical: yes`: its failure fails the command.
    pub critical: bool,
    pub info: Option<LibraryInfo>,
    /// `None` when it loaded and listed its slots.
    pub error: Option<String>,
}

/// Token flags from C_GetTokenInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenFlags {
    pub login_required: bool,
    pub protected_authentication_path: bool,
    pub user_pin_initialized: bool,
    pub user_pin_count_low: bool,
    pub user_pin_final_try: bool,
    pub user_pin_locked: bool,
    pub user_pin_to_be_changed: bool,
    pub write_protected: bool,
}

impl TokenFlags {
    pub(super) fn from_info(info: &TokenInfo) -> Self {
        Self {
            login_required: info.login_required(),
            protected_authentication_path: info.protected_authentication_path(),
            user_pin_initialized: info.user_pin_initialized(),
            user_pin_count_low: info.user_pin_count_low(),
            user_pin_final_try: info.user_pin_final_try(),
            user_pin_locked: info.user_pin_locked(),
            user_pin_to_be_changed: info.user_pin_to_be_changed(),
            write_protected: info.write_protected(),
        }
    }
}

/// A signing mechanism family a token offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SignMechanism {
    #[serde(rename = "RSA-PKCS1")]
    RsaPkcs1,
    #[serde(rename = "RSA-PSS")]
    RsaPss,
    #[serde(rename = "RSA-X-509")]
    RsaRaw,
    #[serde(rename = "ECDSA")]
    Ecdsa,
}

impl SignMechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::RsaPkcs1 => "RSA-PKCS1",
            Self::RsaPss => "RSA-PSS",
            Self::RsaRaw => "RSA-X-509",
            Self::Ecdsa => "ECDSA",
        }
    }

    fn from_type(mechanism: MechanismType) -> Option<Self> {
        Some(match mechanism {
            MechanismType::RSA_PKCS => Self::RsaPkcs1,
            MechanismType::RSA_PKCS_PSS
            | MechanismType::SHA256_RSA_PKCS_PSS
            | MechanismType::SHA384_RSA_PKCS_PSS
            | MechanismType::SHA512_RSA_PKCS_PSS => Self::RsaPss,
            MechanismType::RSA_X_509 => Self::RsaRaw,
            MechanismType::ECDSA => Self::Ecdsa,
            _ => return None,
        })
    }

    fn fits(self, key: KeyKind) -> bool {
        match self {
            Self::RsaPkcs1 | Self::RsaPss | Self::RsaRaw => key == KeyKind::Rsa,
            Self::Ecdsa => key == KeyKind::Ec,
        }
    }
}

/// What the token says about a certificate's private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKeyReport {
    pub presence: KeyPresence,
    pub sensitive: Option<bool>,
    pub extractable: Option<bool>,
    pub always_authenticate: Option<bool>,
    /// Whether a public key object with the same CKA_ID is visible.
    pub public_key_present: bool,
}

/// One certificate object.
#[derive(Debug, Clone)]
pub struct CertificateReport {
    pub label: String,
    pub id: Vec<u8>,
    pub uri: String,
    pub cert: Result<CertInfo, CertParseError>,
    pub key: PrivateKeyReport,
    pub sign_mechanisms: Vec<SignMechanism>,
    pub user_ids: Vec<CertificateUserId>,
    pub eligibility: Eligibility,
}

impl CertificateReport {
    /// Judges eligibility again at `now` (a certificate may have expired or become valid since it
    /// was read).
    pub fn judge_at(&mut self, now: OffsetDateTime) {
        if let Ok(info) = &self.cert {
            self.eligibility = eligibility::assess(info, self.key.presence, now);
        }
    }
}

/// One initialised token.
#[derive(Debug, Clone)]
pub struct TokenReport {
    pub module: PathBuf,
    pub slot_description: String,
    pub removable: bool,
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub flags: TokenFlags,
    pub logged_in: bool,
    /// Why a requested login did not happen or failed.
    pub login_problem: Option<String>,
    /// The sign mechanism families the token offers.
    pub mechanisms: Vec<SignMechanism>,
    pub certificates: Vec<CertificateReport>,
    /// A failure while reading this token's objects.
    pub error: Option<String>,
}

/// A whole inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub modules: Vec<ModuleReport>,
    pub tokens: Vec<TokenReport>,
}

/// Loads every discovered module, one after another, each given `deadline` to load and
/// initialise; failures become reports, never errors.
pub fn load_modules(
    discovered: &Discovered,
    deadline: Duration,
) -> (Vec<LoadedModule>, Vec<ModuleReport>) {
    let mut loaded = Vec::new();
    let mut reports = Vec::new();
    for candidate in &discovered.modules {
        match module::load_within(candidate, deadline) {
            Ok(module) => {
                reports.push(ModuleReport {
                    path: candidate.path.clone(),
                    origin: candidate.origin.clone(),
                    critical: candidate.critical,
                    info: module.info.clone(),
                    error: None,
                });
                loaded.push(module);
            }
            Err(error) => {
                let described = with_softhsm_hint(describe_module_error(&error), &candidate.path);
                if matches!(error, ModuleError::TimedOut { .. }) {
                    // Said even without -v: the user has just sat through the wait.
                    tracing::warn!(
                        "the PKCS#11 module {} (from {}) {described}",
                        candidate.path.display(),
                        candidate.origin
                    );
                } else {
                    tracing::info!(module = %candidate.path.display(), origin = %candidate.origin, %error, "PKCS#11 module unusable");
                }
                reports.push(ModuleReport {
                    path: candidate.path.clone(),
                    origin: candidate.origin.clone(),
                    critical: candidate.critical,
                    info: None,
                    error: Some(described),
                });
            }
        }
    }
    (loaded, reports)
}

/// `described`, and what is missing when SoftHSM's config or token directory is gone (SoftHSM
/// itself says only "Some horrible, unrecoverable error").
fn with_softhsm_hint(described: String, module: &std::path::Path) -> String {
    match super::softhsm_conf::missing(module) {
        // First: SoftHSM's own words are long, and a listing cuts long reasons short.
        Some(missing) => format!("{missing}; {described}"),
        None => described,
    }
}

fn describe_module_error(error: &ModuleError) -> String {
    match error {
        ModuleError::Missing { .. } => "no such file".to_owned(),
        ModuleError::NotPkcs11 { reason, .. } => {
            format!("not a loadable PKCS#11 library: {reason}")
        }
        ModuleError::Initialize { reason, .. } => format!("C_Initialize failed: {reason}"),
        ModuleError::TimedOut { after, .. } => module::stuck_message(*after),
    }
}

/// Reads every token of every loaded module. A failing module is noted in `reports` and skipped.
pub fn scan(
    modules: &[LoadedModule],
    reports: &mut [ModuleReport],
    options: &ScanOptions,
) -> Vec<TokenReport> {
    let mut tokens = Vec::new();
    for module in modules {
        match scan_module(module, options) {
            Ok(found) => tokens.extend(found),
            Err(e) => note_module_failure(module, reports, &e),
        }
    }
    tokens
}

/// Notes in `module`'s report that it could not list its slots (and why its host was restarted,
/// when it is hosted out of process and was).
pub(super) fn note_module_failure(
    module: &LoadedModule,
    reports: &mut [ModuleReport],
    e: &CkError,
) {
    let path = &module.candidate.path;
    #[cfg(unix)]
    let e = match super::host::failure(path) {
        Some(why) => format!("{why}; its host was restarted ({e})"),
        None => e.to_string(),
    };
    if let Some(report) = reports.iter_mut().find(|r| &r.path == path) {
        report.error = Some(with_softhsm_hint(format!("cannot list slots: {e}"), path));
    }
}

/// Notes in `module`'s report that it lists its slots (again).
pub(super) fn note_module_working(module: &LoadedModule, reports: &mut [ModuleReport]) {
    let path = &module.candidate.path;
    #[cfg(unix)]
    super::host::served(path);
    if let Some(report) = reports.iter_mut().find(|r| &r.path == path) {
        report.error = None;
    }
}

fn scan_module(module: &LoadedModule, options: &ScanOptions) -> Result<Vec<TokenReport>, CkError> {
    let p11 = &module.pkcs11;
    let mut tokens = Vec::new();
    for slot in p11.get_slots_with_token()? {
        let info = match super::info::token_info(p11, slot) {
            Ok(info) => info,
            // Pulled out between the slot list and now.
            Err(CkError::Pkcs11(RvError::TokenNotPresent | RvError::DeviceRemoved, _)) => continue,
            Err(e) => return Err(e),
        };
        if !info.token_initialized() {
            continue;
        }
        tokens.push(scan_token(module, slot, &info, options));
    }
    // Slot ids are arbitrary (SoftHSM derives them from random serials): order by name instead.
    tokens.sort_by(|a, b| a.label.cmp(&b.label).then_with(|| a.serial.cmp(&b.serial)));
    Ok(tokens)
}

pub(super) fn scan_token(
    module: &LoadedModule,
    slot: Slot,
    info: &TokenInfo,
    options: &ScanOptions,
) -> TokenReport {
    let p11 = &module.pkcs11;
    let slot_info = p11.get_slot_info(slot).ok();
    let mut report = TokenReport {
        module: module.candidate.path.clone(),
        slot_description: slot_info
            .as_ref()
            .map(|s| s.slot_description().to_owned())
            .unwrap_or_default(),
        removable: slot_info.as_ref().is_some_and(|s| s.removable_device()),
        label: info.label().to_owned(),
        serial: info.serial_number().to_owned(),
        manufacturer: info.manufacturer_id().to_owned(),
        model: info.model().to_owned(),
        flags: TokenFlags::from_info(info),
        logged_in: false,
        login_problem: None,
        mechanisms: Vec::new(),
        certificates: Vec::new(),
        error: None,
    };
    let mut mechanisms: Vec<SignMechanism> = p11
        .get_mechanism_list(slot)
        .unwrap_or_default()
        .into_iter()
        .filter_map(SignMechanism::from_type)
        .collect();
    mechanisms.sort();
    mechanisms.dedup();
    report.mechanisms = mechanisms;

    let session = match p11.open_ro_session(slot) {
        Ok(session) => session,
        Err(e) => {
            report.error = Some(format!("cannot open a session: {e}"));
            return report;
        }
    };
    if let Some(login) = options
        .login
        .as_ref()
        .filter(|l| l.token_label == report.label)
    {
        match log_in(module, slot, &session, &report.flags, login) {
            Ok(()) => report.logged_in = true,
            Err(problem) => report.login_problem = Some(problem),
        }
    } else if !report.flags.login_required {
        report.logged_in = true;
    }
    match read_certificates(&session, &report, options) {
        Ok(certificates) => report.certificates = certificates,
        Err(e) => report.error = Some(format!("cannot read certificates: {e}")),
    }
    report
}

/// Logs in for the inventory through the one lockout-safe login, with the PIN given and no one
/// to ask: a token on its final try or locked is not tried, a PIN-pad token is left alone, a PIN
/// the token could never take is not sent, and a wrong PIN is not tried again.
fn log_in(
    module: &LoadedModule,
    slot: Slot,
    session: &Session,
    flags: &TokenFlags,
    login: &Login,
) -> Result<(), String> {
    let target = LoginTarget {
        module: &module.candidate.path,
        pkcs11: &module.pkcs11,
        slot,
        session,
        token: &login.token_label,
    };
    let rules = LoginRules {
        final_try: FinalTry::Refuse,
        pin_pad: PinPad::Refuse,
    };
    let mut given = GivenPin(Some(login.pin.clone()));
    match login::log_in(&target, "", &mut given, rules) {
        Ok(_) => Ok(()),
        Err(LoginError::Locked { .. }) if flags.user_pin_locked => {
            Err("the user PIN is locked; not tried".into())
        }
        Err(LoginError::Locked { .. }) => Err("the user PIN is locked".into()),
        Err(LoginError::FinalTryRefused { .. }) => Err(
            "the user PIN is on its final try; not tried, so a typo cannot lock the token".into(),
        ),
        Err(LoginError::PinPadNotUsed { .. }) => {
            Err("the token has a PIN pad; listing does not log in to it".into())
        }
        Err(LoginError::PinRefused { refusal, .. }) => Err(format!(
            "the PIN was not sent to the token: {refusal}; no try was spent"
        )),
        Err(LoginError::WrongPin { .. }) => Err("wrong PIN".into()),
        Err(LoginError::Token(e)) => Err(format!("login failed: {}", e.reason())),
        Err(other) => Err(other.to_string()),
    }
}

/// The PIN a listing was given: offered once, with nobody to ask again or to confirm anything.
struct GivenPin(Option<SecretString>);

impl PinPrompt for GivenPin {
    fn ask(&mut self, _: &PinRequest<'_>) -> Result<Option<SecretString>, PinPromptError> {
        Ok(self.0.take())
    }

    fn can_retry(&self) -> bool {
        false
    }

    fn confirm_final_try(&mut self, _: &str) -> bool {
        false
    }

    fn notice(&mut self, _: &str) {}
}

fn read_certificates(
    session: &Session,
    token: &TokenReport,
    options: &ScanOptions,
) -> Result<Vec<CertificateReport>, CkError> {
    let handles = session.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])?;
    let mut certificates = Vec::with_capacity(handles.len());
    for handle in handles {
        let (mut id, mut label, mut value) = (Vec::new(), String::new(), None);
        for attribute in session.get_attributes(
            handle,
            &[
                AttributeType::Id,
                AttributeType::Label,
                AttributeType::Value,
            ],
        )? {
            match attribute {
                Attribute::Id(v) => id = v,
                Attribute::Label(v) => label = String::from_utf8_lossy(&v).into_owned(),
                Attribute::Value(v) => value = Some(v),
                _ => {}
            }
        }
        let cert = match value {
            Some(der) => CertInfo::from_der(&der),
            None => Err(CertParseError("the object has no CKA_VALUE".into())),
        };
        let key = private_key(session, &id, token)?;
        let key_kind = cert.as_ref().map(|c| c.key.kind).unwrap_or(KeyKind::Other);
        let sign_mechanisms = match key.presence {
            KeyPresence::Absent => Vec::new(),
            _ => token
                .mechanisms
                .iter()
                .copied()
                .filter(|m| m.fits(key_kind))
                .collect(),
        };
        let (user_ids, eligibility) = match &cert {
            Ok(info) => (
                certificate_user_ids(info, options.serial_order),
                eligibility::assess(info, key.presence, options.now),
            ),
            Err(e) => (Vec::new(), eligibility::unparsable(&e.0)),
        };
        let uri = ObjectUri {
            token: token.label.clone(),
            manufacturer: token.manufacturer.clone(),
            serial: token.serial.clone(),
            model: token.model.clone(),
            object: (!label.is_empty()).then(|| label.clone()),
            id: id.clone(),
        }
        .certificate();
        certificates.push(CertificateReport {
            label,
            id,
            uri,
            cert,
            key,
            sign_mechanisms,
            user_ids,
            eligibility,
        });
    }
    certificates.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.label.cmp(&b.label)));
    Ok(certificates)
}

fn private_key(
    session: &Session,
    id: &[u8],
    token: &TokenReport,
) -> Result<PrivateKeyReport, CkError> {
    let mut report = PrivateKeyReport {
        presence: KeyPresence::Absent,
        sensitive: None,
        extractable: None,
        always_authenticate: None,
        public_key_present: false,
    };
    if id.is_empty() {
        // Without a CKA_ID nothing pairs the certificate with a key.
        return Ok(report);
    }
    report.public_key_present = find_one(session, ObjectClass::PUBLIC_KEY, id)?.is_some();
    match find_one(session, ObjectClass::PRIVATE_KEY, id)? {
        Some(key) => {
            report.presence = KeyPresence::Present;
            for attribute in session.get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::AlwaysAuthenticate,
                ],
            )? {
                match attribute {
                    Attribute::Sensitive(v) => report.sensitive = Some(v),
                    Attribute::Extractable(v) => report.extractable = Some(v),
                    Attribute::AlwaysAuthenticate(v) => report.always_authenticate = Some(v),
                    _ => {}
                }
            }
        }
        // Private objects stay hidden until the user logs in.
        None if !token.logged_in && token.flags.login_required => {
            report.presence = KeyPresence::NeedsLogin
        }
        None => {}
    }
    Ok(report)
}
