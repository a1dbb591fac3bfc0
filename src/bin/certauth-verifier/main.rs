//! `certauth-verifier`: parses arguments, calls the library, prints, maps errors to exit codes.

mod cli;
mod crl;
mod eval;
#[path = "../common/report.rs"]
mod report;
mod serve;
mod tenant;
#[path = "../common/verbosity.rs"]
mod verbosity;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let format = match &cli.command {
        cli::Command::Serve(args) if args.log_json => certauth::logging::Format::Json,
        _ => certauth::logging::Format::Text,
    };
    certauth::logging::init_with(cli.verbosity.verbose, format);
    certauth::tls::install_crypto_provider();
    let result = match cli.command {
        cli::Command::Crl(args) => crl::run(&args),
        cli::Command::Eval(args) => return eval::run(&args),
        cli::Command::Serve(args) => serve::run(&args),
        cli::Command::ApiKey(args) => serve::api_key(&args),
        cli::Command::Tenant(command) => tenant::run(&command),
        cli::Command::Generate(args) => {
            certauth::program_docs::run(cli::Cli::command(), args.kind).map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report::exit_with("certauth-verifier", &err),
    }
}
