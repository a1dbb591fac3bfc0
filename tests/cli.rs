//! Both binaries as a user runs them: help text, the demo end to end (real SoftHSM, a real HTTP
//! server on loopback), `certauth fixture` twice on one directory, `certauth-verifier crl`, and no PIN
//! in any output even at the most verbose log level.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::process::{Command, Output};

use certauth::fixtures::spec::Spec;
use secrecy::ExposeSecret;
use support::programs::{certauth, verifier};

/// `command` (from [`certauth`] or [`verifier`]) with `args`, and no SoftHSM module of the
/// machine's.
fn run(mut command: Command, args: &[&str]) -> Output {
    command
        .args(args)
        .env_remove("CERTAUTH_SOFTHSM_MODULE")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn certauth_help_describes_its_commands() {
    let out = run(certauth(), &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("Sign in with the certificate on your smartcard or HSM token"),
        "{help}"
    );
    for command in ["demo", "fixture"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(command)),
            "`{command}` missing from:\n{help}"
        );
    }
    let out = run(certauth(), &["fixture", "--help"]);
    assert!(text(&out.stdout).contains("--dir <DIR>"));
}

#[test]
fn verifier_help_describes_its_commands() {
    let out = run(verifier(), &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("reference verifier"), "{help}");
    assert!(
        help.lines().any(|l| l.trim_start().starts_with("crl")),
        "{help}"
    );
}

