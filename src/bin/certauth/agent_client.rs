//! The command line's side of the agent's local API: finding a running agent, calling a method,
//! and answering a sign-in's questions (PIN, certificate, final try) here, on the terminal or from
//! the PIN source given. The API is a Unix socket; elsewhere no agent is ever found.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use certauth::picker::terminal::{PickerError, PickerRow};
use certauth::pin::login::{known_warning, PinPrompt, PinRequest};
use certauth::signin::select::Chooser;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::cli::AgentSocketArgs;

/// An error the agent answered with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    pub code: String,
    pub message: String,
}

/// Why a call did not get an answer from the agent.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("talking to the agent failed: {0:#}")]
    Transport(#[from] anyhow::Error),
}

#[cfg(unix)]
type Stream = std::os::unix::net::UnixStream;

/// Connects to the agent socket at `path`, making sure the process serving it runs as this user
/// before anything (a PIN, say) is sent.
#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<Stream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (stream, peer) = runtime.block_on(async {
        let stream = tokio::net::UnixStream::connect(path).await?;
        let peer = stream.peer_cred()?;
        Ok::<_, std::io::Error>((stream.into_std()?, peer))
    })?;
    stream.set_nonblocking(false)?;
    let me = own_uid()?;
    if peer.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the process serving {} runs as uid {}, not as you (uid {me}); nothing was sent",
                path.display(),
                peer.uid()
            ),
        ));
    }
    Ok(stream)
}

/// This process's effective uid: the owner of a file it creates (std has no getuid, and
/// certauth has no unsafe code).
#[cfg(unix)]
pub fn own_uid() -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    Ok(tempfile::tempfile()?.metadata()?.uid())
}

/// No agent API without Unix sockets (yet): nothing to connect to.
#[cfg(not(unix))]
enum Stream {}

#[cfg(not(unix))]
fn open(_: &Path) -> std::io::Result<Stream> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the agent's local API is a Unix socket, not built for this platform yet",
    ))
}

#[cfg(not(unix))]
impl Stream {
    fn try_clone(&self) -> std::io::Result<Self> {
        match *self {}
    }
}

#[cfg(not(unix))]
impl std::io::Read for Stream {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        match *self {}
    }
}

#[cfg(not(unix))]
impl Write for Stream {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        match *self {}
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match *self {}
    }
}

/// A connection to the agent.
pub struct AgentConnection {
    reader: BufReader<Stream>,
    writer: Stream,
    next_id: u64,
}

/// `$XDG_RUNTIME_DIR/certauth/agent.sock`: the per-user runtime directory, private by design.
/// `flag` is the option that names another socket on the command at hand.
pub fn default_socket(flag: &str) -> anyhow::Result<PathBuf> {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .ok_or_else(|| {
            anyhow!("XDG_RUNTIME_DIR is not set, so there is no private place for the agent's socket; give one with {flag}")
        })?;
    Ok(PathBuf::from(runtime_dir)
        .join("certauth")
        .join("agent.sock"))
}

/// The socket `args` names, else the default one.
pub fn socket_path(args: &AgentSocketArgs) -> anyhow::Result<PathBuf> {
    match &args.agent_socket {
        Some(path) => Ok(path.clone()),
        None => default_socket("--agent-socket"),
    }
}

