//! Picking with the server's answer in hand (issue 16): the server is reached first, and only
//! certificates whose chain reaches one of its acceptable CA names are offered, the username's
//! own first; a certificate the server would refuse costs no PIN.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::echo_server::EchoServer;
use support::pinentry::RecordingPinentry;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

/// A `--chain` file with every CA of the fixture, the rogue one too, so every chain completes.
fn all_cas(w: &Woodgrove, dir: &Path) -> PathBuf {
    let mut pem = String::new();
    for ca in ["woodgrove-issuing", "woodgrove-root", "fabrikam-rogue"] {
        pem.push_str(
            &std::fs::read_to_string(w.fixture.path(&format!("pki/ca/{ca}.pem"))).unwrap(),
        );
    }
    let path = dir.join("all-cas.pem");
    std::fs::write(&path, pem).unwrap();
    path
}

/// A row's detail `label`.
fn detail<'a>(row: &'a Value, label: &str) -> &'a str {
    row["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == label)
        .and_then(|pair| pair[1].as_str())
        .unwrap_or_default()
}

#[test]
fn the_agent_never_offers_bob_a_certificate_the_server_does_not_accept_and_his_own_come_first() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let agent = AgentProcess::start(agent_command(w));
    let chain = all_cas(w, state.path());
    let mut client = Client::connect(&agent.socket);
    let request = json!({"id": "s", "method": "sign-in", "params": {
        "url": v.certauth_url,
        "username": "bob@woodgrove.com",
        "caFile": v.server_ca,
        "chain": [chain],
    }});
    let mut rows = None;
    let mut pins = 0;
    let mut message = client.send_line(&request.to_string());
    while message.get("result").is_none() && message.get("error").is_none() {
        message = match message["ask"].as_str() {
            Some("choose") => {
                assert!(rows.is_none(), "asked to choose twice: {message}");
                rows = Some(message["rows"].as_array().unwrap().clone());
                client.send_line(&json!({"id": "s", "choice": 0}).to_string())
            }
            Some("pin") => {
                assert!(rows.is_some(), "the PIN was asked before the choice");
                pins += 1;
                client.send_line(&json!({"id": "s", "pin": w.pin("Woodgrove Bob")}).to_string())
            }
            _ => client.next_line(),
        };
    }
    let rows = rows.expect("the agent asked which certificate");
    assert!(!rows.is_empty());
    for row in &rows {
        assert!(
            !row.to_string().contains("Fabrikam"),
            "a rogue certificate was offered: {row:#}"
        );
    }
    // Bob's UPN certificates first, then the rest (his RFC 822 one).
    let upn_first: Vec<bool> = rows
        .iter()
        .map(|row| detail(row, "User principal name") == "bob@woodgrove.com")
        .collect();
    assert!(upn_first[0], "{rows:#?}");
    assert!(
        upn_first.windows(2).all(|pair| pair[0] || !pair[1]),
        "{upn_first:?}"
    );
    // Then Bob's RFC 822 certificate, its details saying so, before anyone else's.
    let rfc822 = rows
        .iter()
        .position(|row| detail(row, "RFC 822 name") == "bob@woodgrove.com")
        .unwrap_or_else(|| panic!("no RFC 822 row: {rows:#?}"));
    let row = &rows[rfc822];
    assert_eq!(detail(row, "User principal name"), "(none)", "{row:#}");
    assert_eq!(detail(row, "Key type"), "EC P-256", "{row:#}");
    assert!(
        rows[..rfc822]
            .iter()
            .all(|row| detail(row, "User principal name") == "bob@woodgrove.com"),
        "{rows:#?}"
    );
    assert_eq!(pins, 1, "{message}");
    assert!(message.get("result").is_some(), "{message}");
}

/// `certauth sign-in` as Bob to `url` naming the fixture certificate `cert` with `--cert`, its PIN
/// from a recording pinentry, and `trust` adding what makes it trust the server: a certificate the
/// server does not accept, so it must exit 4 having asked no PIN. Returns its stderr.
fn refused_before_any_pin(
    w: &Woodgrove,
    url: &str,
    cert: &str,
    home: &Path,
    trust: impl FnOnce(&mut Command),
) -> String {
    let pinentry = RecordingPinentry::new(&w.pin("Woodgrove Bob"));
    let mut command = w.certauth();
    command
        .args([
            "sign-in",
            url,
            "--username",
            "bob@woodgrove.com",
            "--no-remember",
        ])
        .args(["--cert", &w.sha256(cert), "--pin", &pinentry.source()])
        .args(["--no-p11-kit", "--module"])
        .arg(w.module())
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home);
    trust(&mut command);
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert_eq!(pinentry.pins_asked(), 0, "{stderr}");
    stderr
}

#[test]
fn a_cert_the_server_does_not_accept_is_refused_before_any_pin() {
    let w = woodgrove();
    let rogue = w.fixture.path("pki/ca/fabrikam-rogue.pem");
    let server = EchoServer::start_with_client_ca(w, &rogue, &[]);
    let home = tempfile::tempdir().unwrap();
    let stderr = refused_before_any_pin(w, &server.url, "bob-rsa3072", home.path(), |command| {
        server.trusted_by(command);
    });
    assert!(
        stderr.contains("the certificate --cert names is not one the server accepts"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "The server accepts certificates from: C=US,O=Fabrikam Ltd,CN=Fabrikam Rogue CA"
        ),
        "{stderr}"
    );
}

#[test]
fn the_rogue_certificate_named_against_the_verifier_costs_no_pin() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let chain = all_cas(w, state.path());
    let stderr = refused_before_any_pin(
        w,
        &v.certauth_url,
        "bob-untrusted-ca",
        state.path(),
        |command| {
            command
                .arg("--ca-file")
                .arg(&v.server_ca)
                .arg("--chain")
                .arg(&chain);
        },
    );
    assert!(
        stderr.contains("the server does not accept certificates from `C=US,O=Fabrikam Ltd,CN=Fabrikam Rogue CA`"),
        "{stderr}"
    );
}
