//! A verifier whose state directory fills up: a sign-in that cannot be logged is refused (503),
//! admin writes are refused the same way, and both recover once space is free. The state
//! directory is a small tmpfs in the verifier's own mount namespace (`unshare --mount`), reached
//! from the test through `/proc/PID/root`.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use support::verifier::Verifier;
use support::woodgrove::woodgrove;

/// Fills the file system holding `path` until a write fails.
fn fill(path: &std::path::Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        if file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn a_full_disk_refuses_sign_ins_it_cannot_log_and_recovers() {
    if !support::rig::can_run("a_full_disk_refuses_sign_ins_it_cannot_log_and_recovers") {
        return;
    }
    let propagation = support::rig::propagation().unwrap();
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", propagation, "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=6m,mode=0700 certauth-full-disk "$1" && shift && exec "$@""#)
        .arg("sh")
        .arg(state.path())
        .arg(support::programs::VERIFIER)
        .args(Verifier::serve_args(w, state.path()));
    let mut v = Verifier::spawn(command, state.path());
    // The state directory as the verifier sees it.
    let inside = PathBuf::from(format!("/proc/{}/root", v.pid()))
        .join(state.path().strip_prefix("/").unwrap());
    v.server_ca = inside.join("server-ca.pem");
    let key = v.admin_key.clone().unwrap();
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");

    let filler = inside.join("filler");
    fill(&filler);
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS90033", "{answer}");
    assert!(answer["token"].is_null(), "{answer}");
    let (status, body) = v.admin(
        reqwest::Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(json!({"userPrincipalName": "full@woodgrove.com"})),
    );
    assert_eq!(status, 503, "{body}");

    std::fs::remove_file(&filler).unwrap();
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    let (status, body) = v.admin(
        reqwest::Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(json!({"userPrincipalName": "full@woodgrove.com"})),
    );
    assert_eq!(status, 201, "{body}");
    // Every answer that was given is on record, and the refused one left no success behind.
    let (_, log) = v.admin(
        reqwest::Method::GET,
        "/v1.0/auditLogs/signIns",
        Some(&key),
        None,
    );
    let statuses: Vec<&str> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["status"]["errorCode"].as_i64().unwrap() {
            0 => "success",
            _ => "failure",
        })
        .collect();
    assert_eq!(statuses, ["success", "success"], "{log}");
}
