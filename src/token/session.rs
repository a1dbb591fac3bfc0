//! PKCS#11 sessions and the login state they carry (C_OpenSession, C_GetSessionInfo, C_Login,
//! C_Logout): finding a token again by serial and label, logging in to it through the one
//! lockout-safe login (`token::login`), and opening its private keys for signing. A session is
//! closed when dropped (cryptoki logs a failed C_CloseSession, it never panics). No PIN is ever
//! logged or kept here beyond what the caller asks.

use std::path::Path;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;

use super::error::TokenError;
use super::info::token_info;
use super::login::{self, LoggedIn, LoginError, LoginRules, LoginTarget, PinPrompt};
use super::module::LoadedModule;
use super::objects;
use super::sign::{Capabilities, ContextLogin, KeyAlgorithm, Pkcs11Key};

/// One login at a time in this process: the log-out and the `C_Login` after it must not
/// interleave with another thread's, or that thread's login would let an unchecked PIN through.
static LOGIN_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `C_Login` with `pin` (the PIN pad's when `None`), logging the token out first when this
/// process is logged in to it already: login state belongs to the process, not the session, so
/// `C_Login` would otherwise answer `USER_ALREADY_LOGGED_IN` without looking at the PIN. Held
/// logins of the token are logged in again by this login when the PIN is right.
pub(crate) fn fresh_login(
    session: &Session,
    pin: Option<&secrecy::SecretString>,
) -> Result<(), CkError> {
    let _turn = LOGIN_TURN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let logged_in = matches!(
        session.get_session_info()?.session_state(),
        SessionState::RoUser | SessionState::RwUser
    );
    if logged_in {
        match session.logout() {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => {}
            Err(e) => return Err(e),
        }
    }
    session.login(UserType::User, pin)
}

/// Why a token could not be opened and logged in to.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No slot holds a token with this serial and label any more.
    #[error("token `{token}` is no longer present")]
    Gone { token: String },
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The slot holding the token with `serial` and `label` now. A token busy in another process can
/// fail C_GetTokenInfo, or drop out of the slot list, for a moment (SoftHSM does while another
/// process writes its files): the look is tried again for about half a second before the token
/// is called gone.
fn find_slot(pkcs11: &Pkcs11, serial: &str, label: &str) -> Result<Slot, SessionError> {
    const LOOKS: u32 = 5;
    for look in 1..=LOOKS {
        for slot in pkcs11
            .get_slots_with_token()
            .map_err(TokenError::on(label, "C_GetSlotList"))?
        {
            let matches = token_info(pkcs11, slot)
                .is_ok_and(|info| info.serial_number() == serial && info.label() == label);
            if matches {
                return Ok(slot);
            }
        }
        if look < LOOKS {
            std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(look)));
        }
    }
    Err(SessionError::Gone {
        token: label.to_owned(),
    })
}

/// A token this process has logged in to; the login lasts as long as this value.
pub struct LoggedInToken {
    module: std::path::PathBuf,
    serial: String,
    label: String,
    pkcs11: Pkcs11,
    slot: Slot,
    /// Keeps the login alive: closing a token's last session logs the user out.
    _login_session: Session,
    pin_pad: bool,
    capabilities: Capabilities,
}

impl std::fmt::Debug for LoggedInToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedInToken")
            .field("label", &self.label)
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl LoggedInToken {
    /// Finds the token with `serial` and `label` on `module` again (slot ids change when a card
    /// is re-inserted or a module re-initialises) and logs in to it. `certificate` names what
    /// the PIN is for in prompts.
    pub fn open(
        module: &LoadedModule,
        serial: &str,
        label: &str,
        certificate: &str,
        prompt: &mut dyn PinPrompt,
        rules: LoginRules,
    ) -> Result<(Self, LoggedIn), SessionError> {
        let pkcs11 = module.pkcs11.clone();
        let slot = find_slot(&pkcs11, serial, label)?;
        let session = pkcs11
            .open_ro_session(slot)
            .map_err(TokenError::on(label, "C_OpenSession"))?;
        let pin_pad = token_info(&pkcs11, slot)
            .map(|info| info.protected_authentication_path())
            .map_err(TokenError::on(label, "C_GetTokenInfo"))?;
        let target = LoginTarget {
            module: &module.candidate.path,
            pkcs11: &pkcs11,
            slot,
            session: &session,
            token: label,
        };
        let logged_in = login::log_in(&target, certificate, prompt, rules)?;
        let mechanisms = pkcs11
            .get_mechanism_list(slot)
            .map_err(TokenError::on(label, "C_GetMechanismList"))?;
        let token = Self {
            module: module.candidate.path.clone(),
            serial: serial.to_owned(),
            label: label.to_owned(),
            pkcs11,
            slot,
            _login_session: session,
            pin_pad,
            capabilities: Capabilities::from_mechanisms(&mechanisms),
        };
        Ok((token, logged_in))
    }

    /// Whether this is the token with `serial` and `label` on the module at `module`.
    pub fn is(&self, module: &Path, serial: &str, label: &str) -> bool {
        self.module == module && self.serial == serial && self.label == label
    }

    /// Whether the token asks for PINs on the reader's PIN pad.
    pub fn pin_pad(&self) -> bool {
        self.pin_pad
    }

    /// The private key with CKA_ID `id`, in a session of its own; `None` when there is none.
    pub fn private_key(&self, id: &[u8]) -> Result<Option<PrivateKey>, TokenError> {
        let label = self.label.as_str();
        let session = self
            .pkcs11
            .open_ro_session(self.slot)
            .map_err(TokenError::on(label, "C_OpenSession"))?;
        let Some(handle) = objects::find_private_key(&session, id)
            .map_err(TokenError::on(label, "C_FindObjects"))?
        else {
            return Ok(None);
        };
        let always_authenticate = objects::always_authenticate(&session, handle)
            .map_err(TokenError::on(label, "C_GetAttributeValue"))?;
        Ok(Some(PrivateKey {
            module: self.module.clone(),
            token: self.label.clone(),
            session,
            handle,
            always_authenticate,
            capabilities: self.capabilities,
        }))
    }
}

/// A private key found on a logged-in token, not yet a signer.
pub struct PrivateKey {
    module: std::path::PathBuf,
    token: String,
    session: Session,
    handle: cryptoki::object::ObjectHandle,
    always_authenticate: bool,
    capabilities: Capabilities,
}

impl PrivateKey {
    /// Whether the key wants a login before every signature (CKA_ALWAYS_AUTHENTICATE).
    pub fn always_authenticate(&self) -> bool {
        self.always_authenticate
    }

    /// The signer over this key. `context_login` is required for an always-authenticate key.
    pub fn into_signer(
        self,
        algorithm: KeyAlgorithm,
        context_login: Option<ContextLogin>,
    ) -> Pkcs11Key {
        Pkcs11Key::new(
            self.token,
            self.session,
            self.handle,
            algorithm,
            self.capabilities,
            context_login,
        )
        .from_module(self.module)
    }
}
