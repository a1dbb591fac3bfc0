//! The hidden `generate` subcommand both programs share: the man page (one page that covers
//! every subcommand) or a shell completion script, made from the same clap definition that parses
//! the command line, so neither can drift from `--help`.

use std::io::Write;

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The man page, in roff (section 1), covering every subcommand.
    Man,
    /// A bash completion script.
    CompleteBash,
    /// A zsh completion script.
    CompleteZsh,
    /// A fish completion script.
    CompleteFish,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// What to print on stdout.
    #[arg(value_enum)]
    pub kind: Kind,
}

/// Prints `kind` for the program whose clap definition is `command`.
pub fn run(command: clap::Command, kind: Kind) -> std::io::Result<()> {
    let mut out = Vec::new();
    let name = command.get_name().to_owned();
    let mut command = command;
    match kind {
        Kind::Man => man_page(command, &mut out)?,
        Kind::CompleteBash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut command, name, &mut out)
        }
        Kind::CompleteZsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut command, name, &mut out)
        }
        Kind::CompleteFish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut command, name, &mut out)
        }
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        // A closed pipe (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// One page: the program's NAME, SYNOPSIS, DESCRIPTION and global OPTIONS, then a COMMANDS section
/// with a subsection per visible subcommand (nested ones too, as `certauth-verifier tenant
/// export`), each with its synopsis, description and options.
fn man_page(command: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in visible_subcommands(&command) {
        command_section(sub, out)?;
    }
    man.render_version_section(out)?;
    Ok(())
}

fn visible_subcommands(command: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
}

/// A `.SS` subsection for `command` (its full name, as typed) and one for each of its own
/// subcommands after it.
fn command_section(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let name = command.get_bin_name().unwrap_or_else(|| command.get_name());
    writeln!(out, ".SS \"{name}\"")?;
    let man = clap_mangen::Man::new(command.clone());
    let mut body = Vec::new();
    man.render_synopsis_section(&mut body)?;
    man.render_description_section(&mut body)?;
    man.render_options_section(&mut body)?;
    // The section headings clap_mangen writes become paragraph breaks inside the subsection, and
    // the apostrophe preamble it repeats before each section is already at the top of the page.
    for line in String::from_utf8_lossy(&body).lines() {
        if let Some(heading) = line.strip_prefix(".SH ") {
            writeln!(out, ".PP")?;
            if heading != "SYNOPSIS" && heading != "DESCRIPTION" {
                writeln!(out, "\\fB{}:\\fR", heading.trim_matches('"'))?;
            }
        } else if !(line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq")) {
            writeln!(out, "{line}")?;
        }
    }
    for sub in visible_subcommands(command) {
        command_section(sub, out)?;
    }
    Ok(())
}
