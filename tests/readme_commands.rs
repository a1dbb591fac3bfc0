//! The README's "## Commands" table checked against `--help`: every subcommand of both programs
//! has a row, and every long option its `--help` shows (but `--help`, `--version` and the global
//! `--verbose`) is named in that row; a row names no option the command lacks.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod help_text;

use help_text::HelpCommand;

/// Shown by every command, and said once under the table.
const EVERYWHERE: [&str; 3] = ["help", "version", "verbose"];

/// The rows of the README's "## Commands" table: (first cell, whole row).
fn rows(readme: &str) -> Vec<(String, String)> {
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != "## Commands")
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .collect();
    assert!(
        !section.is_empty(),
        "README.md has no \"## Commands\" section"
    );
    section
        .into_iter()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            // Cells are split on `|` that is not escaped as `\|`.
            let first = line[1..].split(" | ").next().unwrap().trim().to_owned();
            (first, line.to_owned())
        })
        .collect()
}

/// Whether `text` names the option `--name` (not just a longer option that starts with it).
fn names_option(text: &str, name: &str) -> bool {
    let needle = format!("--{name}");
    text.match_indices(&needle).any(|(at, _)| {
        let after = text[at + needle.len()..].chars().next();
        let before = text[..at].chars().next_back();
        !matches!(after, Some(c) if c.is_ascii_alphanumeric() || c == '-')
            && !matches!(before, Some(c) if c.is_ascii_alphanumeric() || c == '-')
    })
}

/// The long options named in `text`.
fn options_in(text: &str) -> Vec<String> {
    text.match_indices("--")
        .filter(|(at, _)| {
            !matches!(text[..*at].chars().next_back(), Some(c) if c.is_ascii_alphanumeric() || c == '-')
        })
        .map(|(at, _)| {
            text[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The row whose first cell starts with the command as typed.
fn row_of<'a>(rows: &'a [(String, String)], command: &HelpCommand) -> Option<&'a (String, String)> {
    let typed = format!("`{}", command.typed());
    rows.iter().find(|(first, _)| {
        first
            .strip_prefix(&typed)
            .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('`'))
    })
}

/// What is wrong with the table for these commands; empty when it agrees with `--help`.
fn problems(readme: &str, commands: &[HelpCommand]) -> Vec<String> {
    let rows = rows(readme);
    let mut problems = Vec::new();
    for command in commands.iter().filter(|c| !c.has_subcommands) {
        let Some((first, row)) = row_of(&rows, command) else {
            problems.push(format!("no row for `{}`", command.typed()));
            continue;
        };
        // A parent's options (`certauth-verifier tenant --x`) belong in each of its children's rows.
        let inherited = commands
            .iter()
            .filter(|c| c.has_subcommands && command.path.starts_with(&c.path))
            .flat_map(|c| c.long_options.iter());
        let shown: Vec<&String> = command.long_options.iter().chain(inherited).collect();
        for option in &shown {
            if !EVERYWHERE.contains(&option.as_str()) && !names_option(row, option) {
                problems.push(format!(
                    "the row of `{}` does not name --{option}, which its --help shows",
                    command.typed()
                ));
            }
        }
        for option in options_in(first) {
            if !shown.iter().any(|s| **s == option) {
                problems.push(format!(
                    "the row of `{}` names --{option}, which its --help does not show",
                    command.typed()
                ));
            }
        }
    }
    for (first, _) in &rows {
        let known = commands.iter().any(|c| {
            first
                .strip_prefix(&format!("`{}", c.typed()))
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('`'))
        });
        if !known {
            problems.push(format!("the row {first} is no command's"));
        }
    }
    problems
}

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn the_readme_command_table_names_every_option_help_shows() {
    let commands = help_text::all_commands();
    let problems = problems(&readme(), &commands);
    assert!(
        problems.is_empty(),
        "README.md \"## Commands\" disagrees with --help:\n  {}",
        problems.join("\n  ")
    );
}

/// The check itself bites: a README whose row loses an option, or whose program gains a
/// subcommand, fails.
#[test]
fn a_dropped_option_or_a_missing_row_fails_the_check() {
    let commands = help_text::all_commands();
    let readme = readme();
    let sign_in = commands
        .iter()
        .find(|c| c.program == "certauth" && c.path == ["sign-in"])
        .unwrap();
    let rows = rows(&readme);
    let (_, row) = row_of(&rows, sign_in).unwrap();
    let dropped = readme.replace(row, &row.replace("--allow-final-try", "--allow-final"));
    assert_eq!(
        problems(&dropped, &commands),
        [
            "the row of `certauth sign-in` does not name --allow-final-try, which its --help shows",
            "the row of `certauth sign-in` names --allow-final, which its --help does not show",
        ]
    );
    let mut more = commands.clone();
    more.push(HelpCommand {
        program: "certauth",
        path: vec!["unlisted".into()],
        long_options: Vec::new(),
        has_subcommands: false,
    });
    assert_eq!(problems(&readme, &more), ["no row for `certauth unlisted`"]);
}
