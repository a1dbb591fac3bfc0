//! `certauth agent` as a real process: its local API on a Unix socket (status, list), the
//! socket's privacy (mode 0600, other users refused by peer credentials), bad requests, one agent
//! per socket, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::json_stdout;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

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

    // `certauth list --json` prints the running agent's scan (its one module, given on its command
    // line), unless told --no-agent.
    let listed = |extra: &[&str]| {
        json_stdout(
            &w.certauth()
                .args(["list", "--json"])
                .args(extra)
                .env("CERTAUTH_AGENT_SOCKET", &agent.socket)
                .output()
                .unwrap(),
        )
    };
    let via_agent = listed(&[]);
    assert_eq!(via_agent["source"], "agent", "{via_agent:#}");
    let modules = via_agent["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 1, "{via_agent:#}");
    assert_eq!(modules[0]["origin"]["kind"], "commandLine");
    assert!(via_agent.to_string().contains("Woodgrove Bob"));
    let here = listed(&["--no-agent"]);
    assert_eq!(here["source"], "local", "{here:#}");
    assert!(
        here["modules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["origin"]["kind"] != "commandLine"),
        "{here:#}"
    );

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
            // The agent may answer and hang up before the request is written: a write to the
            // closed socket must not kill perl (SIGPIPE) before it reads the answer.
            "$SIG{PIPE} = 'IGNORE'; \
             my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die \"connect: $!\\n\"; \
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

#[test]
fn the_command_line_sends_nothing_to_a_socket_another_user_serves() {
    if !running_as_root() {
        eprintln!("\n*** SKIPPED the_command_line_sends_nothing_to_a_socket_another_user_serves: needs root to act as another user ***\n");
        return;
    }
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = dir.path().join("impostor.sock");
    // Another user's listener where the agent's socket would be: it counts what it receives.
    let mut impostor = Command::new("setpriv")
        .args(["--reuid", OTHER_UID, "--regid", OTHER_UID, "--clear-groups", "--"])
        .args([
            "perl",
            "-MIO::Socket::UNIX",
            "-e",
            "my $l = IO::Socket::UNIX->new(Local => $ARGV[0], Listen => 1) or die \"listen: $!\\n\"; \
             chmod 0666, $ARGV[0]; $| = 1; print \"ready\\n\"; my $c = $l->accept; my $got = ''; \
             while (sysread($c, my $buf, 4096)) { $got .= $buf } print 'received ', length($got), \"\\n\";",
        ])
        .arg(&socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = support::lines::Lines::new(impostor.stdout.take().unwrap());
    said.wait_for("the impostor", std::time::Duration::from_secs(10), |l| {
        l == "ready"
    });

    let output = w
        .certauth()
        .args([
            "sign-in",
            "https://127.0.0.1:9",
            "--username",
            "bob@woodgrove.com",
        ])
        .args(["--via-agent", "--pin", "env:TOKEN_PIN", "--agent-socket"])
        .arg(&socket)
        .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("runs as uid {OTHER_UID}, not as you")),
        "{stderr}"
    );
    let (_, received) = said.wait_for("the count", std::time::Duration::from_secs(10), |l| {
        l.starts_with("received")
    });
    assert_eq!(
        received, "received 0",
        "bytes reached another user's socket"
    );
    impostor.wait().unwrap();
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `sign-in` parameters for the fixture certificate `name` against `v`.
fn sign_in_params(w: &Woodgrove, v: &Verifier, name: &str, username: &str) -> Value {
    json!({
        "url": v.certauth_url,
        "username": username,
        "cert": w.sha256(name),
        "caFile": v.server_ca,
    })
}

fn pin_questions(questions: &[Value]) -> usize {
    questions.iter().filter(|q| q["ask"] == "pin").count()
}

#[test]
fn sign_in_through_the_socket_is_cached_reused_forgotten_and_locked() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let alice_pin = w.pin("Woodgrove Alice");
    // No session bus here, so no keyring: the agent must say so once and cache in memory.
    let mut command = w.certauth();
    command
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["-vvv", "agent", "--no-p11-kit", "--module"])
        .arg(w.module());
    let agent = AgentProcess::start(command);
    let mut events = Client::connect(&agent.socket);
    events.call(json!({"method": "subscribe"}));
    let mut client = Client::connect(&agent.socket);
    let params = sign_in_params(w, &v, "alice-rsa2048-mfa", "alice@woodgrove.com");

    // First sign-in: the agent asks for the PIN over the socket, and the verifier says yes.
    let (first, questions) = client.sign_in(params.clone(), &alice_pin);
    let result = &first["result"];
    assert_eq!(result["status"], "success", "{first}");
    assert_eq!(result["authenticationStrength"], "multiFactor");
    assert_eq!(result["cached"], false);
    assert_eq!(result["signedWith"]["token"], "Woodgrove Alice");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");
    assert_eq!(questions[0]["token"], "Woodgrove Alice");
    let token = result["token"].as_str().unwrap().to_owned();
    let event = events.next_event("signIn");
    assert_eq!(
        (&event["status"], &event["cached"]),
        (&json!("success"), &json!(false))
    );
    assert!(
        !event.to_string().contains(&token),
        "events never carry the token"
    );

    // Second: the cached token, no PIN question.
    let (second, questions) = client.sign_in(params.clone(), &alice_pin);
    assert_eq!(second["result"]["cached"], true, "{second}");
    assert_eq!(second["result"]["token"], token.as_str());
    assert!(questions.is_empty(), "{questions:?}");
    assert_eq!(events.next_event("signIn")["cached"], true);

    // Signing in afresh reuses the agent's login: the server is asked again, the PIN is not.
    let mut fresh = params.clone();
    fresh["fresh"] = json!(true);
    let (third, questions) = client.sign_in(fresh, &alice_pin);
    assert_eq!(third["result"]["cached"], false, "{third}");
    assert_ne!(third["result"]["token"], token.as_str());
    assert!(questions.is_empty(), "{questions:?}");

    // forget drops the cached sign-in for the endpoint and closes its held login: the next
    // sign-in asks for the PIN.
    let forgot = client.call(json!({"method": "forget", "params": {"url": v.certauth_url}}));
    assert_eq!(forgot["result"]["signIns"], 1, "{forgot}");
    assert_eq!(forgot["result"]["logins"], 1, "{forgot}");
    let dropped = events.next_event("signInDropped");
    assert_eq!(dropped["reason"], "forgotten");
    assert_eq!(dropped["username"], "alice@woodgrove.com");
    let (after_forget, questions) = client.sign_in(params.clone(), &alice_pin);
    assert_eq!(after_forget["result"]["cached"], false, "{after_forget}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");

    // lock drops the sign-in and logs out: the next sign-in asks for the PIN again.
    let locked = client.call(json!({"method": "lock"}));
    assert_eq!(
        locked["result"],
        json!({"signIns": 1, "logins": 1}),
        "{locked}"
    );
    assert_eq!(events.next_event("signInDropped")["reason"], "locked");
    assert_eq!(
        events.next_event("loginClosed")["tokenLabel"],
        "Woodgrove Alice"
    );
    let (after_lock, questions) = client.sign_in(params.clone(), &alice_pin);
    assert_eq!(after_lock["result"]["status"], "success", "{after_lock}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");

    // A wrong PIN from a non-interactive client: one try, then a `pin` error.
    let mut bob = sign_in_params(w, &v, "bob-rsa3072", "bob@woodgrove.com");
    bob["interactive"] = json!(false);
    // Stray answers sent ahead of any question are skipped: the PIN question takes the PIN.
    let stray = [
        json!({"id": "s", "choice": 0}),
        json!({"id": "s", "confirm": true}),
    ];
    let (wrong, questions) = client.sign_in_after(bob, &stray, "000000");
    assert_eq!(wrong["error"]["code"], "pin", "{wrong}");
    let message = wrong["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("wrong PIN for `Woodgrove Bob`"),
        "{wrong}"
    );
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");

    // forget naming only a user drops that user's sign-ins and leaves certificate choices be.
    let forgot =
        client.call(json!({"method": "forget", "params": {"username": "nobody@woodgrove.com"}}));
    assert_eq!(
        forgot["result"],
        json!({"signIns": 0, "logins": 0, "certificateChoices": 0}),
        "{forgot}"
    );

    // Bad parameters are refused before anything is asked.
    let (bad, questions) = client.sign_in(json!({"url": "http://x", "username": "a"}), "");
    assert_eq!(bad["error"]["code"], "badRequest", "{bad}");
    assert!(questions.is_empty());
    let (bad, _) = client.sign_in(json!({"username": "a"}), "");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("url"),
        "{bad}"
    );

    let status = client.call(json!({"method": "status"}));
    assert_eq!(status["result"]["sessions"]["store"], "memory", "{status}");
    assert_eq!(status["result"]["lockOnRemoval"], true);
    let stderr = agent.stderr();
    assert_eq!(
        stderr.matches("no keyring is available").count(),
        1,
        "said once: {stderr}"
    );
    assert!(
        !stderr.contains(&alice_pin),
        "the PIN is in the agent's log"
    );
    assert!(!stderr.contains(&token), "the token is in the agent's log");
}

