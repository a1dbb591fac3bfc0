//! The man pages and shell completions the hidden `generate` subcommand prints (what
//! `scripts/package-deb.sh` installs): each generator runs, the man page has a section for every
//! subcommand `--help` lists and names each option, and the bash script loads in bash.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod help_text;

use std::process::Command;

fn generate(binary: &str, kind: &str) -> String {
    let output = Command::new(binary)
        .args(["generate", kind])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{binary} generate {kind}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{binary} generate {kind} wrote to stderr"
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        !text.trim().is_empty(),
        "{binary} generate {kind} printed nothing"
    );
    text
}

fn programs() -> [(&'static str, &'static str); 2] {
    [
        (help_text::CERTAUTH, "certauth"),
        (help_text::VERIFIER, "certauth-verifier"),
    ]
}

#[test]
fn the_man_page_documents_every_subcommand_and_option() {
    for (binary, program) in programs() {
        let page = generate(binary, "man");
        assert!(page.contains(&format!(".TH {program} 1")), "{page}");
        // roff writes a hyphen in a name as `\-`.
        let plain = page.replace("\\-", "-");
        for command in help_text::commands(binary, program) {
            let heading = format!(".SS \"{}\"", command.typed());
            assert!(
                plain.contains(&heading),
                "{program}'s man page lacks {heading}"
            );
            let section = plain
                .split(&heading)
                .nth(1)
                .unwrap()
                .split("\n.SS ")
                .next()
                .unwrap();
            for option in &command.long_options {
                assert!(
                    section.contains(&format!("--{option}")),
                    "{program}'s man page does not describe `{} --{option}`",
                    command.typed()
                );
            }
        }
    }
}

#[test]
fn the_completion_scripts_are_for_each_program_and_load() {
    for (binary, program) in programs() {
        // clap_complete names the bash function after the program, `-` doubled to `__`.
        let function = format!("_{}", program.replace('-', "__"));
        let bash = generate(binary, "complete-bash");
        assert!(bash.contains(&format!("complete -F {function} ")), "{bash}");
        let zsh = generate(binary, "complete-zsh");
        assert!(zsh.starts_with(&format!("#compdef {program}")), "{zsh}");
        let fish = generate(binary, "complete-fish");
        assert!(fish.contains(&format!("complete -c {program}")), "{fish}");

        // Sourced as bash-completion would source it, the script defines its function.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join(program);
        std::fs::write(&script, &bash).unwrap();
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -e; source \"$1\"; declare -F {function} >/dev/null"
            ))
            .arg("bash")
            .arg(&script)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "bash could not load {program}'s completion"
        );
    }
}
