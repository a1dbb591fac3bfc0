//! `certauth request` and `certauth sign-in` against a real mutual-TLS server process on loopback,
//! with keys on the Woodgrove fixture's SoftHSM tokens: every key type, TLS 1.2 and 1.3, choosing
//! by URI and thumbprint, the remembered choice, PIN and certificate failures, and exit codes.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::echo_server::{canned, EchoServer};
use support::text;
use support::woodgrove::{woodgrove, Woodgrove};

/// `certauth` with the fixture's module, the server's CA, the Woodgrove chain, and a private
/// config directory.
fn certauth(
    w: &Woodgrove,
    server: &EchoServer,
    config_home: &std::path::Path,
    args: &[&str],
) -> Command {
    let mut command = w.certauth();
    // Trace level: everything certauth and its libraries log, which must never include a PIN.
    command
        .args(["-vvv"])
        .args(args)
        .args(["--no-p11-kit", "--module"])
        .arg(w.module());
    server.trusted_by(&mut command);
    command
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home);
    command
}

fn token_of(w: &Woodgrove, name: &str) -> String {
    w.spec.certificate(name).unwrap().token.clone()
}

/// `certauth request` with `name`'s certificate, its PIN from the environment.
fn request_as(w: &Woodgrove, server: &EchoServer, name: &str) -> (Value, Output) {
    let home = tempfile::tempdir().unwrap();
    let output = certauth(
        w,
        server,
        home.path(),
        &[
            "request",
            &server.url,
            "--cert",
            &w.sha256(name),
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", w.pin(&token_of(w, name)))
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{name}: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let pin = w.pin(&token_of(w, name));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(" TRACE "), "trace logging ran");
    assert!(
        !support::shows_secret(&stderr, &pin),
        "the PIN reached the trace log"
    );
    // The echo's JSON has no line end of its own: certauth adds one to a text body.
    assert!(output.stdout.ends_with(b"}\n"), "{}", text(&output.stdout));
    (serde_json::from_slice(&output.stdout).unwrap(), output)
}

#[test]
fn rsa_pkcs1_over_tls12() {
    let w = woodgrove();
    let server = EchoServer::start(w, &["--tls12-only", "--client-signatures-pkcs1-only"]);
    let (echo, output) = request_as(w, &server, "alice-rsa2048-mfa");
    assert_eq!(echo["tlsVersion"], "TLSv1_2");
    assert_eq!(echo["client"]["sha256"], w.sha256("alice-rsa2048-mfa"));
    assert_eq!(
        echo["client"]["chainLength"], 2,
        "leaf and issuing CA are sent"
    );
    assert!(
        text(&output.stderr).contains("scheme=RsaPkcs1(Sha256)"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn rsa_pss_over_tls13() {
    let w = woodgrove();
    let server = EchoServer::start(w, &["--tls13-only"]);
    let (echo, output) = request_as(w, &server, "alice-rsa2048-mfa");
    assert_eq!(echo["tlsVersion"], "TLSv1_3");
    assert_eq!(echo["client"]["sha256"], w.sha256("alice-rsa2048-mfa"));
    assert_eq!(
        echo["client"]["subject"],
        "C=US,O=Woodgrove Bank,OU=Users,CN=Alice Wilber"
    );
    assert!(
        text(&output.stderr).contains("scheme=RsaPss(Sha256)"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn ecdsa_p256_and_p384() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    for (name, scheme) in [
        ("bob-p256-rfc822", "Ecdsa(Sha256)"),
        ("alice-p384", "Ecdsa(Sha384)"),
    ] {
        let (echo, output) = request_as(w, &server, name);
        assert_eq!(echo["tlsVersion"], "TLSv1_3", "{name}");
        assert_eq!(echo["client"]["sha256"], w.sha256(name), "{name}");
        assert!(
            text(&output.stderr).contains(&format!("scheme={scheme}")),
            "{name}"
        );
    }
    // RSA-3072 over TLS 1.2 too.
    let server = EchoServer::start(w, &["--tls12-only"]);
    let (echo, _) = request_as(w, &server, "bob-rsa3072");
    assert_eq!(echo["tlsVersion"], "TLSv1_2");
    assert_eq!(echo["client"]["sha256"], w.sha256("bob-rsa3072"));
}

#[test]
fn a_key_that_wants_the_pin_before_every_signature() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let (echo, output) = request_as(w, &server, "bob-rsa2048-pin-each-use");
    assert_eq!(echo["tlsVersion"], "TLSv1_3");
    assert_eq!(
        echo["client"]["sha256"],
        w.sha256("bob-rsa2048-pin-each-use")
    );
    // The multi-part hash-and-sign path, with a context-specific login.
    assert!(
        text(&output.stderr).contains("scheme=RsaPss(Sha256)"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn cert_by_pkcs11_uri() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let listing = w
        .certauth()
        .args(["list", "--json", "--no-p11-kit", "--module"])
        .arg(w.module())
        .output()
        .unwrap();
    let document: Value = serde_json::from_slice(&listing.stdout).unwrap();
    let uri = document["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["certificates"].as_array().unwrap().iter())
        .find(|c| c["label"] == "bob-p256-rfc822")
        .map(|c| c["uri"].as_str().unwrap().to_owned())
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let output = certauth(
        w,
        &server,
        home.path(),
        &[
            "request",
            &server.url,
            "--cert",
            &uri,
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let echo: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(echo["client"]["sha256"], w.sha256("bob-p256-rfc822"));
}

#[test]
fn sign_in_prints_the_answer_remembers_the_choice_and_forget_clears_it() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let success = canned(
        answers.path(),
        200,
        serde_json::json!({
            "status": "success",
            "userPrincipalName": "alice@woodgrove.com",
            "authenticationStrength": "multiFactor",
            "usernameBinding": {"x509CertificateField": "PrincipalName", "userProperty": "userPrincipalName", "priority": 1, "trustAffinityLevel": "low"},
            "authenticationRule": "policyOID 1.2.3.4 -> multiFactor",
            "token": "eyJ...",
            "expiresAt": "2026-11-28T22:00:00Z",
        }),
    );
    let server = EchoServer::start(w, &["--signin-response", &success]);
    let home = tempfile::tempdir().unwrap();
    let pin = w.pin("Woodgrove Alice");
    let mfa = w.sha256("alice-rsa2048-mfa");

    let first = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "alice@woodgrove.com",
            "--cert",
            &mfa,
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", &pin)
    .output()
    .unwrap();
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{stdout}\n{}", text(&first.stderr));
    assert!(
        stdout.starts_with("Signed in as alice@woodgrove.com\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  strength          multiFactor\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  username binding  PrincipalName -> userPrincipalName (priority 1, low affinity)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("  rule              policyOID 1.2.3.4 -> multiFactor\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  certificate       Alice Wilber <alice@woodgrove.com> on `Woodgrove Alice`\n"
        ),
        "{stdout}"
    );
    assert!(
        !support::shows_secret(&stdout, &pin) && !support::shows_secret(&text(&first.stderr), &pin)
    );
    let remembered =
        std::fs::read_to_string(home.path().join("certauth/remembered-certificates.json")).unwrap();
    assert!(remembered.contains(&mfa), "{remembered}");

    // No --cert now: four certificates on two tokens could sign in and there is no terminal, so
    // only the remembered choice can make this work.
    let second = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "Alice@Woodgrove.com",
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", &pin)
    .output()
    .unwrap();
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("Alice Wilber <alice@woodgrove.com> on `Woodgrove Alice`")
    );

    let forget = w
        .certauth()
        .args(["forget", &server.url])
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(forget.status.success(), "{}", text(&forget.stderr));
    assert!(text(&forget.stdout)
        .starts_with("Forgot 1 remembered certificate choice(s) for https://127.0.0.1:"));

    let third = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "alice@woodgrove.com",
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", &pin)
    .output()
    .unwrap();
    assert_eq!(third.status.code(), Some(4), "{}", text(&third.stderr));
    let stderr = text(&third.stderr);
    assert!(
        stderr.contains("several certificates can sign in and there is no terminal to choose on; name one with --cert"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("--cert {mfa}")), "{stderr}");
}

#[test]
fn a_remembered_certificate_that_went_away_falls_back_with_a_note() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let success = canned(
        answers.path(),
        200,
        serde_json::json!({"status": "success", "userPrincipalName": "bob@woodgrove.com"}),
    );
    let server = EchoServer::start(w, &["--signin-response", &success]);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("certauth");
    std::fs::create_dir_all(&store).unwrap();
    let endpoint = server.url.trim_end_matches('/').to_owned();
    std::fs::write(
        store.join("remembered-certificates.json"),
        serde_json::json!({ endpoint: { "bob@woodgrove.com": {
            "sha256": "00".repeat(32), "uri": "pkcs11:object=gone;type=cert", "description": "Bob's old card"
        }}})
        .to_string(),
    )
    .unwrap();
    let output = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "bob@woodgrove.com",
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
    .output()
    .unwrap();
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("Note: The certificate remembered for this sign-in (Bob's old card) is not available any more; choose another."),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(4), "{stderr}");
}

#[test]
fn a_refusal_from_the_server_exits_3_with_its_code() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let refusal = canned(
        answers.path(),
        401,
        serde_json::json!({"status": "failure", "errorCode": "AADSTS50034", "message": "The user account does not exist in the directory."}),
    );
    let server = EchoServer::start(w, &["--signin-response", &refusal]);
    let home = tempfile::tempdir().unwrap();
    let output = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "nobody@woodgrove.com",
            "--cert",
            &w.sha256("bob-p256-rfc822"),
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        text(&output.stdout).starts_with(
            "Sign-in refused: AADSTS50034: The user account does not exist in the directory.\n"
        ),
        "{}",
        text(&output.stdout)
    );
    assert!(
        !home
            .path()
            .join("certauth/remembered-certificates.json")
            .exists(),
        "a refused sign-in remembers nothing"
    );
}

#[test]
fn a_wrong_pin_exits_5_and_says_so() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    let output = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "bob@woodgrove.com",
            "--cert",
            &w.sha256("bob-rsa3072"),
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", "999999")
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(5));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("certauth: error: wrong PIN for `Woodgrove Bob`; few tries are left"),
        "{stderr}"
    );
    assert!(!stderr.contains("999999"));
}

#[test]
fn an_ineligible_or_missing_certificate_exits_4_with_the_reasons() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    let output = certauth(
        w,
        &server,
        home.path(),
        &[
            "sign-in",
            &server.url,
            "--username",
            "alice@woodgrove.com",
            "--cert",
            &w.sha256("alice-expired"),
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", w.pin("Woodgrove Alice"))
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("certauth: error: the certificate --cert names cannot sign in: expired on"),
        "{stderr}"
    );
    // The listing says what was on the tokens and why each was refused.
    assert!(stderr.contains("Token `Woodgrove Alice`"), "{stderr}");
    assert!(
        stderr.contains(
            "Alice Wilber (logon) <alice@woodgrove.com>: for Windows smartcard logon only"
        ),
        "{stderr}"
    );

    let nothing = w
        .certauth()
        .args([
            "sign-in",
            &server.url,
            "--username",
            "alice@woodgrove.com",
            "--no-p11-kit",
            "--ca-file",
        ])
        .arg(&server.ca_file)
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(nothing.status.code(), Some(4));
    let stderr = text(&nothing.stderr);
    assert!(
        stderr.contains("no certificate on the tokens can sign in"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "No tokens were found. Is the card inserted, and its PKCS#11 module installed?"
        ),
        "{stderr}"
    );
}

#[test]
fn a_server_that_accepts_other_cas_gets_no_certificate_and_the_user_learns_why() {
    let w = woodgrove();
    let rogue = w.fixture.path("pki/ca/fabrikam-rogue.pem");
    let server = EchoServer::start_with_client_ca(w, &rogue, &[]);
    let home = tempfile::tempdir().unwrap();
    let output = certauth(
        w,
        &server,
        home.path(),
        &[
            "request",
            &server.url,
            "--cert",
            &w.sha256("alice-p384"),
            "--pin",
            "env:TOKEN_PIN",
        ],
    )
    .env("TOKEN_PIN", w.pin("Woodgrove Alice"))
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        // Refused with the server's answer in hand, before any PIN.
        stderr.contains(
            "the certificate --cert names is not one the server accepts, so no PIN was asked"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "The server accepts certificates from: C=US,O=Fabrikam Ltd,CN=Fabrikam Rogue CA"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("the server does not accept certificates from `C=US,O=Woodgrove Bank,CN=Woodgrove Root CA`"),
        "{stderr}"
    );
}

#[test]
fn an_untrusted_server_certificate_is_refused_with_exit_6() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    let output = w
        .certauth()
        .args(["-vv", "request", &server.url, "--no-p11-kit", "--module"])
        .arg(w.module())
        .args(["--cert", &w.sha256("alice-p384"), "--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", w.pin("Woodgrove Alice"))
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("the server's certificate is not trusted"),
        "{}",
        text(&output.stderr)
    );
}