/// A verifier (with its state directory) and an agent that caches sign-ins in memory.
fn verifier_and_memory_agent(w: &Woodgrove) -> (tempfile::TempDir, Verifier, AgentProcess) {
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let mut command = agent_command(w);
    command.args(["--session-store", "memory"]);
    (state, v, AgentProcess::start(command))
}

#[test]
fn the_command_line_signs_in_via_the_agent() {
    let w = woodgrove();
    let (_state, v, agent) = verifier_and_memory_agent(w);
    let home = tempfile::tempdir().unwrap();
    // `certauth sign-in --via-agent` as Bob, through the agent at `socket`.
    let via_agent = |socket: &Path| {
        let mut command = w.certauth();
        command
            .args([
                "sign-in",
                &v.certauth_url,
                "--username",
                "bob@woodgrove.com",
            ])
            .args(["--via-agent", "--agent-socket"])
            .arg(socket);
        command
    };
    let sign_in = || {
        json_stdout(
            &via_agent(&agent.socket)
                .args(["--json", "--cert", &w.sha256("bob-rsa3072")])
                .args(["--pin", "env:TOKEN_PIN", "--ca-file"])
                .arg(&v.server_ca)
                .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
                .env("XDG_CONFIG_HOME", home.path())
                .output()
                .unwrap(),
        )
    };
    // Several certificates and no terminal to choose on: the `--cert` choices, not "cancelled".
    let output = via_agent(&agent.socket)
        .args(["--pin", "env:TOKEN_PIN", "--ca-file"])
        .arg(&v.server_ca)
        .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    // Listed once each, not twice.
    assert_eq!(
        stderr
            .matches(&format!("--cert {}", w.sha256("bob-rsa3072")))
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("cancelled"), "{stderr}");

    // The agent's answers carry facts (the named certificate's problem, what the user can do);
    // the command line words them as its own flags, as a direct sign-in does.
    let named_missing = via_agent(&agent.socket)
        .args([
            "--cert",
            &"ab".repeat(32),
            "--pin",
            "env:TOKEN_PIN",
            "--ca-file",
        ])
        .arg(&v.server_ca)
        .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&named_missing.stderr);
    assert_eq!(named_missing.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("no certificate on the tokens matches --cert\n"),
        "{stderr}"
    );
    let no_pin_source = via_agent(&agent.socket)
        .args(["--cert", &w.sha256("bob-rsa3072"), "--ca-file"])
        .arg(&v.server_ca)
        .env("XDG_CONFIG_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&no_pin_source.stderr);
    assert_eq!(no_pin_source.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("give --pin env:VARIABLE, --pin file:PATH or --pin pinentry"),
        "{stderr}"
    );

    let first = sign_in();
    assert_eq!(first["userPrincipalName"], "bob@woodgrove.com", "{first}");
    // Named by subject, as a direct sign-in names it.
    assert!(
        first["signedWith"]["certificate"]
            .as_str()
            .is_some_and(|c| c.contains("Bob")),
        "{first}"
    );
    assert_eq!(first["cached"], false);
    let second = sign_in();
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["token"], first["token"]);

    // `certauth lock` and `certauth forget` talk to the running agent.
    let lock = w
        .certauth()
        .args(["lock", "--agent-socket"])
        .arg(&agent.socket)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&lock.stdout);
    assert!(lock.status.success(), "{said}");
    assert!(said.contains("dropped 1 cached sign-in(s)"), "{said}");

    // With no agent there, --via-agent says so.
    let output = via_agent(&home.path().join("nothing.sock"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no agent is running"), "{stderr}");
}

/// `program` with the environment [`Woodgrove::certauth`] gives `certauth`, to start it.
fn with_fixture_env(w: &Woodgrove, program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, value) in w.certauth().get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command
}

