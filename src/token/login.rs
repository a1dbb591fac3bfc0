//! The one lockout-safe login to a token: every login, for a sign-in or a listing, goes through
//! `log_in`, and every attempt is decided by the pure [`next_step`].
//!
//! Before each attempt the token's flags are read again: a locked PIN stops at once, a PIN on its
//! final try is not sent unless the user insists, a PIN pad gets `C_Login` with no PIN (or, for a
//! caller that refuses PIN pads, nothing). A wrong PIN is reported with the token's new state and
//! retried only while that is safe and someone can type a different PIN. A PIN the token could
//! never accept (empty, holding NUL, outside the token's length range) is refused before
//! `C_Login`, and one sign-in sends at most [`MAX_ATTEMPTS`] PINs whatever the token's flags say,
//! so a source that answers instantly cannot wear the token down. PINs stay in `secrecy` types
//! and are never logged.

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use secrecy::{ExposeSecret, SecretString};

use super::error::TokenError;
pub use super::pin_length::{PinLength, PinRefusal, MAX_PIN_BYTES};
use super::session::fresh_login;
use crate::remedy::Remedy;

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
    fn read(pkcs11: &Pkcs11, slot: Slot) -> Result<Self, CkError> {
        let info = super::info::token_info(pkcs11, slot)?;
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
    /// The token has a PIN pad and the caller does not use PIN pads: send nothing.
    StopPinPad,
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

/// Whether a login may ask for the PIN on the reader's PIN pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PinPad {
    /// A sign-in: the user types the PIN on the pad.
    #[default]
    Use,
    /// A listing: nobody is waiting at the pad, so a PIN-pad token is left alone.
    Refuse,
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

/// [`next_step`] for a caller that may refuse the PIN pad: the token is then judged as one
/// without a pad (a lock or a final try still say so first), and refused where a PIN would be
/// asked for.
pub fn next_step_for(
    state: PinState,
    final_try: FinalTry,
    pin_pad: PinPad,
    attempts_made: u32,
) -> Step {
    if pin_pad == PinPad::Use {
        return next_step(state, final_try, attempts_made);
    }
    let without_pad = PinState {
        pin_pad: false,
        ..state
    };
    match next_step(without_pad, final_try, attempts_made) {
        Step::AskPin if state.pin_pad => Step::StopPinPad,
        step => step,
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
#[error("{message}")]
pub struct PinPromptError {
    pub message: String,
    /// What the user can change so the source works.
    pub remedy: Option<Remedy>,
}

impl PinPromptError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            remedy: None,
        }
    }
}

/// Why no login happened.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(
        "the PIN of `{token}` is blocked; it needs unblocking with the PUK, or by your help desk"
    )]
    Locked { token: String },
    #[error("the PIN of `{token}` is on its final try: a wrong PIN would lock the token, so none was sent")]
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
    NoPin {
        token: String,
        reason: String,
        /// What the user can change to give one.
        remedy: Option<Remedy>,
    },
    #[error("the PIN pad entry on `{token}` was cancelled")]
    PinPadCancelled { token: String },
    /// Only with [`PinPad::Refuse`].
    #[error("`{token}` has a PIN pad, and this login does not use it")]
    PinPadNotUsed { token: String },
    #[error("logging in to `{}` failed: {}", .0.token, .0.source)]
    Token(TokenError),
}

impl LoginError {
    /// What the user can change to log in.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            Self::FinalTryRefused { .. } => Some(Remedy::AllowFinalTry),
            Self::NoPin { remedy, .. } => *remedy,
            _ => None,
        }
    }
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

/// The token a login is for: its module, its slot now, a session on it, and its label. Only the
/// token module makes one: other modules log in through [`super::session::LoggedInToken`].
pub(crate) struct LoginTarget<'a> {
    /// The module's path: a hosted module's C_Login is watched ([`super::host`]).
    pub(crate) module: &'a std::path::Path,
    pub(crate) pkcs11: &'a Pkcs11,
    pub(crate) slot: Slot,
    pub(crate) session: &'a Session,
    pub(crate) token: &'a str,
}

impl LoginTarget<'_> {
    fn pin_state(&self) -> Result<PinState, LoginError> {
        PinState::read(self.pkcs11, self.slot)
            .map_err(|e| LoginError::Token(TokenError::on(self.token, "C_GetTokenInfo")(e)))
    }

    /// The state after a failed try, or `before` when it cannot be read.
    fn pin_state_after(&self, before: PinState) -> PinState {
        PinState::read(self.pkcs11, self.slot).unwrap_or(before)
    }

    fn failed(&self, source: CkError) -> LoginError {
        LoginError::Token(TokenError::on(self.token, "C_Login")(source))
    }
}

/// What the caller allows a login to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginRules {
    pub final_try: FinalTry,
    pub pin_pad: PinPad,
}

