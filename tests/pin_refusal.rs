//! PINs that must never reach the token (issue 13, item 3), with `certauth request` on the
//! Woodgrove SoftHSM tokens behind OpenSC's PKCS#11 spy (`pkcs11-spy.so`), which logs every call
//! the agent makes: the `C_Login` calls are counted, not guessed.
//!
//! An empty, NUL-holding or too-long PIN from `env:` or `file:` is refused with no `C_Login`;
//! `file:/dev/zero` is refused at once; a pinentry that answers a wrong PIN instantly gets no
//! more than three tries in one sign-in.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::echo_server::EchoServer;
use support::spy::{logins, request, SPY};
use support::text;
use support::woodgrove::woodgrove;

/// The tests share the fixture's SoftHSM tokens, and wrong PINs make SoftHSM rewrite Bob's token
/// state on disk: one test at a time, so no test reads it mid-write.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// certauth's exit code for a PIN failure.
const EXIT_PIN: i32 = 5;

/// Runs `command`, killing it after `limit` (a retry loop without a cap never ends on SoftHSM,
/// which never locks a PIN).
fn run_for(mut command: Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

fn assert_refused(output: &Output, log: &Path, expected: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_PIN), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert_eq!(logins(log), 0, "a C_Login was made:\n{stderr}");
}

