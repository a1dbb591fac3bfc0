//! `certauth sign-in`, `certauth request` and `certauth forget`.
//!
//! Exit codes of sign-in and request: 0 success, 3 refused by the server, 4 no usable certificate,
//! 5 PIN problem, 6 network or TLS error (a redirect a sign-in will not follow, a plain http: URL
//! and a TLS version or cipher mismatch among them), 1 anything else; `request --fail` exits 22 on
//! an HTTP error status.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use certauth::picker::remembered::{
    endpoint_key, RememberedCertificate, RememberedChoices, RememberedError,
};
use certauth::pin::login::FinalTry;
use certauth::pin::{PinAsker, PinSource};
use certauth::printable::{self, printable, printable_message};
use certauth::signin::answer_text::write_answer;
use certauth::signin::error::{FailureClass, SignInError};
use certauth::signin::protocol::SignInAnswer;
use certauth::signin::select::{self, SelectOptions, Selection};
use certauth::signin::terminal_chooser::TerminalChooser;
use certauth::signin::{self as flow, ClientOptions, PreparedClient, Redirects};
use certauth::token::inventory::{self, ScanOptions, TokenReport};
use serde_json::json;

use crate::cli::{ForgetArgs, IdentityArgs, LockArgs, RequestArgs, SignInArgs};
use certauth::agent::client::CallError;
use certauth::agent::protocol::Failure as AgentFailure;

const EXIT_DENIED: u8 = 3;
const EXIT_NO_CERTIFICATE: u8 = 4;
const EXIT_PIN: u8 = 5;
const EXIT_NETWORK: u8 = 6;
const EXIT_HTTP_ERROR: u8 = 22;

pub fn sign_in(args: &SignInArgs) -> ExitCode {
    finish(run_sign_in(args))
}

pub fn request(args: &RequestArgs) -> ExitCode {
    finish(run_request(args))
}

pub fn forget(args: &ForgetArgs) -> anyhow::Result<()> {
    let key = args.endpoint.as_ref().map(endpoint_key);
    let place = key
        .as_deref()
        .map_or(String::new(), |k| format!(" for {k}"));
    if let Some(mut agent) = crate::agent_client::running(&args.agent) {
        let params = json!({ "url": args.endpoint.as_ref().map(reqwest::Url::as_str) });
        let forgotten = agent.call("forget", params)?;
        println!(
            "Forgot {} remembered certificate choice(s) and {} cached sign-in(s){place}.",
            forgotten["certificateChoices"], forgotten["signIns"]
        );
        return Ok(());
    }
    let forgotten = RememberedChoices::forget_saved(key.as_deref())?;
    println!("Forgot {forgotten} remembered certificate choice(s){place}.");
    Ok(())
}

pub fn lock(args: &LockArgs) -> anyhow::Result<()> {
    let dropped = crate::agent_client::connect(&args.agent)?.call("lock", json!({}))?;
    println!(
        "The agent dropped {} cached sign-in(s) and logged out of {} token login(s).",
        dropped["signIns"], dropped["logins"]
    );
    Ok(())
}

/// Remembers `choice` for `endpoint` and `username`; a failure is only a note.
fn remember_choice(endpoint: &str, username: &str, choice: RememberedCertificate) {
    if let Err(e) = RememberedChoices::remember_saved(endpoint, username, choice) {
        eprintln!("Note: could not remember the certificate choice: {e}");
    }
}

fn exit_code(class: FailureClass) -> u8 {
    match class {
        FailureClass::Denied => EXIT_DENIED,
        FailureClass::NoUsableCertificate => EXIT_NO_CERTIFICATE,
        FailureClass::Pin => EXIT_PIN,
        FailureClass::Network => EXIT_NETWORK,
        FailureClass::Other => 1,
    }
}

/// Either a finished command (with its exit code) or an error to report.
enum Failure {
    SignIn(SignInError),
    Agent(AgentFailure),
    Other(anyhow::Error),
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Agent(e) => Self::Agent(e),
            CallError::Transport(e) => Self::Other(anyhow!("talking to the agent failed: {e}")),
        }
    }
}

