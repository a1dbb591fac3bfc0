//! Turning a chosen certificate into a signing identity: find its token again (by serial and
//! label, never slot id), log in once per token, find the private key by CKA_ID, and wrap it as a
//! rustls signing key.

use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::context::Pkcs11;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::error::SignInError;
use crate::pin::login::{self, FinalTry, PinPrompt};
use crate::tls::signing_key::{Capabilities, ContextLogin, KeyAlgorithm, KeySigner, Pkcs11Key};
use crate::token::info::token_info;
use crate::token::inventory::{CertificateReport, TokenReport};
use crate::token::module::LoadedModule;
use crate::x509::cert_info::{CertInfo, KeyKind};

const CURVE_P256: &str = "1.2.840.10045.3.1.7";
const CURVE_P384: &str = "1.3.132.0.34";

/// A token this sign-in has logged in to.
struct OpenToken {
    module: PathBuf,
    serial: String,
    label: String,
    pkcs11: Pkcs11,
    slot: Slot,
    /// Keeps the login alive: closing a token's last session logs the user out.
    _login_session: Session,
    /// The PIN, kept while a key on this token may need it again for each signature.
    pin_for_context: Option<secrecy::SecretString>,
    /// Whether a key opened so far needs [`Self::pin_for_context`].
    pin_needed: bool,
    pin_pad: bool,
    capabilities: Capabilities,
}

/// The tokens logged in to during one sign-in: one login per token, however many of its
/// certificates are tried.
#[derive(Default)]
pub struct TokenSessions {
    open: Vec<OpenToken>,
}

impl TokenSessions {
    /// A signer for `cert`'s private key, logging in to its token first if this sign-in has not.
    pub fn signer(
        &mut self,
        module: &LoadedModule,
        token: &TokenReport,
        cert: &CertificateReport,
        info: &CertInfo,
        prompt: &mut dyn PinPrompt,
        final_try: FinalTry,
    ) -> Result<Arc<dyn KeySigner>, SignInError> {
        let index = match self.position(token) {
            Some(index) => index,
            None => {
                self.open.push(open_token(
                    module,
                    token,
                    &describe(info),
                    prompt,
                    final_try,
                )?);
                self.open.len() - 1
            }
        };
        let open = &mut self.open[index];
        let p11 = |operation| token_error(&token.label, operation);
        let session = open
            .pkcs11
            .open_ro_session(open.slot)
            .map_err(p11("C_OpenSession"))?;
        let key = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(cert.id.clone()),
            ])
            .map_err(p11("C_FindObjects"))?
            .into_iter()
            .next()
            .ok_or_else(|| SignInError::NoPrivateKey {
                certificate: describe(info),
                token: token.label.clone(),
            })?;
        let always_authenticate = session
            .get_attributes(key, &[AttributeType::AlwaysAuthenticate])
            .map_err(p11("C_GetAttributeValue"))?
            .into_iter()
            .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true)));
        let context_login = if !always_authenticate {
            None
        } else if open.pin_pad {
            Some(ContextLogin::PinPad)
        } else {
            match &open.pin_for_context {
                Some(pin) => {
                    open.pin_needed = true;
                    Some(ContextLogin::Pin(pin.clone()))
                }
                None => {
                    return Err(SignInError::Setup(format!(
                        "the key of {} wants the PIN before every signature, and none is at hand",
                        describe(info)
                    )))
                }
            }
        };
        let algorithm = key_algorithm(info)?;
        Ok(Arc::new(Pkcs11Key::new(
            token.label.clone(),
            session,
            key,
            algorithm,
            open.capabilities,
            context_login,
        )))
    }

    /// Wipes the PINs no opened key needs: call once every key is open.
    pub fn forget_unneeded_pins(&mut self) {
        for token in self.open.iter_mut().filter(|t| !t.pin_needed) {
            token.pin_for_context = None;
        }
    }

    /// Whether a PIN is held for keys that want it before every signature.
    pub fn holds_pin(&self) -> bool {
        self.open.iter().any(|t| t.pin_for_context.is_some())
    }

    fn position(&self, token: &TokenReport) -> Option<usize> {
        self.open.iter().position(|t| {
            t.module == token.module && t.serial == token.serial && t.label == token.label
        })
    }
}

