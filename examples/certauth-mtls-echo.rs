//! `certauth-mtls-echo`: a TLS server that requires a client certificate, for the agent's tests
//! and benchmarks before (and beside) the reference verifier.
//!
//! Every request is answered with JSON describing the connection: the TLS version, the client
//! certificate's subject and SHA-256, how many certificates the client sent, the method, path and
//! body. With `--signin-response FILE`, `POST /certauth/signin` instead returns the status and body
//! in FILE (`{"status": 200, "body": {...}}`), so the agent's handling of verifier answers can be
//! tested; the connection facts then come in `X-Client-*` headers.
//!
//! usage: certauth-mtls-echo --cert PEM --key PEM --client-ca PEM [--client-ca PEM ...]
//!        [--listen 127.0.0.1:0] [--tls12-only | --tls13-only] [--client-signatures-pkcs1-only]
//!        [--signin-response FILE] [--redirect PATH STATUS LOCATION ...]
//! With `--redirect`, a request for PATH is answered with STATUS and `Location: LOCATION`, to test
//! which redirects the client follows.
//! It prints `listening on https://ADDR` on stdout once ready. Session resumption is off, so every
//! connection proves the client's key afresh.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::SignatureVerificationAlgorithm;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SignatureScheme};

/// Handshake signatures a client may make when restricted to RSA PKCS#1 v1.5.
static PKCS1_ONLY: &[(SignatureScheme, &[&dyn SignatureVerificationAlgorithm])] = &[
    (
        SignatureScheme::RSA_PKCS1_SHA256,
        &[webpki::ring::RSA_PKCS1_2048_8192_SHA256],
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA384,
        &[webpki::ring::RSA_PKCS1_2048_8192_SHA384],
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA512,
        &[webpki::ring::RSA_PKCS1_2048_8192_SHA512],
    ),
];
use serde_json::{json, Value};

struct Options {
    cert: PathBuf,
    key: PathBuf,
    client_cas: Vec<PathBuf>,
    listen: SocketAddr,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    pkcs1_only: bool,
    signin_response: Option<PathBuf>,
    redirects: Vec<(String, u16, String)>,
}

fn parse_args() -> Result<Options, String> {
    let mut cert = None;
    let mut key = None;
    let mut client_cas = Vec::new();
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut versions = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    let mut signin_response = None;
    let mut pkcs1_only = false;
    let mut redirects = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--cert" => cert = Some(PathBuf::from(value()?)),
            "--key" => key = Some(PathBuf::from(value()?)),
            "--client-ca" => client_cas.push(PathBuf::from(value()?)),
            "--listen" => listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--tls12-only" => versions = vec![&rustls::version::TLS12],
            "--tls13-only" => versions = vec![&rustls::version::TLS13],
            "--client-signatures-pkcs1-only" => pkcs1_only = true,
            "--signin-response" => signin_response = Some(PathBuf::from(value()?)),
            "--redirect" => {
                let path = value()?;
                let status = value()?
                    .parse()
                    .map_err(|e| format!("--redirect status: {e}"))?;
                redirects.push((path, status, value()?));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !listen.ip().is_loopback() {
        return Err("this test server listens on loopback only".into());
    }
    Ok(Options {
        cert: cert.ok_or("--cert is required")?,
        key: key.ok_or("--key is required")?,
        client_cas,
        listen,
        versions,
        pkcs1_only,
        signin_response,
        redirects,
    })
}

fn server_config(options: &Options) -> Result<ServerConfig, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if options.pkcs1_only {
        // Chains still verify with every algorithm; only the client's handshake signature is
        // restricted.
        provider.signature_verification_algorithms = WebPkiSupportedAlgorithms {
            all: provider.signature_verification_algorithms.all,
            mapping: PKCS1_ONLY,
        };
    }
    let provider = Arc::new(provider);
    let mut roots = RootCertStore::empty();
    for file in &options.client_cas {
        for cert in
            CertificateDer::pem_file_iter(file).map_err(|e| format!("{}: {e}", file.display()))?
        {
            roots
                .add(cert.map_err(|e| format!("{}: {e}", file.display()))?)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("client CA: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&options.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("{}: {e}", options.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&options.key)
        .map_err(|e| format!("{}: {e}", options.key.display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&options.versions)
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    // Every connection must prove the client key again.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// What is known of one connection.
#[derive(Clone)]
struct ConnectionFacts {
    tls_version: String,
    subject: String,
    sha256: String,
    chain_length: usize,
}

fn facts(connection: &rustls::ServerConnection) -> ConnectionFacts {
    let certs = connection.peer_certificates().unwrap_or_default();
    let (subject, sha256) = match certs.first() {
        Some(leaf) => {
            let subject = certauth::x509::cert_info::CertInfo::from_der(leaf)
                .map(|info| info.subject)
                .unwrap_or_else(|e| e.to_string());
            (subject, certauth::x509::sha256_thumbprint(leaf))
        }
        None => (String::new(), String::new()),
    };
    ConnectionFacts {
        tls_version: connection
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        subject,
        sha256,
        chain_length: certs.len(),
    }
}

async fn answer(
    request: Request<Incoming>,
    connection: ConnectionFacts,
    signin_response: Option<Arc<(u16, Value)>>,
    redirects: Arc<Vec<(String, u16, String)>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let headers: serde_json::Map<String, Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            )
        })
        .collect();
    let body = request.into_body().collect().await?.to_bytes();
    if let Some((_, status, location)) = redirects.iter().find(|(p, _, _)| *p == path) {
        let response = Response::builder()
            .status(*status)
            .header("location", location.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
        return Ok(response);
    }
    let (status, document) = match (&signin_response, method.as_str(), path.as_str()) {
        (Some(canned), "POST", "/certauth/signin") => (canned.0, canned.1.clone()),
        _ => (
            200,
            json!({
                "method": method,
                "path": path,
                "body": String::from_utf8_lossy(&body),
                "headers": headers,
                "tlsVersion": connection.tls_version,
                "client": {
                    "subject": connection.subject,
                    "sha256": connection.sha256,
                    "chainLength": connection.chain_length,
                },
            }),
        ),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-client-sha256", connection.sha256)
        .header("x-client-tls-version", connection.tls_version)
        .body(Full::new(Bytes::from(document.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"{}"))));
    Ok(response)
}

async fn serve(options: Options) -> Result<(), String> {
    let config = Arc::new(server_config(&options)?);
    let signin_response = match &options.signin_response {
        Some(file) => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let value: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let status = value["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200);
            Some(Arc::new((status, value["body"].clone())))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on https://{address}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let redirects = Arc::new(options.redirects);
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let acceptor = acceptor.clone();
        let signin_response = signin_response.clone();
        let redirects = Arc::clone(&redirects);
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    eprintln!("certauth-mtls-echo: handshake failed: {e}");
                    return;
                }
            };
            let connection = facts(tls.get_ref().1);
            let service = hyper::service::service_fn(move |request| {
                answer(
                    request,
                    connection.clone(),
                    signin_response.clone(),
                    Arc::clone(&redirects),
                )
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                eprintln!("certauth-mtls-echo: connection: {e}");
            }
        });
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("certauth-mtls-echo: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("certauth-mtls-echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("certauth-mtls-echo: {message}");
            ExitCode::FAILURE
        }
    }
}