/// `certauth agent` in a D-Bus session of its own with a real Secret Service
/// (gnome-keyring-daemon, its login keyring unlocked, kept under `home`); `None` (or, under CI, a
/// failure) when the machine lacks them.
fn agent_with_secret_service(w: &Woodgrove, home: &Path) -> Option<Command> {
    let have = |program: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("dbus-run-session") || !have("gnome-keyring-daemon") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs dbus-run-session and gnome-keyring-daemon (scripts/setup.sh installs them)"
        );
        eprintln!("\n*** SKIPPED: no dbus-run-session or gnome-keyring-daemon ***\n");
        return None;
    }
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut command = with_fixture_env(w, "dbus-run-session");
    command
        .args(["--", "sh", "-c"])
        .arg(concat!(
            "printf %s \"$KEYRING_PASSWORD\" | gnome-keyring-daemon --unlock --components=secrets >/dev/null",
            " && exec \"$@\""
        ))
        .arg("sh")
        .arg(support::programs::CERTAUTH)
        .args(["-vvv", "agent", "--no-p11-kit", "--module"])
        .arg(w.module())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("KEYRING_PASSWORD", "login keyring password");
    Some(command)
}

/// An agent inside dbus-run-session. The agent itself is stopped (SIGTERM by its PID) when this
/// is dropped, so the D-Bus session and the keyring daemon end with it.
struct SessionAgent {
    agent: AgentProcess,
    pid: u32,
}

