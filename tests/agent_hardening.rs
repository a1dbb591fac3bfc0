//! `certauth agent` as a real process under abuse (issue 12): it keeps serving through a failed
//! `accept` (out of descriptors), `--socket` never deletes what is not a stale socket nor takes a
//! live agent's, and a request line over the documented 64 KiB is refused to the byte.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::rig;
use support::woodgrove::{woodgrove, Woodgrove};

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// `status` on a fresh connection, retried for up to `patience`.
fn status_within(socket: &Path, patience: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + patience;
    let mut last = String::new();
    while Instant::now() < deadline {
        match UnixStream::connect(socket) {
            Ok(_) => return Ok(Client::connect(socket).call(json!({"id": 1, "method": "status"}))),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

#[test]
fn the_agent_keeps_serving_through_running_out_of_descriptors() {
    let w = woodgrove();
    let mut agent = AgentProcess::start(agent_command(w));
    let pid = agent.child().id();
    let limit = open_fds(pid) + 8;
    let status = Command::new("prlimit")
        .arg(format!("--nofile={limit}:{limit}"))
        .arg("--pid")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "prlimit: {status}");

    // More connections than descriptors left; the rest wait in the listen backlog.
    let held: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&agent.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        agent.child().try_wait().unwrap().is_none(),
        "the agent exited: {}",
        agent.stderr()
    );
    assert!(
        open_fds(pid) >= limit - 1,
        "the descriptors never ran out: {} open, limit {limit}",
        open_fds(pid)
    );

    drop(held);
    let status = status_within(&agent.socket, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("no answer after descriptors freed up: {e}"));
    assert_eq!(status["result"]["pid"], pid, "{status}");
    let stderr = agent.stderr();
    eprintln!("the agent's stderr:\n{stderr}");
    assert!(stderr.contains("cannot accept connections"), "{stderr}");
    assert!(stderr.lines().count() <= 6, "{stderr}");
}

/// `certauth agent --socket path`, given at most 20 s to fail: (exit code, stderr). Should it
/// serve instead, it is stopped and the code is `None`.
fn agent_on(w: &Woodgrove, socket: &Path, home: &Path) -> (Option<i32>, String) {
    let mut child = w
        .certauth()
        .args(["agent", "--no-p11-kit", "--socket"])
        .arg(socket)
        .env("XDG_CONFIG_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let code = rig::exit_within(&mut child, Duration::from_secs(20)).map(|s| s.code());
    if code.is_none() {
        rig::stop(&mut child);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    (code.flatten(), text)
}

#[test]
fn a_file_at_the_socket_path_is_left_alone() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "precious\n").unwrap();
    let (code, stderr) = agent_on(w, &path, dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is a file, not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");

    // A directory is no socket either.
    let (code, stderr) = agent_on(w, dir.path(), dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is a directory, not a socket"), "{stderr}");
    assert!(path.exists());
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_agent_is_not() {
    let w = woodgrove();
    // A socket nobody listens on any more, as a crashed agent leaves it.
    let stale = tempfile::tempdir().unwrap();
    let socket = stale.path().join("run").join("agent.sock");
    std::fs::create_dir(socket.parent().unwrap()).unwrap();
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut command = agent_command(w);
    command.arg("--socket").arg(&socket);
    let mut child = command
        .env("XDG_CONFIG_HOME", stale.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let served = status_within(&socket, Duration::from_secs(20));
    rig::stop(&mut child);
    let served = served.unwrap_or_else(|e| panic!("the stale socket was not replaced: {e}"));
    assert_eq!(served["result"]["pid"], child.id(), "{served}");

    // A live agent's socket: the second agent refuses, the first goes on serving.
    let mut agent = AgentProcess::start(agent_command(w));
    let (code, stderr) = agent_on(w, &agent.socket, agent.dir());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("already serving"), "{stderr}");
    let status = Client::connect(&agent.socket).call(json!({"id": 2, "method": "status"}));
    assert_eq!(status["result"]["pid"], agent.child().id(), "{status}");
}

/// A `status` request padded with spaces to exactly `len` bytes (the newline not counted).
fn status_line(len: usize) -> String {
    let start = r#"{"id": 3, "method": "status""#;
    format!("{start}{}}}", " ".repeat(len - start.len() - 1))
}

#[test]
fn a_request_line_of_64_kib_is_served_and_one_byte_more_is_refused() {
    let w = woodgrove();
    let agent = AgentProcess::start(agent_command(w));
    let limit = 64 * 1024;
    let mut client = Client::connect(&agent.socket);
    let answer = client.send_line(&status_line(limit));
    assert!(answer["result"].is_object(), "{answer}");

    let mut client = Client::connect(&agent.socket);
    let answer = client.send_line(&status_line(limit + 1));
    assert_eq!(answer["error"]["code"], "requestTooLarge", "{answer}");
    // Past the old slack of one read (4 KiB) as well.
    let mut client = Client::connect(&agent.socket);
    let answer = client.send_line(&status_line(limit + 4000));
    assert_eq!(answer["error"]["code"], "requestTooLarge", "{answer}");
}
