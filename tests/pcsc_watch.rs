//! `certauth watch` and `certauth list` against a real pcscd with a vpcd reader, inside `unshare`
//! namespaces: a minimal virtual card that only answers power-on with an ATR is inserted and
//! removed, and the agent must see each within a second. And without pcscd, `list` says so.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::lines::Lines;
use support::programs::CERTAUTH;
use support::rig::{self, PcscRig, READER_0, READER_1, VPCD_PORT};

/// The ATR the minimal virtual card answers power-on with.
const CARD_ATR: &str = "3b951381018073ff01000b";

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// The card event `event` from `certauth watch`: on the first reader, seen within a second of
/// `since`, and followed by the token refresh a card event causes.
fn card_event(lines: &mut Lines, event: &str, since: Instant) -> serde_json::Value {
    let (seen_at, line) =
        lines.wait_for(event, Duration::from_secs(5), |l| json(l)["event"] == event);
    let found = json(&line);
    assert_eq!(found["reader"], READER_0);
    let latency = seen_at - since;
    assert!(
        latency < Duration::from_secs(1),
        "{event} seen after {latency:?}"
    );
    lines.wait_for("token refresh", Duration::from_secs(5), |l| {
        json(l)["event"] == "tokens"
    });
    found
}

#[test]
fn watch_sees_insertion_and_removal_within_a_second() {
    if !rig::can_run("watch_sees_insertion_and_removal_within_a_second") {
        return;
    }
    let rig = PcscRig::start();
    let mut watch = rig
        .command(CERTAUTH)
        .args(["watch", "--json", "--no-p11-kit"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(watch.stdout.take().unwrap());
    for reader in [READER_0, READER_1] {
        lines.wait_for("reader added", Duration::from_secs(10), |l| {
            let v = json(l);
            v["event"] == "readerAdded" && v["reader"] == reader
        });
    }

    let inserted_at = Instant::now();
    let mut card = rig
        .command(support::example("certauth-virtual-card"))
        .args(["--port", &VPCD_PORT.to_string()])
        .spawn()
        .unwrap();
    let event = card_event(&mut lines, "cardInserted", inserted_at);
    assert_eq!(event["atr"], CARD_ATR);

    let removed_at = Instant::now();
    rig::stop(&mut card);
    card_event(&mut lines, "cardRemoved", removed_at);

    rig::stop(&mut watch);
}

#[test]
fn list_shows_readers_and_the_card_atr() {
    if !rig::can_run("list_shows_readers_and_the_card_atr") {
        return;
    }
    let rig = PcscRig::start();
    let mut card = rig
        .command(support::example("certauth-virtual-card"))
        .args(["--port", &VPCD_PORT.to_string()])
        .spawn()
        .unwrap();
    // Wait until pcscd has powered the card up.
    let deadline = Instant::now() + Duration::from_secs(5);
    let document = loop {
        let out = rig
            .command(CERTAUTH)
            .args(["list", "--json", "--no-p11-kit"])
            .output()
            .unwrap();
        let document = support::json_stdout(&out);
        if document["pcsc"]["readers"][0]["cardPresent"] == true || Instant::now() > deadline {
            break document;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(document["pcsc"]["status"], "running");
    assert_eq!(document["pcsc"]["readers"][0]["name"], READER_0);
    assert_eq!(document["pcsc"]["readers"][0]["cardPresent"], true);
    assert_eq!(document["pcsc"]["readers"][0]["atr"], CARD_ATR);
    assert_eq!(document["pcsc"]["readers"][1]["name"], READER_1);
    assert_eq!(document["pcsc"]["readers"][1]["cardPresent"], false);

    let human = rig
        .command(CERTAUTH)
        .args(["list", "--no-p11-kit"])
        .output()
        .unwrap();
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(
        text.contains(&format!("Reader {READER_0} (card present, ATR {CARD_ATR})")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Reader {READER_1} (no card)")),
        "{text}"
    );
    assert!(
        text.contains("no PKCS#11 module recognises this card"),
        "{text}"
    );
    rig::stop(&mut card);
}

#[test]
fn list_says_plainly_when_pcscd_is_not_running() {
    if !rig::can_run("list_says_plainly_when_pcscd_is_not_running") {
        return;
    }
    let out = rig::without_pcscd(std::path::Path::new(CERTAUTH), &["list", "--no-p11-kit"])
        .output()
        .unwrap();
    let text = support::stdout_text(&out);
    assert!(
        text.starts_with("Note: the smart card service (pcscd) is not running, so no smart card reader can be seen"),
        "{text}"
    );
    assert!(text.contains("Tokens that need no reader, such as SoftHSM, are still listed"));

    let out = rig::without_pcscd(
        std::path::Path::new(CERTAUTH),
        &["list", "--json", "--no-p11-kit"],
    )
    .output()
    .unwrap();
    let document = json(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(document["pcsc"]["status"], "notRunning");
}

#[test]
fn watch_json_says_at_once_when_pcscd_is_not_running() {
    if !rig::can_run("watch_json_says_at_once_when_pcscd_is_not_running") {
        return;
    }
    let mut watch = rig::without_pcscd(
        std::path::Path::new(CERTAUTH),
        &["watch", "--json", "--no-p11-kit"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = Lines::new(watch.stdout.take().unwrap());
    lines.wait_for("serviceStopped", Duration::from_secs(5), |l| {
        json(l)["event"] == "serviceStopped"
    });
    rig::stop(&mut watch);
}
