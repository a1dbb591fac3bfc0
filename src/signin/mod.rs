//! The sign-in: from chosen certificates to an HTTPS client whose TLS identity lives on the token,
//! then the `POST /certauth/signin` of the certauth protocol (or any request, for
//! `certauth request`). Failures come back classified so the command line can pick an exit code.
//! When the caller names the server, it is reached first ([`reach_server`]), before the choice
//! and any PIN.

pub mod answer_text;
pub mod error;
pub mod identity;
pub mod preflight;
pub mod protocol;
pub mod session;
pub mod terminal_chooser;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use error::SignInError;
use identity::TokenSessions;
use protocol::{sign_in_url, SignInAnswer, SignInRequestBody};

use crate::picker::select::{
    describe, describe_on, refusal_details, Candidate, Selection, ServerRequest,
};
use crate::tls::client_config::{self, read_pem_certificates, Versions};
use crate::tls::resolver::{ClientIdentity, TokenCertResolver};
use crate::tls::signing_key::TokenSigningKey;
use crate::token::inventory::TokenReport;
use crate::token::login::{FinalTry, PinPrompt};
use crate::token::module::LoadedModule;
use crate::x509::cert_info::CertInfo;

/// How the HTTPS client is made.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Roots for the server's certificate; the system's when `None`.
    pub ca_file: Option<PathBuf>,
    /// PEM files with the intermediates (and roots) of the user's certificates.
    pub chain_files: Vec<PathBuf>,
    pub final_try: FinalTry,
    pub timeout: Option<Duration>,
    /// Which HTTP redirects the client follows; none unless the caller asks.
    pub redirects: Redirects,
    /// The URL about to be used: its server is reached, and its certificate verified, before
    /// any token login, so an unreachable or untrusted server costs no PIN. `None` skips that.
    pub preflight: Option<reqwest::Url>,
}

/// How long connecting to the server may take (the preflight and the HTTPS client alike).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which HTTP redirects a client with the token identity follows. A redirect aims the next
/// request, with the client certificate, the headers and (for 307/308) the body, wherever the
/// server says, so following is opt-in and never leaves the first URL's origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Redirects {
    /// A 3xx answer is returned as it is (and `sign_in` refuses it).
    #[default]
    None,
    /// Follow redirects within the first URL's origin (scheme, host, port) over https, up to
    /// [`MAX_REDIRECTS`]; any other redirect fails with [`RedirectRefused`].
    SameOrigin,
}

/// How many same-origin redirects [`Redirects::SameOrigin`] follows.
pub const MAX_REDIRECTS: usize = 10;

/// A redirect the client would not follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server at {from} redirected to {to}, which {reason}, so the redirect was not followed (the certificate, headers and body go only to the origin you gave)")]
pub struct RedirectRefused {
    pub from: String,
    pub to: String,
    pub reason: &'static str,
}

fn redirect_policy(redirects: Redirects) -> reqwest::redirect::Policy {
    match redirects {
        Redirects::None => reqwest::redirect::Policy::none(),
        Redirects::SameOrigin => reqwest::redirect::Policy::custom(|attempt| {
            let Some(first) = attempt.previous().first() else {
                return attempt.stop();
            };
            let reason = if attempt.url().scheme() != "https" {
                Some("is not https")
            } else if attempt.url().origin() != first.origin() {
                Some("is another origin")
            } else if attempt.previous().len() > MAX_REDIRECTS {
                Some("is one redirect too many")
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    let refused = RedirectRefused {
                        from: first.origin().ascii_serialization(),
                        to: attempt.url().to_string(),
                        reason,
                    };
                    attempt.error(refused)
                }
                None => attempt.follow(),
            }
        }),
    }
}

/// An HTTPS client that presents a token certificate.
pub struct PreparedClient {
    pub client: reqwest::Client,
    pub resolver: Arc<TokenCertResolver>,
    pub identities: Vec<ClientIdentity>,
    pub versions: Versions,
    /// Things the user should know (TLS 1.2 only, fallbacks).
    pub notes: Vec<String>,
    /// Keeps the token logins alive while the client is in use (behind a mutex only so the
    /// client can be shared between threads; nothing uses the sessions but their drop).
    sessions: std::sync::Mutex<TokenSessions>,
}

/// The certificates of [`ClientOptions::chain_files`].
pub fn chain_pool(options: &ClientOptions) -> Result<Vec<CertInfo>, SignInError> {
    let mut pool = Vec::new();
    for file in &options.chain_files {
        for der in read_pem_certificates(file).map_err(|e| SignInError::Setup(e.to_string()))? {
            let info = CertInfo::from_der(&der)
                .map_err(|e| SignInError::Setup(format!("{}: {e}", file.display())))?;
            pool.push(info);
        }
    }
    Ok(pool)
}

fn roots(options: &ClientOptions) -> Result<rustls::RootCertStore, SignInError> {
    client_config::trusted_roots(options.ca_file.as_deref()).map_err(SignInError::Tls)
}

