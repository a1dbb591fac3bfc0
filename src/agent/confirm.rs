//! Confirmation for endpoints that want it (`confirm = true` in the config file): before the agent
//! answers a sign-in from its cache or with a login it holds, that is without a PIN, the user
//! allows it. The agent asks through its own pinentry program (`confirm_program`) when one is
//! configured, which a client cannot answer for the user; otherwise it asks the client, which asks
//! on its terminal.

use std::path::PathBuf;
use std::time::Duration;

use super::cache::Signer;
use super::protocol::{ErrorCode, Failure};
use crate::pin::pinentry::{Pinentry, PinentryError};
use crate::printable::printable;

/// How long the agent's own pinentry may take to be answered, in seconds (its `SETTIMEOUT`),
/// unless `CERTAUTH_CONFIRM_TIMEOUT_SECONDS` says otherwise. A program still running some seconds
/// after that (one that ignores `SETTIMEOUT`, or never answers at all) is stopped, and the sign-in
/// is not confirmed.
const PROGRAM_TIMEOUT_SECONDS: u32 = 300;

/// How long past its own timeout a confirmation program may run before it is stopped.
const PROGRAM_GRACE: Duration = Duration::from_secs(5);

fn program_timeout_seconds() -> u32 {
    std::env::var("CERTAUTH_CONFIRM_TIMEOUT_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|seconds| *seconds > 0)
        .unwrap_or(PROGRAM_TIMEOUT_SECONDS)
}

/// Who asks for confirmation.
#[derive(Debug, Clone)]
pub enum Confirmer {
    /// The agent runs this pinentry program itself.
    Program(PathBuf),
    /// The client is asked (`{"ask": "confirm"}`).
    Client,
}

/// The process that sent a sign-in request, from the connection's peer credentials.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub pid: Option<i32>,
}

impl Requester {
    /// `pid 1234 (/usr/bin/program)`, as far as it is known.
    pub fn describe(&self) -> String {
        let Some(pid) = self.pid else {
            return "a process".to_owned();
        };
        match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(program) => format!("process {pid} ({})", program.display()),
            Err(_) => format!("process {pid}"),
        }
    }
}

/// What is to be confirmed.
pub struct Confirmation<'a> {
    pub endpoint: &'a str,
    pub username: &'a str,
    pub signer: &'a Signer,
    pub requester: &'a Requester,
    /// Whether the answer comes from the cache (else a held login signs again).
    pub cached: bool,
}

impl Confirmation<'_> {
    /// The question, in words.
    pub fn question(&self) -> String {
        let how = if self.cached {
            "answer with the sign-in it holds for"
        } else {
            "sign in again, without the PIN, to"
        };
        format!(
            "{} asks certauth to {how} {} as {} with the certificate {} on `{}`.",
            self.requester.describe(),
            printable(self.endpoint),
            printable(self.username),
            printable(
                &self.signer.certificate_sha256[..16.min(self.signer.certificate_sha256.len())]
            ),
            printable(&self.signer.token_label),
        )
    }

    fn refused(&self, why: &str) -> Failure {
        Failure::new(
            ErrorCode::NotConfirmed,
            format!(
                "the sign-in to {} as {} was not confirmed ({why}); this endpoint wants confirmation for sign-ins without a PIN",
                self.endpoint, self.username
            ),
        )
    }
}

impl Confirmer {
    /// Asks; `ask_client` puts a question to the client and returns whether it said yes
    /// (`None`: it did not answer). Blocking.
    pub fn confirm(
        &self,
        confirmation: &Confirmation<'_>,
        ask_client: impl FnOnce(&str) -> Option<bool>,
    ) -> Result<(), Failure> {
        let question = confirmation.question();
        tracing::info!(endpoint = confirmation.endpoint, "asking for confirmation");
        let allowed = match self {
            Self::Program(program) => ask_program(program, &question)
                .map_err(|e| confirmation.refused(&format!("{}: {e}", program.display())))?,
            Self::Client => {
                ask_client(&question).ok_or_else(|| confirmation.refused("no answer"))?
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(confirmation.refused("the user declined"))
        }
    }
}

fn ask_program(program: &std::path::Path, question: &str) -> Result<bool, PinentryError> {
    let seconds = program_timeout_seconds();
    let mut pinentry =
        Pinentry::start_within(program, Duration::from_secs(seconds.into()) + PROGRAM_GRACE)?;
    pinentry.set_timeout(seconds)?;
    pinentry.confirm(&format!("{question}\nAllow it?"))
}
