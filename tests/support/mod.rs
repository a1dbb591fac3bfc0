//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod agent;
pub mod crl;
pub mod echo_server;
pub mod eval;
pub mod lines;
pub mod pinentry;
pub mod piv;
pub mod programs;
pub mod rig;
pub mod software_cert;
pub mod spy;
pub mod tmux;
pub mod verifier;
pub mod woodgrove;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Asks `check` every `every` until it says yes or `timeout` has passed: whether it said yes.
pub fn came_true(timeout: Duration, every: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// Every file and directory under `dir`, deepest first.
pub fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            let mut below = if path.is_dir() {
                walk(&path)
            } else {
                Vec::new()
            };
            below.push(path);
            below
        })
        .collect()
}

/// A fresh home for certauth's config, and where its remembered certificate choices go (the
/// `certauth` directory exists; the file does not yet).
pub fn home_and_remembered_file() -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("certauth");
    std::fs::create_dir(&store).unwrap();
    (home, store.join("remembered-certificates.json"))
}

/// A child's output as text (invalid UTF-8 shown as U+FFFD).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The path of an example binary built by `cargo test` (test-support programs live there so they
/// are never installed).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> -> target/debug/examples/<name>
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing: plain `cargo test` builds it; with a test filter, run `cargo build --examples` first",
        path.display()
    );
    path
}

/// Writes a file only its owner may read or write, as a PIN file should be (a looser one works,
/// with a warning on stderr).
pub fn write_private(path: &std::path::Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A finished command's stdout, once it is known to have succeeded (its stderr is the failure
/// message otherwise).
pub fn stdout_text(output: &std::process::Output) -> String {
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    stdout
}

/// A finished command's stdout as JSON, once it is known to have succeeded.
pub fn json_stdout(output: &std::process::Output) -> serde_json::Value {
    let stdout = stdout_text(output);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Whether `secret` (a PIN) shows in `text` as a value of its own: not inside a longer run of
/// letters and digits, where a short numeric PIN turns up by chance (a hex dump of a random
/// signature at trace level holds `123456` now and then).
pub fn shows_secret(text: &str, secret: &str) -> bool {
    text.match_indices(secret).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + secret.len()..].chars().next();
        ![before, after]
            .into_iter()
            .flatten()
            .any(|c| c.is_ascii_alphanumeric())
    })
}
