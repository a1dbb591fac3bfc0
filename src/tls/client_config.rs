//! The rustls client configuration for a sign-in: server certificates are always verified (system
//! roots or a CA file), and an RSA identity whose token cannot make PSS signatures is limited to
//! TLS 1.2. The server check before the PIN uses the same provider, versions and roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::resolver::TokenCertResolver;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("{path} holds no CA certificate")]
    EmptyCaFile { path: PathBuf },
    #[error("no trusted root certificates: the system store is empty or unreadable ({0})")]
    NoRoots(String),
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot check server certificates: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// Which TLS versions an identity can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    Tls13And12,
    /// The key cannot make RSA-PSS signatures, which TLS 1.3 requires.
    Tls12Only,
}

/// Reads every certificate in a PEM file.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::CaFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsSetupError::CaFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::EmptyCaFile {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The roots that server certificates must chain to: `ca_file`, or the system's.
pub fn trusted_roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_pem_certificates(path)? {
                roots.add(cert).map_err(|e| TlsSetupError::CaFile {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                let why = native
                    .errors
                    .first()
                    .map_or_else(|| "no certificates found".to_owned(), ToString::to_string);
                return Err(TlsSetupError::NoRoots(why));
            }
        }
    }
    Ok(roots)
}

/// A client configuration that presents token certificates through `resolver`.
pub fn client_config(
    roots: RootCertStore,
    resolver: Arc<TokenCertResolver>,
    versions: Versions,
) -> Result<ClientConfig, TlsSetupError> {
    Ok(builder(versions)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(resolver))
}

/// A client configuration for reaching a server before any token is used: the same versions and
/// cipher suites as [`client_config`] can offer, the server's certificate checked by `verifier`
/// (which must verify it against the same roots), and no client certificate at all: `recorder`
/// only notes what the server asks for.
pub fn server_check_config(
    verifier: Arc<dyn ServerCertVerifier>,
    recorder: Arc<dyn ResolvesClientCert>,
) -> Result<ClientConfig, TlsSetupError> {
    Ok(builder(Versions::Tls13And12)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(recorder))
}

/// The verifier [`client_config`] builds from `roots`, for wrapping.
pub fn server_verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, TlsSetupError> {
    Ok(WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()?)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn builder(
    versions: Versions,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, TlsSetupError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
        Versions::Tls13And12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        Versions::Tls12Only => &[&rustls::version::TLS12],
    };
    Ok(ClientConfig::builder_with_provider(provider()).with_protocol_versions(versions)?)
}
