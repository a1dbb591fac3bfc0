//! A sign-in made here, at a terminal: the tokens scanned, the server reached first, the
//! certificate chosen (the terminal picker when it must ask), the token logged in with the PIN
//! from its source, and an HTTPS client ready to sign in or send a request with that identity.

use std::path::PathBuf;

use super::error::SignInError;
use super::terminal_chooser::TerminalChooser;
use super::{chain_pool, prepare, reach_server, ClientOptions, PreparedClient, Redirects};
use crate::picker::choice::CertChoice;
use crate::picker::remembered::RememberedCertificate;
use crate::picker::select::{self, SelectOptions, Selection};
use crate::pin::{PinAsker, PinSource};
use crate::token::inventory::{self, ModuleReport, ScanOptions, TokenReport};
use crate::token::login::FinalTry;
use crate::token::module::LoadedModule;

/// Who signs in, with what: the user's choices for a sign-in made here.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The certificate to use; otherwise the remembered one, the only one, or the picker.
    pub cert: Option<CertChoice>,
    /// Where the PIN comes from (the terminal when `None`).
    pub pin: Option<PinSource>,
    pub allow_final_try: bool,
    /// Whether a single eligible certificate is used without asking.
    pub auto_select_single: bool,
    /// PEM roots for the server's certificate (the system's when `None`).
    pub ca_file: Option<PathBuf>,
    /// PEM files with the intermediates of the user's certificate.
    pub chain_files: Vec<PathBuf>,
}

/// What a session is opened for.
pub struct SessionRequest<'a> {
    pub url: &'a reqwest::Url,
    /// The username signing in, when there is one: their own certificates come first.
    pub username: Option<&'a str>,
    /// The picker's heading, if it is shown.
    pub heading: String,
    pub remembered: Option<RememberedCertificate>,
    pub redirects: Redirects,
}

/// Everything up to a ready HTTPS client: tokens, the choice, the login.
pub struct Session {
    pub client: PreparedClient,
    pub tokens: Vec<TokenReport>,
    pub selection: Selection,
    pub runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Opens a session on the tokens of `modules`. The server is reached before any PIN is
    /// asked, and its acceptable CAs decide what the picker offers.
    pub fn open(
        (modules, mut reports): (Vec<LoadedModule>, Vec<ModuleReport>),
        identity: &Identity,
        request: SessionRequest<'_>,
    ) -> Result<Self, SignInError> {
        let tokens = inventory::scan(&modules, &mut reports, &ScanOptions::default());
        for module in reports.iter().filter(|m| m.error.is_some()) {
            tracing::warn!(module = %module.path.display(), error = module.error.as_deref().unwrap_or_default(), "PKCS#11 module unusable");
        }
        let client_options = ClientOptions {
            ca_file: identity.ca_file.clone(),
            chain_files: identity.chain_files.clone(),
            final_try: if identity.allow_final_try {
                FinalTry::Allow
            } else {
                FinalTry::Refuse
            },
            timeout: None,
            redirects: request.redirects,
            preflight: Some(request.url.clone()),
        };
        let options = SelectOptions {
            choice: identity.cert.clone(),
            remembered: request.remembered,
            auto_select_single: identity.auto_select_single,
            server: reach_server(&client_options)?,
            chain_pool: chain_pool(&client_options)?,
            username: request.username.map(str::to_owned),
        };
        let mut chooser = TerminalChooser {
            heading: request.heading,
        };
        let selection = select::select(&tokens, &options, &mut chooser)?;
        let mut prompt = PinAsker::new(identity.pin.clone().unwrap_or(PinSource::Terminal));
        let client = prepare(&modules, &tokens, &selection, &mut prompt, &client_options)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| SignInError::Setup(format!("cannot start the async runtime: {e}")))?;
        Ok(Self {
            client,
            tokens,
            selection,
            runtime,
        })
    }

    /// The certificate to remember for the endpoint: the one the user chose in the picker this
    /// time, if they did.
    pub fn fresh_choice(&self) -> Option<RememberedCertificate> {
        if !self.selection.freshly_chosen {
            return None;
        }
        let [only] = self.selection.candidates.as_slice() else {
            return None;
        };
        let cert = only.cert(&self.tokens);
        let info = cert.cert.as_ref().ok()?;
        Some(RememberedCertificate {
            sha256: info.sha256.clone(),
            uri: cert.uri.clone(),
            description: crate::picker::select::describe(info),
        })
    }
}

/// The token identity goes only over https: refused before any token, PIN or network contact.
pub fn require_https(url: &reqwest::Url) -> Result<(), SignInError> {
    if url.scheme() == "https" {
        return Ok(());
    }
    Err(SignInError::NotHttps {
        url: url.to_string(),
    })
}

/// What a request's server answered.
pub struct HttpReply {
    pub status: reqwest::StatusCode,
    /// Where a redirect not followed pointed.
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Session {
    /// Sends one request with the token's identity and reads the whole answer.
    pub fn send(
        &self,
        method: reqwest::Method,
        url: &reqwest::Url,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<HttpReply, SignInError> {
        self.runtime.block_on(async {
            let response = self
                .client
                .request(method, url.clone(), headers, body)
                .await?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .filter(|_| status.is_redirection())
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            let body = response
                .bytes()
                .await
                .map_err(|e| self.client.classify(e))?
                .to_vec();
            Ok(HttpReply {
                status,
                location,
                body,
            })
        })
    }
}

/// Request headers as (name, value) pairs.
pub type Headers = Vec<(String, String)>;

/// A request's headers, each given as `Name: value`, and its body: `@FILE` reads the file,
/// anything else is sent as it is.
pub fn request_parts(
    headers: &[String],
    data: Option<&str>,
) -> Result<(Headers, Option<Vec<u8>>), SignInError> {
    let headers = headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| SignInError::Setup(format!("header `{h}` is not `Name: value`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = match data {
        Some(data) => Some(match data.strip_prefix('@') {
            Some(file) => std::fs::read(file)
                .map_err(|e| SignInError::Setup(format!("cannot read {file}: {e}")))?,
            None => data.as_bytes().to_vec(),
        }),
        None => None,
    };
    Ok((headers, body))
}
