//! Choosing the certificate to sign in with: which candidates are eligible, and (later) ranking,
//! the remembered choice and the terminal picker.

pub mod eligibility;
