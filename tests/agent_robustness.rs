//! The agent and the command line under load and with a stuck module (issue 13, item 5): ten
//! thousand connections leave the agent's memory where it was, `lock` and `status` answer while
//! hundreds of sign-ins wait for a PIN (those over the agent's limit are refused as `busy`), and a
//! PKCS#11 module that never returns from C_Initialize is reported as failed after a deadline while
//! the others are listed.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::echo_server::EchoServer;
use support::piv::opensc_module;
use support::rig;
use support::woodgrove::{woodgrove, Woodgrove};

/// The agent's resident memory in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or_else(|| panic!("no VmRSS in {status}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Waits until the agent holds at most `fds` descriptors (it has seen the connections close).
fn settle(pid: u32, fds: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_fds(pid) > fds {
        assert!(
            Instant::now() < deadline,
            "the agent still holds {} descriptors, {fds} before",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `count` connections, `batch` at a time: each asks for `status`, gets its answer (so the agent
/// is serving it), sends half a request line and is closed with the rest of its batch.
fn churn(socket: &Path, count: usize, batch: usize) {
    for _ in 0..count / batch {
        let open: Vec<UnixStream> = (0..batch)
            .map(|_| {
                let stream = UnixStream::connect(socket).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                (&stream)
                    .write_all(b"{\"id\": 1, \"method\": \"status\"}\n{\"id\": 2, \"meth")
                    .unwrap();
                stream
            })
            .collect();
        for stream in &open {
            let mut answer = String::new();
            BufReader::new(stream).read_line(&mut answer).unwrap();
            assert!(answer.contains("\"result\""), "{answer}");
        }
    }
}

#[test]
fn ten_thousand_connections_leave_the_agents_memory_where_it_was() {
    let w = woodgrove();
    let mut agent = AgentProcess::start(agent_command(w));
    let pid = agent.child().id();
    let fds = open_fds(pid);
    // Warm-up, a few connections at a time: the runtime's threads are up and the allocator has
    // its arenas. What 200 connections at once cost shows as growth from here (with a 68 KiB
    // buffer reserved for each, some 17 MB that stayed).
    churn(&agent.socket, 200, 10);
    settle(pid, fds);
    let before = rss_kib(pid);
    churn(&agent.socket, 10_000, 200);
    settle(pid, fds);
    let after = rss_kib(pid);
    eprintln!(
        "VmRSS after warm-up {before} KiB, after 10,000 connections {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    assert!(
        after <= before + 8 * 1024,
        "10,000 connections grew the agent from {before} KiB to {after} KiB"
    );
    let status = Client::connect(&agent.socket).call(json!({"id": 3, "method": "status"}));
    assert_eq!(status["result"]["pid"], pid, "{status}");
}

/// Makes sure this process (and so the agent it starts) may open `needed` descriptors, raising
/// the soft limit up to the hard one if it must.
fn allow_open_files(needed: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (soft, hard) = (fields[3], fields[4]);
    let parse = |v: &str| v.parse::<u64>().unwrap_or(u64::MAX);
    if parse(soft) >= needed {
        return;
    }
    assert!(
        parse(hard) >= needed,
        "this test needs {needed} open files and the hard limit is {hard}"
    );
    let status = Command::new("prlimit")
        .arg(format!("--nofile={needed}:{hard}"))
        .arg("--pid")
        .arg(std::process::id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "prlimit: {status}");
}

/// A request on a fresh connection, answered within `patience` or not at all: the answer and how
/// long it took.
fn call_within(socket: &Path, request: &Value, patience: Duration) -> (Option<Value>, Duration) {
    let started = Instant::now();
    let stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(patience)).unwrap();
    (&stream)
        .write_all(format!("{request}\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    let answer = BufReader::new(&stream)
        .read_line(&mut line)
        .ok()
        .and_then(|_| serde_json::from_str(&line).ok());
    (answer, started.elapsed())
}

/// The first line the agent sends on `stream`, waiting no later than `deadline`.
fn first_line(stream: &UnixStream, deadline: Instant) -> Option<Value> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// The agent's limit on sign-ins under way at once (`docs/agent-api.md`).
const SIGN_IN_LIMIT: usize = 32;

#[test]
fn lock_and_status_answer_while_600_sign_ins_wait_for_a_pin() {
    const SIGN_INS: usize = 600;
    allow_open_files(4096);
    let w = woodgrove();
    let agent = AgentProcess::start(agent_command(w));
    let cert = &w
        .fixture
        .manifest
        .certificate("alice-rsa2048-mfa")
        .unwrap()
        .sha256;
    // The server is reached and trusted (the agent checks that before any PIN), and every
    // sign-in then stops at its PIN question, never answered.
    let server = EchoServer::start(w, &[]);
    let request = json!({"id": "s", "method": "sign-in", "params": {
        "url": server.url,
        "username": "alice@woodgrove.com",
        "cert": cert,
        "caFile": server.ca_file,
    }});
    let pending: Vec<UnixStream> = (0..SIGN_INS)
        .map(|_| {
            let stream = UnixStream::connect(&agent.socket).unwrap();
            (&stream)
                .write_all(format!("{request}\n").as_bytes())
                .unwrap();
            stream
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let firsts: Vec<Option<Value>> = pending.iter().map(|s| first_line(s, deadline)).collect();
    let asked = firsts
        .iter()
        .filter(|l| l.as_ref().is_some_and(|l| l["ask"] == "pin"))
        .count();
    let refused: Vec<&Value> = firsts
        .iter()
        .flatten()
        .filter(|l| l.get("error").is_some())
        .collect();
    let silent = firsts.iter().filter(|l| l.is_none()).count();
    eprintln!(
        "{asked} PIN questions, {} refusals, {silent} silent",
        refused.len()
    );
    // The PIN questions are still open: status and lock answer all the same, at once.
    let patience = Duration::from_secs(2);
    let (status, took) = call_within(
        &agent.socket,
        &json!({"id": 1, "method": "status"}),
        patience,
    );
    let status = status.unwrap_or_else(|| panic!("no status within {took:?}"));
    assert!(status["result"]["sessions"].is_object(), "{status}");
    let (lock, took) = call_within(&agent.socket, &json!({"id": 2, "method": "lock"}), patience);
    let lock = lock.unwrap_or_else(|| panic!("no lock answer within {took:?}"));
    assert_eq!(lock["result"]["signIns"], 0, "{lock}");
    // And `list` (on the blocking pool with the sign-ins) is not starved either.
    let (list, took) = call_within(
        &agent.socket,
        &json!({"id": 3, "method": "list"}),
        Duration::from_secs(20),
    );
    let list = list.unwrap_or_else(|| panic!("no list answer within {took:?}"));
    assert!(
        !list["result"]["tokens"].as_array().unwrap().is_empty(),
        "{list}"
    );

    assert_eq!(asked, SIGN_IN_LIMIT, "{:?}", refused.first());
    assert_eq!(refused.len(), SIGN_INS - SIGN_IN_LIMIT, "{silent} silent");
    for refusal in &refused {
        assert_eq!(refusal["id"], "s", "{refusal}");
        assert_eq!(refusal["error"]["code"], "busy", "{refusal}");
        let message = refusal["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{SIGN_IN_LIMIT} sign-ins")),
            "{message}"
        );
    }

    // Clients that hang up give their places back: the next sign-in gets its question.
    drop(pending);
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let stream = UnixStream::connect(&agent.socket).unwrap();
        (&stream)
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
        let answer = first_line(&stream, deadline).unwrap();
        if answer["ask"] == "pin" || Instant::now() >= deadline {
            break answer;
        }
    };
    assert_eq!(answer["ask"], "pin", "{answer}");
}

/// A FIFO nobody writes to: a module that opens it as its config file waits in C_Initialize for
/// ever.
fn fifo(dir: &Path) -> PathBuf {
    let path = dir.join("stuck.conf");
    let made = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success(), "mkfifo: {made}");
    path
}

/// The deadline the tests give a module's C_Initialize.
const DEADLINE_MS: &str = "1500";
/// How the failure reads, after that deadline.
const STUCK: &str = "did not finish initialising within 1.5 s; it is skipped";

/// Asserts that `stderr` has a warning that the module at `path` was skipped.
fn assert_warned(stderr: &str, path: &Path) {
    assert!(
        stderr
            .lines()
            .any(|l| l.contains(path.to_str().unwrap()) && l.contains(STUCK)),
        "{stderr}"
    );
}

/// Runs `command` to its end, at most `patience`; `None` (the child stopped) if it took longer.
fn output_within(mut command: Command, patience: Duration) -> Option<Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = from.read_to_end(&mut all);
            all
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let Some(status) = rig::exit_within(&mut child, patience) else {
        rig::stop(&mut child);
        return None;
    };
    Some(Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}

/// The `modules[]` entry of a `list` document for `path`.
fn module_entry<'a>(list: &'a Value, path: &Path) -> &'a Value {
    list["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("no module {} in {list}", path.display()))
}

#[test]
fn list_reports_softhsm_stuck_on_a_fifo_and_goes_on_with_opensc() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let stuck = fifo(dir.path());
    // SoftHSM named by the config file, OpenSC on the command line.
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("modules = [{}]\n", json!(w.module().to_str().unwrap())),
    )
    .unwrap();
    let list = |json: bool| {
        let mut command = w.certauth();
        command
            .args(["list", "--no-p11-kit", "--module"])
            .arg(opensc_module())
            .args(json.then_some("--json"))
            .env("CERTAUTH_CONFIG", &config)
            .env("SOFTHSM2_CONF", &stuck)
            .env("CERTAUTH_MODULE_TIMEOUT_MS", DEADLINE_MS);
        let started = Instant::now();
        let output = output_within(command, Duration::from_secs(30))
            .expect("`certauth list` still runs after 30 s");
        (output, started.elapsed())
    };

    let (output, took) = list(true);
    let document = support::json_stdout(&output);
    assert!(took < Duration::from_secs(15), "{took:?}");
    let softhsm = module_entry(&document, w.module());
    assert_eq!(softhsm["error"], STUCK, "{softhsm}");
    assert_eq!(softhsm["library"], Value::Null, "{softhsm}");
    let opensc = module_entry(&document, &opensc_module());
    assert_eq!(opensc["error"], Value::Null, "{opensc}");
    assert_eq!(
        opensc["library"]["manufacturer"], "OpenSC Project",
        "{opensc}"
    );
    assert_warned(&String::from_utf8_lossy(&output.stderr), w.module());

    let (output, _) = list(false);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains(&format!(
            "Modules that could not be used:\n  {} (from config {}): {STUCK}",
            w.module().display(),
            config.display()
        )),
        "{table}"
    );
}

