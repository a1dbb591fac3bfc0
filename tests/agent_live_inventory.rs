//! The agent's live inventory, counted through OpenSC's PKCS#11 spy in front of SoftHSM: an
//! unchanged token is not read again, a certificate added or deleted with pkcs11-tool is seen on
//! the next `list` with only that token read, subscribers get the change as an event, and
//! `subscribe` starts with a replay of the current state.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::agent::{AgentProcess, Client};
use support::lines::Lines;
use support::rig;
use support::spy::{reads, since, Reads, SPY};
use support::woodgrove::{woodgrove, Woodgrove};

/// The token the test changes, and one it leaves alone.
const CHANGED: &str = "Woodgrove Alice";
const UNCHANGED: &str = "Woodgrove Bob";

/// `certauth agent` on the fixture's SoftHSM through the spy, logging to `log`.
fn spied_agent(w: &Woodgrove, log: &Path) -> AgentProcess {
    assert!(
        Path::new(SPY).is_file(),
        "{SPY} is missing: install Debian's opensc-pkcs11"
    );
    let mut command = w.certauth();
    command
        .args(["agent", "--no-p11-kit", "--module", SPY])
        .env("PKCS11SPY", w.module())
        .env("PKCS11SPY_OUTPUT", log);
    AgentProcess::start(command)
}

/// The labels of the certificates `list` shows on the token labelled `token`.
fn certificate_labels(listing: &Value, token: &str) -> Vec<String> {
    let tokens = listing["result"]["tokens"].as_array().unwrap();
    let found = tokens.iter().find(|t| t["label"] == token);
    let found = found.unwrap_or_else(|| panic!("no {token} in {listing}"));
    found["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap().to_owned())
        .collect()
}

fn list(agent: &AgentProcess) -> Value {
    Client::connect(&agent.socket).call(json!({"method": "list", "params": {"all": true}}))
}

/// pkcs11-tool on the fixture's SoftHSM (not through the spy), logged in to `token`.
fn pkcs11_tool(w: &Woodgrove, token: &str) -> Command {
    let mut command = Command::new("pkcs11-tool");
    command
        .arg("--module")
        .arg(w.module())
        .args(["--token-label", token, "--login", "--pin", &w.pin(token)])
        .env("SOFTHSM2_CONF", w.fixture.softhsm2_conf());
    command
}

fn run(mut command: Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        support::text(&output.stderr)
    );
}

/// Writes Bob's certificate onto `token` as a new object labelled `label` (id 77).
fn add_certificate(w: &Woodgrove, token: &str, label: &str, dir: &Path) -> PathBuf {
    let der = dir.join("extra.der");
    std::fs::write(&der, w.der("bob-rsa3072")).unwrap();
    let mut command = pkcs11_tool(w, token);
    command
        .args(["--write-object"])
        .arg(&der)
        .args(["--type", "cert", "--id", "77", "--label", label]);
    run(command);
    der
}

fn delete_certificate(w: &Woodgrove, token: &str) {
    let mut command = pkcs11_tool(w, token);
    command.args(["--delete-object", "--type", "cert", "--id", "77"]);
    run(command);
}

