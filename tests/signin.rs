//! `certauth request` and `certauth sign-in` against a real mutual-TLS server process on loopback,
//! with keys on the Woodgrove fixture's SoftHSM tokens: every key type, TLS 1.2 and 1.3, choosing
//! by URI and thumbprint, the remembered choice, PIN and certificate failures, and exit codes.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::echo_server::{canned, EchoServer};
use support::text;
use support::woodgrove::{woodgrove, Woodgrove};

/// One `certauth` run against the echo server: the subcommand (`request` or `sign-in`), who signs
/// in, the `--cert` given and the PIN in `TOKEN_PIN`.
#[derive(Clone, Copy)]
struct Run<'a> {
    command: &'a str,
    username: Option<&'a str>,
    cert: Option<&'a str>,
    pin: &'a str,
}

impl Run<'_> {
    /// `certauth` at trace level (everything certauth and its libraries log, which must never
    /// include a PIN) with the fixture's module, the server's CA, the Woodgrove chain, and
    /// `home` as its config directory.
    fn command(&self, w: &Woodgrove, server: &EchoServer, home: &Path) -> Command {
        let mut command = server.certauth(w, home, &["-vvv", self.command, &server.url]);
        self.options(&mut command);
        command
    }

    /// `--username`, `--cert`, `--pin env:TOKEN_PIN` and its `TOKEN_PIN`.
    fn options(&self, command: &mut Command) {
        if let Some(username) = self.username {
            command.args(["--username", username]);
        }
        if let Some(cert) = self.cert {
            command.args(["--cert", cert]);
        }
        command
            .args(["--pin", "env:TOKEN_PIN"])
            .env("TOKEN_PIN", self.pin);
    }

    fn output(&self, w: &Woodgrove, server: &EchoServer, home: &Path) -> Output {
        self.command(w, server, home).output().unwrap()
    }
}

fn token_of(w: &Woodgrove, name: &str) -> String {
    w.spec.certificate(name).unwrap().token.clone()
}

/// `certauth request` with `name`'s certificate, its PIN from the environment.
fn request_as(w: &Woodgrove, server: &EchoServer, name: &str) -> (Value, Output) {
    let home = tempfile::tempdir().unwrap();
    let pin = w.pin(&token_of(w, name));
    let output = Run {
        command: "request",
        username: None,
        cert: Some(&w.sha256(name)),
        pin: &pin,
    }
    .output(w, server, home.path());
    assert!(
        output.status.success(),
        "{name}: {}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
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
    let output = Run {
        command: "request",
        username: None,
        cert: Some(&uri),
        pin: &w.pin("Woodgrove Bob"),
    }
    .output(w, &server, home.path());
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
    let alice = Run {
        command: "sign-in",
        username: Some("alice@woodgrove.com"),
        cert: None,
        pin: &pin,
    };

    let first = Run {
        cert: Some(&mfa),
        ..alice
    }
    .output(w, &server, home.path());
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
    let second = Run {
        username: Some("Alice@Woodgrove.com"),
        ..alice
    }
    .output(w, &server, home.path());
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

    let third = alice.output(w, &server, home.path());
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
    let (home, remembered) = support::home_and_remembered_file();
    let endpoint = server.url.trim_end_matches('/').to_owned();
    std::fs::write(
        remembered,
        serde_json::json!({ endpoint: { "bob@woodgrove.com": {
            "sha256": "00".repeat(32), "uri": "pkcs11:object=gone;type=cert", "description": "Bob's old card"
        }}})
        .to_string(),
    )
    .unwrap();
    let output = Run {
        command: "sign-in",
        username: Some("bob@woodgrove.com"),
        cert: None,
        pin: &w.pin("Woodgrove Bob"),
    }
    .output(w, &server, home.path());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("Note: The certificate remembered for this sign-in (Bob's old card) is not available any more; choose another."),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(4), "{stderr}");
}

/// How a failure case's echo server starts.
#[derive(Clone, Copy)]
enum Server {
    /// Trusting the Woodgrove root, answering sign-ins with success.
    Plain,
    /// Answering every sign-in with this status and JSON body.
    Answering(u16, &'static str),
    /// Accepting client certificates from this fixture CA file only.
    AcceptingOnly(&'static str),
}

/// A run that fails: the server, the run (certificates by fixture name, the PIN by token label
/// unless `pin` gives it), and the exit code and words expected.
#[derive(Clone, Copy)]
struct Failure {
    server: Server,
    /// Whether certauth is told the server's CA (`--ca-file`) and sent the Woodgrove chain.
    trusts_server: bool,
    /// Whether certauth gets the fixture's module (otherwise it has no token at all).
    module: bool,
    run: Run<'static>,
    /// The token whose PIN goes in `TOKEN_PIN`, when `run.pin` is empty.
    token: &'static str,
    exit: i32,
    stdout_starts_with: &'static str,
    stderr_has: &'static [&'static str],
    stderr_lacks: &'static [&'static str],
}

const SIGN_IN: Failure = Failure {
    server: Server::Plain,
    trusts_server: true,
    module: true,
    run: Run {
        command: "sign-in",
        username: None,
        cert: None,
        pin: "",
    },
    token: "",
    exit: 0,
    stdout_starts_with: "",
    stderr_has: &[],
    stderr_lacks: &[],
};

