//! The agent on a real smart card stack: the virtual PIV card in a private pcscd, read through
//! OpenSC's PKCS#11 module as Debian registers it with p11-kit. Listing, signing in to a real
//! verifier with both keys, lockout protection against a real retry counter, hot-plug, and the
//! agent's event stream.
//!
//! The agent runs in the rig's mount namespace (to see its pcscd) on the host's network (to reach
//! the verifier on loopback); the card and pcscd have a network namespace of their own.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use support::agent::{AgentProcess, Client};
use support::lines::Lines;
use support::piv::{pem_to_der, PivRig, PIN, UPN};
use support::rig;
use support::spy::{reads, since, Reads};
use support::text;
use support::verifier::Verifier;
use support::woodgrove::woodgrove;

/// The reader vpcd's first port appears as.
const READER: &str = "Virtual PCD 00 00";
/// The token label OpenSC gives the card: the 9A certificate's common name.
const TOKEN: &str = "Alice Woodgrove";
const WRONG_PIN: &str = "000000";

/// `certauth` in the rig's mount namespace on the host's network, with OpenSC's private
/// configuration, the fixture's SoftHSM tokens and a private config directory. Modules come from
/// the p11-kit registry, as on a Debian desktop.
fn certauth(piv: &PivRig, home: &Path) -> Command {
    let mut command = piv.rig.command_on_host_network(support::programs::CERTAUTH);
    support::programs::isolate(&mut command)
        .env("OPENSC_CONF", &piv.opensc_conf)
        .env("SOFTHSM2_CONF", woodgrove().fixture.softhsm2_conf())
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home);
    command
}

/// SHA-256 of a PEM certificate's DER, lowercase hex: how `--cert` names it.
fn thumbprint(pem: &Path) -> String {
    certauth::x509::sha256_thumbprint(&pem_to_der(pem))
}

