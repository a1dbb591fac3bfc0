//! rustls glue: the signing key that lives on a token, the client-certificate resolver, and the
//! client configuration.

pub mod client_config;
pub mod encoding;
pub mod resolver;
pub mod signing_key;

pub use crate::crypto_provider::install_crypto_provider;
