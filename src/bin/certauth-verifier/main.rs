//! `certauth-verifier`: parses arguments, calls the library, prints, maps errors to exit codes.

mod cli;
#[path = "../common/report.rs"]
mod report;

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use certauth::verifier::commands::{api_key, crl, eval, serve, tenant, CommandError};
use certauth::verifier::graph_files::{FileKind, GraphFileError};
use certauth::verifier::revocation::source::FetchLimits;
use certauth::verifier::server::settings::Settings;
use certauth::x509::user_ids::SerialOrder;
use clap::{CommandFactory, Parser};
use cli::{Command, TenantCommand};

/// A refused sign-in (`eval`).
const EXIT_REFUSED: u8 = 3;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let format = match &cli.command {
        Command::Serve(args) if args.log_json => certauth::logging::Format::Json,
        _ => certauth::logging::Format::Text,
    };
    certauth::logging::init_with(cli.verbosity.verbose, format);
    certauth::tls::install_crypto_provider();
    // The one place errors become exit codes.
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => report::exit_with("certauth-verifier", &err),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    let out = &mut std::io::stdout();
    match command {
        Command::Eval(args) => return evaluate(args),
        Command::Crl(args) => crl::show(
            &crl::CrlOptions {
                files: args.files,
                ca: args.ca,
                json: args.json,
            },
            out,
        )?,
        Command::Serve(args) => serve::run(&serve_options(args), out)?,
        Command::ApiKey(args) => {
            let options = api_key::ApiKeyOptions {
                state_dir: args.state_dir,
                role: args.role,
                name: args.name,
            };
            api_key::create(&options, out).map_err(|err| match err {
                CommandError::NoStateDirectory { ref dir } => {
                    let dir = dir.display();
                    anyhow!("{err}; run `certauth-verifier serve --state-dir {dir}` first (or create it)")
                }
                err => err.into(),
            })?;
        }
        Command::Tenant(TenantCommand::Export {
            state_dir,
            out: dir,
        }) => {
            tenant::export(
                &tenant::ExportOptions {
                    state_dir,
                    out: dir,
                },
                out,
            )?;
        }
        Command::Tenant(TenantCommand::Import {
            state_dir,
            replace,
            input,
        }) => {
            tenant::import(
                &tenant::ImportOptions {
                    state_dir,
                    input,
                    replace,
                },
                out,
            )?;
        }
        Command::Generate(args) => certauth::program_docs::run(cli::Cli::command(), args.kind)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn serve_options(args: cli::ServeArgs) -> serve::ServeOptions {
    serve::ServeOptions {
        state_dir: args.state_dir,
        tenant: args.tenant,
        policy: args.policy,
        certauth_listen: args.certauth_listen,
        admin_listen: args.admin_listen,
        tls: args.tls_cert.zip(args.tls_key),
        settings: Settings {
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
            body_timeout: args.body_timeout,
            crl_fetch: FetchLimits {
                timeout: args.crl_fetch_timeout,
                ..FetchLimits::default()
            },
            crl_failure_memory: args.crl_failure_memory,
            log_retention: std::time::Duration::from_secs(args.log_retention_days * 24 * 3600),
            log_max_rows: args.log_max_rows,
        },
    }
}

fn evaluate(args: cli::EvalArgs) -> anyhow::Result<ExitCode> {
    let at = args.at.as_deref().map(|at| {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .with_context(|| {
                format!("--at `{at}` is not an RFC 3339 time such as 2026-11-28T12:00:00Z")
            })
    });
    let options = eval::EvalOptions {
        policy: args.policy,
        cas: args.cas,
        users: args.users,
        groups: args.groups,
        cert: args.cert,
        username: args.username,
        crls: args.crls,
        offline: args.offline,
        at: at.transpose()?,
        serial_order: if args.serial_big_endian {
            SerialOrder::BigEndian
        } else {
            SerialOrder::LittleEndian
        },
    };
    let warn = &mut |note: &str| eprintln!("certauth-verifier: warning: {note}");
    let decision = eval::evaluate(&options, warn).map_err(with_hint)?;
    eval::write_report(&mut std::io::stdout().lock(), &decision, args.json)?;
    Ok(match decision.succeeded() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(EXIT_REFUSED),
    })
}

/// A file of another kind than its flag takes, which is often two files swapped: say so.
fn with_hint(err: CommandError) -> anyhow::Error {
    let flag = |kind| match kind {
        FileKind::Users => "--users",
        FileKind::Groups => "--groups",
        FileKind::Policy => "--policy",
        FileKind::CertificateAuthorities => "--cas",
    };
    if let CommandError::GraphFile(err @ GraphFileError::Shape { expected, .. }) = &err {
        if let Some(kind) = err.found_kind().filter(|kind| kind != expected) {
            return anyhow!(
                "{err} — did you swap {} and {}?",
                flag(*expected),
                flag(kind)
            );
        }
    }
    err.into()
}