/// `certauth list --json` with `args`, parsed. `env:CARD_PIN` holds the card's PIN.
fn list_json(piv: &PivRig, home: &Path, args: &[&str]) -> Value {
    let output = certauth(piv, home)
        .args(["list", "--json"])
        .args(args)
        .env("CARD_PIN", PIN)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The PIV token's entry in a `certauth list --json` document.
fn piv_token_in(listing: &Value) -> &Value {
    listing["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == TOKEN)
        .unwrap_or_else(|| panic!("no PIV token in {listing:#}"))
}

/// The PIV token's entry in `certauth list --json --all`, as it is now.
fn piv_token(piv: &PivRig, home: &Path) -> Value {
    piv_token_in(&list_json(piv, home, &["--all"])).clone()
}

/// `certauth sign-in` as [`UPN`] with the certificate `cert` (PEM), the PIN `pin` and `extra`
/// arguments, with `home` as its home.
fn sign_in(
    piv: &PivRig,
    home: &Path,
    v: &Verifier,
    url: &str,
    cert: &Path,
    pin: &str,
    extra: &[&str],
) -> Command {
    let mut command = certauth(piv, home);
    command
        .args(["-vvv", "sign-in", url, "--username", UPN, "--json"])
        .args(["--no-remember", "--cert", &thumbprint(cert)])
        .args(["--pin", "env:CARD_PIN", "--ca-file"])
        .arg(&v.server_ca)
        .args(extra)
        .env("CARD_PIN", pin);
    command
}

/// Runs a sign-in to completion: (exit code, stdout, stderr). The stderr is at trace level, and
/// must never hold the PIN.
fn run(mut command: Command, pin: &str) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    let (stdout, stderr) = (text(&stdout), text(&stderr));
    assert!(
        !support::shows_secret(&stderr, pin),
        "the PIN reached the log:\n{stderr}"
    );
    (status.code().unwrap(), stdout, stderr)
}

/// How many PIN VERIFY commands carrying a PIN the card has received: its `--trace` log gives
/// each APDU's header and length, and a VERIFY of the PIN (`00 20 00 80`) with its 8 padded bytes
/// is 13 bytes long; a shorter one only asks for the retry counter.
fn pins_received(piv: &PivRig) -> usize {
    piv.card_log()
        .lines()
        .filter(|line| line.contains(": 00 20 00 80 (13 bytes)"))
        .count()
}

#[test]
fn list_shows_the_piv_reader_token_and_both_certificates_through_p11_kit() {
    if !rig::can_run("list_shows_the_piv_reader_token_and_both_certificates_through_p11_kit") {
        return;
    }
    let piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let listing = list_json(&piv, home.path(), &[]);

    assert_eq!(listing["pcsc"]["status"], "running");
    let reader = listing["pcsc"]["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == READER)
        .unwrap();
    assert_eq!(reader["cardPresent"], true);

    // OpenSC came from its p11-kit registration, not from any option.
    let opensc = listing["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with("opensc-pkcs11.so"))
        .unwrap_or_else(|| panic!("OpenSC not loaded: {listing:#}"));
    assert_eq!(opensc["origin"]["kind"], "p11Kit");
    assert!(opensc["origin"]["file"]
        .as_str()
        .unwrap()
        .ends_with("opensc-pkcs11.module"));
    assert_eq!(opensc["error"], Value::Null);

    let token = piv_token_in(&listing);
    assert_eq!(token["reader"], READER);
    assert_eq!(token["removable"], true);
    assert_eq!(token["flags"]["loginRequired"], true);
    let certificates = token["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2, "{token:#}");
    for (pem, key_type) in [(&piv.keys.rsa_cert, "RSA"), (&piv.keys.ec_cert, "EC")] {
        let sha256 = thumbprint(pem);
        let cert = certificates
            .iter()
            .find(|c| c["sha256"] == sha256.as_str())
            .unwrap_or_else(|| panic!("{} not listed: {token:#}", pem.display()));
        assert_eq!(cert["eligible"], true, "{cert:#}");
        assert_eq!(cert["keyType"], key_type);
        assert_eq!(cert["userPrincipalNames"][0], UPN);
    }
    // The SoftHSM tokens are still there beside the card.
    assert!(listing["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["label"] == "Woodgrove Alice"));

    // Logged in, the private keys show, and the 9C key wants the PIN for every signature.
    let listing = list_json(
        &piv,
        home.path(),
        &["--token", TOKEN, "--pin", "env:CARD_PIN"],
    );
    let token = piv_token_in(&listing);
    assert_eq!(token["loggedIn"], true, "{token:#}");
    let always: Vec<(String, Value)> = token["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["privateKey"]["presence"], "present", "{c:#}");
            (
                c["keyType"].as_str().unwrap().to_owned(),
                c["privateKey"]["alwaysAuthenticate"].clone(),
            )
        })
        .collect();
    assert!(
        always.contains(&("RSA".into(), Value::Bool(false))),
        "{always:?}"
    );
    assert!(
        always.contains(&("EC".into(), Value::Bool(true))),
        "{always:?}"
    );
}

#[test]
fn sign_in_with_both_piv_keys_against_the_real_verifier() {
    if !rig::can_run("sign_in_with_both_piv_keys_against_the_real_verifier") {
        return;
    }
    let piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(woodgrove(), state.path());

    // RSA-2048 in 9A; then P-256 in 9C, whose key needs a context-specific login (the PIN again,
    // right before the signature).
    for cert in [&piv.keys.rsa_cert, &piv.keys.ec_cert] {
        let pins_before = pins_received(&piv);
        let (code, stdout, stderr) = run(
            sign_in(&piv, home.path(), &v, &v.certauth_url, cert, PIN, &[]),
            PIN,
        );
        assert_eq!(code, 0, "{}:\n{stdout}\n{stderr}", cert.display());
        let answer: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(answer["status"], "success", "{answer:#}");
        assert_eq!(answer["userPrincipalName"], UPN);
        assert_eq!(answer["certificate"]["sha256"], thumbprint(cert).as_str());
        assert_eq!(answer["authenticationStrength"], "singleFactor");
        let pins = pins_received(&piv) - pins_before;
        if cert == &piv.keys.ec_cert {
            assert!(
                pins >= 2,
                "a login and a context-specific login: {pins} PINs sent"
            );
        } else {
            assert!(pins >= 1, "no login reached the card");
        }
    }
}

#[test]
fn the_agent_never_spends_the_final_try_and_says_when_the_pin_is_blocked() {
    if !rig::can_run("the_agent_never_spends_the_final_try_and_says_when_the_pin_is_blocked") {
        return;
    }
    let piv = PivRig::start(&["--retries", "3"]);
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(woodgrove(), state.path());
    let cert = piv.keys.rsa_cert.clone();
    let attempt = |pin: &str, extra: &[&str]| {
        run(
            sign_in(&piv, home.path(), &v, &v.certauth_url, &cert, pin, extra),
            pin,
        )
    };

    // Two wrong PINs: the card counts them, and the token says final try.
    for left in [2, 1] {
        let (code, _, stderr) = attempt(WRONG_PIN, &[]);
        assert_eq!(code, 5, "{stderr}");
        assert!(stderr.contains("wrong PIN"), "{stderr}");
        let flags = &piv_token(&piv, home.path())["flags"];
        assert_eq!(flags["userPinFinalTry"], left == 1, "{left} left: {flags}");
        assert_eq!(flags["userPinLocked"], false);
    }
    assert_eq!(pins_received(&piv), 2);

    // The third is never sent without --allow-final-try, right or wrong.
    for pin in [WRONG_PIN, PIN] {
        let (code, _, stderr) = attempt(pin, &[]);
        assert_eq!(code, 5, "{stderr}");
        assert!(stderr.contains("final try"), "{stderr}");
        assert!(stderr.contains("--allow-final-try"), "{stderr}");
    }
    assert_eq!(
        pins_received(&piv),
        2,
        "a PIN reached the card on its final try"
    );

    // The card is not locked: the right PIN, insisted on, signs in and restores the counter.
    let (code, stdout, stderr) = attempt(PIN, &["--allow-final-try"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let flags = &piv_token(&piv, home.path())["flags"];
    assert_eq!(flags["userPinFinalTry"], false, "{flags}");

    // Three wrong PINs (the third insisted on) lock it; after that nothing is sent at all.
    attempt(WRONG_PIN, &[]);
    attempt(WRONG_PIN, &[]);
    let (code, _, stderr) = attempt(WRONG_PIN, &["--allow-final-try"]);
    assert_eq!(code, 5, "{stderr}");
    let flags = &piv_token(&piv, home.path())["flags"];
    assert_eq!(flags["userPinLocked"], true, "{flags}");
    let sent = pins_received(&piv);
    let (code, _, stderr) = attempt(PIN, &["--allow-final-try"]);
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("is blocked"), "{stderr}");
    assert!(stderr.contains("PUK"), "{stderr}");
    assert_eq!(
        pins_received(&piv),
        sent,
        "a PIN was sent to a blocked card"
    );
}

/// What a [`HoldingProxy`] holds back until released.
#[derive(Clone, Copy)]
enum Hold {
    /// The server's first flight (in TLS 1.3, everything up to its Finished): the client has
    /// logged in by then, and signs CertificateVerify only once the flight arrives.
    ServerFirstFlight,
    /// Everything the client sends after its ClientHello: its certificate, the CertificateVerify
    /// it has just signed, and its request. The server answers only once released.
    ClientAfterHello,
}

/// A loopback TCP proxy that holds part of a sign-in's handshake until released. certauth
/// checks the server before it asks for the PIN: that first connection is relayed as it is, and
/// the second, the sign-in's own, is held.
struct HoldingProxy {
    port: u16,
    /// Says that the bytes are held.
    held: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl HoldingProxy {
    fn start(upstream: &str, hold: Hold) -> Self {
        let upstream: reqwest::Url = upstream.parse().unwrap();
        let upstream = format!("127.0.0.1:{}", upstream.port().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (held_tx, held) = mpsc::channel();
        let (release, release_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let (check, _) = listener.accept().unwrap();
            let check_upstream = TcpStream::connect(&upstream).unwrap();
            relay(check, check_upstream);
            let (client, _) = listener.accept().unwrap();
            let server = TcpStream::connect(upstream).unwrap();
            // `from` is the side held back; the other direction flows freely.
            let (mut from, mut to) = match hold {
                Hold::ServerFirstFlight => (server, client),
                Hold::ClientAfterHello => (client, server),
            };
            let (mut back_in, mut back_out) = (to.try_clone().unwrap(), from.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut back_in, &mut back_out));
            if matches!(hold, Hold::ClientAfterHello) {
                // Pass the ClientHello record through whole.
                let mut header = [0u8; 5];
                from.read_exact(&mut header).unwrap();
                let mut body = vec![0; usize::from(u16::from_be_bytes([header[3], header[4]]))];
                from.read_exact(&mut body).unwrap();
                to.write_all(&header).unwrap();
                to.write_all(&body).unwrap();
            }
            let mut chunk = vec![0; 64 * 1024];
            let n = from.read(&mut chunk).unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
            let _ = to.write_all(&chunk[..n]);
            let _ = std::io::copy(&mut from, &mut to);
        });
        Self {
            port,
            held,
            release,
        }
    }

    /// `url` with this proxy's port.
    fn url(&self, url: &str) -> String {
        let mut via: reqwest::Url = url.parse().unwrap();
        via.set_port(Some(self.port)).unwrap();
        via.to_string()
    }
}

/// Copies bytes both ways between `a` and `b`, on threads of their own.
fn relay(a: TcpStream, b: TcpStream) {
    let (mut a_in, mut b_out) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut b_in, mut a_out) = (b, a);
    std::thread::spawn(move || std::io::copy(&mut a_in, &mut b_out));
    std::thread::spawn(move || std::io::copy(&mut b_in, &mut a_out));
}

#[test]
fn hot_plug_watch_and_removal_just_before_signing() {
    if !rig::can_run("hot_plug_watch_and_removal_just_before_signing") {
        return;
    }
    let mut piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(woodgrove(), state.path());

    let mut watch = rig::Stopping(
        certauth(&piv, home.path())
            .args(["watch", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut events = Lines::new(watch.0.stdout.take().unwrap());
    let event = |events: &mut Lines, name: &str| {
        events.wait_for(name, Duration::from_secs(10), |line| {
            serde_json::from_str::<Value>(line).unwrap()["event"] == name
        })
    };
    event(&mut events, "cardInserted");

    // Removed between the login and the signature: a clear error, promptly.
    let proxy = HoldingProxy::start(&v.certauth_url, Hold::ServerFirstFlight);
    let via_proxy = proxy.url(&v.certauth_url);
    let mut signing = sign_in(
        &piv,
        home.path(),
        &v,
        &via_proxy,
        &piv.keys.rsa_cert,
        PIN,
        &[],
    );
    let signing = signing
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    proxy
        .held
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent never got as far as the handshake");
    let logins = pins_received(&piv);
    assert!(
        logins >= 1,
        "the agent had not logged in before the handshake"
    );
    piv.remove_card();
    let (_, line) = event(&mut events, "cardRemoved");
    assert!(line.contains(READER), "{line}");
    proxy.release.send(()).unwrap();
    let started = std::time::Instant::now();
    let output = signing.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the agent hung"
    );
    let stderr = text(&output.stderr);
    assert!(!support::shows_secret(&stderr, PIN));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "certauth: error: token `{TOKEN}` was removed before it could sign"
        )),
        "not a clear error:\n{stderr}"
    );

    // Put back, the card is seen, and a retry logs in afresh and signs in.
    piv.insert_card();
    event(&mut events, "cardInserted");
    let (_, tokens) = events.wait_for("tokens", Duration::from_secs(10), |line| {
        let v: Value = serde_json::from_str(line).unwrap();
        v["event"] == "tokens" && line.contains(TOKEN)
    });
    assert!(tokens.contains(TOKEN));
    let pins_before = pins_received(&piv);
    let (code, stdout, stderr) = run(
        sign_in(
            &piv,
            home.path(),
            &v,
            &v.certauth_url,
            &piv.keys.rsa_cert,
            PIN,
            &[],
        ),
        PIN,
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        pins_received(&piv) > pins_before,
        "no new login after re-insertion"
    );
}

#[test]
fn with_pcscd_stopped_list_says_so_and_still_lists_the_softhsm_tokens() {
    if !rig::can_run("with_pcscd_stopped_list_says_so_and_still_lists_the_softhsm_tokens") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let output = rig::without_pcscd(Path::new(support::programs::CERTAUTH), &["list", "--json"])
        .env("SOFTHSM2_CONF", woodgrove().fixture.softhsm2_conf())
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listing: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listing["pcsc"]["status"], "notRunning", "{listing:#}");
    assert!(listing["pcsc"]["message"]
        .as_str()
        .unwrap()
        .contains("not running"));
    // OpenSC, registered with p11-kit, loads and finds nothing; SoftHSM's tokens are all there.
    let labels: Vec<&str> = listing["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    for label in ["Woodgrove Alice", "Woodgrove Bob"] {
        assert!(labels.contains(&label), "{label} missing: {labels:?}");
    }
    assert!(!labels.contains(&TOKEN));
}

#[test]
fn the_agent_streams_card_events_to_subscribers() {
    if !rig::can_run("the_agent_streams_card_events_to_subscribers") {
        return;
    }
    let mut piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let mut command = certauth(&piv, home.path());
    command.arg("agent");
    let agent = AgentProcess::start(command);
    let mut subscriber = Client::connect(&agent.socket);
    let answer = subscriber.call(json!({"id": "s", "method": "subscribe"}));
    assert_eq!(answer["result"]["subscribed"], true, "{answer}");
    // The agent's first scan, with the card in.
    let tokens = subscriber.next_event("tokens");
    assert!(tokens.to_string().contains(TOKEN), "{tokens}");

    piv.remove_card();
    let removed = subscriber.next_event("cardRemoved");
    assert_eq!(removed["reader"], READER);
    let tokens = subscriber.next_event("tokens");
    assert!(!tokens.to_string().contains(TOKEN), "{tokens}");

    piv.insert_card();
    let inserted = subscriber.next_event("cardInserted");
    assert_eq!(inserted["reader"], READER);
    let tokens = subscriber.next_event("tokens");
    assert!(tokens.to_string().contains(TOKEN), "{tokens}");

    // Other clients are served while a subscription streams.
    let listing = Client::connect(&agent.socket).call(json!({"method": "list"}));
    assert!(listing["result"].to_string().contains(TOKEN));
}

/// `certauth agent` in the rig (sign-ins cached in memory) with `extra` arguments, and a
/// subscription to its events that has seen its first scan: nothing else touches the card before
/// that scan is over.
fn agent_in_rig(piv: &PivRig, home: &Path, extra: &[&str]) -> (AgentProcess, Client) {
    let mut command = certauth(piv, home);
    command
        .args(["-vvv", "agent", "--session-store", "memory"])
        .args(extra);
    let agent = AgentProcess::start(command);
    let mut events = Client::connect(&agent.socket);
    events.call(json!({"method": "subscribe"}));
    assert!(events.next_event("tokens").to_string().contains(TOKEN));
    (agent, events)
}

fn pin_questions(questions: &[Value]) -> usize {
    questions.iter().filter(|q| q["ask"] == "pin").count()
}

#[test]
fn card_removal_drops_the_agents_cached_sign_in_and_login() {
    if !rig::can_run("card_removal_drops_the_agents_cached_sign_in_and_login") {
        return;
    }
    let mut piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(woodgrove(), state.path());
    let (locking, mut events) = agent_in_rig(&piv, home.path(), &[]);
    let (keeping, _) = agent_in_rig(&piv, home.path(), &["--no-lock-on-removal"]);
    let params = json!({
        "url": v.certauth_url,
        "username": UPN,
        "cert": thumbprint(&piv.keys.rsa_cert),
        "caFile": v.server_ca,
    });

    // Signed in through the socket: the PIN asked once and sent to the card; then the cached
    // sign-in, with no question and nothing sent to the card.
    let pins_before = pins_received(&piv);
    let mut client = Client::connect(&locking.socket);
    let (first, questions) = client.sign_in(params.clone(), PIN);
    assert_eq!(first["result"]["status"], "success", "{first}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");
    assert!(pins_received(&piv) > pins_before);
    let (second, questions) = client.sign_in(params.clone(), PIN);
    assert_eq!(second["result"]["cached"], true, "{second}");
    assert!(questions.is_empty());
    let (kept, _) = Client::connect(&keeping.socket).sign_in(params.clone(), PIN);
    assert_eq!(kept["result"]["status"], "success", "{kept}");
    let pins_before_removal = pins_received(&piv);

    // The card goes: its sign-in and its login are dropped at once.
    piv.remove_card();
    let dropped = events.next_event("signInDropped");
    assert_eq!(dropped["reason"], "cardRemoved", "{dropped}");
    assert_eq!(dropped["tokenLabel"], TOKEN);
    let closed = events.next_event("loginClosed");
    assert_eq!(closed["reason"], "cardRemoved", "{closed}");
    assert_eq!(closed["reader"], READER);
    let status = client.call(json!({"method": "status"}));
    assert_eq!(status["result"]["sessions"]["cachedSignIns"], 0, "{status}");
    assert_eq!(status["result"]["sessions"]["heldLogins"], 0, "{status}");
    // The agent told to keep them still answers from its cache.
    let (kept, questions) = Client::connect(&keeping.socket).sign_in(params.clone(), PIN);
    assert_eq!(kept["result"]["cached"], true, "{kept}");
    assert!(questions.is_empty());

    // Back in: the next sign-in asks for the PIN again, and the card verifies it.
    piv.insert_card();
    events.next_event("cardInserted");
    assert!(events.next_event("tokens").to_string().contains(TOKEN));
    let (third, questions) = client.sign_in(params, PIN);
    assert_eq!(third["result"]["status"], "success", "{third}");
    assert_eq!(third["result"]["cached"], false);
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");
    assert!(pins_received(&piv) > pins_before_removal);
    for agent in [&locking, &keeping] {
        assert!(
            !support::shows_secret(&agent.stderr(), PIN),
            "the PIN reached the agent's log"
        );
    }
}

#[test]
fn a_sign_in_whose_card_goes_before_the_answer_is_not_cached() {
    if !rig::can_run("a_sign_in_whose_card_goes_before_the_answer_is_not_cached") {
        return;
    }
    let mut piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(woodgrove(), state.path());
    let (agent, mut events) = agent_in_rig(&piv, home.path(), &[]);

    // The client's signed flight is held until the card is out: the signature was made, the
    // server has not answered yet.
    let proxy = HoldingProxy::start(&v.certauth_url, Hold::ClientAfterHello);
    let params = json!({
        "url": proxy.url(&v.certauth_url),
        "username": UPN,
        "cert": thumbprint(&piv.keys.rsa_cert),
        "caFile": v.server_ca,
    });
    let socket = agent.socket.clone();
    let signing = std::thread::spawn(move || Client::connect(&socket).sign_in(params, PIN));
    proxy
        .held
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent never signed its part of the handshake");
    piv.remove_card();
    events.next_event("cardRemoved");
    events.next_event("tokens");
    proxy.release.send(()).unwrap();

    // The server said yes; the agent answers, but keeps neither the sign-in nor the login of a
    // card that is gone.
    let (answer, questions) = signing.join().unwrap();
    assert_eq!(answer["result"]["status"], "success", "{answer}");
    assert_eq!(pin_questions(&questions), 1);
    let status = Client::connect(&agent.socket).call(json!({"method": "status"}));
    assert_eq!(status["result"]["sessions"]["cachedSignIns"], 0, "{status}");
    assert_eq!(status["result"]["sessions"]["heldLogins"], 0, "{status}");
}

/// `certauth agent` in the rig whose modules are `spied` behind OpenSC's PKCS#11 spy (logging to
/// `log`) and `plain` as it is.
fn spied_agent_in_rig(
    piv: &PivRig,
    home: &Path,
    spied: &Path,
    plain: &Path,
    log: &Path,
) -> AgentProcess {
    let mut command = certauth(piv, home);
    command
        .args(["agent", "--session-store", "memory", "--no-p11-kit"])
        .args(["--module", support::spy::SPY, "--module"])
        .arg(plain)
        .env("PKCS11SPY", spied)
        .env("PKCS11SPY_OUTPUT", log);
    AgentProcess::start(command)
}

/// The labels of the tokens an agent's `list` shows.
fn listed_tokens(agent: &AgentProcess) -> Vec<String> {
    let listing = Client::connect(&agent.socket).call(json!({"method": "list"}));
    listing["result"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_live_inventory_reads_a_card_again_only_when_it_comes_back() {
    if !rig::can_run("the_live_inventory_reads_a_card_again_only_when_it_comes_back") {
        return;
    }
    let mut piv = PivRig::start(&[]);
    let home = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (card_log, softhsm_log) = (
        logs.path().join("card.log"),
        logs.path().join("softhsm.log"),
    );
    let softhsm = woodgrove().module().to_owned();
    let opensc = support::piv::opensc_module();
    // One agent counts the card's module calls, the other SoftHSM's.
    let card_agent = spied_agent_in_rig(&piv, home.path(), &opensc, &softhsm, &card_log);
    let softhsm_agent = spied_agent_in_rig(&piv, home.path(), &softhsm, &opensc, &softhsm_log);
    let mut events = Client::connect(&card_agent.socket);
    events.call(json!({"method": "subscribe"}));
    events.next_event("tokens");
    let mut softhsm_events = Client::connect(&softhsm_agent.socket);
    softhsm_events.call(json!({"method": "subscribe"}));
    softhsm_events.next_event("tokens");
    assert!(listed_tokens(&card_agent).contains(&TOKEN.to_owned()));
    let softhsm_tokens = listed_tokens(&softhsm_agent).len();

    // The card unchanged: a list reads nothing of it again.
    let before = reads(&card_log);
    assert!(listed_tokens(&card_agent).contains(&TOKEN.to_owned()));
    assert_eq!(
        since(before, &card_log),
        Reads {
            tokens: 0,
            values: 0
        }
    );

    // Pulled and put back: the card is read once more, and the SoftHSM tokens not at all.
    let (card_before, softhsm_before) = (reads(&card_log), reads(&softhsm_log));
    piv.remove_card();
    events.next_event("cardRemoved");
    let gone = events.next_event("tokens");
    assert!(!gone.to_string().contains(TOKEN), "{gone}");
    piv.insert_card();
    events.next_event("cardInserted");
    let back = events.next_event("tokens");
    assert!(back.to_string().contains(TOKEN), "{back}");
    // Its look after the card came back is over once it tells of the tokens.
    softhsm_events.next_event("cardInserted");
    softhsm_events.next_event("tokens");
    assert!(listed_tokens(&card_agent).contains(&TOKEN.to_owned()));
    assert_eq!(listed_tokens(&softhsm_agent).len(), softhsm_tokens);
    assert_eq!(
        since(card_before, &card_log).tokens,
        1,
        "the card is read once"
    );
    assert_eq!(
        since(softhsm_before, &softhsm_log),
        Reads {
            tokens: 0,
            values: 0
        },
        "card events do not read the SoftHSM tokens again"
    );
}
