//! Choosing the certificate to sign in with: which candidates are eligible, naming one with
//! `--cert`, the remembered choice per endpoint and user, and the terminal picker.

pub mod choice;
pub mod eligibility;
pub mod remembered;
pub mod terminal;