#[test]
fn demo_provisions_publishes_and_checks_the_crls() {
    let out = run(certauth(), &["demo"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("Provisioned the Woodgrove tenant"),
        "{stdout}"
    );
    assert!(stdout.contains("Woodgrove Alice (serial "), "{stdout}");
    assert!(stdout.contains("Woodgrove Bob (serial "), "{stdout}");
    assert!(stdout.contains("alice-rsa2048-mfa"), "{stdout}");
    assert!(
        stdout.contains("CRLs published on http://127.0.0.1:"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("signature verified").count(), 4, "{stdout}");
    assert!(
        stdout.contains("base CRL #41, signature verified, revoked: 2003"),
        "{stdout}"
    );
    assert!(
        stdout.contains("delta CRL #42 (of base #41), signature verified, revoked: 2004"),
        "{stdout}"
    );
    assert!(
        stdout.contains("The demo directory was removed"),
        "{stdout}"
    );
    // The temporary directory really is gone.
    let dir = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("directory"))
        .unwrap()
        .trim();
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}

#[test]
fn fixture_twice_says_already_provisioned_and_logs_no_pin() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("woodgrove");
    let target = target.to_str().unwrap();

    let first = run(certauth(), &["-vvv", "fixture", "--dir", target]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).starts_with("Provisioned the Woodgrove tenant"));

    let second = run(certauth(), &["-vvv", "fixture", "--dir", target]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).starts_with(&format!(
            "Already provisioned: {target} holds the Woodgrove tenant from this spec"
        )),
        "{}",
        text(&second.stdout)
    );

    let json = run(certauth(), &["fixture", "--dir", target, "--json"]);
    let manifest: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(manifest["tenant"], "Woodgrove");
    assert_eq!(manifest["tokens"].as_array().unwrap().len(), 2);

    // Secrets: no PIN in stdout, stderr (trace level) or the manifest.
    let spec = Spec::embedded_woodgrove().unwrap();
    let manifest_text = std::fs::read_to_string(dir.path().join("woodgrove/fixture.json")).unwrap();
    for output in [&first, &second, &json] {
        for token in &spec.tokens {
            for secret in [&token.pin, &token.so_pin] {
                let secret = secret.expose_secret();
                assert!(!text(&output.stdout).contains(secret));
                assert!(!text(&output.stderr).contains(secret));
                assert!(!manifest_text.contains(secret));
            }
        }
    }
    assert!(
        text(&first.stderr).contains("generating key pair on the token"),
        "trace logs ran"
    );

    // The verifier's view of the CRLs the fixture wrote.
    let crl = dir
        .path()
        .join("woodgrove/pki/crl/woodgrove-issuing-ca-01-delta.crl");
    let ca = dir.path().join("woodgrove/pki/ca/woodgrove-issuing.pem");
    let shown = run(
        verifier(),
        &["crl", "--ca", ca.to_str().unwrap(), crl.to_str().unwrap()],
    );
    let stdout = text(&shown.stdout);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        stdout.contains("issuer       C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01"),
        "{stdout}"
    );
    assert!(stdout.contains("CRL number   42"), "{stdout}");
    assert!(
        stdout.contains("delta CRL of base CRL number 41"),
        "{stdout}"
    );
    assert!(
        stdout.contains("signature    verified with the given CA"),
        "{stdout}"
    );
    assert!(stdout.contains("revoked      1"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("2004") && l.ends_with("superseded")),
        "{stdout}"
    );

    // The wrong CA is refused, with the reason.
    let rogue = dir.path().join("woodgrove/pki/ca/fabrikam-rogue.pem");
    let refused = run(
        verifier(),
        &[
            "crl",
            "--ca",
            rogue.to_str().unwrap(),
            crl.to_str().unwrap(),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("was issued by `C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01`, not by `C=US,O=Fabrikam Ltd,CN=Fabrikam Rogue CA`"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn verifier_crl_rejects_a_file_that_is_not_a_crl() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.crl");
    std::fs::write(&junk, b"not a crl").unwrap();
    let out = run(verifier(), &["crl", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("certauth-verifier: error: {}", junk.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

#[test]
fn lock_without_a_runtime_dir_names_the_agent_socket_flag() {
    let out = certauth()
        .arg("lock")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("CERTAUTH_AGENT_SOCKET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--agent-socket"), "{stderr}");
}

#[test]
fn api_key_for_a_missing_state_dir_says_so() {
    let missing = tempfile::tempdir().unwrap().path().join("no-such-state");
    let out = run(
        verifier(),
        &[
            "api-key",
            "--state-dir",
            missing.to_str().unwrap(),
            "--role",
            "reader",
        ],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(
        stderr.contains("certauth-verifier serve --state-dir"),
        "{stderr}"
    );
    assert!(!missing.exists());
}

/// `certauth-verifier serve` with no state directory makes the demo tenant in a temporary
/// directory; SIGTERM, even mid start-up, leaves none of it behind.
#[test]
fn serve_without_a_state_dir_leaves_nothing_behind_on_sigterm() {
    for wait_for_banner in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut serve = verifier()
            .args([
                "serve",
                "--certauth-listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = serve.stdout.take().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        // Mid start-up: as soon as the temporary directory has something in it.
        while !wait_for_banner
            && std::fs::read_dir(tmp.path()).unwrap().next().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        if wait_for_banner {
            assert!(lines.any(|l| l.unwrap().contains("admin API key")));
        }
        let status = Command::new("kill")
            .args(["-TERM", &serve.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        drop(lines);
        let exit = serve.wait().unwrap();
        let left: Vec<_> = support::walk(tmp.path());
        assert!(
            left.is_empty(),
            "left behind (banner waited for: {wait_for_banner}, {exit}): {left:?}"
        );
    }
}

/// `SOFTHSM2_CONF` naming a deleted file (a removed demo directory): the module's failure says
/// so, not only SoftHSM's "Some horrible, unrecoverable error".
#[test]
fn a_deleted_softhsm2_conf_is_named() {
    let Some(module) = ["/usr/lib/softhsm/libsofthsm2.so"]
        .into_iter()
        .find(|m| std::path::Path::new(m).exists())
    else {
        return;
    };
    let gone = tempfile::tempdir().unwrap().path().join("softhsm2.conf");
    let out = certauth()
        .args(["list", "--json", "--no-p11-kit", "--module", module])
        .env("SOFTHSM2_CONF", &gone)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("SOFTHSM2_CONF names {}", gone.display())),
        "{stdout}"
    );
}
