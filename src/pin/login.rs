//! Logging in to a token without ever locking it by accident.
//!
//! Before each attempt the token's flags are read again: a locked PIN stops at once, a PIN on its
//! final try is not sent unless the user insists, a PIN pad gets `C_Login` with no PIN. A wrong PIN
//! is reported with the token's new state and retried only while that is safe and someone can type
//! a different PIN. A PIN the token could never accept (empty, holding NUL, outside the token's
//! length range) is refused before `C_Login`, and one sign-in sends at most [`MAX_ATTEMPTS`] PINs
//! whatever the token's flags say, so a source that answers instantly cannot wear the token down.
//! A token this process is already logged in to (the agent holds logins for other endpoints) is
//! logged out before `C_Login`, so the PIN is checked rather than answered with
//! `USER_ALREADY_LOGGED_IN`, whatever it was.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use secrecy::{ExposeSecret, SecretString};

pub use crate::token::pin_length::{PinLength, PinRefusal, MAX_PIN_BYTES};

/// The most PINs one sign-in sends to a token. A card that reports no COUNT_LOW/FINAL_TRY flags
/// would otherwise be locked by a PIN source that keeps answering.
pub const MAX_ATTEMPTS: u32 = 3;

/// The PIN state a token reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PinState {
    pub count_low: bool,
    pub final_try: bool,
    pub locked: bool,
    pub pin_pad: bool,
    pub length: PinLength,
}

/// The PIN prompt's warnings ([`PinState::warning`]).
pub const FINAL_TRY_WARNING: &str = "FINAL TRY: one more wrong PIN locks this token";
pub const COUNT_LOW_WARNING: &str =
    "PIN count low: a wrong PIN has been entered; few tries are left";

/// The warning `text` names, if it is one of [`PinState::warning`]'s.
pub fn known_warning(text: &str) -> Option<&'static str> {
    [FINAL_TRY_WARNING, COUNT_LOW_WARNING]
        .into_iter()
        .find(|known| *known == text)
}

impl PinState {
    pub fn read(pkcs11: &Pkcs11, slot: Slot) -> Result<Self, CkError> {
        let info = crate::token::info::token_info(pkcs11, slot)?;
        Ok(Self {
            count_low: info.user_pin_count_low(),
            final_try: info.user_pin_final_try(),
            locked: info.user_pin_locked(),
            pin_pad: info.protected_authentication_path(),
            length: PinLength::from_token(info.min_pin_length(), info.max_pin_length()),
        })
    }

    /// A warning to show with the PIN prompt, if any.
    pub fn warning(&self) -> Option<&'static str> {
        if self.final_try {
            Some(FINAL_TRY_WARNING)
        } else if self.count_low {
            Some(COUNT_LOW_WARNING)
        } else {
            None
        }
    }
}

/// What to do before sending a PIN, given the token's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The PIN is blocked: nothing may be sent.
    StopLocked,
    /// Use the reader's PIN pad.
    UsePinPad,
    /// [`MAX_ATTEMPTS`] PINs were sent in this sign-in: send no more.
    StopAttemptsSpent,
    /// Final try and the user has not said to go ahead: ask them, or refuse.
    ConfirmFinalTry,
    /// Ask for the PIN and send it.
    AskPin,
}

/// Whether the user has agreed to spend the final try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalTry {
    #[default]
    Refuse,
    /// `--allow-final-try`
    Allow,
}

/// The decision for one attempt, after `attempts_made` PINs were sent in this sign-in. Pure, so
/// every branch is tested without a card.
pub fn next_step(state: PinState, final_try: FinalTry, attempts_made: u32) -> Step {
    if state.locked {
        Step::StopLocked
    } else if state.pin_pad {
        Step::UsePinPad
    } else if attempts_made >= MAX_ATTEMPTS {
        Step::StopAttemptsSpent
    } else if state.final_try && final_try == FinalTry::Refuse {
        Step::ConfirmFinalTry
    } else {
        Step::AskPin
    }
}

