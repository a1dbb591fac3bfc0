//! Reaching the server before the PIN: resolve, connect and complete a TLS handshake that
//! verifies the server's certificate against the sign-in's roots, presenting no client
//! certificate, so an unreachable or untrusted server fails before the token is used and before
//! anyone types a PIN. It sends no HTTP request (so it follows no redirect) and never touches a
//! token.
//!
//! A server that wants a client certificate may refuse the empty one with an alert, or close the
//! connection: that is expected, and fine once its certificate and handshake signature checked
//! out. With a proxy set in the environment (which the HTTPS client would use), the server is not
//! checked here: a direct connection could fail where the proxied one works.
//!
//! The handshake also tells which CAs the server accepts client certificates from (the names of
//! its CertificateRequest), so the certificate can be picked with the server's answer in hand.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConnection, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::error::SignInError;
use super::{no_common_tls, untrusted_server, CONNECT_TIMEOUT};
use crate::picker::select::ServerRequest;
use crate::tls::client_config;

/// The variables that make the HTTPS client go through a proxy for an https URL.
const PROXY_VARIABLES: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// What every failure here adds: the token was left alone.
const NOTHING_ASKED: &str = "no PIN was asked and the token was not used";

/// Checks that the server of `url` answers on https with a certificate `roots` trust, and tells
/// what it asks of a client certificate; a [`SignInError::Network`] (or
/// [`SignInError::NotHttps`]) when not. Through a proxy nothing is checked or learnt.
pub fn check_server(
    url: &reqwest::Url,
    roots: RootCertStore,
) -> Result<ServerRequest, SignInError> {
    if url.scheme() != "https" {
        return Err(SignInError::NotHttps {
            url: url.to_string(),
        });
    }
    if let Some(variable) = PROXY_VARIABLES
        .iter()
        .find(|v| std::env::var_os(v).is_some_and(|value| !value.is_empty()))
    {
        tracing::debug!(
            variable,
            "a proxy is set, so the server is not checked before the PIN"
        );
        return Ok(ServerRequest::default());
    }
    let origin = url.origin().ascii_serialization();
    let unreachable = |e: io::Error| {
        SignInError::Network(format!(
            "cannot reach {origin}: {}; {NOTHING_ASKED}",
            unreachable_reason(&e)
        ))
    };
    let (name, addresses) = resolve(url).map_err(unreachable)?;
    let mut tcp = connect(&addresses).map_err(unreachable)?;
    tcp.set_read_timeout(Some(CONNECT_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(CONNECT_TIMEOUT)))
        .map_err(unreachable)?;

    let setup = SignInError::Tls;
    let witness = Arc::new(Witness::new(
        client_config::server_verifier(roots).map_err(setup)?,
    ));
    let recorder = Arc::new(CaRecorder::default());
    let config =
        client_config::server_check_config(witness.clone(), recorder.clone()).map_err(setup)?;
    let mut tls = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| SignInError::Setup(format!("cannot start TLS to {origin}: {e}")))?;
    let mut outcome = Ok(());
    while tls.is_handshaking() && outcome.is_ok() {
        outcome = tls.complete_io(&mut tcp).map(drop);
    }
    let request = || recorder.request();
    match outcome {
        Ok(()) => {
            tls.send_close_notify();
            // A courtesy: the server may have closed already.
            let _ = tls.complete_io(&mut tcp);
            tracing::debug!(%origin, "the server answered with a trusted certificate");
            Ok(request())
        }
        Err(e) if witness.verified() => {
            tracing::debug!(%origin, error = %e, "the server showed a trusted certificate, then ended the handshake without a client certificate");
            Ok(request())
        }
        Err(e) => Err(handshake_failure(&origin, &e)),
    }
}

/// The name to verify the certificate against, and the addresses to try.
fn resolve(url: &reqwest::Url) -> io::Result<(ServerName<'static>, Vec<SocketAddr>)> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let host = url
        .host_str()
        .ok_or_else(|| invalid("the URL names no host".into()))?;
    // An IPv6 literal comes in brackets.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = url.port_or_known_default().unwrap_or(443);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| invalid(format!("`{host}` is not a server name: {e}")))?;
    let addresses: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    Ok((name, addresses))
}

/// A connection to the first address that takes one within [`CONNECT_TIMEOUT`].
fn connect(addresses: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name has no address");
    for address in addresses {
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(%address, error = %e, "connecting failed");
                last = e;
            }
        }
    }
    Err(last)
}

fn handshake_failure(origin: &str, error: &io::Error) -> SignInError {
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let message = match tls_error {
        Some(rustls::Error::InvalidCertificate(why)) => {
            return SignInError::UntrustedServer {
                message: format!("{}; {NOTHING_ASKED}", untrusted_server(why)),
            }
        }
        Some(rustls::Error::AlertReceived(alert)) => no_common_tls(*alert),
        _ if matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) =>
        {
            format!(
                "{origin} did not complete a TLS handshake within {} seconds",
                CONNECT_TIMEOUT.as_secs()
            )
        }
        _ => format!("the TLS handshake with {origin} failed: {error}"),
    };
    SignInError::Network(format!("{message}; {NOTHING_ASKED}"))
}

/// Offers no certificate, noting the server's acceptable CA names when it asks for one.
#[derive(Debug, Default)]
struct CaRecorder {
    seen: Mutex<Option<Vec<Vec<u8>>>>,
}

impl CaRecorder {
    fn request(&self) -> ServerRequest {
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        ServerRequest {
            asked: seen.is_some(),
            acceptable_cas: seen.unwrap_or_default(),
        }
    }
}

impl ResolvesClientCert for CaRecorder {
    fn resolve(&self, hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(hints.iter().map(|h| h.to_vec()).collect());
        }
        None
    }

    /// So that a TLS 1.2 server's CertificateRequest reaches [`Self::resolve`].
    fn has_certs(&self) -> bool {
        true
    }
}

/// The verifier the sign-in's client uses, noting that the server's certificate and its
/// handshake signature checked out, so a refusal afterwards tells a reached, trusted server.
#[derive(Debug)]
struct Witness {
    inner: Arc<WebPkiServerVerifier>,
    certificate: AtomicBool,
    signature: AtomicBool,
}

impl Witness {
    fn new(inner: Arc<WebPkiServerVerifier>) -> Self {
        Self {
            inner,
            certificate: AtomicBool::new(false),
            signature: AtomicBool::new(false),
        }
    }

    fn verified(&self) -> bool {
        self.certificate.load(Ordering::SeqCst) && self.signature.load(Ordering::SeqCst)
    }
}

impl ServerCertVerifier for Witness {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        self.certificate.store(true, Ordering::SeqCst);
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = self.inner.verify_tls12_signature(message, cert, dss)?;
        self.signature.store(true, Ordering::SeqCst);
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let valid = self.inner.verify_tls13_signature(message, cert, dss)?;
        self.signature.store(true, Ordering::SeqCst);
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// Why a server could not be reached, in words that point at the fix.
fn unreachable_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => {
            "nothing accepts connections there (connection refused: is the server running, and \
             are the URL's host and port right?)"
                .to_owned()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
            "no answer within {} s (is the host up, and does a firewall let the port through?)",
            CONNECT_TIMEOUT.as_secs()
        ),
        _ => error.to_string(),
    }
}
