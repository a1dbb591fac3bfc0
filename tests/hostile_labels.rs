//! A hostile token (issue 13, item 7): a real SoftHSM token whose label holds escape sequences (a
//! screen clear, a window-title change) and a right-to-left override, with a certificate whose
//! name holds a cursor move and a C1 control. What `certauth` prints of them (`list`, the PIN
//! dialog, error messages, here and through the agent) shows them escaped and never sends the
//! raw bytes to a terminal; `list --json` keeps the exact values, in terminal-safe JSON text.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use certauth::fixtures::spec::Spec;
use serde_json::Value;
use support::agent::{agent_command, AgentProcess};
use support::echo_server::EchoServer;
use support::pinentry::RecordingPinentry;
use support::text;
use support::woodgrove::Woodgrove;

/// The token label: 24 bytes of the 32 a label may hold.
const LABEL: &str = "Evil\x1b[2J\x1b]0;Bank\x07\u{202e}kcab";
/// The label as certauth shows it.
const LABEL_SHOWN: &str = r"Evil\x1b[2J\x1b]0;Bank\x07\u{202e}kcab";
/// The certificate's common name, and how it is shown.
const NAME: &str = "Eve\x1b[1A\u{9b}31m";
const NAME_SHOWN: &str = r"Eve\x1b[1A\u{9b}31m";
const PIN: &str = "314159";

/// Two CAs named as Woodgrove's (so the echo server helper finds them) and the hostile token.
const SPEC: &str = r#"
schema = 1

[tenant]
name = "Hostile"
domain = "woodgrove.com"

[[authorities]]
id = "woodgrove-root"
subject = ["O=Woodgrove Bank", "CN=Woodgrove Root CA"]
key = "p256"
serial = "01"
trusted = true
not_before_days = -10
not_after_days = 365
crl = { url = "http://crl.woodgrove.com/root.crl", number = 1, next_update_days = 30 }

[[authorities]]
id = "woodgrove-issuing"
issuer = "woodgrove-root"
subject = ["O=Woodgrove Bank", "CN=Woodgrove Issuing CA 01"]
key = "p256"
serial = "02"
trusted = true
not_before_days = -10
not_after_days = 365
crl = { url = "http://crl.woodgrove.com/issuing.crl", number = 1, next_update_days = 7 }

[[tokens]]
label = "Evil\u001b[2J\u001b]0;Bank\u0007\u202ekcab"
pin = "314159"
so_pin = "27182818"

[[certificates]]
name = "eve"
token = "Evil\u001b[2J\u001b]0;Bank\u0007\u202ekcab"
issuer = "woodgrove-issuing"
key = "p256"
serial = "1001"
subject = ["O=Woodgrove Bank", "CN=Eve\u001b[1A\u009b31m"]
upn = "eve@woodgrove.com"
eku = ["clientAuth"]
key_usage = ["digitalSignature"]
not_before_days = -1
not_after_days = 30
"#;

fn hostile() -> &'static Woodgrove {
    static FIXTURE: OnceLock<Woodgrove> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let spec = Spec::parse(SPEC, Path::new("hostile.toml")).unwrap();
        assert_eq!(spec.tokens[0].label, LABEL);
        Woodgrove::provision(spec)
    })
}

/// The tests log in to one SoftHSM token, and a wrong PIN rewrites its state on disk: one at a
/// time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Fails if `bytes` hold anything that would reach a terminal as a control: ESC, BEL, a C1
/// control or a bidi override.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let shown = text(bytes);
    let raw: Vec<char> = shown
        .chars()
        .filter(|&c| c != '\n' && certauth::printable::is_disguising(c))
        .collect();
    assert!(
        !bytes.contains(&0x1b) && raw.is_empty(),
        "{what} holds raw control characters {raw:?}:\n{shown}"
    );
}

fn sha256(w: &Woodgrove) -> String {
    w.sha256("eve")
}

fn certauth(w: &Woodgrove, home: &Path) -> Command {
    let mut command = w.certauth();
    command
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .env("TERM", "xterm");
    command
}

fn list(w: &Woodgrove, home: &Path, args: &[&str]) -> Output {
    certauth(w, home)
        .arg("list")
        .args(args)
        .args(["--no-p11-kit", "--module"])
        .arg(w.module())
        .output()
        .unwrap()
}

