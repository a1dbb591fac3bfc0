//! The command line's words for what the library reports as facts: the flags that name a
//! certificate, allow the final try, give a PIN source or the server's CA.

use certauth::agent::protocol::Failure as AgentFailure;
use certauth::picker::select::{Nameable, NamedProblem, SelectError};
use certauth::remedy::Remedy;
use certauth::signin::error::SignInError;

/// A sign-in failure as the command line says it.
pub fn sign_in_failure(error: &SignInError) -> String {
    match error {
        SignInError::Select(SelectError::Named { problem, details }) => {
            format!("{}\n{details}", named(problem))
        }
        SignInError::Select(SelectError::NoTerminal { choices }) => no_terminal(choices),
        other => format!("{other}{}", advice(other.remedy())),
    }
}

/// An agent's error answer as the command line says it.
pub fn agent_failure(failure: &AgentFailure) -> String {
    if !failure.choices.is_empty() {
        return no_terminal(&failure.choices);
    }
    match &failure.named {
        // The message's first line states the problem; the lines after it are the details.
        Some(problem) => {
            let details = failure.message.split_once('\n').map_or("", |(_, d)| d);
            format!("{}\n{details}", named(problem))
        }
        None => format!("{}{}", failure.message, advice(failure.remedy)),
    }
}

fn named(problem: &NamedProblem) -> String {
    match problem {
        NamedProblem::Missing => "no certificate on the tokens matches --cert".to_owned(),
        NamedProblem::Ineligible(why) => {
            format!("the certificate --cert names cannot sign in: {why}")
        }
        NamedProblem::NotAccepted => {
            "the certificate --cert names is not one the server accepts, so no PIN was asked"
                .to_owned()
        }
    }
}

fn no_terminal(choices: &[Nameable]) -> String {
    let lines: Vec<String> = choices.iter().map(|c| c.lines("--cert ")).collect();
    format!(
        "several certificates can sign in and there is no terminal to choose on; name one with --cert\n{}",
        lines.join("\n")
    )
}

/// What the user can do, in flags, to follow the library's words.
fn advice(remedy: Option<Remedy>) -> &'static str {
    match remedy {
        None => "",
        Some(Remedy::AllowFinalTry) => {
            ". Run again with --allow-final-try if you are sure of the PIN"
        }
        Some(Remedy::PinSource) => "; give --pin env:VARIABLE, --pin file:PATH or --pin pinentry",
        Some(Remedy::GraphicalPinentry) => ", or name a graphical one with --pin pinentry:PROGRAM",
        Some(Remedy::ServerCa) => "; give the CA that issued it with --ca-file",
        Some(Remedy::TrustedRoots) => "; give --ca-file",
        Some(Remedy::NameCertificate) => "; name one with --cert",
    }
}
