//! `certauth agent` as a real process: its local API on a Unix socket (status, list), the
//! socket's privacy (mode 0600, other users refused by peer credentials), bad requests, one agent
//! per socket, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use serde_json::{json, Value};
use support::agent::{AgentProcess, Client};
use support::woodgrove::{woodgrove, Woodgrove};

/// `certauth agent` with the fixture's SoftHSM module.
fn agent_command(w: &Woodgrove) -> Command {
    let mut command = w.certauth();
    command
        .args(["agent", "--no-p11-kit", "--module"])
        .arg(w.module());
    command
}

/// A user that is not the one running the tests.
const OTHER_UID: &str = "65534";

#[test]
fn status_and_list_through_the_socket() {
    let w = woodgrove();
    let mut agent = AgentProcess::start(agent_command(w));
    let mode = std::fs::metadata(&agent.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    let dir_mode = std::fs::metadata(agent.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "directory mode {dir_mode:o}");

    let mut client = Client::connect(&agent.socket);
    let status = client.call(json!({"id": 1, "method": "status"}));
    assert_eq!(status["id"], 1);
    assert_eq!(status["result"]["pid"], agent.child().id());
    assert_eq!(status["result"]["version"], env!("CARGO_PKG_VERSION"));

    // The same document as `certauth list --json`, twice on one connection (modules load once).
    for id in ["a", "b"] {
        let listing = client.call(json!({"id": id, "method": "list", "params": {"all": true}}));
        assert_eq!(listing["id"], id);
        let result = &listing["result"];
        assert_eq!(result["schema"], "certauth.list/1", "{listing:#}");
        let labels: Vec<&str> = result["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["label"].as_str().unwrap())
            .collect();
        assert!(labels.contains(&"Woodgrove Alice"), "{labels:?}");
        assert!(labels.contains(&"Woodgrove Bob"), "{labels:?}");
        let alice = result["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["label"] == "Woodgrove Alice")
            .unwrap();
        // With `all`, the ineligible certificates are there too.
        assert!(alice["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["eligible"] == false));
    }

    // Bad requests get errors, and the connection goes on.
    let bad = client.send_line("{not json");
    assert_eq!(bad["error"]["code"], "badRequest", "{bad}");
    let unknown = client.call(json!({"id": 7, "method": "selfDestruct"}));
    assert_eq!(unknown["id"], 7);
    assert_eq!(unknown["error"]["code"], "unknownMethod");
    assert!(unknown["error"]["message"]
        .as_str()
        .unwrap()
        .contains("status, list"));
    let wrong = client.call(json!({"method": "list", "params": {"all": "yes"}}));
    assert_eq!(wrong["error"]["code"], "badRequest", "{wrong}");
    let again = client.call(json!({"method": "status"}));
    assert!(again["result"]["uptimeSeconds"].is_u64(), "{again}");

    // A second agent on the same socket refuses to start; the first keeps serving.
    let output = w
        .certauth()
        .args(["agent", "--no-p11-kit", "--socket"])
        .arg(&agent.socket)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already serving"), "{stderr}");
    assert!(Client::connect(&agent.socket).call(json!({"method": "status"}))["result"].is_object());

    // SIGTERM: a clean exit, and the socket is gone.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &agent.child().id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = agent.child().wait().unwrap();
    assert!(exit.success(), "{exit}");
    assert!(!agent.socket.exists());
}

#[test]
fn another_user_is_refused_by_peer_credentials() {
    if !running_as_root() {
        eprintln!("\n*** SKIPPED another_user_is_refused_by_peer_credentials: needs root to act as another user ***\n");
        return;
    }
    let w = woodgrove();
    let agent = AgentProcess::start(agent_command(w));
    // Open the door the file mode keeps shut, so the peer-credential check is what is tested.
    let dir = agent.socket.parent().unwrap();
    let mut path = Some(dir);
    while let Some(p) = path {
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o011)).unwrap();
        path = p
            .parent()
            .filter(|p| p.starts_with(std::env::temp_dir()) && *p != std::env::temp_dir());
    }
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o666)).unwrap();

    // perl (perl-base, always there) as the other user: connect, ask for status, print the answer.
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            OTHER_UID,
            "--regid",
            OTHER_UID,
            "--clear-groups",
            "--",
        ])
        .args([
            "perl",
            "-MIO::Socket::UNIX",
            "-e",
            "my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die \"connect: $!\\n\"; \
             print $s qq({\"method\":\"status\"}\\n); print scalar <$s>;",
        ])
        .arg(&agent.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
    assert!(answer.get("result").is_none());

    // The agent's own user is still served.
    assert!(Client::connect(&agent.socket).call(json!({"method": "status"}))["result"].is_object());
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}