impl SessionAgent {
    fn start(command: Command) -> Self {
        let agent = AgentProcess::start(command);
        let status = Client::connect(&agent.socket).call(json!({"method": "status"}));
        let pid = u32::try_from(status["result"]["pid"].as_u64().unwrap()).unwrap();
        Self { agent, pid }
    }

    /// SIGTERM to the agent; waits for the whole session to end.
    fn stop(mut self) -> String {
        self.terminate();
        assert!(self.agent.child().wait().unwrap().success());
        self.agent.stderr()
    }

    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
    }
}

impl Drop for SessionAgent {
    fn drop(&mut self) {
        // Still running only when a test failed before stopping it.
        if self
            .agent
            .child()
            .try_wait()
            .is_ok_and(|exited| exited.is_none())
        {
            self.terminate();
        }
    }
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            found.push((path, bytes));
        }
    }
    found
}

#[test]
fn the_keyring_keeps_sign_ins_across_agent_restarts() {
    let w = woodgrove();
    let home = tempfile::tempdir().unwrap();
    let Some(command) = agent_with_secret_service(w, home.path()) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let params = sign_in_params(w, &v, "alice-p384", "alice@woodgrove.com");
    let pin = w.pin("Woodgrove Alice");

    let agent = SessionAgent::start(command);
    let mut client = Client::connect(&agent.agent.socket);
    let status = client.call(json!({"method": "status"}));
    assert_eq!(
        status["result"]["sessions"]["store"],
        "keyring",
        "{status}\n{}",
        agent.agent.stderr()
    );
    let (first, questions) = client.sign_in(params.clone(), &pin);
    assert_eq!(first["result"]["status"], "success", "{first}");
    assert_eq!(pin_questions(&questions), 1);
    let token = first["result"]["token"].as_str().unwrap().to_owned();
    let stderr = agent.stop();
    assert!(!stderr.contains("in memory only"), "{stderr}");
    assert!(
        !support::shows_secret(&stderr, &pin) && !stderr.contains(&token),
        "{stderr}"
    );

    // A new agent, a new D-Bus session, the same keyring: the sign-in is still cached, so no PIN.
    let agent = SessionAgent::start(agent_with_secret_service(w, home.path()).unwrap());
    let mut client = Client::connect(&agent.agent.socket);
    let (again, questions) = client.sign_in(params.clone(), &pin);
    assert_eq!(again["result"]["cached"], true, "{again}");
    assert_eq!(again["result"]["token"], token.as_str());
    assert!(questions.is_empty(), "{questions:?}");

    // lock empties the keyring entry too: a third agent asks for the PIN again.
    let locked = client.call(json!({"method": "lock"}));
    assert_eq!(locked["result"]["signIns"], 1, "{locked}");
    agent.stop();
    let agent = SessionAgent::start(agent_with_secret_service(w, home.path()).unwrap());
    let (after_lock, questions) = Client::connect(&agent.agent.socket).sign_in(params, &pin);
    assert_eq!(after_lock["result"]["cached"], false, "{after_lock}");
    assert_eq!(pin_questions(&questions), 1);
    agent.stop();

    // The token was only ever in the keyring's encrypted file, never in a plain one.
    let files = files_under(home.path());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "keyring")),
        "the Secret Service keeps its keyring under HOME: {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in files {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&token),
            "{} holds the token in the clear",
            path.display()
        );
    }
}