impl From<SignInError> for Failure {
    fn from(e: SignInError) -> Self {
        Self::SignIn(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

fn finish(result: Result<ExitCode, Failure>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(Failure::Other(e)) => crate::report::exit_with("certauth", &e),
        Err(Failure::SignIn(e)) => {
            eprintln!("certauth: error: {}", printable_message(&e.to_string()));
            ExitCode::from(exit_code(e.class()))
        }
        Err(Failure::Agent(e)) => {
            eprintln!("certauth: error: {}", printable_message(&e.to_string()));
            ExitCode::from(exit_code(e.code.failure_class()))
        }
    }
}

/// Everything up to a ready HTTPS client: tokens, the choice, the login.
struct Session {
    client: PreparedClient,
    tokens: Vec<TokenReport>,
    selection: Selection,
    runtime: tokio::runtime::Runtime,
}

/// `url`'s server is reached before any PIN is asked.
fn open_session(
    url: &reqwest::Url,
    identity: &IdentityArgs,
    heading: String,
    remembered: Option<RememberedCertificate>,
    redirects: Redirects,
    username: Option<&str>,
) -> Result<Session, Failure> {
    let (config, config_file) = certauth::config::load().context("cannot use the config file")?;
    let auto_select_single = config.auto_select_single && !identity.always_pick;
    let (modules, mut reports) = crate::tokens::load_with(&identity.modules, config, config_file);
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
        redirects,
        preflight: Some(url.clone()),
    };
    // The server first: its acceptable CAs decide what the picker offers, before any PIN.
    let server = flow::reach_server(&client_options)?;
    let options = SelectOptions {
        choice: identity.cert.clone(),
        remembered,
        auto_select_single,
        server,
        chain_pool: flow::chain_pool(&client_options)?,
        username: username.map(str::to_owned),
    };
    let selection = select::select(&tokens, &options, &mut TerminalChooser { heading })?;
    let mut prompt = PinAsker::new(identity.pin.clone().unwrap_or(PinSource::Terminal));
    let client = flow::prepare(&modules, &tokens, &selection, &mut prompt, &client_options)?;
    for note in &client.notes {
        eprintln!("Note: {}", printable_message(note));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(Session {
        client,
        tokens,
        selection,
        runtime,
    })
}

/// The token identity goes only over https: refused before any token, PIN or network contact.
fn require_https(url: &reqwest::Url) -> Result<(), SignInError> {
    if url.scheme() == "https" {
        return Ok(());
    }
    Err(SignInError::NotHttps {
        url: url.to_string(),
    })
}

fn run_sign_in(args: &SignInArgs) -> Result<ExitCode, Failure> {
    require_https(&args.url)?;
    if args.via_agent {
        return sign_in_via_agent(args);
    }
    let endpoint = endpoint_key(&args.url);
    let store_path = RememberedChoices::default_path().map_err(|e| anyhow!(e))?;
    let remembered = match RememberedChoices::load(&store_path) {
        Ok(store) => store.get(&endpoint, &args.username).cloned(),
        // Someone else could have written it: it chooses nothing, and the user is told why.
        Err(refused @ RememberedError::Unsafe(_)) => {
            eprintln!("Warning: the remembered certificate choices are not used: {refused}");
            None
        }
        Err(e) => return Err(anyhow!(e).into()),
    };
    let heading = format!(
        "Choose a certificate to sign in to {endpoint} as {}",
        args.username
    );
    let session = open_session(
        &args.url,
        &args.identity,
        heading,
        remembered,
        Redirects::None,
        Some(&args.username),
    )?;
    let answer = session
        .runtime
        .block_on(session.client.sign_in(&args.url, &args.username))?;

    let mut out = std::io::stdout().lock();
    if args.json {
        printable::write_json(&mut out, &answer, true).map_err(|e| anyhow!(e))?;
        writeln!(out).map_err(|e| anyhow!(e))?;
    } else {
        let offered = session.client.resolver.report().offered;
        write_answer(&mut out, &answer, offered).map_err(|e| anyhow!(e))?;
    }
    if !answer.succeeded() {
        return Ok(ExitCode::from(EXIT_DENIED));
    }
    if session.selection.freshly_chosen && !args.no_remember {
        if let [only] = session.selection.candidates.as_slice() {
            let cert = only.cert(&session.tokens);
            if let Ok(info) = &cert.cert {
                remember_choice(
                    &endpoint,
                    &args.username,
                    RememberedCertificate {
                        sha256: info.sha256.clone(),
                        uri: cert.uri.clone(),
                        description: certauth::signin::identity::describe(info),
                    },
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign-in --via-agent`: the agent signs in (or answers from its cache); its questions are
/// answered here.
fn sign_in_via_agent(args: &SignInArgs) -> Result<ExitCode, Failure> {
    let identity = &args.identity;
    if !identity.modules.modules.is_empty() || identity.modules.no_p11_kit {
        return Err(anyhow!("with --via-agent the agent's modules are used; give --module and --no-p11-kit to `certauth agent`").into());
    }
    let mut agent = crate::agent_client::connect(&args.agent)?;
    let source = identity.pin.clone().unwrap_or(PinSource::Terminal);
    let params = json!({
        "url": args.url.as_str(),
        "username": args.username,
        "cert": identity.cert.as_ref().map(ToString::to_string),
        "caFile": identity.ca_file.as_ref().map(|p| absolute(p)),
        "chain": identity.chain_files.iter().map(|p| absolute(p)).collect::<Vec<_>>(),
        "allowFinalTry": identity.allow_final_try,
        "fresh": args.fresh,
        "remember": !args.no_remember,
        "interactive": source.is_interactive(),
    });
    let mut prompt = PinAsker::new(source);
    let heading = format!(
        "Choose a certificate to sign in to {} as {}",
        endpoint_key(&args.url),
        args.username
    );
    let result = agent.sign_in(params, &mut prompt, &mut TerminalChooser { heading })?;
    let answer: SignInAnswer = serde_json::from_value(result.clone())
        .map_err(|e| anyhow!("the agent's answer is not a sign-in result: {e}"))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        printable::write_json(&mut out, &result, true).map_err(|e| anyhow!(e))?;
        writeln!(out).map_err(|e| anyhow!(e))?;
    } else {
        // Named as a direct sign-in names it (by subject); by thumbprint only for a sign-in
        // cached by an agent that did not keep the subject.
        let signed_with = &result["signedWith"];
        let offered = signed_with["token"].as_str().map(|token| {
            match signed_with["certificate"]
                .as_str()
                .filter(|c| !c.is_empty())
            {
                Some(certificate) => format!("{certificate} on `{token}`"),
                None => format!(
                    "SHA-256 {} on `{token}`",
                    signed_with["certificateSha256"].as_str().unwrap_or("?")
                ),
            }
        });
        write_answer(&mut out, &answer, offered).map_err(|e| anyhow!(e))?;
        if result["cached"] == true {
            writeln!(out, "  (the agent's cached sign-in; no PIN was needed)")
                .map_err(|e| anyhow!(e))?;
        }
    }
    Ok(if answer.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

/// A path as the agent (another process, another working directory) can open it.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn run_request(args: &RequestArgs) -> Result<ExitCode, Failure> {
    require_https(&args.url)?;
    let heading = format!("Choose a certificate for {}", endpoint_key(&args.url));
    let redirects = if args.follow_redirects {
        Redirects::SameOrigin
    } else {
        Redirects::None
    };
    let session = open_session(&args.url, &args.identity, heading, None, redirects, None)?;
    let headers = args
        .header
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
                .ok_or_else(|| anyhow!("header `{h}` is not `Name: value`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let body = match &args.data {
        Some(data) => Some(match data.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("cannot read {file}"))?,
            None => data.clone().into_bytes(),
        }),
        None => None,
    };
    let (status, location, bytes) = session.runtime.block_on(async {
        let response = session
            .client
            .request(args.method.clone(), args.url.clone(), &headers, body)
            .await?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .filter(|_| status.is_redirection())
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| session.client.classify(e))?;
        Ok::<_, SignInError>((status, location, bytes))
    })?;
    if let Some(location) = location {
        eprintln!(
            "certauth: the server answered HTTP {status} with a redirect to {}, which was not followed (-L follows redirects within the same origin)",
            printable(&location)
        );
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes).map_err(|e| anyhow!(e))?;
    // A text body ends its line, so the shell prompt does not follow it on the same one.
    if !bytes.is_empty() && !bytes.ends_with(b"\n") && std::str::from_utf8(&bytes).is_ok() {
        out.write_all(b"\n").map_err(|e| anyhow!(e))?;
    }
    out.flush().map_err(|e| anyhow!(e))?;
    if args.fail && (status.is_client_error() || status.is_server_error()) {
        eprintln!("certauth: the server answered HTTP {status}");
        return Ok(ExitCode::from(EXIT_HTTP_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}
