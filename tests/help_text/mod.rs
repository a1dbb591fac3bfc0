//! What the two programs' `--help` says, read as data: their subcommands (nested ones too) and the
//! long options each one shows. The docs tests (`readme_commands.rs`, `generated_docs.rs`) check
//! the README and the generated man pages against it; this module only runs `--help` and parses.

#![allow(dead_code, reason = "each test file uses the part it needs")]

use std::process::Command;

pub const CERTAUTH: &str = env!("CARGO_BIN_EXE_certauth");
pub const VERIFIER: &str = env!("CARGO_BIN_EXE_certauth-verifier");

/// One command as typed: the program's name and the subcommand path, e.g. `["tenant", "export"]`.
#[derive(Debug, Clone)]
pub struct HelpCommand {
    /// The program's name, `certauth` or `certauth-verifier`.
    pub program: &'static str,
    pub path: Vec<String>,
    /// Every long option `--help` shows, without the leading `--`.
    pub long_options: Vec<String>,
    /// Whether it has subcommands of its own.
    pub has_subcommands: bool,
}

impl HelpCommand {
    /// The command as a user types it: `certauth-verifier tenant export`.
    pub fn typed(&self) -> String {
        std::iter::once(self.program.to_owned())
            .chain(self.path.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `program --help` for the subcommand `path`, as text.
pub fn help(binary: &str, path: &[String]) -> String {
    let output = Command::new(binary)
        .args(path)
        .arg("--help")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    assert!(
        output.status.success(),
        "{binary} {path:?} --help failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("help is UTF-8")
}

/// The lines of the section `heading` (`Commands:`, `Options:`) of a help text.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|line| *line != heading)
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect()
}

/// The subcommands a help text lists, without clap's own `help`.
pub fn subcommands(help: &str) -> Vec<String> {
    section(help, "Commands:")
        .into_iter()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The long options a help text shows: `  -X, --method <METHOD>` and `      --module <PATH>`.
pub fn long_options(help: &str) -> Vec<String> {
    section(help, "Options:")
        .into_iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("      --").or_else(|| {
                let short = line.strip_prefix("  -")?;
                short.get(1..)?.strip_prefix(", --")
            })?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Every subcommand of `binary` (named `program`), depth first, nested ones after their parent.
pub fn commands(binary: &str, program: &'static str) -> Vec<HelpCommand> {
    fn walk(binary: &str, program: &'static str, path: Vec<String>, out: &mut Vec<HelpCommand>) {
        let text = help(binary, &path);
        let subs = subcommands(&text);
        if !path.is_empty() {
            out.push(HelpCommand {
                program,
                path: path.clone(),
                long_options: long_options(&text),
                has_subcommands: !subs.is_empty(),
            });
        }
        for sub in subs {
            let mut deeper = path.clone();
            deeper.push(sub);
            walk(binary, program, deeper, out);
        }
    }
    let mut out = Vec::new();
    walk(binary, program, Vec::new(), &mut out);
    assert!(!out.is_empty(), "{binary} --help lists no subcommands");
    out
}

/// Both programs' subcommands.
pub fn all_commands() -> Vec<HelpCommand> {
    let mut all = commands(CERTAUTH, "certauth");
    all.extend(commands(VERIFIER, "certauth-verifier"));
    all
}
