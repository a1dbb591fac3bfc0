//! What a login the agent holds may serve: only the endpoint and user it was made for, each new
//! login checking its PIN even while the token is logged in for another endpoint; `forget`
//! closing an endpoint's login; and `confirm = true` endpoints waiting for the user's yes (through
//! the agent's own pinentry, or the client) before answering without a PIN.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

const ALICE: &str = "alice@woodgrove.com";

/// Two verifiers, endpoints A and B, and one file trusting both their server certificates (so a
/// sign-in to either has the same `caFile`: only the endpoint differs).
struct TwoEndpoints {
    a: Verifier,
    b: Verifier,
    ca_file: PathBuf,
    _dirs: [tempfile::TempDir; 3],
}

impl TwoEndpoints {
    fn start(w: &Woodgrove) -> Self {
        let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
        let a = Verifier::start(w, dirs[0].path());
        let b = Verifier::start(w, dirs[1].path());
        let ca_file = dirs[2].path().join("servers.pem");
        let mut both = std::fs::read(&a.server_ca).unwrap();
        both.extend(std::fs::read(&b.server_ca).unwrap());
        std::fs::write(&ca_file, both).unwrap();
        Self {
            a,
            b,
            ca_file,
            _dirs: dirs,
        }
    }

    /// `sign-in` parameters for Alice's multifactor certificate at `v`.
    fn alice_at(&self, w: &Woodgrove, v: &Verifier) -> Value {
        json!({
            "url": v.certauth_url,
            "username": ALICE,
            "cert": w.fixture.manifest.certificate("alice-rsa2048-mfa").unwrap().sha256,
            "caFile": self.ca_file,
        })
    }
}

fn fresh(mut params: Value) -> Value {
    params["fresh"] = json!(true);
    params
}

fn pin_questions(questions: &[Value]) -> usize {
    questions.iter().filter(|q| q["ask"] == "pin").count()
}

/// The agent with `config` as its config file (kept in the returned directory).
fn agent_with_config(w: &Woodgrove, config: &str) -> (AgentProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut command = agent_command(w);
    command.env("CERTAUTH_CONFIG", &path);
    (AgentProcess::start(command), dir)
}

#[test]
fn a_held_login_serves_only_the_endpoint_and_user_it_was_made_for() {
    let w = woodgrove();
    let endpoints = TwoEndpoints::start(w);
    let pin = w.pin("Woodgrove Alice");
    let agent = AgentProcess::start(agent_command(w));
    let mut client = Client::connect(&agent.socket);
    let at_a = endpoints.alice_at(w, &endpoints.a);
    let at_b = endpoints.alice_at(w, &endpoints.b);

    let (first, questions) = client.sign_in(at_a.clone(), &pin);
    assert_eq!(first["result"]["status"], "success", "{first}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");

    // Endpoint B: the login held for A does not serve, and the PIN asked for B is checked by
    // the token although it is logged in for A (a wrong one is not let through).
    let mut wrong_at_b = fresh(at_b.clone());
    wrong_at_b["interactive"] = json!(false);
    let (wrong, questions) = client.sign_in(wrong_at_b, "000000");
    assert_eq!(wrong["error"]["code"], "pin", "{wrong}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");
    let (at_b_result, questions) = client.sign_in(fresh(at_b.clone()), &pin);
    assert_eq!(at_b_result["result"]["status"], "success", "{at_b_result}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");

    // A's login still serves A, with no PIN.
    let (again_a, questions) = client.sign_in(fresh(at_a.clone()), &pin);
    assert_eq!(again_a["result"]["status"], "success", "{again_a}");
    assert_eq!(again_a["result"]["cached"], false);
    assert!(questions.is_empty(), "{questions:?}");

    // Another username at A: neither A's cached sign-in nor its login serves it.
    let mut other_user = at_a.clone();
    other_user["username"] = json!("bob@woodgrove.com");
    let (other, questions) = client.sign_in(other_user, &pin);
    assert_ne!(other["result"]["cached"], true, "{other}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");

    // forget A closes A's login (and only A's): A asks for the PIN again, B does not.
    let forgot =
        client.call(json!({"method": "forget", "params": {"url": endpoints.a.certauth_url}}));
    assert!(
        forgot["result"]["logins"].as_u64().unwrap() >= 1,
        "{forgot}"
    );
    let (after_forget, questions) = client.sign_in(fresh(at_b), &pin);
    assert_eq!(
        after_forget["result"]["status"], "success",
        "{after_forget}"
    );
    assert!(questions.is_empty(), "B's login is kept: {questions:?}");
    let (after_forget, questions) = client.sign_in(fresh(at_a), &pin);
    assert_eq!(
        after_forget["result"]["status"], "success",
        "{after_forget}"
    );
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");
}

