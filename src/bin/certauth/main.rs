//! `certauth`, the agent: parses arguments, calls the library, prints, maps errors to exit codes.

mod advice;
#[cfg(unix)]
mod agent;
mod agent_client;
mod cli;
mod demo;
mod list;
#[path = "../common/report.rs"]
mod report;
mod signin;
mod tokens;
mod watch;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    certauth::logging::init(cli.verbosity.verbose);
    certauth::tls::install_crypto_provider();
    let result = match cli.command {
        cli::Command::List(args) => list::run(&args),
        cli::Command::Watch(args) => watch::run(&args),
        cli::Command::SignIn(args) => return signin::sign_in(&args),
        cli::Command::Request(args) => return signin::request(&args),
        cli::Command::Forget(args) => signin::forget(&args),
        cli::Command::Lock(args) => signin::lock(&args),
        cli::Command::Demo(args) => demo::run(&args),
        cli::Command::Fixture(args) => demo::provision_only(&args),
        cli::Command::Generate(args) => certauth::program_docs::run(cli::Cli::command(), args.kind).map_err(anyhow::Error::from),
        #[cfg(unix)]
        cli::Command::Agent(args) => agent::run(&args),
        #[cfg(not(unix))]
        cli::Command::Agent(_) => Err(anyhow::anyhow!(
            "`certauth agent` serves a Unix socket and is not built for this platform yet; see packaging/WINDOWS.md"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report::exit_with("certauth", &err),
    }
}