impl AgentConnection {
    /// Connects to the agent at `args`' socket; an error if none answers there.
    pub fn connect(args: &AgentSocketArgs) -> anyhow::Result<Self> {
        let path = socket_path(args)?;
        let stream = open(&path).with_context(|| {
            format!(
                "no agent is running at {} (start one with `certauth agent`)",
                path.display()
            )
        })?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        })
    }

    /// Connects if an agent is running, `None` if not.
    pub fn running(args: &AgentSocketArgs) -> Option<Self> {
        Self::connect(args).ok()
    }

    fn send(&mut self, message: &Value) -> anyhow::Result<()> {
        let mut line = Zeroizing::new(message.to_string().into_bytes());
        line.push(b'\n');
        self.writer.write_all(&line)?;
        Ok(())
    }

    fn receive(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(anyhow!("the agent closed the connection"));
        }
        serde_json::from_str(&line).context("the agent sent something that is not JSON")
    }

    fn request(&mut self, method: &str, params: Value) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "id": id, "method": method, "params": params }))?;
        Ok(id)
    }

    /// Calls `method` and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        self.request(method, params)?;
        let response = self.receive()?;
        outcome(response)
    }

    /// `sign-in`, answering the agent's questions with `prompt` and `chooser`.
    pub fn sign_in(
        &mut self,
        params: Value,
        prompt: &mut dyn PinPrompt,
        chooser: &mut dyn Chooser,
    ) -> Result<Value, CallError> {
        let id = self.request("sign-in", params)?;
        loop {
            let message = self.receive()?;
            if let Some(notice) = message.get("notice").and_then(Value::as_str) {
                prompt.notice(&format!("Note: {notice}"));
                continue;
            }
            let answer = match message.get("ask").and_then(Value::as_str) {
                Some("pin") => {
                    self.send_pin(id, &message, prompt)?;
                    continue;
                }
                Some("confirmFinalTry") => {
                    let token = message["token"].as_str().unwrap_or("the token");
                    json!({ "confirm": prompt.confirm_final_try(token) })
                }
                Some("confirm") => {
                    let question = message["question"]
                        .as_str()
                        .unwrap_or("The agent asks to sign in without a PIN.");
                    json!({ "confirm": prompt.confirm_sign_in(question) })
                }
                Some("choose") => answer_choice(&message, chooser),
                Some(other) => {
                    return Err(anyhow!(
                        "the agent asked `{other}`, which this certauth cannot answer"
                    )
                    .into())
                }
                None => return outcome(message),
            };
            let mut answer = answer;
            answer["id"] = json!(id);
            self.send(&answer)?;
        }
    }
}

impl AgentConnection {
    /// Asks `prompt` the PIN question and sends the answer (`null` when there is none), the
    /// PIN only ever in buffers that are wiped.
    fn send_pin(
        &mut self,
        id: u64,
        question: &Value,
        prompt: &mut dyn PinPrompt,
    ) -> anyhow::Result<()> {
        let request = PinRequest {
            token: question["token"].as_str().unwrap_or("?"),
            certificate: question["certificate"].as_str().unwrap_or("?"),
            warning: question["warning"].as_str().and_then(known_warning),
            attempt: question["attempt"].as_u64().unwrap_or(1) as u32,
        };
        let pin = match prompt.ask(&request) {
            Ok(pin) => pin,
            Err(e) => {
                prompt.notice(&format!("certauth: {e}"));
                None
            }
        };
        let encoded = Zeroizing::new(match &pin {
            Some(pin) => serde_json::to_string(pin.expose_secret())?,
            None => "null".to_owned(),
        });
        let line = Zeroizing::new(format!("{{\"id\":{id},\"pin\":{}}}\n", encoded.as_str()));
        self.writer.write_all(line.as_bytes())?;
        Ok(())
    }
}

/// A response's result, or its error.
fn outcome(response: Value) -> Result<Value, CallError> {
    if let Some(error) = response.get("error") {
        return Err(AgentError {
            code: error["code"].as_str().unwrap_or("unknown").to_owned(),
            message: error["message"]
                .as_str()
                .unwrap_or("the agent gave no reason")
                .to_owned(),
        }
        .into());
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}

fn answer_choice(question: &Value, chooser: &mut dyn Chooser) -> Value {
    let rows: Vec<PickerRow> = question["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|row| PickerRow {
            title: text(&row["title"]),
            issuer: text(&row["issuer"]),
            expires: text(&row["expires"]),
            token: text(&row["token"]),
            details: row["details"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|pair| (text(&pair[0]), text(&pair[1])))
                .collect(),
        })
        .collect();
    match chooser.choose(&rows) {
        Ok(Some(index)) => json!({ "choice": index }),
        Err(PickerError::NoTerminal) => json!({ "choice": null, "noTerminal": true }),
        Ok(None) | Err(_) => json!({ "choice": null }),
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}
