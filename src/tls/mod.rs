//! rustls glue only: the signing key over the token's [`crate::token::sign::KeySigner`], the
//! client-certificate resolver, and the client configuration. No PKCS#11 here: the token signs.

pub mod client_config;
pub mod resolver;
pub mod signing_key;

pub use crate::crypto_provider::install_crypto_provider;