#[test]
fn the_spy_counts_logins() {
    // The counting itself: the right PIN logs in once.
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (mut command, log) = request(w, &server, dir.path(), "env:TOKEN_PIN");
    let (output, _) = run_for(
        {
            command.env("TOKEN_PIN", w.pin("Woodgrove Bob"));
            command
        },
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(logins(&log), 1);
}

#[test]
fn empty_long_and_nul_pins_from_env_are_never_sent() {
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    for (pin, expected) in [
        ("", "the PIN from $TOKEN_PIN is empty"),
        (
            &*"1".repeat(100_000),
            "the PIN for `Woodgrove Bob` was not sent to the token: it is longer than the token's maximum of 255 characters. No try was spent",
        ),
        (
            &*"9".repeat(256),
            "the PIN for `Woodgrove Bob` was not sent to the token: it is longer than the token's maximum of 255 characters",
        ),
        (
            "123",
            "the PIN for `Woodgrove Bob` was not sent to the token: it is shorter than the token's minimum of 4 characters",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut command, log) = request(w, &server, dir.path(), "env:TOKEN_PIN");
        command.env("TOKEN_PIN", pin);
        let (output, _) = run_for(command, Duration::from_secs(60));
        assert_refused(&output, &log, expected);
    }
    // A NUL cannot be put in an environment variable (execve takes C strings): file: covers it.
}

#[test]
fn empty_long_and_nul_pins_from_a_file_are_never_sent() {
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let pin = w.pin("Woodgrove Bob");
    for (contents, expected) in [
        (b"\n".to_vec(), "is empty".to_owned()),
        (
            format!("{pin}\0\n").into_bytes(),
            "the PIN for `Woodgrove Bob` was not sent to the token: it contains a NUL character"
                .to_owned(),
        ),
        (
            vec![b'1'; 1 << 20],
            "is longer than 256 bytes; it cannot be a PIN".to_owned(),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pin");
        support::write_private(&file, contents);
        let (command, log) = request(w, &server, dir.path(), &format!("file:{}", file.display()));
        let (output, _) = run_for(command, Duration::from_secs(60));
        assert_refused(&output, &log, &expected);
        // Run at -vvv, and the refused PIN appears nowhere.
        let stderr = text(&output.stderr);
        assert!(
            !support::shows_secret(&stderr, &pin),
            "the PIN reached the log"
        );
    }
}

#[test]
fn a_pin_file_of_dev_zero_is_refused_at_once() {
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (command, log) = request(w, &server, dir.path(), "file:/dev/zero");
    let (output, took) = run_for(command, Duration::from_secs(60));
    assert_refused(
        &output,
        &log,
        "the first line of the PIN file /dev/zero is longer than 256 bytes",
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// A pinentry that answers every GETPIN at once with `answer` (no `D` line when empty).
fn instant_pinentry(dir: &Path, answer: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let data = if answer.is_empty() {
        String::new()
    } else {
        format!("echo 'D {answer}'; ")
    };
    let script = format!(
        "#!/bin/sh\necho 'OK fake pinentry'\nwhile read -r cmd rest; do\n  case \"$cmd\" in\n    GETPIN) {data}echo OK ;;\n    BYE) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n"
    );
    let path = dir.join("pinentry-instant");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn an_instant_pinentry_gets_three_tries_at_most() {
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let pinentry = instant_pinentry(dir.path(), "000000");
    let (command, log) = request(
        w,
        &server,
        dir.path(),
        &format!("pinentry:{}", pinentry.display()),
    );
    let (output, _) = run_for(command, Duration::from_secs(30));
    let stderr = text(&output.stderr);
    assert_eq!(logins(&log), 3, "{stderr}");
    assert_eq!(output.status.code(), Some(EXIT_PIN), "{stderr}");
    assert!(
        stderr.contains("stopped after 3 wrong PINs for `Woodgrove Bob`; few tries are left: no further PIN is sent in one sign-in"),
        "{stderr}"
    );
}

#[test]
fn a_pinentry_answering_ok_with_no_pin_is_never_sent() {
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let pinentry = instant_pinentry(dir.path(), "");
    let (command, log) = request(
        w,
        &server,
        dir.path(),
        &format!("pinentry:{}", pinentry.display()),
    );
    let (output, _) = run_for(command, Duration::from_secs(30));
    assert_refused(
        &output,
        &log,
        "the PIN for `Woodgrove Bob` was not sent to the token: it is empty",
    );
}

/// `{"pin": ""}` over the agent's socket is refused with a `pin` error and no `C_Login`, and a
/// client that answers a wrong PIN at once is asked three times at most.
#[test]
fn the_agent_refuses_an_empty_pin_and_stops_after_three() {
    use serde_json::json;
    use support::agent::{AgentProcess, Client};

    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("spy.log");
    let mut command = w.certauth();
    command
        .args(["agent", "--no-p11-kit", "--module", SPY])
        .env("PKCS11SPY", w.module())
        .env("PKCS11SPY_OUTPUT", &log);
    let agent = AgentProcess::start(command);
    let sha256 = w.sha256("bob-rsa3072");
    let params = json!({
        "url": server.url,
        "username": "bob@woodgrove.com",
        "cert": sha256,
        "caFile": server.ca_file,
    });
    let mut client = Client::connect(&agent.socket);

    let (empty, questions) = client.sign_in(params.clone(), "");
    assert_eq!(empty["error"]["code"], "pin", "{empty}");
    assert_eq!(
        empty["error"]["message"],
        "the PIN for `Woodgrove Bob` was not sent to the token: it is empty. No try was spent; give the right PIN",
        "{empty}"
    );
    assert_eq!(questions.len(), 1, "{questions:?}");
    assert_eq!(logins(&log), 0, "{}", agent.stderr());

    let (wrong, questions) = client.sign_in(params, "000000");
    assert_eq!(wrong["error"]["code"], "pin", "{wrong}");
    let message = wrong["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("stopped after 3 wrong PINs for `Woodgrove Bob`"),
        "{wrong}"
    );
    let pin_questions = questions.iter().filter(|q| q["ask"] == "pin").count();
    assert_eq!(pin_questions, 3, "{questions:?}");
    assert_eq!(logins(&log), 3, "{}", agent.stderr());
}

/// `list --token --pin` logs in too (to show private keys): a PIN holding NUL is not sent there
/// either.
#[test]
fn list_does_not_send_a_nul_pin() {
    let _serial = one_at_a_time();
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pin");
    support::write_private(&file, format!("{}\0", w.pin("Woodgrove Bob")));
    let log = dir.path().join("spy.log");
    let output = w
        .certauth()
        .args(["list", "--no-p11-kit", "--module", SPY])
        .args(["--token", "Woodgrove Bob", "--pin"])
        .arg(format!("file:{}", file.display()))
        .env("PKCS11SPY", w.module())
        .env("PKCS11SPY_OUTPUT", &log)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "certauth: error: could not log in to `Woodgrove Bob`: the PIN was not sent to the token: it contains a NUL character; no try was spent"
    );
    assert_eq!(logins(&log), 0);
}

/// A pinentry whose answer runs on (`D` followed by endless data) is refused once the line
/// passes Assuan's 1000 bytes, stopped, and nothing is sent to the token.
#[test]
fn a_pinentry_with_a_runaway_answer_is_refused_and_stopped() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let pinentry = dir.path().join("pinentry-runaway");
    std::fs::write(
        &pinentry,
        "#!/bin/sh\necho 'OK fake pinentry'\nwhile read -r cmd rest; do\n  case \"$cmd\" in\n    GETPIN) printf 'D '; exec tr '\\0' 1 < /dev/zero ;;\n    *) echo OK ;;\n  esac\ndone\n",
    )
    .unwrap();
    std::fs::set_permissions(&pinentry, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (command, log) = request(
        w,
        &server,
        dir.path(),
        &format!("pinentry:{}", pinentry.display()),
    );
    let (output, took) = run_for(command, Duration::from_secs(30));
    assert_refused(&output, &log, "a line longer than 1002 bytes (not shown)");
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// A pinentry with no terminal to use (pinentry-tty with stdin not a terminal and no `GPG_TTY`)
/// answers ERR at once: the error says it could not start and how to give it a terminal.
#[test]
fn a_pinentry_that_cannot_start_says_so_and_names_gpg_tty() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = one_at_a_time();
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let pinentry = dir.path().join("pinentry-no-tty");
    std::fs::write(
        &pinentry,
        "#!/bin/sh\necho 'ERR 83918950 Inappropriate ioctl for device'\n",
    )
    .unwrap();
    std::fs::set_permissions(&pinentry, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut command, log) = request(
        w,
        &server,
        dir.path(),
        &format!("pinentry:{}", pinentry.display()),
    );
    command.env_remove("GPG_TTY");
    let (output, _) = run_for(command, Duration::from_secs(30));
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("could not start"), "{stderr}");
    assert!(
        stderr.contains("Inappropriate ioctl for device"),
        "{stderr}"
    );
    assert!(stderr.contains("GPG_TTY=$(tty)"), "{stderr}");
    assert!(!stderr.contains("pinentry protocol"), "{stderr}");
    assert_eq!(logins(&log), 0, "{stderr}");
}