/// Reaches [`ClientOptions::preflight`]'s server before anything is chosen, and tells what it
/// asks of a client certificate; `None` without a preflight URL.
pub fn reach_server(options: &ClientOptions) -> Result<Option<ServerRequest>, SignInError> {
    let Some(url) = &options.preflight else {
        return Ok(None);
    };
    preflight::check_server(url, roots(options)?).map(Some)
}

/// Logs in to the chosen certificates' tokens and builds the client (the server is reached
/// first with [`reach_server`], by the caller, before the choice).
pub fn prepare(
    modules: &[LoadedModule],
    tokens: &[TokenReport],
    selection: &Selection,
    prompt: &mut dyn PinPrompt,
    options: &ClientOptions,
) -> Result<PreparedClient, SignInError> {
    let pool = chain_pool(options)?;
    let roots = roots(options)?;
    let mut sessions = TokenSessions::default();
    let mut identities = Vec::new();
    let mut notes = Vec::new();
    for candidate in &selection.candidates {
        identities.push(open_identity(
            modules,
            tokens,
            *candidate,
            &pool,
            prompt,
            options,
            &mut sessions,
        )?);
    }
    sessions.forget_unneeded_pins();
    let (versions, note) = versions_for(&identities);
    notes.extend(note);
    let resolver = Arc::new(TokenCertResolver::new(identities.clone()));
    let config = client_config::client_config(roots, resolver.clone(), versions)
        .map_err(|e| SignInError::Setup(e.to_string()))?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(redirect_policy(options.redirects))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(options.timeout.unwrap_or(Duration::from_secs(60)))
        .build()
        .map_err(|e| SignInError::Setup(format!("cannot build the HTTPS client: {e}")))?;
    Ok(PreparedClient {
        client,
        resolver,
        identities,
        versions,
        notes,
        sessions: std::sync::Mutex::new(sessions),
    })
}

fn open_identity(
    modules: &[LoadedModule],
    tokens: &[TokenReport],
    candidate: Candidate,
    pool: &[CertInfo],
    prompt: &mut dyn PinPrompt,
    options: &ClientOptions,
    sessions: &mut TokenSessions,
) -> Result<ClientIdentity, SignInError> {
    let token = candidate.token(tokens);
    let cert = candidate.cert(tokens);
    let info = cert
        .cert
        .as_ref()
        .map_err(|e| SignInError::Setup(format!("`{}`: {e}", cert.label)))?;
    let module = modules
        .iter()
        .find(|m| m.candidate.path == token.module)
        .ok_or_else(|| {
            SignInError::Setup(format!("module {} is not loaded", token.module.display()))
        })?;
    let signer = sessions.signer(module, token, cert, info, prompt, options.final_try)?;
    let key = TokenSigningKey::new(signer, info.spki.clone());
    if key.schemes().is_empty() {
        return Err(SignInError::NoUsableCertificate {
            summary: format!(
                "token `{}` offers no signing mechanism certauth can use with {}",
                token.label,
                describe(info)
            ),
            details: format!("its mechanisms: {:?}", token.mechanisms),
        });
    }
    Ok(ClientIdentity::new(
        describe_on(info, &token.label),
        info,
        pool,
        key,
    ))
}

/// The TLS versions the identities allow, and what to tell the user when that is TLS 1.2 only.
pub fn versions_for(identities: &[ClientIdentity]) -> (Versions, Option<String>) {
    let limited: Vec<&str> = identities
        .iter()
        .filter(|i| !i.key.can_do_tls13())
        .map(|i| i.description.as_str())
        .collect();
    if limited.is_empty() {
        return (Versions::Tls13And12, None);
    }
    let note = format!(
        "{}: the token cannot make RSA-PSS signatures, which TLS 1.3 requires, so this connection \
         uses TLS 1.2 (where the certificate crosses the network unencrypted)",
        limited.join(", ")
    );
    (Versions::Tls12Only, Some(note))
}

impl PreparedClient {
    /// Whether this client keeps a PIN in memory (for a key that wants it before every
    /// signature); such a client should not outlive its sign-in.
    pub fn holds_pin(&self) -> bool {
        self.sessions
            .lock()
            .map_or(true, |sessions| sessions.holds_pin())
    }

