//! Choosing the certificate to sign in with ([`select`]): naming one with `--cert`, the remembered choice per
//! endpoint and user, and the terminal picker. Which certificates are eligible at all is a
//! certificate fact ([`crate::x509::eligibility`]).

pub mod choice;
pub mod remembered;
pub mod select;
pub mod terminal;
