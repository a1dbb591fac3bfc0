//! The certificate picker and the PIN prompts in a real terminal, driven through tmux: as in the
//! seed's "Certificate Information" step, the user moves to the second certificate, opens its
//! details, checks that policy OID 1.2.3.4 is there, chooses it, and types the PIN at the prompt.
//! And a PIN typed into a real pinentry (pinentry-tty) over the Assuan protocol, and the picker and
//! PIN prompt of a sign-in through the agent, asked once.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::Path;
use std::time::Duration;

use support::agent::AgentProcess;
use support::echo_server::EchoServer;
use support::tmux::Tmux;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

/// How long a screen may take to show what is awaited.
const WAIT: Duration = Duration::from_secs(15);

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A shell line for tmux: `certauth` with the fixture's SoftHSM, `home` as its config directory
/// and `args` (already quoted where need be), then its exit code and a pause to read the screen.
fn certauth_line(w: &Woodgrove, home: &Path, args: &[String]) -> String {
    let mut line = vec![
        "GPG_TTY=$(tty)".to_owned(),
        "env".to_owned(),
        format!(
            "SOFTHSM2_CONF={}",
            quote(w.fixture.softhsm2_conf().to_str().unwrap())
        ),
        format!("CERTAUTH_CONFIG={}", quote(w.config.to_str().unwrap())),
        format!("XDG_CONFIG_HOME={}", quote(home.to_str().unwrap())),
        quote(support::programs::CERTAUTH),
    ];
    line.extend_from_slice(args);
    line.push("; echo; echo EXIT=$?; sleep 60".into());
    line.join(" ")
}

/// Enter on the picker's second certificate (Alice's MFA one), her PIN at the prompt that follows:
/// the screen once certauth has exited, having signed in as Alice.
fn choose_and_type_alices_pin(tmux: &Tmux, w: &Woodgrove) -> String {
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "PIN for token `Woodgrove Alice` (to use Alice Wilber <alice@woodgrove.com>):",
        WAIT,
    );
    tmux.keys(&[&w.pin("Woodgrove Alice"), "Enter"]);
    let done = tmux.wait_for("EXIT=", WAIT);
    assert!(done.contains("Signed in as alice@woodgrove.com"), "{done}");
    done
}

fn quoted(path: &Path) -> String {
    quote(path.to_str().unwrap())
}

/// [`certauth_line`] for `certauth SUBCOMMAND` to the echo server with the (quoted) `module`
/// alone, trusting the server and sending the Woodgrove chain, then `args`.
fn against_echo(
    w: &Woodgrove,
    home: &Path,
    server: &EchoServer,
    subcommand: &str,
    module: String,
    args: &[String],
) -> String {
    let mut all = vec![
        subcommand.to_owned(),
        quote(&server.url),
        "--no-p11-kit --module".into(),
        module,
        "--ca-file".into(),
        quoted(&server.ca_file),
        "--chain".into(),
        quoted(&server.chain_file),
    ];
    all.extend_from_slice(args);
    certauth_line(w, home, &all)
}

#[test]
fn choose_the_second_certificate_after_checking_its_policy_oid() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let answer = answers.path().join("answer.json");
    std::fs::write(
        &answer,
        serde_json::json!({"status": 200, "body": {
            "status": "success",
            "userPrincipalName": "alice@woodgrove.com",
            "authenticationStrength": "multiFactor"
        }})
        .to_string(),
    )
    .unwrap();
    let server = EchoServer::start(w, &["--signin-response", answer.to_str().unwrap()]);
    let home = tempfile::tempdir().unwrap();

    let command = against_echo(
        w,
        home.path(),
        &server,
        "sign-in",
        quoted(w.module()),
        &["--username alice@woodgrove.com".into()],
    );
    let tmux = Tmux::start("picker", 160, &command, |_| {});

    let list = tmux.wait_for(
        "Choose a certificate to sign in to https://127.0.0.1:",
        WAIT,
    );
    assert!(
        list.contains("> Alice Wilber (P-384) <alice@woodgrove.com>"),
        "{list}"
    );
    assert!(list.contains("issued by Woodgrove Issuing CA 01"), "{list}");
    assert!(list.contains("token Woodgrove Alice"), "{list}");

    tmux.keys(&["Down"]);
    let moved = tmux.wait_for("> Alice Wilber <alice@woodgrove.com>", WAIT);
    assert!(
        moved.contains("  Alice Wilber (P-384) <alice@woodgrove.com>"),
        "{moved}"
    );

    tmux.keys(&["d"]);
    let details = tmux.wait_for(
        "Certificate information: Alice Wilber <alice@woodgrove.com>",
        WAIT,
    );
    let field = |label: &str| {
        details
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label} line:\n{details}"))
    };
    assert_eq!(field("Policy OIDs"), "1.2.3.4", "{details}");
    assert_eq!(
        field("Issuer"),
        "C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01"
    );
    assert_eq!(field("Serial number"), "1001");
    assert_eq!(field("Extended key usage"), "clientAuth");
    let thumbprint = w
        .fixture
        .manifest
        .certificate("alice-rsa2048-mfa")
        .unwrap()
        .sha256
        .to_uppercase();
    assert!(details.contains(&thumbprint), "{details}");

    let done = choose_and_type_alices_pin(&tmux, w);
    assert!(
        done.contains("certificate       Alice Wilber <alice@woodgrove.com> on `Woodgrove Alice`"),
        "{done}"
    );
    assert!(done.contains("EXIT=0"), "{done}");
    assert!(
        !done.contains(&w.pin("Woodgrove Alice")),
        "the PIN was echoed:\n{done}"
    );

    let remembered =
        std::fs::read_to_string(home.path().join("certauth/remembered-certificates.json")).unwrap();
    assert!(
        remembered.contains(&thumbprint.to_lowercase()),
        "{remembered}"
    );
}

