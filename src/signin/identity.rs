//! Turning a chosen certificate into a signer: one login per token and sign-in (the token module
//! finds the token again by serial and label and logs in), the private key by CKA_ID, and the PIN
//! kept only for keys that want it before every signature.

use std::sync::Arc;

use super::error::SignInError;
use crate::picker::select;
use crate::token::inventory::{CertificateReport, TokenReport};
use crate::token::login::{FinalTry, LoginRules, PinPrompt};
use crate::token::module::LoadedModule;
use crate::token::session::{LoggedInToken, SessionError};
use crate::token::sign::{ContextLogin, KeyAlgorithm, KeySigner};
use crate::x509::cert_info::{CertInfo, KeyKind};

const CURVE_P256: &str = "1.2.840.10045.3.1.7";
const CURVE_P384: &str = "1.3.132.0.34";

/// A token this sign-in has logged in to.
struct OpenToken {
    token: LoggedInToken,
    /// The PIN, kept while a key on this token may need it again for each signature.
    pin_for_context: Option<secrecy::SecretString>,
    /// Whether a key opened so far needs [`Self::pin_for_context`].
    pin_needed: bool,
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
                let rules = LoginRules {
                    final_try,
                    ..LoginRules::default()
                };
                let (opened, logged_in) = LoggedInToken::open(
                    module,
                    &token.serial,
                    &token.label,
                    &select::describe(info),
                    prompt,
                    rules,
                )?;
                self.open.push(OpenToken {
                    token: opened,
                    pin_for_context: logged_in.pin,
                    pin_needed: false,
                });
                self.open.len() - 1
            }
        };
        let open = &mut self.open[index];
        let key = open
            .token
            .private_key(&cert.id)?
            .ok_or_else(|| SignInError::NoPrivateKey {
                certificate: select::describe(info),
                token: token.label.clone(),
            })?;
        let context_login = if !key.always_authenticate() {
            None
        } else if open.token.pin_pad() {
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
                        select::describe(info)
                    )))
                }
            }
        };
        let algorithm = key_algorithm(info)?;
        Ok(Arc::new(key.into_signer(algorithm, context_login)))
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
        self.open
            .iter()
            .position(|t| t.token.is(&token.module, &token.serial, &token.label))
    }
}

impl From<SessionError> for SignInError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Gone { token } => Self::TokenGone { token },
            SessionError::Login(e) => Self::Pin(e),
            SessionError::Token(e) => Self::Token(e),
        }
    }
}

fn key_algorithm(info: &CertInfo) -> Result<KeyAlgorithm, SignInError> {
    match (info.key.kind, info.key.bits, info.key.curve.as_deref()) {
        (KeyKind::Rsa, Some(bits), _) => Ok(KeyAlgorithm::Rsa { bits }),
        (KeyKind::Ec, _, Some(CURVE_P256)) => Ok(KeyAlgorithm::EcP256),
        (KeyKind::Ec, _, Some(CURVE_P384)) => Ok(KeyAlgorithm::EcP384),
        _ => Err(SignInError::Setup(format!(
            "{} has a key type certauth cannot sign with (RSA, ECDSA P-256 and P-384 are supported)",
            select::describe(info)
        ))),
    }
}
