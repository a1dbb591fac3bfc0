//! The agent under load (issue 13, item 5): ten thousand connections leave the agent's memory
//! where it was.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::agent::{agent_command, AgentProcess, Client};
use support::woodgrove::woodgrove;

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
