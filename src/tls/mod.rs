//! rustls glue: the signing key that lives on a token, the client-certificate resolver, and the
//! client configuration.

pub mod client_config;
pub mod encoding;
pub mod resolver;
pub mod signing_key;

/// Makes ring the process's rustls crypto provider, for anything that builds a TLS client without
/// naming one (reqwest does). Call once at start-up; later calls change nothing.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