#[test]
fn a_pin_typed_into_pinentry() {
    pin_typed_into_pinentry(true);
}

/// With no `GPG_TTY`, the pinentry is told the terminal on certauth's stdin.
#[test]
fn a_pinentry_finds_this_terminal_without_gpg_tty() {
    pin_typed_into_pinentry(false);
}

fn pin_typed_into_pinentry(gpg_tty: bool) {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    let thumbprint = w.sha256("bob-p256-rfc822");
    let command = against_echo(
        w,
        home.path(),
        &server,
        "request",
        quoted(w.module()),
        &[
            "--cert".into(),
            thumbprint.clone(),
            "--pin pinentry:/usr/bin/pinentry-tty".into(),
        ],
    );
    let command = if gpg_tty {
        command
    } else {
        command.replacen("GPG_TTY=$(tty)", "unset GPG_TTY;", 1)
    };
    let name = if gpg_tty {
        "pinentry"
    } else {
        "pinentry-no-gpg-tty"
    };
    let tmux = Tmux::start(name, 160, &command, |_| {});
    let prompt = tmux.wait_for("PIN:", WAIT);
    assert!(prompt.contains("Woodgrove Bob"), "{prompt}");
    tmux.keys(&[&w.pin("Woodgrove Bob"), "Enter"]);
    let done = tmux.wait_for("EXIT=", WAIT);
    assert!(done.contains(&thumbprint), "{done}");
    assert!(done.contains("EXIT=0"), "{done}");
    assert!(
        !done.contains(&w.pin("Woodgrove Bob")),
        "the PIN was echoed:\n{done}"
    );
}

#[test]
fn through_the_agent_the_picker_and_pin_prompt_come_once_on_this_terminal() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let mut agent = w.certauth();
    agent
        .args([
            "agent",
            "--session-store",
            "memory",
            "--no-p11-kit",
            "--module",
        ])
        .arg(w.module());
    let agent = AgentProcess::start(agent);
    let home = tempfile::tempdir().unwrap();
    let command = certauth_line(
        w,
        home.path(),
        &[
            "sign-in".into(),
            quote(&v.certauth_url),
            "--username alice@woodgrove.com --via-agent --agent-socket".into(),
            quoted(&agent.socket),
            "--ca-file".into(),
            quoted(&v.server_ca),
        ],
    );

    // The agent's questions, asked here: the picker (the second certificate), then the PIN.
    let tmux = Tmux::start("agent-first", 160, &command, |_| {});
    tmux.wait_for("> Alice Wilber (P-384) <alice@woodgrove.com>", WAIT);
    tmux.keys(&["Down"]);
    tmux.wait_for("> Alice Wilber <alice@woodgrove.com>", WAIT);
    let done = choose_and_type_alices_pin(&tmux, w);
    assert!(done.contains("strength          multiFactor"), "{done}");
    assert!(done.contains("EXIT=0"), "{done}");
    assert!(!done.contains(&w.pin("Woodgrove Alice")), "{done}");

    // Again: the agent remembered the choice and cached the sign-in, so nothing is asked.
    let tmux = Tmux::start("agent-again", 160, &command, |_| {});
    let done = tmux.wait_for("EXIT=", WAIT);
    assert!(done.contains("EXIT=0"), "{done}");
    assert!(done.contains("strength          multiFactor"), "{done}");
    assert!(done.contains("no PIN was needed"), "{done}");
    assert!(!done.contains("PIN for token"), "{done}");
    assert!(!done.contains("Choose a certificate"), "{done}");
}

/// Enter at the terminal's PIN prompt gives an empty PIN: it is refused, never sent. The logins
/// are counted with OpenSC's PKCS#11 spy in front of SoftHSM.
#[test]
fn an_empty_pin_at_the_prompt_is_not_sent_to_the_token() {
    const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";
    assert!(
        Path::new(SPY).is_file(),
        "{SPY} is missing: install Debian's opensc-pkcs11"
    );
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("spy.log");
    let thumbprint = w.sha256("bob-p256-rfc822");
    let command = against_echo(
        w,
        home.path(),
        &server,
        "request",
        SPY.into(),
        &["--cert".into(), thumbprint, "--pin prompt".into()],
    );
    let command = format!(
        "PKCS11SPY={} PKCS11SPY_OUTPUT={} {command}",
        quoted(w.module()),
        quoted(&log)
    );
    let tmux = Tmux::start("empty-pin", 160, &command, |_| {});
    let prompt = tmux.wait_for("PIN for token `Woodgrove Bob`", WAIT);
    assert!(prompt.contains("Woodgrove Bob"), "{prompt}");
    tmux.keys(&["Enter"]);
    let done = tmux.wait_for("EXIT=", WAIT);
    assert!(
        done.contains("the PIN for `Woodgrove Bob` was not sent to the token: it is empty"),
        "{done}"
    );
    let spied = std::fs::read_to_string(&log).unwrap();
    assert!(spied.contains("C_GetTokenInfo"), "the spy logged nothing");
    assert_eq!(
        spied.lines().filter(|l| l.ends_with(" C_Login")).count(),
        0,
        "a C_Login was made"
    );
}
