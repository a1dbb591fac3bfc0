//! `certauth agent` as a real process, and a client of its socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::lines::Lines;
use super::rig;
use super::woodgrove::Woodgrove;

/// `certauth agent` with the fixture's SoftHSM module.
pub fn agent_command(w: &Woodgrove) -> Command {
    let mut command = w.certauth();
    command
        .args(["agent", "--no-p11-kit", "--module"])
        .arg(w.module());
    command
}

pub struct AgentProcess {
    child: rig::Stopping,
    pub socket: PathBuf,
    /// What the agent wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl AgentProcess {
    /// Runs `certauth` (`command`, with its modules and environment set) as `agent` on a socket
    /// in a fresh directory, and waits until it serves.
    pub fn start(mut command: Command) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("agent.sock");
        let mut child = command
            .arg("--socket")
            .arg(&socket)
            .env("XDG_CONFIG_HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut from_agent = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = from_agent.read(&mut chunk) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let (_, line) = lines.wait_for("the agent's banner", Duration::from_secs(20), |l| {
            l.starts_with("certauth agent listening on ")
        });
        assert!(line.ends_with(socket.to_str().unwrap()), "{line}");
        Self {
            child: rig::Stopping(child),
            socket,
            stderr,
            dir,
        }
    }

    /// The agent's `XDG_CONFIG_HOME` (and its socket's parent directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the agent has written to stderr.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child.0
    }
}

/// A client connection: one request line, one response line.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> Self {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends `line` and reads the answer. An agent that refuses a line too long answers and
    /// closes before reading it all, so a broken pipe while sending is not a failure here: the
    /// answer is read all the same.
    pub fn send_line(&mut self, line: &str) -> Value {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        match self.writer.write_all(&bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
        let mut response = String::new();
        self.reader.read_line(&mut response).unwrap();
        serde_json::from_str(&response).unwrap_or_else(|e| panic!("{e}: {response:?}"))
    }

    pub fn call(&mut self, request: Value) -> Value {
        self.send_line(&request.to_string())
    }

    /// `sign-in` with `params`, answering every PIN question with `pin`: the final response and
    /// the questions asked on the way.
    pub fn sign_in(&mut self, params: Value, pin: &str) -> (Value, Vec<Value>) {
        self.sign_in_after(params, &[], pin)
    }

    /// As [`Self::sign_in`], sending `stray` lines (answers to no question) right after the
    /// request.
    pub fn sign_in_after(
        &mut self,
        params: Value,
        stray: &[Value],
        pin: &str,
    ) -> (Value, Vec<Value>) {
        let request = json!({"id": "s", "method": "sign-in", "params": params});
        self.writer
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
        for line in stray {
            self.writer
                .write_all(format!("{line}\n").as_bytes())
                .unwrap();
        }
        self.answer_until_done(|question| {
            (question["ask"] == "pin").then(|| json!({"id": "s", "pin": pin}))
        })
    }

    /// `sign-in` with `params`, answering PIN questions with `pin` and confirmation questions
    /// with `confirm`.
    pub fn sign_in_confirming(
        &mut self,
        params: Value,
        pin: &str,
        confirm: bool,
    ) -> (Value, Vec<Value>) {
        let request = json!({"id": "s", "method": "sign-in", "params": params});
        self.writer
            .write_all(format!("{request}\n").as_bytes())
            .unwrap();
        self.answer_until_done(|question| match question["ask"].as_str() {
            Some("pin") => Some(json!({"id": "s", "pin": pin})),
            Some("confirm") => Some(json!({"id": "s", "confirm": confirm})),
            _ => None,
        })
    }

    /// Answers the sign-in's questions with `answer` (none when it gives `None`) until its
    /// response: that response and the questions asked.
    fn answer_until_done(
        &mut self,
        answer: impl Fn(&Value) -> Option<Value>,
    ) -> (Value, Vec<Value>) {
        let mut questions = Vec::new();
        loop {
            let message = self.next_line();
            if message.get("result").is_some() || message.get("error").is_some() {
                return (message, questions);
            }
            if let Some(answer) = answer(&message) {
                self.writer
                    .write_all(format!("{answer}\n").as_bytes())
                    .unwrap();
            }
            questions.push(message);
        }
    }

    /// The next event named `name`, skipping others.
    pub fn next_event(&mut self, name: &str) -> Value {
        loop {
            let event = self.next_line();
            if event["event"] == name {
                return event;
            }
        }
    }

    /// The next line the agent sends (an event, once subscribed).
    pub fn next_line(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}
