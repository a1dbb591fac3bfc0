//! `certauth-verifier`: parses arguments, calls the library, prints, maps errors to exit codes.

mod cli;
mod crl;
mod eval;
#[path = "../common/report.rs"]
mod report;
#[path = "../common/verbosity.rs"]
mod verbosity;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    certauth::logging::init(cli.verbosity.verbose);
    certauth::tls::install_crypto_provider();
    let result = match cli.command {
        cli::Command::Crl(args) => crl::run(&args),
        cli::Command::Eval(args) => return eval::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report::exit_with("certauth-verifier", &err),
    }
}