/// `certauth` with OpenSC, whose config is a FIFO, before the fixture's SoftHSM.
fn with_opensc_stuck(w: &Woodgrove, mut command: Command, stuck: &Path) -> Command {
    command
        .arg("--no-p11-kit")
        .arg("--module")
        .arg(opensc_module())
        .arg("--module")
        .arg(w.module())
        .env("OPENSC_CONF", stuck)
        .env("CERTAUTH_MODULE_TIMEOUT_MS", DEADLINE_MS);
    command
}

/// Labels of the tokens a `list` document holds.
fn token_labels(list: &Value) -> Vec<&str> {
    list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect()
}

#[test]
fn list_and_the_agent_skip_opensc_stuck_on_a_fifo_and_show_softhsms_tokens() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let stuck = fifo(dir.path());

    let mut list = w.certauth();
    list.args(["list", "--json"]);
    let output = output_within(with_opensc_stuck(w, list, &stuck), Duration::from_secs(30))
        .expect("`certauth list` still runs after 30 s");
    let document = support::json_stdout(&output);
    assert_eq!(
        module_entry(&document, &opensc_module())["error"],
        STUCK,
        "{document}"
    );
    assert_eq!(module_entry(&document, w.module())["error"], Value::Null);
    assert!(
        token_labels(&document).contains(&"Woodgrove Alice"),
        "{document}"
    );

    let mut command = w.certauth();
    command.arg("agent");
    let agent = AgentProcess::start(with_opensc_stuck(w, command, &stuck));
    let mut client = Client::connect(&agent.socket);
    let status = client.call(json!({"id": 1, "method": "status"}));
    assert!(status["result"]["pid"].is_u64(), "{status}");
    let listed = client.call(json!({"id": 2, "method": "list"}));
    let document = &listed["result"];
    assert_eq!(
        module_entry(document, &opensc_module())["error"],
        STUCK,
        "{document}"
    );
    assert!(
        token_labels(document).contains(&"Woodgrove Alice"),
        "{document}"
    );
    assert_warned(&agent.stderr(), &opensc_module());
}