/// Who supplies the PIN, and talks to the user about it. The library never talks to the user
/// itself: the command line or the desktop agent implements this.
pub trait PinPrompt {
    /// Asks for the PIN of `token` to use `certificate`. `None` means no PIN can be had (no
    /// terminal, the user cancelled).
    fn ask(&mut self, request: &PinRequest<'_>) -> Result<Option<SecretString>, PinPromptError>;
    /// Whether a second attempt could bring a different PIN (a person typing, not a file).
    fn can_retry(&self) -> bool;
    /// Asks the user whether to spend the final try; `false` without a person to ask.
    fn confirm_final_try(&mut self, token: &str) -> bool;
    /// Asks the user to allow a sign-in that needs no PIN (`question` says which); `false`
    /// without a person to ask.
    fn confirm_sign_in(&mut self, question: &str) -> bool {
        let _ = question;
        false
    }
    /// Tells the user something (wrong PIN, use the PIN pad).
    fn notice(&mut self, message: &str);
}

/// One request for a PIN.
#[derive(Debug, Clone)]
pub struct PinRequest<'a> {
    pub token: &'a str,
    pub certificate: &'a str,
    pub warning: Option<&'static str>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// A PIN source that failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PinPromptError(pub String);

/// Why no login happened.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "the PIN of `{token}` is blocked; it needs unblocking with the PUK, or by your help desk"
    )]
    Locked { token: String },
    #[error("the PIN of `{token}` is on its final try: a wrong PIN would lock the token, so none was sent. Run again with --allow-final-try if you are sure of the PIN")]
    FinalTryRefused { token: String },
    #[error("wrong PIN for `{token}`{}", state_suffix(.state))]
    WrongPin { token: String, state: PinState },
    #[error("stopped after {attempts} wrong PINs for `{token}`{}: no further PIN is sent in one sign-in. Check the PIN, then sign in again", state_suffix(.state))]
    AttemptsSpent {
        token: String,
        attempts: u32,
        state: PinState,
    },
    #[error("the PIN for `{token}` was not sent to the token: {refusal}. No try was spent; give the right PIN")]
    PinRefused { token: String, refusal: PinRefusal },
    #[error("no PIN for `{token}`: {reason}")]
    NoPin { token: String, reason: String },
    #[error("the PIN pad entry on `{token}` was cancelled")]
    PinPadCancelled { token: String },
    #[error("logging in to `{token}` failed: {source}")]
    Token { token: String, source: CkError },
}

fn state_suffix(state: &PinState) -> String {
    if state.locked {
        "; the token is now LOCKED".to_owned()
    } else if state.final_try {
        "; the next wrong PIN locks the token".to_owned()
    } else if state.count_low {
        "; few tries are left".to_owned()
    } else {
        String::new()
    }
}

/// Logged in. For an always-authenticate key the PIN is kept for its context-specific logins.
pub struct LoggedIn {
    pub pin: Option<SecretString>,
}

/// Logs the user in on `session`. `certificate` names what the PIN is for in prompts.
pub fn log_in(
    pkcs11: &Pkcs11,
    slot: Slot,
    session: &Session,
    token: &str,
    certificate: &str,
    prompt: &mut dyn PinPrompt,
    final_try: FinalTry,
) -> Result<LoggedIn, LoginError> {
    let token_error = |source| LoginError::Token {
        token: token.to_owned(),
        source,
    };
    let mut attempt = 0;
    let mut allow = final_try;
    loop {
        attempt += 1;
        let state = PinState::read(pkcs11, slot).map_err(token_error)?;
        match next_step(state, allow, attempt - 1) {
            Step::StopLocked => {
                return Err(LoginError::Locked {
                    token: token.to_owned(),
                })
            }
            Step::UsePinPad => {
                prompt.notice(&format!(
                    "Enter the PIN for `{token}` on the reader's PIN pad."
                ));
                return match fresh_login(session, None) {
                    Ok(()) => Ok(LoggedIn { pin: None }),
                    Err(CkError::Pkcs11(RvError::FunctionCanceled, _)) => {
                        Err(LoginError::PinPadCancelled {
                            token: token.to_owned(),
                        })
                    }
                    Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(LoginError::WrongPin {
                        token: token.to_owned(),
                        state: PinState::read(pkcs11, slot).unwrap_or(state),
                    }),
                    Err(e) => Err(token_error(e)),
                };
            }
            Step::StopAttemptsSpent => {
                return Err(LoginError::AttemptsSpent {
                    token: token.to_owned(),
                    attempts: attempt - 1,
                    state,
                })
            }
            Step::ConfirmFinalTry => {
                if prompt.confirm_final_try(token) {
                    allow = FinalTry::Allow;
                    attempt -= 1;
                    continue;
                }
                return Err(LoginError::FinalTryRefused {
                    token: token.to_owned(),
                });
            }
            Step::AskPin => {}
        }
        let request = PinRequest {
            token,
            certificate,
            warning: state.warning(),
            attempt,
        };
        let pin = prompt
            .ask(&request)
            .map_err(|e| LoginError::NoPin {
                token: token.to_owned(),
                reason: e.0,
            })?
            .ok_or_else(|| LoginError::NoPin {
                token: token.to_owned(),
                reason: "none was given".to_owned(),
            })?;
        // Refused before C_Login: an empty, NUL-holding or mis-sized PIN would only spend a try.
        if let Err(refusal) = state.length.check(pin.expose_secret()) {
            return Err(LoginError::PinRefused {
                token: token.to_owned(),
                refusal,
            });
        }
        match fresh_login(session, Some(&pin)) {
            Ok(()) => return Ok(LoggedIn { pin: Some(pin) }),
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(LoginError::Locked {
                    token: token.to_owned(),
                })
            }
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                let after = PinState::read(pkcs11, slot).unwrap_or(state);
                let wrong = LoginError::WrongPin {
                    token: token.to_owned(),
                    state: after,
                };
                // Retry only with a person at the keyboard and the token not locked; the next
                // round re-checks the final-try flag before anything is sent.
                if !prompt.can_retry() || after.locked {
                    return Err(wrong);
                }
                prompt.notice(&format!("{wrong}."));
            }
            Err(e) => return Err(token_error(e)),
        }
    }
}

