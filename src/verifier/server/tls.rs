//! TLS for the two listeners: the server's own identity (made on first start if none is given),
//! and the certauth listener's client-certificate handling.
//!
//! The certauth listener requires a client certificate and checks, in the handshake, that the
//! client holds its key. Whether the certificate signs anyone in (chain by AKI/SKI, revocation,
//! policy) is decided per request by the policy engine, never by rustls-webpki, and session
//! resumption is off so no connection skips it.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::NoServerSessionStorage;
use rustls::{DigitallySignedStruct, DistinguishedName as TlsName, ServerConfig, SignatureScheme};

use crate::verifier::decide::Tenant;
use crate::verifier::policy::Switch;
use crate::x509::cert_info::CertInfo;

/// Entra caps the issuer hints it sends at 16 KB.
pub const MAX_HINT_BYTES: usize = 16 * 1024;

/// The server's certificate chain and key.
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("cannot make a server certificate: {0}")]
    Generate(String),
}

impl ServerIdentity {
    /// Reads a PEM chain and key.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, IdentityError> {
        let file_error = |path: &Path, reason: String| IdentityError::File {
            path: path.display().to_string(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(cert, e.to_string()))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
        Ok(Self { chain, key })
    }

    /// The identity in `dir` (`server.pem`, `server.key`, and `server-ca.pem` for clients to
    /// trust), made there on first use: a local CA and a loopback server certificate.
    pub fn in_directory(dir: &Path) -> Result<Self, IdentityError> {
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        if !cert.exists() {
            generate(dir).map_err(IdentityError::Generate)?;
        }
        Self::from_files(&cert, &key)
    }
}

fn generate(dir: &Path) -> Result<(), String> {
    let error = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(error)?;
    let mut ca = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "certauth verifier local CA");
    ca.distinguished_name = name;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(error)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(error)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "certauth-verifier");
    params.distinguished_name = name;
    params.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(error)?),
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).map_err(error)?;
    let write = |name: &str, text: String, private: bool| -> Result<(), String> {
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        use std::io::Write;
        options
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    write("server-ca.pem", ca_cert.pem(), false)?;
    write("server.key", key.serialize_pem(), true)?;
    write("server.pem", cert.pem() + &ca_cert.pem(), false)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The admin listener: server authentication only.
pub fn admin_config(identity: &ServerIdentity) -> Result<Arc<ServerConfig>, rustls::Error> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    Ok(Arc::new(config))
}

/// The certauth listener for the tenant as it is now (its CA names are the hints).
pub fn certauth_config(
    identity: &ServerIdentity,
    tenant: &Tenant,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = provider();
    let verifier = Arc::new(PolicyDecidesClientVerifier {
        hints: issuer_hints(tenant),
        provider: provider.clone(),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    // A resumed session would carry the client certificate over without a new handshake
    // signature; turn resumption off entirely (the policy also runs on every request).
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The trusted CAs' subjects, or with issuer hints on, the flagged ones (all if none is), up to
/// 16 KB.
pub fn issuer_hints(tenant: &Tenant) -> Vec<TlsName> {
    let cas = tenant.store.cas();
    let flagged: Vec<_> = cas.iter().filter(|ca| ca.issuer_hint).collect();
    let chosen: Vec<_> = if tenant.policy.issuer_hints_configuration.state == Switch::Enabled
        && !flagged.is_empty()
    {
        flagged
    } else {
        cas.iter().collect()
    };
    let mut total = 0;
    let mut hints = Vec::new();
    for ca in chosen {
        total += ca.info.subject_der.len();
        if total > MAX_HINT_BYTES {
            tracing::warn!(ca = %ca.info.subject, "issuer hints are over 16 KB; later CAs are not hinted");
            break;
        }
        hints.push(TlsName::from(ca.info.subject_der.clone()));
    }
    hints
}

/// Requires a client certificate and the handshake signature made with its key; leaves the rest
/// to the policy engine.
#[derive(Debug)]
struct PolicyDecidesClientVerifier {
    hints: Vec<TlsName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for PolicyDecidesClientVerifier {
    fn root_hint_subjects(&self) -> &[TlsName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Only that it is a certificate: trust, validity and revocation are the engine's.
        CertInfo::from_der(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
