//! `TokenError`: a PKCS#11 call failed on a token. It carries the facts a message needs (the
//! PKCS#11 function, the token's label, the module's answer) and never advice: callers say what
//! to do next.

use cryptoki::error::{Error as CkError, RvError};

/// A PKCS#11 function failed on a token.
#[derive(Debug, thiserror::Error)]
#[error("{function} failed on token `{token}`: {source}")]
pub struct TokenError {
    /// The PKCS#11 function, e.g. `C_OpenSession` or `C_Sign(CKM_ECDSA)`.
    pub function: &'static str,
    /// The token's label (empty for a call on the module as a whole, such as `C_Finalize`).
    pub token: String,
    pub source: CkError,
}

impl TokenError {
    /// A mapper for `map_err`: `function` failed on the token labelled `token`.
    pub fn on(token: &str, function: &'static str) -> impl FnOnce(CkError) -> Self {
        let token = token.to_owned();
        move |source| Self {
            function,
            token,
            source,
        }
    }

    /// Whether the token was pulled out (or its session went with it) rather than refusing.
    pub fn token_removed(&self) -> bool {
        matches!(
            self.source,
            CkError::Pkcs11(
                RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::SessionHandleInvalid
                    | RvError::SessionClosed,
                _,
            )
        )
    }

    /// The module's own words for the failure, without the function and token.
    pub fn reason(&self) -> String {
        self.source.to_string()
    }
}