    /// Posts the sign-in request and returns the server's answer, success or refusal.
    pub async fn sign_in(
        &self,
        endpoint: &reqwest::Url,
        username: &str,
    ) -> Result<SignInAnswer, SignInError> {
        let url = sign_in_url(endpoint);
        let response = self
            .client
            .post(url.clone())
            .json(&SignInRequestBody { username })
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status();
        if status.is_redirection() {
            // The sign-in follows no redirect: its answer must come from the endpoint the user
            // chose, and the certificate must not be presented anywhere else.
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            return Err(SignInError::Redirected {
                url: url.to_string(),
                status: status.as_u16(),
                location,
            });
        }
        let body = response.bytes().await.map_err(|e| self.classify(e))?;
        serde_json::from_slice::<SignInAnswer>(&body).map_err(|_| {
            SignInError::Network(format!(
                "{url} did not answer with a certauth sign-in result (HTTP {status}): {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))
        })
    }

    /// Any HTTP request with the token identity.
    pub async fn request(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, SignInError> {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.map_err(|e| self.classify(e))
    }

    /// Turns a transport failure into something a person can act on.
    pub fn classify(&self, error: reqwest::Error) -> SignInError {
        tracing::debug!(?error, "request failed");
        let report = self.resolver.report();
        let token_error = self.identities.iter().find_map(|i| i.key.last_error());
        if let Some(refused) = find_source::<RedirectRefused>(&error) {
            return SignInError::RedirectRefused(refused.clone());
        }
        let tls_error = find_rustls_error(&error);
        if let (Some(rustls::Error::Other(_)), Some(failure)) = (tls_error, token_error) {
            return match failure.removed_token {
                Some(token) => SignInError::RemovedWhileSigning { token },
                None => {
                    SignInError::Setup(format!("the token could not sign: {}", failure.message))
                }
            };
        }
        match tls_error {
            Some(rustls::Error::InvalidCertificate(why)) => SignInError::UntrustedServer {
                message: untrusted_server(why),
            },
            Some(rustls::Error::AlertReceived(alert)) if report.asked && report.offered.is_none() => {
                SignInError::NoUsableCertificate {
                    summary: format!(
                        "no certificate fits what the server accepts, so none was sent (the server answered {alert:?})"
                    ),
                    details: refusal_details(&report.acceptable_cas, &report.refusals),
                }
            }
            // Only an alert after our certificate went out is the server refusing the sign-in;
            // one before (a TLS version or cipher suite in common missing) is a TLS failure.
            Some(rustls::Error::AlertReceived(alert)) if report.offered.is_some() => {
                SignInError::Denied {
                    code: format!("TLS alert {alert:?}"),
                    message: format!(
                        "the server rejected {} during the TLS handshake",
                        report.offered.as_deref().unwrap_or("the connection")
                    ),
                }
            }
            Some(rustls::Error::AlertReceived(alert)) => {
                SignInError::Network(no_common_tls(*alert))
            }
            // In TLS 1.3 the server's alert can race the first request: the client has finished
            // its side of the handshake, the server refuses the empty certificate, and hyper
            // reports only that the connection closed. The handshake report still tells why.
            None if report.asked && report.offered.is_none() && !report.refusals.is_empty() => {
                SignInError::NoUsableCertificate {
                    summary: "no certificate fits what the server accepts, so none was sent (the server then closed the connection)".to_owned(),
                    details: refusal_details(&report.acceptable_cas, &report.refusals),
                }
            }
            _ => SignInError::Network(describe_error(&error)),
        }
    }
}

/// A server certificate the roots do not vouch for, and why, in words.
pub(crate) fn untrusted_server(why: &rustls::CertificateError) -> String {
    use rustls::CertificateError as Why;
    let why = match why {
        Why::UnknownIssuer => "its issuer is not among the trusted roots",
        Why::BadSignature => "its signature does not verify",
        Why::Expired | Why::ExpiredContext { .. } => "it has expired",
        Why::NotValidYet | Why::NotValidYetContext { .. } => "it is not valid yet",
        Why::Revoked => "it is revoked",
        Why::NotValidForName | Why::NotValidForNameContext { .. } => {
            "it is not valid for this server's name"
        }
        Why::InvalidPurpose | Why::InvalidPurposeContext { .. } => "it is not for TLS servers",
        Why::BadEncoding => "it is not well-formed",
        _ => "the certificate verifier refused it",
    };
    format!("the server's certificate is not trusted: {why}")
}

/// An alert before any certificate was asked for or shown.
fn no_common_tls(alert: rustls::AlertDescription) -> String {
    format!(
        "the TLS handshake failed before any certificate was asked for (the server answered {alert:?}): \
         the server and certauth share no TLS version or cipher suite (certauth speaks TLS 1.2 and 1.3)"
    )
}

fn find_rustls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    find_source::<rustls::Error>(error)
}

fn find_source<T: std::error::Error + 'static>(error: &reqwest::Error) -> Option<&T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        // io::Error's source() skips the error it wraps; TLS errors arrive wrapped, sometimes twice.
        current = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

fn describe_error(error: &reqwest::Error) -> String {
    let place = error.url().map_or_else(
        || "the server".to_owned(),
        |url| {
            format!(
                "{}:{}",
                url.host_str().unwrap_or("?"),
                url.port_or_known_default().unwrap_or(0)
            )
        },
    );
    if find_source::<std::io::Error>(error)
        .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    {
        return format!("cannot connect to {place}: connection refused; is the server running?");
    }
    if let Some(rustls::Error::InvalidMessage(_)) = find_rustls_error(error) {
        return format!("the server at {place} did not answer TLS; is it an http:// server?");
    }
    let chain = error_chain(error);
    if chain.contains("invalid HTTP version") {
        return format!(
            "the server at {place} did not answer plain HTTP; is it an https:// server?"
        );
    }
    chain
}

/// `error` and its causes, each once.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
