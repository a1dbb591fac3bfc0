//! What the load and benchmark examples share: a client certificate's parameters and a
//! mutual-TLS client configuration that makes every connection a full handshake.

#![allow(dead_code, reason = "each example uses a different part")]

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client certificate for `upn` (as its UPN SAN), for client authentication, named
/// `"{upn} ({label})"`.
pub fn client_params(upn: &str, label: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("{upn} ({label})"));
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.subject_alt_names = vec![rcgen::SanType::OtherName((
        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
        rcgen::OtherNameValue::Utf8String(upn.into()),
    ))];
    params
}

/// A rustls client with this identity that trusts `roots` and never resumes a session, so every
/// connection is a full handshake with the client certificate.
pub fn client_config(
    roots: rustls::RootCertStore,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