/// Logs the user in on `at.session`. `certificate` names what the PIN is for in prompts.
pub(crate) fn log_in(
    at: &LoginTarget<'_>,
    certificate: &str,
    prompt: &mut dyn PinPrompt,
    rules: LoginRules,
) -> Result<LoggedIn, LoginError> {
    let token = at.token.to_owned();
    let mut attempt = 0;
    let mut allow = rules.final_try;
    loop {
        attempt += 1;
        let state = at.pin_state()?;
        match next_step_for(state, allow, rules.pin_pad, attempt - 1) {
            Step::StopLocked => return Err(LoginError::Locked { token }),
            Step::UsePinPad => return pin_pad_login(at, state, prompt),
            Step::StopPinPad => return Err(LoginError::PinPadNotUsed { token }),
            Step::StopAttemptsSpent => {
                return Err(LoginError::AttemptsSpent {
                    token,
                    attempts: attempt - 1,
                    state,
                })
            }
            Step::ConfirmFinalTry => {
                if prompt.confirm_final_try(&token) {
                    allow = FinalTry::Allow;
                    attempt -= 1;
                    continue;
                }
                return Err(LoginError::FinalTryRefused { token });
            }
            Step::AskPin => {}
        }
        let request = PinRequest {
            token: &token,
            certificate,
            warning: state.warning(),
            attempt,
        };
        let pin = ask_pin(&request, prompt)?;
        // Refused before C_Login: an empty, NUL-holding or mis-sized PIN would only spend a try.
        if let Err(refusal) = state.length.check(pin.expose_secret()) {
            return Err(LoginError::PinRefused { token, refusal });
        }
        if let Some(logged_in) = send_pin(at, state, pin, prompt)? {
            return Ok(logged_in);
        }
    }
}

fn ask_pin(
    request: &PinRequest<'_>,
    prompt: &mut dyn PinPrompt,
) -> Result<SecretString, LoginError> {
    let no_pin = |reason, remedy| LoginError::NoPin {
        token: request.token.to_owned(),
        reason,
        remedy,
    };
    prompt
        .ask(request)
        .map_err(|e| no_pin(e.message, e.remedy))?
        .ok_or_else(|| no_pin("none was given".to_owned(), None))
}

/// `C_Login` with the reader's PIN pad.
fn pin_pad_login(
    at: &LoginTarget<'_>,
    state: PinState,
    prompt: &mut dyn PinPrompt,
) -> Result<LoggedIn, LoginError> {
    let token = at.token.to_owned();
    prompt.notice(&format!(
        "Enter the PIN for `{token}` on the reader's PIN pad."
    ));
    match fresh_login(at.session, None) {
        Ok(()) => Ok(LoggedIn { pin: None }),
        Err(CkError::Pkcs11(RvError::FunctionCanceled, _)) => {
            Err(LoginError::PinPadCancelled { token })
        }
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(LoginError::WrongPin {
            token,
            state: at.pin_state_after(state),
        }),
        Err(e) => Err(at.failed(e)),
    }
}

/// `C_Login` with `pin`: logged in, or `None` when the PIN was wrong and may be asked again.
fn send_pin(
    at: &LoginTarget<'_>,
    state: PinState,
    pin: SecretString,
    prompt: &mut dyn PinPrompt,
) -> Result<Option<LoggedIn>, LoginError> {
    let token = at.token.to_owned();
    let _call = super::watched_call(at.module);
    match fresh_login(at.session, Some(&pin)) {
        Ok(()) => Ok(Some(LoggedIn { pin: Some(pin) })),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(LoginError::Locked { token }),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            let after = at.pin_state_after(state);
            let wrong = LoginError::WrongPin {
                token,
                state: after,
            };
            // Retry only with a person at the keyboard and the token not locked; the next
            // round re-checks the final-try flag before anything is sent.
            if !prompt.can_retry() || after.locked {
                return Err(wrong);
            }
            prompt.notice(&format!("{wrong}."));
            Ok(None)
        }
        Err(e) => Err(at.failed(e)),
    }
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
    fn a_listing_leaves_a_pin_pad_alone_after_the_lock_and_final_try_checks() {
        let pad = PinState {
            pin_pad: true,
            ..PinState::default()
        };
        let refuse = |state| next_step_for(state, FinalTry::Refuse, PinPad::Refuse, 0);
        assert_eq!(refuse(pad), Step::StopPinPad);
        let final_try = PinState {
            final_try: true,
            ..pad
        };
        assert_eq!(refuse(final_try), Step::ConfirmFinalTry);
        let locked = PinState {
            locked: true,
            ..pad
        };
        assert_eq!(refuse(locked), Step::StopLocked);
        assert_eq!(refuse(PinState::default()), Step::AskPin);
        assert_eq!(
            next_step_for(pad, FinalTry::Refuse, PinPad::Use, 0),
            Step::UsePinPad
        );
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