/// One login at a time in this process: the log-out and the `C_Login` after it must not
/// interleave with another thread's, or that thread's login would let an unchecked PIN through.
static LOGIN_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `C_Login` with `pin` (the PIN pad's when `None`), logging the token out first when this
/// process is logged in to it already: login state belongs to the process, not the session, so
/// `C_Login` would otherwise answer `USER_ALREADY_LOGGED_IN` without looking at the PIN. Held
/// logins of the token are logged in again by this login when the PIN is right.
fn fresh_login(session: &Session, pin: Option<&SecretString>) -> Result<(), CkError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_pin_is_never_tried() {
        let state = PinState {
            locked: true,
            ..PinState::default()
        };
        assert_eq!(next_step(state, FinalTry::Allow, 0), Step::StopLocked);
    }

    #[test]
    fn the_final_try_needs_consent() {
        let state = PinState {
            final_try: true,
            count_low: true,
            ..PinState::default()
        };
        assert_eq!(next_step(state, FinalTry::Refuse, 0), Step::ConfirmFinalTry);
        assert_eq!(next_step(state, FinalTry::Allow, 0), Step::AskPin);
        assert_eq!(
            state.warning(),
            Some("FINAL TRY: one more wrong PIN locks this token")
        );
    }

    #[test]
    fn a_pin_pad_gets_no_pin() {
        let state = PinState {
            pin_pad: true,
            ..PinState::default()
        };
        assert_eq!(next_step(state, FinalTry::Refuse, 0), Step::UsePinPad);
    }

    #[test]
    fn an_ordinary_token_is_asked() {
        assert_eq!(
            next_step(PinState::default(), FinalTry::Refuse, 0),
            Step::AskPin
        );
        assert_eq!(PinState::default().warning(), None);
    }

    #[test]
    fn wrong_pin_messages_say_what_is_left() {
        let err = LoginError::WrongPin {
            token: "Card".into(),
            state: PinState {
                final_try: true,
                ..PinState::default()
            },
        };
        assert_eq!(
            err.to_string(),
            "wrong PIN for `Card`; the next wrong PIN locks the token"
        );
    }

    #[test]
    fn no_more_than_max_attempts_are_sent_whatever_the_flags() {
        let quiet = PinState::default();
        assert_eq!(next_step(quiet, FinalTry::Refuse, 1), Step::AskPin);
        assert_eq!(next_step(quiet, FinalTry::Refuse, 2), Step::AskPin);
        assert_eq!(
            next_step(quiet, FinalTry::Refuse, MAX_ATTEMPTS),
            Step::StopAttemptsSpent
        );
        assert_eq!(
            next_step(quiet, FinalTry::Allow, MAX_ATTEMPTS + 7),
            Step::StopAttemptsSpent
        );
        // A locked token still says so first.
        let locked = PinState {
            locked: true,
            ..quiet
        };
        assert_eq!(
            next_step(locked, FinalTry::Refuse, MAX_ATTEMPTS),
            Step::StopLocked
        );
    }

    #[test]
    fn refusal_messages_name_the_token_and_spend_nothing() {
        let err = LoginError::PinRefused {
            token: "Card".into(),
            refusal: PinRefusal::Empty,
        };
        assert_eq!(
            err.to_string(),
            "the PIN for `Card` was not sent to the token: it is empty. No try was spent; give the right PIN"
        );
        let err = LoginError::AttemptsSpent {
            token: "Card".into(),
            attempts: 3,
            state: PinState::default(),
        };
        assert_eq!(
            err.to_string(),
            "stopped after 3 wrong PINs for `Card`: no further PIN is sent in one sign-in. Check the PIN, then sign in again"
        );
    }
}
