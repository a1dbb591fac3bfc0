//! Secrets that travel as text (the sign-in token a verifier issues, an admin API key):
//! serialized as they are where the wire or a cache needs them, never shown by `Debug`, so no log
//! line, `{:?}` or panic message prints one; wiped from memory when dropped.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// A bearer secret as text.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The secret itself, for the one place that must send or show it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretText {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for SecretText {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretText([redacted; {} bytes])", self.0.len())
    }
}

impl Drop for SecretText {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret_and_serde_keeps_it() {
        let secret = SecretText::from("eyJ.secret.token");
        let shown = format!("{secret:?} {:#?}", Some(&secret));
        assert!(!shown.contains("secret.token"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"eyJ.secret.token\"");
        let back: SecretText = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose(), "eyJ.secret.token");
    }

    #[test]
    fn a_panic_message_never_shows_the_secret() {
        let secret = SecretText::from("eyJ.secret.token");
        let panicked = std::panic::catch_unwind(|| {
            let held = Some(&secret);
            assert!(held.is_none(), "unexpected {held:?}");
        })
        .unwrap_err();
        let message = panicked
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("redacted"), "{message}");
        assert!(!message.contains("secret.token"), "{message}");
    }
}
