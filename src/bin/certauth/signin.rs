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
use certauth::agent::client::{AgentConnection, CallError, TransportError};
use certauth::agent::protocol::SignInParams;
use certauth::picker::remembered::{
    endpoint_key, RememberedCertificate, RememberedChoices, RememberedError,
};
use certauth::pin::{PinAsker, PinSource};
use certauth::printable::{self, printable, printable_message};
use certauth::signin::answer_text::{signed_with, write_answer};
use certauth::signin::error::{FailureClass, SignInError};
use certauth::signin::protocol::SignInAnswer;
use certauth::signin::session::{request_parts, require_https, Identity, Session, SessionRequest};
use certauth::signin::terminal_chooser::TerminalChooser;
use certauth::signin::Redirects;
use serde_json::json;

use crate::advice::{agent_failure, sign_in_failure};
use crate::cli::{ForgetArgs, IdentityArgs, LockArgs, RequestArgs, SignInArgs};

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

/// An error to report: a sign-in's, in the command line's words with its class's exit code, or
/// any other.
enum Failure {
    SignIn(String, FailureClass),
    Other(anyhow::Error),
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Agent(e) => Self::SignIn(agent_failure(&e), e.code.failure_class()),
            // An I/O error stays one, so that a closed pipe is not reported.
            CallError::Transport(TransportError::Io(e)) => Self::Other(e.into()),
            CallError::Transport(e) => Self::Other(e.into()),
        }
    }
}

impl From<SignInError> for Failure {
    fn from(e: SignInError) -> Self {
        Self::SignIn(sign_in_failure(&e), e.class())
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
        Err(Failure::SignIn(message, class)) => {
            eprintln!("certauth: error: {}", printable_message(&message));
            ExitCode::from(exit_code(class))
        }
    }
}

/// The library's identity from the command line's, the config file's `auto_select_single` unless
/// `--always-pick`.
fn identity(args: &IdentityArgs, config: &certauth::config::Config) -> Identity {
    Identity {
        cert: args.cert.clone(),
        pin: args.pin.clone(),
        allow_final_try: args.allow_final_try,
        auto_select_single: config.auto_select_single && !args.always_pick,
        ca_file: args.ca_file.clone(),
        chain_files: args.chain_files.clone(),
    }
}

/// A session on the tokens the command's modules show.
fn open_session(args: &IdentityArgs, request: SessionRequest<'_>) -> Result<Session, Failure> {
    let (config, config_file) = certauth::config::load().context("cannot use the config file")?;
    let identity = identity(args, &config);
    let modules = crate::tokens::load_with(&args.modules, config, config_file);
    let session = Session::open(modules, &identity, request)?;
    for note in &session.client.notes {
        eprintln!("Note: {}", printable_message(note));
    }
    Ok(session)
}

