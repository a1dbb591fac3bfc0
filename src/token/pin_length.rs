//! The PIN lengths a token accepts, and the check that keeps a PIN it could never take (empty,
//! holding NUL, too short or too long) from reaching `C_Login` and spending a try. Pure: it never
//! sees a session, and a refusal carries no part of the PIN.

/// The longest PIN ever sent, whatever the token claims: no real token takes more, and a longer
/// one is a mistake (a wrong file, a paste) that must not cost a try.
pub const MAX_PIN_BYTES: usize = 256;

/// The PIN lengths a token accepts (`ulMinPinLen..=ulMaxPinLen`), in bytes (messages say
/// characters: PINs are ASCII in practice), made sane: a minimum of 0 means 1 (an empty PIN is
/// never sent), a maximum of 0, beyond [`MAX_PIN_BYTES`] or `CK_UNAVAILABLE_INFORMATION` means
/// [`MAX_PIN_BYTES`], and a minimum above the maximum is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinLength {
    pub min: usize,
    pub max: usize,
}

impl Default for PinLength {
    fn default() -> Self {
        Self {
            min: 1,
            max: MAX_PIN_BYTES,
        }
    }
}

impl PinLength {
    /// From the token's `ulMinPinLen` and `ulMaxPinLen`.
    pub fn from_token(min: usize, max: usize) -> Self {
        let max = if max == 0 || max > MAX_PIN_BYTES {
            MAX_PIN_BYTES
        } else {
            max
        };
        let min = if min == 0 || min > max { 1 } else { min };
        Self { min, max }
    }

    /// Whether `pin` could be the token's PIN at all. Pure: every case is tested without a token.
    pub fn check(&self, pin: &str) -> Result<(), PinRefusal> {
        if pin.is_empty() {
            Err(PinRefusal::Empty)
        } else if pin.contains('\0') {
            Err(PinRefusal::Nul)
        } else if pin.len() < self.min {
            Err(PinRefusal::TooShort(*self))
        } else if pin.len() > self.max {
            Err(PinRefusal::TooLong(*self))
        } else {
            Ok(())
        }
    }
}

/// Why a PIN was not sent to the token. Carries no part of the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinRefusal {
    #[error("it is empty")]
    Empty,
    #[error("it contains a NUL character")]
    Nul,
    #[error("it is shorter than the token's minimum of {} characters", .0.min)]
    TooShort(PinLength),
    #[error("it is longer than the token's maximum of {} characters", .0.max)]
    TooLong(PinLength),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_the_token_could_never_take_are_refused() {
        let softhsm = PinLength::from_token(4, 255);
        assert_eq!(softhsm, PinLength { min: 4, max: 255 });
        assert_eq!(softhsm.check(""), Err(PinRefusal::Empty));
        assert_eq!(softhsm.check("12\u{0}34"), Err(PinRefusal::Nul));
        assert_eq!(softhsm.check("123"), Err(PinRefusal::TooShort(softhsm)));
        assert_eq!(
            softhsm.check(&"1".repeat(256)),
            Err(PinRefusal::TooLong(softhsm))
        );
        assert_eq!(softhsm.check("1234"), Ok(()));
        assert_eq!(softhsm.check(&"1".repeat(255)), Ok(()));
        assert_eq!(
            PinRefusal::TooShort(softhsm).to_string(),
            "it is shorter than the token's minimum of 4 characters"
        );
    }

    #[test]
    fn absurd_token_lengths_are_made_sane() {
        let sane = PinLength::default();
        // Zero, CK_UNAVAILABLE_INFORMATION and a minimum above the maximum.
        assert_eq!(PinLength::from_token(0, 0), sane);
        assert_eq!(PinLength::from_token(0, usize::MAX), sane);
        assert_eq!(PinLength::from_token(9, 8), PinLength { min: 1, max: 8 });
        assert_eq!(
            PinLength::from_token(usize::MAX, usize::MAX),
            PinLength {
                min: 1,
                max: MAX_PIN_BYTES
            }
        );
        // Empty is refused even when the token says 0 is fine; 1 MB is refused when it says
        // nothing.
        assert_eq!(sane.check(""), Err(PinRefusal::Empty));
        assert_eq!(
            sane.check(&"1".repeat(1 << 20)),
            Err(PinRefusal::TooLong(sane))
        );
    }
}
