//! The agent hosts each PKCS#11 module in a `p11-kit server` of its own: a module whose C_Sign
//! never returns (a test module built here with `cc`, wrapping SoftHSM) costs only the sign-in
//! that signs with it. The watchdog kills its host once the (test-set) deadline passes, the
//! sign-in fails naming the token, the agent answers `status` all along, serves the other
//! module's tokens, and has the hung module's tokens back once its host is restarted.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::{AgentProcess, Client};
use support::echo_server::EchoServer;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

/// The watchdog's deadline in this test, in milliseconds.
const CALL_DEADLINE_MS: &str = "2000";
const HUNG_TOKEN: &str = "Hanging Token";
const HUNG_PIN: &str = "246810";

/// Builds the test module (`tests/data/pkcs11/hang_on_sign.c`) into `dir`.
fn build_hanging_module(dir: &Path) -> PathBuf {
    let library = dir.join("libhang-on-sign.so");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pkcs11/hang_on_sign.c");
    let output = Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-Wall",
            "-I/usr/include/p11-kit-1",
            "-o",
        ])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cc failed (scripts/setup.sh installs build-essential and libp11-kit-dev): {}",
        support::text(&output.stderr)
    );
    library
}

/// Provisions one token with one certificate from a CA of its own into `dir`; returns the
/// SoftHSM configuration and the CA's PEM file.
fn provision_hung_token(w: &Woodgrove, dir: &Path) -> (PathBuf, PathBuf) {
    let spec = dir.join("hang.toml");
    std::fs::write(
        &spec,
        format!(
            r#"schema = 1
[tenant]
name = "Hang"
domain = "woodgrove.com"
[[authorities]]
id = "hang-ca"
subject = ["O=Hang", "CN=Hang CA"]
key = "p256"
serial = "01"
trusted = true
not_before_days = -10
not_after_days = 365
crl = {{ url = "http://crl.hang.example/hang.crl", number = 1, next_update_days = 7 }}
[[tokens]]
label = "{HUNG_TOKEN}"
pin = "{HUNG_PIN}"
so_pin = "13579135"
[[certificates]]
name = "hang-user"
token = "{HUNG_TOKEN}"
issuer = "hang-ca"
key = "p256"
serial = "0101"
subject = ["O=Hang", "CN=Hang User"]
upn = "hang@woodgrove.com"
eku = ["clientAuth"]
key_usage = ["digitalSignature"]
not_before_days = -1
not_after_days = 365
"#
        ),
    )
    .unwrap();
    let fixture = dir.join("fixture");
    let output = w
        .certauth()
        .args(["fixture", "--dir"])
        .arg(&fixture)
        .arg("--spec")
        .arg(&spec)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", support::text(&output.stderr));
    (
        fixture.join("softhsm2.conf"),
        fixture.join("pki/ca/hang-ca.pem"),
    )
}

/// The token labelled `label` in an agent's `list` answer, if it is there.
fn token<'a>(listing: &'a Value, label: &str) -> Option<&'a Value> {
    let tokens = listing["result"]["tokens"].as_array()?;
    tokens.iter().find(|t| t["label"] == label)
}

#[test]
fn a_module_that_never_returns_from_c_sign_costs_only_its_own_sign_in() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let hanging = build_hanging_module(dir.path());
    let (hung_conf, hung_ca) = provision_hung_token(w, dir.path());
    let mut command = w.certauth();
    command
        .args(["agent", "--host-modules", "--session-store", "memory"])
        .arg("--no-p11-kit")
        .arg("--module")
        .arg(&hanging)
        .arg("--module")
        .arg(w.module())
        .env("HANG_PKCS11_MODULE", w.module())
        .env("HANG_SOFTHSM2_CONF", &hung_conf)
        .env("CERTAUTH_MODULE_CALL_TIMEOUT_MS", CALL_DEADLINE_MS);
    let agent = AgentProcess::start(command);

    let listing = Client::connect(&agent.socket).call(json!({"method": "list"}));
    let hung = token(&listing, HUNG_TOKEN).unwrap_or_else(|| panic!("{listing}"));
    assert_eq!(hung["module"], hanging.to_str().unwrap(), "{listing}");
    assert!(token(&listing, "Woodgrove Bob").is_some(), "{listing}");
    let sha256 = hung["certificates"][0]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();

    // The sign-in whose signature never comes, on a thread of its own.
    let server = EchoServer::start_with_client_ca(w, &hung_ca, &[]);
    let params = json!({
        "url": server.url,
        "username": "hang@woodgrove.com",
        "cert": sha256,
        "caFile": server.ca_file,
    });
    let socket = agent.socket.clone();
    let started = Instant::now();
    let hung_sign_in = std::thread::spawn(move || {
        let (answer, _) = Client::connect(&socket).sign_in(params, HUNG_PIN);
        (answer, started.elapsed())
    });

    // Meanwhile the agent answers at once.
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let status = Client::connect(&agent.socket).call(json!({"method": "status"}));
    assert!(status["result"]["pid"].is_number(), "{status}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    // The hung sign-in fails once the watchdog has killed the host, naming the token.
    let (answer, took) = hung_sign_in.join().unwrap();
    assert!(answer.get("error").is_some(), "{answer}");
    assert!(answer.to_string().contains(HUNG_TOKEN), "{answer}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    let stderr = agent.stderr();
    assert!(stderr.contains("did not return within 2 s"), "{stderr}");

    // The other module's tokens sign in as ever.
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let params = json!({
        "url": v.certauth_url,
        "username": "bob@woodgrove.com",
        "cert": w.sha256("bob-rsa3072"),
        "caFile": v.server_ca,
    });
    let (answer, _) = Client::connect(&agent.socket).sign_in(params, &w.pin("Woodgrove Bob"));
    assert_eq!(answer["result"]["status"], "success", "{answer}");

    // And the hung module's host serves again: its token is back, its module without error.
    let listing = Client::connect(&agent.socket).call(json!({"method": "list"}));
    assert!(token(&listing, HUNG_TOKEN).is_some(), "{listing}");
    let modules = listing["result"]["modules"].as_array().unwrap();
    assert!(modules.iter().all(|m| m["error"].is_null()), "{listing}");
}
