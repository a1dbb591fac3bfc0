//! What can stop a sign-in, sorted into the classes the command line turns into exit codes.

use crate::picker::select::SelectError;
use crate::remedy::Remedy;
use crate::tls::client_config::TlsSetupError;
use crate::token::error::TokenError;
use crate::token::login::LoginError;

/// The class of a failure; `certauth` documents one exit code per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The server answered and refused.
    Denied,
    /// No certificate on any token could be used.
    NoUsableCertificate,
    /// The PIN: wrong, locked, final try refused, none given.
    Pin,
    /// Network, TLS or the server's certificate.
    Network,
    /// Anything else: configuration, the token misbehaving.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("{summary}\n{details}")]
    NoUsableCertificate { summary: String, details: String },
    #[error("the token holds no private key for {certificate} (on `{token}`)")]
    NoPrivateKey { certificate: String, token: String },
    #[error("token `{token}` is no longer present; insert it and try again")]
    TokenGone { token: String },
    #[error(transparent)]
    Pin(#[from] LoginError),
    #[error("token `{token}` was removed before it could sign, so the sign-in did not happen; insert it and sign in again")]
    RemovedWhileSigning { token: String },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the server refused the sign-in: {code}: {message}")]
    Denied { code: String, message: String },
    #[error("{0}")]
    Network(String),
    /// The server's certificate does not chain to a trusted root; `message` says how, and where.
    #[error("{message}")]
    UntrustedServer { message: String },
    /// A certificate named, or none chosen for want of a terminal (the facts; each program says
    /// how to name one).
    #[error(transparent)]
    Select(SelectError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("{url} answered HTTP {status}, a redirect to {}; a sign-in follows no redirect, so nothing was sent there: sign in to the endpoint the server names if you trust it", location.as_deref().unwrap_or("(no Location given)"))]
    Redirected {
        url: String,
        status: u16,
        location: Option<String>,
    },
    #[error("{url} is not an https URL: the certificate on your token signs in only over https, so nothing was sent and no PIN was asked")]
    NotHttps { url: String },
    #[error(transparent)]
    RedirectRefused(crate::signin::RedirectRefused),
    #[error("choosing a certificate was cancelled")]
    Cancelled,
    #[error("{0}")]
    Setup(String),
}

impl SignInError {
    pub fn class(&self) -> FailureClass {
        match self {
            Self::NoUsableCertificate { .. } | Self::NoPrivateKey { .. } | Self::Cancelled => {
                FailureClass::NoUsableCertificate
            }
            Self::Pin(_) => FailureClass::Pin,
            Self::Denied { .. } => FailureClass::Denied,
            Self::Select(_) => FailureClass::NoUsableCertificate,
            Self::Network(_)
            | Self::UntrustedServer { .. }
            | Self::Redirected { .. }
            | Self::RedirectRefused(_)
            | Self::NotHttps { .. } => FailureClass::Network,
            Self::TokenGone { .. }
            | Self::RemovedWhileSigning { .. }
            | Self::Token(_)
            | Self::Tls(_)
            | Self::Setup(_) => FailureClass::Other,
        }
    }

    /// What the user can change to get past this failure, if anything.
    pub fn remedy(&self) -> Option<Remedy> {
        match self {
            Self::Pin(e) => e.remedy(),
            Self::UntrustedServer { .. } => Some(Remedy::ServerCa),
            Self::Tls(TlsSetupError::NoRoots(_)) => Some(Remedy::TrustedRoots),
            Self::Select(e) => e.remedy(),
            _ => None,
        }
    }
}

impl From<SelectError> for SignInError {
    fn from(error: SelectError) -> Self {
        match error {
            SelectError::NoUsableCertificate { summary, details } => {
                Self::NoUsableCertificate { summary, details }
            }
            SelectError::Cancelled => Self::Cancelled,
            SelectError::Picker(message) => Self::Setup(message),
            named @ (SelectError::Named { .. } | SelectError::NoTerminal { .. }) => {
                Self::Select(named)
            }
        }
    }
}