/// Maps a PKCS#11 failure of `operation` on the token labelled `label`.
fn token_error(
    label: &str,
    operation: &'static str,
) -> impl FnOnce(cryptoki::error::Error) -> SignInError {
    let token = label.to_owned();
    move |source| SignInError::Token {
        operation,
        token,
        source,
    }
}

/// How a certificate is named in messages: "Alice Wilber <alice@woodgrove.com>".
pub fn describe(info: &CertInfo) -> String {
    match info.upns.first().or(info.rfc822_names.first()) {
        Some(user) => format!("{} <{user}>", info.display_name()),
        None => info.display_name(),
    }
}

/// A certificate and the token it is on, for messages.
pub fn describe_on(info: &CertInfo, token_label: &str) -> String {
    format!("{} on `{token_label}`", describe(info))
}

fn key_algorithm(info: &CertInfo) -> Result<KeyAlgorithm, SignInError> {
    match (info.key.kind, info.key.bits, info.key.curve.as_deref()) {
        (KeyKind::Rsa, Some(bits), _) => Ok(KeyAlgorithm::Rsa { bits }),
        (KeyKind::Ec, _, Some(CURVE_P256)) => Ok(KeyAlgorithm::EcP256),
        (KeyKind::Ec, _, Some(CURVE_P384)) => Ok(KeyAlgorithm::EcP384),
        _ => Err(SignInError::Setup(format!(
            "{} has a key type certauth cannot sign with (RSA, ECDSA P-256 and P-384 are supported)",
            describe(info)
        ))),
    }
}

/// The slot holding `token` now. A token busy in another process can fail C_GetTokenInfo, or
/// drop out of the slot list, for a moment (SoftHSM does while another process writes its
/// files): the look is tried again for about half a second before the token is called gone.
fn find_slot(pkcs11: &Pkcs11, token: &TokenReport) -> Result<Slot, SignInError> {
    const LOOKS: u32 = 5;
    for look in 1..=LOOKS {
        for slot in pkcs11
            .get_slots_with_token()
            .map_err(token_error(&token.label, "C_GetSlotList"))?
        {
            let matches = token_info(pkcs11, slot).is_ok_and(|info| {
                info.serial_number() == token.serial && info.label() == token.label
            });
            if matches {
                return Ok(slot);
            }
        }
        if look < LOOKS {
            std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(look)));
        }
    }
    Err(SignInError::TokenGone {
        token: token.label.clone(),
    })
}

fn open_token(
    module: &LoadedModule,
    token: &TokenReport,
    certificate: &str,
    prompt: &mut dyn PinPrompt,
    final_try: FinalTry,
) -> Result<OpenToken, SignInError> {
    let pkcs11 = module.pkcs11.clone();
    let p11 = |operation| token_error(&token.label, operation);
    // Slot ids change when a card is re-inserted or a module re-initialises: find it again.
    let slot = find_slot(&pkcs11, token)?;
    let session = pkcs11.open_ro_session(slot).map_err(p11("C_OpenSession"))?;
    let pin_pad = token_info(&pkcs11, slot)
        .map(|info| info.protected_authentication_path())
        .map_err(p11("C_GetTokenInfo"))?;
    let logged_in = login::log_in(
        &pkcs11,
        slot,
        &session,
        &token.label,
        certificate,
        prompt,
        final_try,
    )?;
    let mechanisms = pkcs11
        .get_mechanism_list(slot)
        .map_err(p11("C_GetMechanismList"))?;
    Ok(OpenToken {
        module: token.module.clone(),
        serial: token.serial.clone(),
        label: token.label.clone(),
        pkcs11,
        slot,
        _login_session: session,
        pin_for_context: logged_in.pin,
        pin_needed: false,
        pin_pad,
        capabilities: Capabilities::from_mechanisms(&mechanisms),
    })
}