#[test]
fn list_shows_the_label_escaped_and_json_keeps_it_exact() {
    let _serial = one_at_a_time();
    let w = hostile();
    let home = tempfile::tempdir().unwrap();

    let table = list(w, home.path(), &["--all"]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    assert_terminal_safe("certauth list", &table.stdout);
    let shown = text(&table.stdout);
    assert!(shown.contains(&format!("Token `{LABEL_SHOWN}`")), "{shown}");
    assert!(
        shown.contains(&format!("{NAME_SHOWN} <eve@woodgrove.com>")),
        "{shown}"
    );

    let json = list(w, home.path(), &["--json", "--all"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    assert_terminal_safe("certauth list --json", &json.stdout);
    let document: Value = serde_json::from_slice(&json.stdout).unwrap();
    let token = &document["tokens"][0];
    assert_eq!(token["label"], LABEL, "JSON keeps the exact label");
    assert!(
        token["certificates"][0]["subject"]
            .as_str()
            .unwrap()
            .contains(NAME),
        "{token}"
    );
    assert!(
        text(&json.stdout).contains(r#""label": "Evil\u001b[2J\u001b]0;Bank\u0007\u202ekcab""#),
        "{}",
        text(&json.stdout)
    );

    // An error message quoting the label.
    let missing = list(w, home.path(), &["--token", "Somebody else"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_terminal_safe("the error of certauth list --token", &missing.stderr);
    assert!(
        text(&missing.stderr).contains(&format!("tokens present: `{LABEL_SHOWN}`")),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn the_pin_dialog_and_the_errors_show_the_label_escaped() {
    let _serial = one_at_a_time();
    let w = hostile();
    let server = EchoServer::start(w, &[]);
    let home = tempfile::tempdir().unwrap();
    let request = |pin_source: &str| {
        let mut command = server.certauth(
            w,
            home.path(),
            &[
                "request",
                &server.url,
                "--cert",
                &sha256(w),
                "--pin",
                pin_source,
            ],
        );
        command.env("TERM", "xterm");
        command
    };

    let pinentry = RecordingPinentry::new(PIN);
    let signed = request(&pinentry.source()).output().unwrap();
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    assert_eq!(pinentry.pins_asked(), 1);
    let told = pinentry.received();
    assert_terminal_safe("what the pinentry was told", &told);
    let told = text(&told);
    assert!(
        told.contains(&format!(
            "SETDESC Enter the PIN of token \"{LABEL_SHOWN}\" to sign in with%0A{NAME_SHOWN} <eve@woodgrove.com>"
        )),
        "{told}"
    );

    let wrong = request("env:TOKEN_PIN")
        .env("TOKEN_PIN", "999999")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(5), "{}", text(&wrong.stderr));
    assert_terminal_safe("the wrong-PIN error", &wrong.stderr);
    assert!(
        text(&wrong.stderr).contains(&format!("certauth: error: wrong PIN for `{LABEL_SHOWN}`")),
        "{}",
        text(&wrong.stderr)
    );
}

#[test]
fn through_the_agent_the_command_line_shows_the_label_escaped() {
    let _serial = one_at_a_time();
    let w = hostile();
    let answers = tempfile::tempdir().unwrap();
    let success = answers.path().join("success.json");
    std::fs::write(
        &success,
        serde_json::json!({"status": 200, "body": {
            "status": "success",
            "userPrincipalName": "eve@woodgrove.com",
            "expiresAt": "2099-01-01T00:00:00Z",
        }})
        .to_string(),
    )
    .unwrap();
    let server = EchoServer::start(w, &["--signin-response", success.to_str().unwrap()]);
    let agent = AgentProcess::start(agent_command(w));
    let home = tempfile::tempdir().unwrap();
    let sign_in = |pin_source: &str| {
        let mut command = certauth(w, home.path());
        command
            .args(["sign-in", &server.url, "--username", "eve@woodgrove.com"])
            .args(["--cert", &sha256(w), "--pin", pin_source, "--fresh"])
            .args(["--via-agent", "--agent-socket"])
            .arg(&agent.socket);
        server.trusted_by(&mut command);
        command
    };

    // A wrong PIN first: the agent's error, printed here.
    let wrong = sign_in("env:TOKEN_PIN")
        .env("TOKEN_PIN", "999999")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(5), "{}", text(&wrong.stderr));
    assert_terminal_safe("the agent's wrong-PIN error", &wrong.stderr);
    assert!(
        text(&wrong.stderr).contains(&format!("wrong PIN for `{LABEL_SHOWN}`")),
        "{}",
        text(&wrong.stderr)
    );

    // The agent's PIN question, answered by the pinentry here.
    let pinentry = RecordingPinentry::new(PIN);
    let signed = sign_in(&pinentry.source()).output().unwrap();
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    assert_eq!(pinentry.pins_asked(), 1);
    assert_terminal_safe("what the pinentry was told", &pinentry.received());
    assert!(
        text(&pinentry.received())
            .contains(&format!("SETDESC Enter the PIN of token \"{LABEL_SHOWN}\"")),
        "{}",
        text(&pinentry.received())
    );
    assert_terminal_safe("the sign-in's output", &signed.stdout);
    assert!(
        text(&signed.stdout).contains(&format!("on `{LABEL_SHOWN}`")),
        "{}",
        text(&signed.stdout)
    );
}