#[test]
fn an_unchanged_token_is_not_read_again_and_a_changed_one_alone_is() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("spy.log");
    let agent = spied_agent(w, &log);

    let first = list(&agent);
    let before_labels = certificate_labels(&first, CHANGED);
    let unchanged_labels = certificate_labels(&first, UNCHANGED);
    let tokens = first["result"]["tokens"].as_array().unwrap().len();
    assert!(tokens >= 2, "{first}");
    // Every token has been read in full once, whoever looked first (the watcher or this list).
    assert_eq!(reads(&log).tokens, tokens, "{first}");

    // Nothing changed: no token is read again, not one certificate's contents.
    let before = reads(&log);
    let second = list(&agent);
    assert_eq!(second["result"]["tokens"], first["result"]["tokens"]);
    let cost = since(before, &log);
    assert_eq!(
        cost,
        Reads {
            tokens: 0,
            values: 0
        },
        "an unchanged token is not read again"
    );

    // A certificate added by another process: the next list shows it, and only that token was
    // read again.
    let before = reads(&log);
    add_certificate(w, CHANGED, "added by pkcs11-tool", dir.path());
    let third = list(&agent);
    let mut expected = before_labels.clone();
    expected.push("added by pkcs11-tool".to_owned());
    expected.sort();
    let mut seen = certificate_labels(&third, CHANGED);
    seen.sort();
    assert_eq!(seen, expected, "{third}");
    assert_eq!(certificate_labels(&third, UNCHANGED), unchanged_labels);
    // The watcher's poll may have looked at the change first: either way, one token was read.
    assert_eq!(
        since(before, &log).tokens,
        1,
        "only the changed token is read"
    );

    // Deleted again: gone on the next list, again with one token read.
    let before = reads(&log);
    delete_certificate(w, CHANGED);
    let fourth = list(&agent);
    assert_eq!(certificate_labels(&fourth, CHANGED), before_labels);
    assert_eq!(
        since(before, &log).tokens,
        1,
        "only the changed token is read"
    );
}

#[test]
fn subscribers_get_the_current_state_first_and_then_token_changes() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("spy.log");
    let agent = spied_agent(w, &log);
    let mut events = Client::connect(&agent.socket);
    let answer = events.call(json!({"method": "subscribe"}));
    assert_eq!(answer["result"]["subscribed"], true, "{answer}");

    // The replay: the readers and cards there are (or that the service is stopped), then the
    // tokens, each marked as a replay.
    let replayed = loop {
        let event = events.next_line();
        assert_eq!(event["replay"], true, "{event}");
        if event["event"] == "tokens" {
            break event;
        }
    };
    let labels: Vec<&str> = replayed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&CHANGED), "{replayed}");

    // A change no card event announces (SoftHSM): the watcher's poll finds it and tells. (Its
    // first look, with nothing changed since the replay, may come first.)
    let before = certificates_on(&replayed, CHANGED);
    add_certificate(w, CHANGED, "seen by the poll", dir.path());
    let changed = loop {
        let event = events.next_event("tokens");
        assert_ne!(event["replay"], true, "{event}");
        if certificates_on(&event, CHANGED) != before {
            break event;
        }
    };
    assert_eq!(certificates_on(&changed, CHANGED), before + 1, "{changed}");
}

/// How many certificates a tokens event counts on the token labelled `token`.
fn certificates_on(event: &Value, token: &str) -> u64 {
    let tokens = event["tokens"].as_array().unwrap();
    let found = tokens.iter().find(|t| t["label"] == token);
    found.unwrap_or_else(|| panic!("no {token} in {event}"))["certificates"]
        .as_u64()
        .unwrap()
}

#[test]
fn certauth_watch_follows_the_agent() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let agent = spied_agent(w, &dir.path().join("spy.log"));
    let mut watch = w
        .certauth()
        .args(["watch", "--json", "--agent-socket"])
        .arg(&agent.socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(watch.stdout.take().unwrap());
    let _watch = rig::Stopping(watch);
    // Only the agent's replay is marked so: this watch reads the agent, and prints its tokens
    // event in the documented shape.
    let (_, line) = lines.wait_for("the replayed tokens", Duration::from_secs(20), |l| {
        l.contains("\"tokens\"")
    });
    let tokens: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(tokens["replay"], true, "{line}");
    let before = certificates_on(&tokens, CHANGED);

    // And then the changes, as they come.
    add_certificate(w, CHANGED, "seen by watch", dir.path());
    lines.wait_for("the changed tokens", Duration::from_secs(20), |l| {
        let event: Value = serde_json::from_str(l).unwrap();
        event["event"] == "tokens" && certificates_on(&event, CHANGED) == before + 1
    });
}
