//! The library's layering, held by reading its source (`ARCHITECTURE.md` of issue 15, item 7):
//!
//! - every source file opens with a `//!` line on what it owns;
//! - `pcsc` is used only in `src/reader/`;
//! - `cryptoki` is used only in `src/token/`;
//! - nothing in `src/token/` or `src/x509/` uses `picker` (eligibility is a certificate fact);
//! - the verifier half never uses the agent half (`agent`, `signin`, `pin`, `picker`, `token`,
//!   `reader`, `tls`), and the agent half never uses the verifier.

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