impl Failure {
    fn check(&self) {
        let w = woodgrove();
        let answers = tempfile::tempdir().unwrap();
        let server = match self.server {
            Server::Plain => EchoServer::start(w, &[]),
            Server::Answering(status, body) => {
                let body = serde_json::from_str(body).unwrap();
                let answer = canned(answers.path(), status, body);
                EchoServer::start(w, &["--signin-response", &answer])
            }
            Server::AcceptingOnly(ca) => {
                EchoServer::start_with_client_ca(w, &w.fixture.path(ca), &[])
            }
        };
        let home = tempfile::tempdir().unwrap();
        let pin = match self.run.pin {
            "" => w.pin(self.token),
            pin => pin.to_owned(),
        };
        let cert = self.run.cert.map(|name| w.sha256(name));
        let run = Run {
            cert: cert.as_deref(),
            pin: &pin,
            ..self.run
        };
        let mut command = w.certauth();
        command
            .args(["-vvv", run.command, &server.url, "--no-p11-kit"])
            .env("XDG_CONFIG_HOME", home.path())
            .env("HOME", home.path());
        run.options(&mut command);
        if self.module {
            command.arg("--module").arg(w.module());
        }
        if self.trusts_server {
            server.trusted_by(&mut command);
        }
        let output = command.output().unwrap();
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert_eq!(output.status.code(), Some(self.exit), "{stdout}\n{stderr}");
        assert!(stdout.starts_with(self.stdout_starts_with), "{stdout}");
        for words in self.stderr_has {
            assert!(stderr.contains(words), "{words:?} missing from:\n{stderr}");
        }
        for words in self.stderr_lacks {
            assert!(!stderr.contains(words), "{words:?} in:\n{stderr}");
        }
        assert!(
            !home
                .path()
                .join("certauth/remembered-certificates.json")
                .exists(),
            "a failed sign-in remembers nothing"
        );
    }
}

/// One #[test] per failure case, named for what it shows.
macro_rules! failures {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                $case.check();
            }
        )*
    };
}

failures! {
    a_refusal_from_the_server_exits_3_with_its_code: Failure {
        server: Server::Answering(
            401,
            r#"{"status": "failure", "errorCode": "AADSTS50034", "message": "The user account does not exist in the directory."}"#,
        ),
        run: Run {
            username: Some("nobody@woodgrove.com"),
            cert: Some("bob-p256-rfc822"),
            ..SIGN_IN.run
        },
        token: "Woodgrove Bob",
        exit: 3,
        stdout_starts_with:
            "Sign-in refused: AADSTS50034: The user account does not exist in the directory.\n",
        ..SIGN_IN
    };
    a_wrong_pin_exits_5_and_says_so: Failure {
        run: Run {
            username: Some("bob@woodgrove.com"),
            cert: Some("bob-rsa3072"),
            pin: "999999",
            ..SIGN_IN.run
        },
        exit: 5,
        stderr_has: &["certauth: error: wrong PIN for `Woodgrove Bob`; few tries are left"],
        stderr_lacks: &["999999"],
        ..SIGN_IN
    };
    an_ineligible_certificate_exits_4_with_the_reasons: Failure {
        run: Run {
            username: Some("alice@woodgrove.com"),
            cert: Some("alice-expired"),
            ..SIGN_IN.run
        },
        token: "Woodgrove Alice",
        exit: 4,
        stderr_has: &[
            "certauth: error: the certificate --cert names cannot sign in: expired on",
            // The listing says what was on the tokens and why each was refused.
            "Token `Woodgrove Alice`",
            "Alice Wilber (logon) <alice@woodgrove.com>: for Windows smartcard logon only",
        ],
        ..SIGN_IN
    };
    a_missing_certificate_exits_4_with_the_reasons: Failure {
        module: false,
        run: Run {
            username: Some("alice@woodgrove.com"),
            pin: "no token asks for it",
            ..SIGN_IN.run
        },
        exit: 4,
        stderr_has: &[
            "no certificate on the tokens can sign in",
            "No tokens were found. Is the card inserted, and its PKCS#11 module installed?",
        ],
        ..SIGN_IN
    };
    a_server_that_accepts_other_cas_gets_no_certificate_and_the_user_learns_why: Failure {
        server: Server::AcceptingOnly("pki/ca/fabrikam-rogue.pem"),
        run: Run {
            command: "request",
            cert: Some("alice-p384"),
            ..SIGN_IN.run
        },
        token: "Woodgrove Alice",
        exit: 4,
        stderr_has: &[
            // Refused with the server's answer in hand, before any PIN.
            "the certificate --cert names is not one the server accepts, so no PIN was asked",
            "The server accepts certificates from: C=US,O=Fabrikam Ltd,CN=Fabrikam Rogue CA",
            "the server does not accept certificates from `C=US,O=Woodgrove Bank,CN=Woodgrove Root CA`",
        ],
        ..SIGN_IN
    };
    an_untrusted_server_certificate_is_refused_with_exit_6: Failure {
        trusts_server: false,
        run: Run {
            command: "request",
            cert: Some("alice-p384"),
            ..SIGN_IN.run
        },
        token: "Woodgrove Alice",
        exit: 6,
        stderr_has: &["the server's certificate is not trusted"],
        ..SIGN_IN
    };
}
