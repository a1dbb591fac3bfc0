//! The server before the PIN (issue 13, item 7): `certauth sign-in` and `request`, and the agent's
//! `sign-in`, reach the server and verify its certificate before they log in to a token, so an
//! unreachable or untrusted server fails with the network exit code (6) and no PIN is asked. A
//! pinentry that writes down what it is asked tells whether a PIN dialog was opened. A trusted
//! server that refuses the preflight's empty certificate (TLS 1.3 after the handshake, TLS 1.2
//! with an alert inside it) still gets its PIN asked once and the request made.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::echo_server::EchoServer;
use support::pinentry::RecordingPinentry;
use support::text;
use support::woodgrove::{woodgrove, Woodgrove};

const EXIT_NETWORK: i32 = 6;

/// An https URL on a loopback port nothing listens on.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("https://127.0.0.1:{port}/")
}

/// A CA that did not issue the echo server's certificate.
fn other_ca(w: &Woodgrove) -> std::path::PathBuf {
    w.fixture.path("pki/ca/woodgrove-root.pem")
}

/// The CA that issued Alice's certificate, for `--chain`.
fn issuing_ca(w: &Woodgrove) -> std::path::PathBuf {
    w.fixture.path("pki/ca/woodgrove-issuing.pem")
}

/// `certauth sign-in` (or `request`) to `url` as Alice, her PIN from `pinentry`, trusting
/// `ca_file`.
fn run(
    w: &Woodgrove,
    home: &Path,
    command: &str,
    url: &str,
    ca_file: &Path,
    pinentry: &RecordingPinentry,
) -> Output {
    let mut certauth = w.certauth();
    certauth.args(["-vv", command, url]);
    if command == "sign-in" {
        certauth.args(["--username", "alice@woodgrove.com"]);
    }
    certauth
        .args(["--cert", &w.sha256("alice-p384")])
        .args(["--pin", &pinentry.source(), "--no-p11-kit", "--module"])
        .arg(w.module())
        .arg("--ca-file")
        .arg(ca_file)
        .arg("--chain")
        .arg(issuing_ca(w))
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home);
    certauth.output().unwrap()
}

fn assert_network_failure_without_pin(output: &Output, pinentry: &RecordingPinentry, says: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(
        pinentry.pins_asked(),
        0,
        "a PIN was asked: {}\n{stderr}",
        text(&pinentry.received())
    );
    assert_eq!(output.status.code(), Some(EXIT_NETWORK), "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(
        stderr.contains("no PIN was asked and the token was not used"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_server_fails_with_exit_6_before_the_pin() {
    let w = woodgrove();
    let home = tempfile::tempdir().unwrap();
    let url = closed_port_url();
    for command in ["sign-in", "request"] {
        let pinentry = RecordingPinentry::new(&w.pin("Woodgrove Alice"));
        let output = run(w, home.path(), command, &url, &other_ca(w), &pinentry);
        assert_network_failure_without_pin(
            &output,
            &pinentry,
            &format!("cannot reach {}", url.trim_end_matches('/')),
        );
        // What happened, and where to look: not the socket layer's words alone.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("certauth: error:"))
            .unwrap_or_default();
        assert!(
            error.contains("is the server running") && !error.contains("os error"),
            "{stderr}"
        );
    }
}

#[test]
fn an_untrusted_server_fails_with_exit_6_before_the_pin() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    for command in ["sign-in", "request"] {
        let pinentry = RecordingPinentry::new(&w.pin("Woodgrove Alice"));
        let output = run(
            w,
            home.path(),
            command,
            &server.url,
            &other_ca(w),
            &pinentry,
        );
        assert_network_failure_without_pin(
            &output,
            &pinentry,
            "the server's certificate is not trusted",
        );
    }
}

#[test]
fn a_trusted_server_that_refuses_an_empty_certificate_gets_the_pin_asked_once() {
    let w = woodgrove();
    let home = tempfile::tempdir().unwrap();
    for (version, args) in [
        ("TLSv1_3", &["--tls13-only"]),
        ("TLSv1_2", &["--tls12-only"]),
    ] {
        let server = EchoServer::start(w, args);
        let pinentry = RecordingPinentry::new(&w.pin("Woodgrove Alice"));
        let output = run(
            w,
            home.path(),
            "request",
            &server.url,
            &server.ca_file,
            &pinentry,
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let echo: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(echo["tlsVersion"], version);
        assert_eq!(echo["client"]["sha256"], w.sha256("alice-p384"));
        assert_eq!(pinentry.pins_asked(), 1, "{version}");
    }
}

#[test]
fn the_agent_reaches_the_server_before_it_asks_for_the_pin() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let success = answers.path().join("success.json");
    std::fs::write(
        &success,
        json!({"status": 200, "body": {
            "status": "success",
            "userPrincipalName": "alice@woodgrove.com",
            "expiresAt": "2099-01-01T00:00:00Z",
        }})
        .to_string(),
    )
    .unwrap();
    let server = EchoServer::start(w, &["--signin-response", success.to_str().unwrap()]);
    let agent = AgentProcess::start(agent_command(w));
    let mut client = Client::connect(&agent.socket);
    let params = |url: &str, ca_file: &Path| {
        json!({
            "url": url,
            "username": "alice@woodgrove.com",
            "cert": w.sha256("alice-p384"),
            "caFile": ca_file,
            "chain": [issuing_ca(w)],
        })
    };
    let pin = w.pin("Woodgrove Alice");
    let asked_pin = |questions: &[Value]| questions.iter().any(|q| q["ask"] == "pin");

    for (url, ca_file, says) in [
        (closed_port_url(), server.ca_file.clone(), "cannot reach"),
        (
            server.url.clone(),
            other_ca(w),
            "the server's certificate is not trusted",
        ),
    ] {
        let (failed, questions) = client.sign_in(params(&url, &ca_file), &pin);
        assert_eq!(failed["error"]["code"], "network", "{failed}");
        let message = failed["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says) && message.contains("no PIN was asked"),
            "{failed}"
        );
        assert!(!asked_pin(&questions), "{questions:?}");
    }

    // A trusted server: the PIN is asked once, and the sign-in made.
    let (signed, questions) = client.sign_in(params(&server.url, &server.ca_file), &pin);
    assert_eq!(signed["result"]["status"], "success", "{signed}");
    assert!(asked_pin(&questions), "{questions:?}");

    // The command line's `--via-agent` gets the agent's network failure as exit 6.
    let pinentry = RecordingPinentry::new(&pin);
    let via_agent = w
        .certauth()
        .args([
            "sign-in",
            &closed_port_url(),
            "--username",
            "alice@woodgrove.com",
        ])
        .args(["--cert", &w.sha256("alice-p384"), "--fresh"])
        .args(["--pin", &pinentry.source(), "--ca-file"])
        .arg(&server.ca_file)
        .args(["--via-agent", "--agent-socket"])
        .arg(&agent.socket)
        .output()
        .unwrap();
    assert_network_failure_without_pin(&via_agent, &pinentry, "cannot reach");
}
