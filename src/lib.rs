//! certauth: sign in with the X.509 certificate on a smartcard or HSM token, the way Microsoft Entra
//! certificate-based authentication works.
//!
//! The agent half ([`token`], [`reader`], [`pin`], [`picker`]) finds tokens and signs in with the key
//! held on them; the reference verifier half ([`verifier`]) decides, as Entra CBA would, who a
//! certificate signs in and how strongly. Both build on the shared layer, and neither imports the
//! other: [`x509`] holds certificate facts, and [`pki`] what both verify (chains with name
//! chaining, CRLs, sign-in tokens against a JWKS). [`fixtures`]
//! builds the demo and test PKI. [`printable`] shows token, certificate and server text safely on
//! a terminal. [`file_safety`] decides whether a config, remembered-choice or PIN file may be
//! trusted at all.

pub mod agent;
pub mod config;
pub mod crypto_provider;
pub mod demo;
pub mod file_safety;
pub mod fixtures;
pub mod listing;
pub mod logging;
pub mod picker;
pub mod pin;
pub mod pki;
pub mod printable;
pub mod program_docs;
pub mod reader;
pub mod remedy;
pub mod secret_text;
pub mod shell_words;
pub mod signin;
pub mod stop_signal;
pub mod tls;
pub mod token;
pub mod toml_file;
pub mod verifier;
pub mod x509;
