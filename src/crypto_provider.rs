//! The one rustls crypto provider of the process, shared by both halves: the agent's TLS client
//! and the verifier's listeners and CRL downloads.

/// Makes ring the process's rustls crypto provider, for anything that builds a TLS client without
/// naming one (reqwest does). Call once at start-up; later calls change nothing.
pub fn install_crypto_provider() {
    // An error means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
