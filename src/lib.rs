//! certauth: sign in with the X.509 certificate on a smartcard or HSM token, the way Microsoft Entra
//! certificate-based authentication works.
//!
//! The agent half finds tokens and signs in with the key held on them; the reference verifier half
//! decides, as Entra CBA would, who a certificate signs in and how strongly. [`x509`] is the only
//! module both share. See `DESIGN.md` in the project's shared notes for the architecture.

pub mod fixtures;
pub mod logging;
pub mod verifier;
pub mod x509;
