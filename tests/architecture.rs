//! The library's layering, held by reading its source (`ARCHITECTURE.md` of issue 15, item 7):
//!
//! - every source file opens with a `//!` line on what it owns;
//! - `pcsc` is used only in `src/reader/`;
//! - `cryptoki` is used only in `src/token/`;
//! - nothing in `src/token/` or `src/x509/` uses `picker` (eligibility is a certificate fact);
//! - the verifier half never uses the agent half (`agent`, `signin`, `pin`, `picker`, `token`,
//!   `reader`, `tls`), and the agent half never uses the verifier;
//! - every module uses only its own layer or the layers below it ([`LAYERS`], item 7), and no
//!   modules use each other in a circle;
//! - no function is longer than [`MAX_FUNCTION_LINES`] lines, unless it is a table.
//!
//! Tests (`#[cfg(test)] mod tests`) are left out of the layering: a test may build its inputs with
//! anything in the crate. A grouped `use crate::{a, b}` is not seen; the code base writes one path
//! per `use`.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

use std::path::{Path, PathBuf};

/// The agent half's top-level library modules.
const AGENT_HALF: [&str; 7] = ["agent", "signin", "pin", "picker", "token", "reader", "tls"];

/// Modules below the picker, which must never use it.
const BELOW_PICKER: [&str; 2] = ["src/token/", "src/x509/"];

struct Source {
    /// Relative to the package root, with `/`.
    path: String,
    /// The code, comments removed.
    code: String,
    first_line: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), &mut files);
    assert!(files.len() > 50, "the source tree was not found: {files:?}");
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            Source {
                path: file
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
                code: without_comments(&text),
                first_line: text.lines().next().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

fn collect(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The text with `//` comments (doc comments included) and the insides of string literals
/// dropped, so a comment or a message naming a crate is not a use of it (a log filter names
/// `cryptoki::mechanism` as a string). Raw strings and char literals are not told apart: `'"'`
/// would swallow code up to the next quote, which can only hide a use, never invent one.
fn without_comments(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut previous = ' ';
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                    code.push(c);
                }
                continue;
            }
            if c == '/' && previous == '/' {
                code.pop();
                break;
            }
            if c == '"' {
                in_string = true;
            }
            code.push(c);
            previous = c;
        }
        code.push('\n');
    }
    code
}

/// Whether `code` uses the crate or module `name`: `name::` not preceded by part of a longer path
/// or name (so `crate::token::` counts for `token`, `x509_token::` does not).
fn uses(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        match before {
            Some(c) if c.is_alphanumeric() || c == '_' => false,
            Some(':') => code[..at].ends_with("crate::") || code[..at].ends_with("certauth::"),
            _ => true,
        }
    })
}

fn top_module(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    Some(first.strip_suffix(".rs").unwrap_or(first))
}

fn is_library(path: &str) -> bool {
    !path.starts_with("src/bin/")
}

#[test]
fn every_source_file_says_what_it_owns() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.first_line.starts_with("//!"))
        .map(|s| s.path)
        .collect();
    assert!(missing.is_empty(), "no `//!` first line: {missing:?}");
}

#[test]
fn pcsc_is_used_only_in_the_reader_module() {
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.path.starts_with("src/reader/") && uses(&s.code, "pcsc"))
        .map(|s| s.path)
        .collect();
    assert!(
        outside.is_empty(),
        "pcsc used outside src/reader/: {outside:?}"
    );
}

#[test]
fn cryptoki_is_used_only_in_the_token_module() {
    let outside: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.path.starts_with("src/token/") && uses(&s.code, "cryptoki"))
        .map(|s| s.path)
        .collect();
    assert!(
        outside.is_empty(),
        "cryptoki used outside src/token/ (go through the token module): {outside:?}"
    );
}