/// `certauth agent` started the way systemd's socket activation starts it, by
/// `systemd-socket-activate` (from systemd): the socket exists first, and the agent is started on
/// the first connection with it as fd 3 (`LISTEN_FDS=1`). Returns once the socket exists, given
/// `mode`.
fn socket_activated(w: &Woodgrove, socket: &Path, mode: u32) -> std::process::Child {
    // systemd-socket-activate passes on only the variables named with -E, as systemd would.
    let child = with_fixture_env(w, "systemd-socket-activate")
        .args(["-E", "SOFTHSM2_CONF", "-E", "CERTAUTH_CONFIG", "-l"])
        .arg(socket)
        .arg("--")
        .arg(support::programs::CERTAUTH)
        .args(["agent", "--no-p11-kit", "--module"])
        .arg(w.module())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !socket.exists() {
        assert!(std::time::Instant::now() < deadline, "no socket");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode)).unwrap();
    child
}

#[test]
fn a_socket_passed_by_systemd_is_served_only_when_private() {
    if Command::new("systemd-socket-activate")
        .arg("--help")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs systemd-socket-activate (systemd)"
        );
        eprintln!("\n*** SKIPPED: no systemd-socket-activate ***\n");
        return;
    }
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();

    let socket = dir.path().join("private.sock");
    // Stopped by its PID if the test fails before it does.
    let mut activated = support::rig::Stopping(socket_activated(w, &socket, 0o600));
    let activated = &mut activated.0;
    let status = Client::connect(&socket).call(json!({"method": "status"}));
    // systemd-socket-activate execs the agent, so the agent has its PID, and serves the socket
    // systemd made rather than one of its own.
    assert_eq!(status["result"]["pid"], activated.id(), "{status}");
    assert_eq!(status["result"]["socket"], socket.to_str().unwrap());
    let listing = Client::connect(&socket).call(json!({"method": "list"}));
    assert!(
        listing["result"].to_string().contains("Woodgrove Bob"),
        "{listing}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &activated.id().to_string()])
        .status();
    assert!(activated.wait().unwrap().success());
    assert!(
        socket.exists(),
        "the socket belongs to systemd, which removes it"
    );

    // A passed socket other users could open is refused, and nothing is served on it.
    let socket = dir.path().join("open.sock");
    let activated = socket_activated(w, &socket, 0o666);
    let _ = std::os::unix::net::UnixStream::connect(&socket);
    let output = activated.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is open to other users"), "{stderr}");
}

#[test]
fn sign_in_uses_a_running_agent_unless_told_not_to() {
    let w = woodgrove();
    let (_state, v, agent) = verifier_and_memory_agent(w);
    let home = tempfile::tempdir().unwrap();
    // A plain `certauth sign-in` (no --via-agent), with the agent's socket where the user's
    // environment says it is.
    let sign_in = |extra: &[&str]| {
        let output = w
            .certauth()
            .args([
                "sign-in",
                &v.certauth_url,
                "--username",
                "bob@woodgrove.com",
            ])
            .args(["--json", "--cert", &w.sha256("bob-rsa3072")])
            .args(["--pin", "env:TOKEN_PIN", "--ca-file"])
            .arg(&v.server_ca)
            .args(extra)
            .env("CERTAUTH_AGENT_SOCKET", &agent.socket)
            .env("TOKEN_PIN", w.pin("Woodgrove Bob"))
            .env("XDG_CONFIG_HOME", home.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        json_stdout(&output)
    };
    // Through the agent: its answers say whether they came from its cache.
    let first = sign_in(&[]);
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(first["cached"], false, "{first}");
    let second = sign_in(&[]);
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["token"], first["token"]);
    // --fresh: a new sign-in through the agent, not its cache.
    let fresh = sign_in(&["--fresh"]);
    assert_eq!(fresh["cached"], false, "{fresh}");
    assert_ne!(fresh["token"], first["token"]);

    // --no-agent: signed in here; the answer is the server's own, with no word of a cache.
    let here = sign_in(&["--no-agent"]);
    assert_eq!(here["status"], "success", "{here}");
    assert!(here.get("cached").is_none(), "{here}");
    assert_ne!(here["token"], first["token"]);
    // And so with modules of its own, which the agent does not have.
    let own = sign_in(&["--no-p11-kit", "--module", w.module().to_str().unwrap()]);
    assert!(own.get("cached").is_none(), "{own}");
}