/// A pinentry that logs what it is asked to `dir/asked`, and answers CONFIRM once `dir/answer`
/// exists: OK when it holds `yes`, cancelled otherwise.
fn waiting_pinentry(dir: &Path) -> PathBuf {
    let script = dir.join("confirm-pinentry");
    let asked = dir.join("asked");
    let answer = dir.join("answer");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
echo "OK ready"
while read -r line; do
  echo "$line" >> '{asked}'
  case "$line" in
    CONFIRM*)
      while [ ! -e '{answer}' ]; do sleep 0.05; done
      if [ "$(cat '{answer}')" = yes ]; then echo OK; else echo "ERR 83886179 Operation cancelled"; fi ;;
    BYE*) echo OK; exit 0 ;;
    *) echo OK ;;
  esac
done
"#,
            asked = asked.display(),
            answer = answer.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn wait_for_file(path: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.contains("CONFIRM") {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A confirmation program that never answers, and leaves a child of its own holding the pipe: the
/// agent stops the whole program at its deadline and the sign-in is refused, not hung.
#[test]
fn a_confirmation_program_that_never_answers_is_stopped_and_the_sign_in_refused() {
    let w = woodgrove();
    let endpoints = TwoEndpoints::start(w);
    let v = &endpoints.a;
    let pin = w.pin("Woodgrove Alice");
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("silent-pinentry");
    let pid_file = dir.path().join("sleeper.pid");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nsleep 1000 &\necho $! > '{}'\nwait\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "confirm_program = '{}'\n\n[[endpoint]]\nurl = '{}'\nconfirm = true\n",
            program.display(),
            v.certauth_url
        ),
    )
    .unwrap();
    let mut command = agent_command(w);
    command
        .env("CERTAUTH_CONFIG", &config)
        .env("CERTAUTH_CONFIRM_TIMEOUT_SECONDS", "1");
    let agent = AgentProcess::start(command);
    let mut client = Client::connect(&agent.socket);
    let at_a = endpoints.alice_at(w, v);
    let (first, _) = client.sign_in(at_a.clone(), &pin);
    assert_eq!(first["result"]["status"], "success", "{first}");

    // The cached answer needs confirmation, which never comes: refused after 1 s + 5 s of grace.
    let started = Instant::now();
    let (refused, _) = client.sign_in(at_a, &pin);
    assert_eq!(refused["error"]["code"], "notConfirmed", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("did not answer within"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // The program's own child went with it.
    let sleeper = std::fs::read_to_string(&pid_file).unwrap();
    let gone = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{}", sleeper.trim())).exists() {
        assert!(
            Instant::now() < gone,
            "the program's child {sleeper} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The agent still serves.
    let status = client.call(json!({"method": "status"}));
    assert!(status.get("result").is_some(), "{status}");
}

#[test]
fn an_endpoint_that_wants_confirmation_waits_for_the_agents_pinentry() {
    let w = woodgrove();
    let endpoints = TwoEndpoints::start(w);
    let v = &endpoints.a;
    let pin = w.pin("Woodgrove Alice");
    let answers = tempfile::tempdir().unwrap();
    let program = waiting_pinentry(answers.path());
    let (agent, _config) = agent_with_config(
        w,
        &format!(
            "confirm_program = '{}'\n\n[[endpoint]]\nurl = '{}'\nconfirm = true\n",
            program.display(),
            v.certauth_url
        ),
    );
    let asked = answers.path().join("asked");
    let answer = answers.path().join("answer");
    let at_a = endpoints.alice_at(w, v);

    // The first sign-in asks for the PIN: that is the user's say, so no confirmation.
    let mut client = Client::connect(&agent.socket);
    let (first, questions) = client.sign_in(at_a.clone(), &pin);
    assert_eq!(first["result"]["status"], "success", "{first}");
    assert_eq!(pin_questions(&questions), 1, "{questions:?}");
    assert!(!asked.exists(), "confirmation asked though a PIN was given");

    // The cached answer waits for the pinentry's yes.
    let socket = agent.socket.clone();
    let params = at_a.clone();
    let waiting = std::thread::spawn(move || Client::connect(&socket).sign_in(params, "unused"));
    let conversation = wait_for_file(&asked, "the confirmation question");
    assert!(
        conversation.contains(&format!("process {}", std::process::id())),
        "the question names the asking process: {conversation}"
    );
    assert!(conversation.contains(ALICE), "{conversation}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!waiting.is_finished(), "the sign-in did not wait");
    std::fs::write(&answer, "yes").unwrap();
    let (cached, questions) = waiting.join().unwrap();
    assert_eq!(cached["result"]["cached"], true, "{cached}");
    assert!(questions.is_empty(), "{questions:?}");

    // A refusal: a fresh sign-in with the held login is not made.
    std::fs::remove_file(&answer).unwrap();
    std::fs::remove_file(&asked).unwrap();
    std::fs::write(&answer, "no").unwrap();
    let (refused, questions) = client.sign_in(fresh(at_a), &pin);
    assert_eq!(refused["error"]["code"], "notConfirmed", "{refused}");
    assert!(questions.is_empty(), "{questions:?}");
    assert!(std::fs::read_to_string(&asked).unwrap().contains("CONFIRM"));

    // Another endpoint is not configured: no confirmation asked.
    std::fs::remove_file(&asked).unwrap();
    let at_b = endpoints.alice_at(w, &endpoints.b);
    let (at_b_result, _) = client.sign_in(at_b.clone(), &pin);
    assert_eq!(at_b_result["result"]["status"], "success", "{at_b_result}");
    let (cached_b, _) = client.sign_in(at_b, &pin);
    assert_eq!(cached_b["result"]["cached"], true, "{cached_b}");
    assert!(
        !asked.exists(),
        "confirmation asked for an endpoint without it"
    );
}

#[test]
fn without_a_confirm_program_the_client_confirms() {
    let w = woodgrove();
    let endpoints = TwoEndpoints::start(w);
    let v = &endpoints.a;
    let pin = w.pin("Woodgrove Alice");
    let (agent, _config) = agent_with_config(
        w,
        &format!("[[endpoint]]\nurl = '{}'\nconfirm = true\n", v.certauth_url),
    );
    let at_a = endpoints.alice_at(w, v);
    let mut client = Client::connect(&agent.socket);
    let (first, _) = client.sign_in(at_a.clone(), &pin);
    assert_eq!(first["result"]["status"], "success", "{first}");

    let (declined, questions) = client.sign_in_confirming(at_a.clone(), &pin, false);
    assert_eq!(declined["error"]["code"], "notConfirmed", "{declined}");
    assert_eq!(questions.len(), 1, "{questions:?}");
    assert_eq!(questions[0]["ask"], "confirm");
    assert!(
        questions[0]["question"].as_str().unwrap().contains(ALICE),
        "{questions:?}"
    );
    let (allowed, _) = client.sign_in_confirming(at_a.clone(), &pin, true);
    assert_eq!(allowed["result"]["cached"], true, "{allowed}");

    // The command line with no person to ask (a PIN from the environment) declines.
    let output = w
        .certauth()
        .args(["sign-in", &v.certauth_url, "--username", ALICE])
        .args(["--via-agent", "--agent-socket"])
        .arg(&agent.socket)
        .args(["--ca-file"])
        .arg(&endpoints.ca_file)
        .args(["--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", &pin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("was not confirmed"), "{stderr}");
}