#[test]
fn the_token_and_certificate_facts_never_use_the_picker() {
    let upward: Vec<String> = sources()
        .into_iter()
        .filter(|s| BELOW_PICKER.iter().any(|below| s.path.starts_with(below)))
        .filter(|s| uses(&s.code, "crate::picker"))
        .map(|s| s.path)
        .collect();
    assert!(
        upward.is_empty(),
        "the picker used below it (move the fact down instead): {upward:?}"
    );
}

#[test]
fn the_verifier_and_the_agent_halves_never_use_each_other() {
    let mut crossings = Vec::new();
    for source in sources().iter().filter(|s| is_library(&s.path)) {
        let Some(module) = top_module(&source.path) else {
            continue;
        };
        if module == "verifier" {
            for agent in AGENT_HALF {
                if uses(&source.code, &format!("crate::{agent}")) {
                    crossings.push(format!("{} uses {agent}", source.path));
                }
            }
        } else if AGENT_HALF.contains(&module) && uses(&source.code, "crate::verifier") {
            crossings.push(format!("{} uses the verifier", source.path));
        }
    }
    assert!(crossings.is_empty(), "{crossings:#?}");
}

#[test]
fn the_checks_see_what_they_look_for() {
    // The matcher itself: a use is seen, a longer name or a comment is not.
    assert!(uses("use crate::token::inventory;", "crate::token"));
    assert!(uses("let x = cryptoki::object::Attribute::Id;", "cryptoki"));
    assert!(!uses("let x = not_cryptoki::y;", "cryptoki"));
    assert!(!uses(
        &without_comments("// cryptoki::x is in a comment"),
        "cryptoki"
    ));
    assert!(!uses(
        &without_comments(r#"f("a,cryptoki::m=off")"#),
        "cryptoki"
    ));
    assert!(uses(
        &without_comments(r#"f("//"); cryptoki::x"#),
        "cryptoki"
    ));
    assert!(uses("use certauth::verifier::decide;", "verifier"));
    assert_eq!(top_module("src/verifier/decide/mod.rs"), Some("verifier"));
    assert_eq!(top_module("src/logging.rs"), Some("logging"));
}

/// The shared layer: what both halves build on imports neither of them.
const SHARED_LAYER: [&str; 2] = ["pki", "x509"];

#[test]
fn the_shared_layer_imports_neither_half() {
    let halves: Vec<&str> = AGENT_HALF.iter().copied().chain(["verifier"]).collect();
    let upward: Vec<String> = sources()
        .into_iter()
        .filter(|s| is_library(&s.path))
        .filter(|s| top_module(&s.path).is_some_and(|m| SHARED_LAYER.contains(&m)))
        .flat_map(|s| {
            halves
                .iter()
                .filter(|half| uses(&s.code, &format!("crate::{half}")))
                .map(|half| format!("{} uses {half}", s.path))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(upward.is_empty(), "{upward:#?}");
    // The check sees the shared layer at all.
    assert!(sources()
        .iter()
        .any(|s| s.path == "src/pki/chain.rs" && uses(&s.code, "crate::x509")));
}

/// Each library module's half and layer, from the bottom (0). A module may use modules of its own
/// half (or the shared one) on its own layer or below. The verifier's parts are named
/// `verifier/<part>`.
const LAYERS: &[(&str, &str, u8)] = &[
    // The shared layer: certificate facts, what both halves verify, and plain utilities.
    ("x509", "shared", 0),
    ("pki", "shared", 0),
    ("printable", "shared", 0),
    ("file_safety", "shared", 0),
    ("secret_text", "shared", 0),
    ("crypto_provider", "shared", 0),
    ("toml_file", "shared", 0),
    ("logging", "shared", 0),
    ("config", "shared", 0),
    ("shell_words", "shared", 0),
    ("stop_signal", "shared", 0),
    ("program_docs", "shared", 0),
    ("remedy", "shared", 0),
    // The agent half: token/reader → pin/picker → tls → signin → agent.
    ("token", "agent", 1),
    ("reader", "agent", 1),
    ("pin", "agent", 2),
    ("picker", "agent", 2),
    ("listing", "agent", 2),
    ("fixtures", "agent", 2),
    ("tls", "agent", 3),
    ("signin", "agent", 4),
    ("agent", "agent", 5),
    ("demo", "agent", 5),
    // The verifier half: policy, trust, revocation → decide → store → server.
    ("verifier/text_rules", "verifier", 1),
    ("verifier/outcome", "verifier", 1),
    ("verifier/ca_detail", "verifier", 1),
    ("verifier/policy", "verifier", 1),
    ("verifier/trust", "verifier", 1),
    ("verifier/revocation", "verifier", 1),
    ("verifier/directory", "verifier", 1),
    ("verifier/graph_files", "verifier", 1),
    ("verifier/graph_schema", "verifier", 1),
    ("verifier/tenant_files", "verifier", 1),
    ("verifier/stamps", "verifier", 1),
    ("verifier/jwt", "verifier", 3),
    ("verifier/decide", "verifier", 2),
    ("verifier/store", "verifier", 3),
    ("verifier/server", "verifier", 4),
    ("verifier/commands", "verifier", 5),
    ("verifier/mod", "verifier", 6),
];

/// The layer from which either half may use `fixtures` (the demo and test PKI, provisioned on
/// SoftHSM through `token`): the demo, and the verifier's `serve` with no state, which serves the
/// demo tenant.
const RIG_USERS: u8 = 5;

/// The unit of layering a library file belongs to: its top-level module, or `verifier/<part>`.
fn unit(path: &str) -> Option<String> {
    let rest = path.strip_prefix("src/")?;
    let mut parts = rest.split('/');
    let first = parts.next()?;
    let top = first.strip_suffix(".rs").unwrap_or(first);
    if top != "verifier" {
        return Some(top.to_owned());
    }
    let part = parts.next()?;
    Some(format!(
        "verifier/{}",
        part.strip_suffix(".rs").unwrap_or(part)
    ))
}

/// The code without its test module.
fn without_tests(code: &str) -> &str {
    code.find("#[cfg(test)]\nmod tests")
        .map_or(code, |at| &code[..at])
}

/// The units `source` uses, itself left out.
fn used_units(source: &Source, of: &str) -> Vec<&'static str> {
    let code = without_tests(&source.code);
    // `super::x` names a verifier part from a file directly under `src/verifier/<part>`.
    let depth = source.path.matches('/').count();
    let is_part_root = source.path.starts_with("src/verifier/")
        && (depth == 2 || source.path.ends_with("/mod.rs") && depth == 3);
    LAYERS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| *name != of)
        .filter(|name| match name.strip_prefix("verifier/") {
            Some(part) => {
                uses(code, &format!("crate::verifier::{part}"))
                    || (is_part_root && uses(code, &format!("super::{part}")))
            }
            None => uses(code, &format!("crate::{name}")),
        })
        .collect()
}

fn layer(unit: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .find(|(name, _, _)| *name == unit)
        .map(|(_, half, rank)| (*half, *rank))
}

/// Every library unit and the units it uses.
fn unit_graph() -> Vec<(String, Vec<&'static str>)> {
    let mut graph: Vec<(String, Vec<&'static str>)> = Vec::new();
    for source in sources().iter().filter(|s| is_library(&s.path)) {
        let Some(unit) = unit(&source.path) else {
            continue;
        };
        let used = used_units(source, &unit);
        match graph.iter_mut().find(|(name, _)| *name == unit) {
            Some((_, all)) => all.extend(used),
            None => graph.push((unit, used)),
        }
    }
    for (_, used) in &mut graph {
        used.sort_unstable();
        used.dedup();
    }
    graph
}

#[test]
fn every_module_uses_only_its_own_layer_or_below() {
    let mut wrong = Vec::new();
    for (unit, used) in unit_graph() {
        if unit == "lib" {
            continue;
        }
        let Some((half, rank)) = layer(&unit) else {
            wrong.push(format!("{unit} has no place in LAYERS"));
            continue;
        };
        for target in used {
            let (their_half, their_rank) = layer(target).unwrap();
            let allowed = their_rank <= rank && (their_half == half || their_half == "shared")
                || target == "fixtures" && rank >= RIG_USERS;
            if !allowed {
                wrong.push(format!(
                    "{unit} ({half} {rank}) uses {target} ({their_half} {their_rank})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run up or across: {wrong:#?}"
    );
}

#[test]
fn no_modules_use_each_other_in_a_circle() {
    let graph = unit_graph();
    let next = |unit: &str| -> Vec<&'static str> {
        graph
            .iter()
            .find(|(name, _)| name == unit)
            .map(|(_, used)| used.clone())
            .unwrap_or_default()
    };
    for (start, _) in &graph {
        // Every unit reachable from `start`; a circle comes back to it.
        let mut seen: Vec<&str> = Vec::new();
        let mut path: Vec<(&str, &str)> = next(start)
            .into_iter()
            .map(|n| (n, start.as_str()))
            .collect();
        while let Some((unit, from)) = path.pop() {
            assert!(
                unit != start,
                "{start} is in a circle: {from} uses {start}, and {start} leads to {from}"
            );
            if seen.contains(&unit) {
                continue;
            }
            seen.push(unit);
            path.extend(next(unit).into_iter().map(|n| (n, unit)));
        }
    }
}

/// The longest a function may be; a longer one is a table (say so in a comment with
/// `table:` on its first line) or wants splitting.
const MAX_FUNCTION_LINES: usize = 80;

/// Functions of `text` as (name, first line, line count): from a `fn` line to the closing brace
/// at the same indentation.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let signature = trimmed
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ")
            .trim_start_matches("async ")
            .trim_start_matches("const ");
        let Some(rest) = signature.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let closing = " ".repeat(indent) + "}";
        let end = lines[at..]
            .iter()
            .position(|l| l.trim_end() == closing)
            .map_or(lines.len(), |offset| at + offset);
        let is_table = at > 0
            && lines[at.saturating_sub(3)..at]
                .iter()
                .any(|l| l.contains("table:"));
        if !is_table {
            found.push((name, at + 1, end - at + 1));
        }
    }
    found
}

#[test]
fn no_function_is_longer_than_eighty_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    for source in sources() {
        let text = std::fs::read_to_string(root.join(&source.path)).unwrap();
        for (name, line, count) in functions(&text) {
            if count > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line} {name}: {count} lines", source.path));
            }
        }
    }
    assert!(long.is_empty(), "split these by concept: {long:#?}");
    // The measure itself.
    let sample = "fn short() {\n    one();\n}\n\n    pub fn inner() {\n        x();\n    }\n";
    assert_eq!(
        functions(sample),
        vec![("short".to_owned(), 1, 3), ("inner".to_owned(), 5, 3)]
    );
}

/// The command line's flags, which the library leaves to the programs to name.
const FLAGS: [&str; 6] = [
    "--cert",
    "--ca-file",
    "--allow-final-try",
    "--pin ",
    "--chain",
    "--socket",
];

/// Library modules whose output is a command line for the user to paste or type: the demo's, the
/// list's, and the verifier's serve banner (its sign-in lines).
const WRITES_COMMAND_LINES: [&str; 3] = [
    "src/demo/",
    "src/listing/text.rs",
    "src/verifier/commands/serve.rs",
];

#[test]
fn library_messages_name_no_command_line_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut naming = Vec::new();
    for source in sources().iter().filter(|s| is_library(&s.path)) {
        if WRITES_COMMAND_LINES
            .iter()
            .any(|w| source.path.starts_with(w))
        {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&source.path)).unwrap();
        let code = without_tests(&text);
        for (number, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                continue;
            }
            if let Some(flag) = FLAGS.iter().find(|f| line.contains(*f)) {
                naming.push(format!("{}:{} names {flag}", source.path, number + 1));
            }
        }
    }
    assert!(
        naming.is_empty(),
        "library text that names a flag (give the fact, a Remedy, and let each program word it): {naming:#?}"
    );
}
