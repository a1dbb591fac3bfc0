//! Helpers shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod agent;
pub mod echo_server;
pub mod lines;
pub mod piv;
pub mod rig;
pub mod verifier;
pub mod woodgrove;

use std::path::PathBuf;

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