/// The choice remembered for `endpoint` and `username`. A file someone else could have written
/// chooses nothing, and the user is told why.
fn remembered(endpoint: &str, username: &str) -> anyhow::Result<Option<RememberedCertificate>> {
    let store_path = RememberedChoices::default_path()?;
    match RememberedChoices::load(&store_path) {
        Ok(store) => Ok(store.get(endpoint, username).cloned()),
        Err(refused @ RememberedError::Unsafe(_)) => {
            eprintln!("Warning: the remembered certificate choices are not used: {refused}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn run_sign_in(args: &SignInArgs) -> Result<ExitCode, Failure> {
    require_https(&args.url)?;
    let own_modules = !args.identity.modules.modules.is_empty() || args.identity.modules.no_p11_kit;
    if args.via_agent && own_modules {
        return Err(anyhow!("with --via-agent the agent's modules are used; give --module and --no-p11-kit to `certauth agent`").into());
    }
    let agent = match (args.via_agent, args.no_agent || own_modules) {
        (true, _) => Some(crate::agent_client::connect(&args.agent)?),
        (false, true) => None,
        (false, false) => crate::agent_client::running(&args.agent),
    };
    if let Some(agent) = agent {
        return sign_in_via_agent(args, agent);
    }
    let endpoint = endpoint_key(&args.url);
    let request = SessionRequest {
        url: &args.url,
        username: Some(&args.username),
        heading: format!(
            "Choose a certificate to sign in to {endpoint} as {}",
            args.username
        ),
        remembered: remembered(&endpoint, &args.username)?,
        redirects: Redirects::None,
    };
    let session = open_session(&args.identity, request)?;
    let answer = session
        .runtime
        .block_on(session.client.sign_in(&args.url, &args.username))?;
    let offered = session.client.resolver.report().offered;
    print_answer(&answer, args.json.then_some(&answer), offered, false)?;
    if !answer.succeeded() {
        return Ok(ExitCode::from(EXIT_DENIED));
    }
    if let Some(choice) = session.fresh_choice().filter(|_| !args.no_remember) {
        remember_choice(&endpoint, &args.username, choice);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the answer: `json` as it is, else for a person (with whether the agent's cache
/// answered).
fn print_answer(
    answer: &SignInAnswer,
    json: Option<&impl serde::Serialize>,
    offered: Option<String>,
    cached: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match json {
        Some(document) => {
            printable::write_json(&mut out, document, true)?;
            writeln!(out)?;
        }
        None => {
            write_answer(&mut out, answer, offered)?;
            if cached {
                writeln!(out, "  (the agent's cached sign-in; no PIN was needed)")?;
            }
        }
    }
    Ok(())
}

/// A sign-in through `agent`: it signs in (or answers from its cache); its questions are answered
/// here.
fn sign_in_via_agent(args: &SignInArgs, mut agent: AgentConnection) -> Result<ExitCode, Failure> {
    let identity = &args.identity;
    let source = identity.pin.clone().unwrap_or(PinSource::Terminal);
    let params = SignInParams {
        url: args.url.to_string(),
        username: args.username.clone(),
        cert: identity.cert.as_ref().map(ToString::to_string),
        ca_file: identity.ca_file.as_deref().map(absolute),
        chain: identity.chain_files.iter().map(|p| absolute(p)).collect(),
        allow_final_try: identity.allow_final_try,
        fresh: args.fresh,
        remember: !args.no_remember,
        interactive: source.is_interactive(),
    };
    let mut prompt = PinAsker::new(source);
    let heading = format!(
        "Choose a certificate to sign in to {} as {}",
        endpoint_key(&args.url),
        args.username
    );
    let result = agent.sign_in(&params, &mut prompt, &mut TerminalChooser { heading })?;
    let answer: SignInAnswer = serde_json::from_value(result.clone())
        .map_err(|e| anyhow!("the agent's answer is not a sign-in result: {e}"))?;
    print_answer(
        &answer,
        args.json.then_some(&result),
        signed_with(&result),
        result["cached"] == true,
    )?;
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
    // Bad headers or an unreadable body file stop the request before any PIN is asked.
    let (headers, body) = request_parts(&args.header, args.data.as_deref())?;
    let request = SessionRequest {
        url: &args.url,
        username: None,
        heading: format!("Choose a certificate for {}", endpoint_key(&args.url)),
        remembered: None,
        redirects: if args.follow_redirects {
            Redirects::SameOrigin
        } else {
            Redirects::None
        },
    };
    let session = open_session(&args.identity, request)?;
    let reply = session.send(args.method.clone(), &args.url, &headers, body)?;
    let status = reply.status;
    if let Some(location) = reply.location {
        eprintln!(
            "certauth: the server answered HTTP {status} with a redirect to {}, which was not followed (-L follows redirects within the same origin)",
            printable(&location)
        );
    }
    write_body(&reply.body)?;
    if args.fail && (status.is_client_error() || status.is_server_error()) {
        eprintln!("certauth: the server answered HTTP {status}");
        return Ok(ExitCode::from(EXIT_HTTP_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

/// The body on stdout; a text body ends its line, so the shell prompt does not follow it on the
/// same one.
fn write_body(body: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(body)?;
    if !body.is_empty() && !body.ends_with(b"\n") && std::str::from_utf8(body).is_ok() {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
