//! The client's side of the agent's local API: finding a running agent, calling a method, and
//! answering a sign-in's questions (PIN, certificate, final try, confirmation) with the caller's
//! [`PinPrompt`] and [`Chooser`]. The API is a Unix socket; elsewhere no agent is ever found.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::protocol::{
    parse_response, ChoiceAnswer, Failure, Question, SignInMessage, SignInParams,
};
use crate::picker::select::Chooser;
use crate::picker::terminal::PickerError;
use crate::remedy::Remedy;
use crate::token::login::{known_warning, PinPrompt, PinRequest};

/// Why a call did not get an answer from the agent.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The agent answered with an error.
    #[error(transparent)]
    Agent(#[from] Failure),
    #[error("talking to the agent failed: {0}")]
    Transport(#[from] TransportError),
}

/// What went wrong on the way to or from the agent.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the agent closed the connection")]
    Closed,
    #[error("the agent sent something that is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("the agent asked `{0}`, which this certauth cannot answer")]
    UnknownQuestion(String),
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

/// `$XDG_RUNTIME_DIR/certauth/agent.sock`: the per-user runtime directory, private by design;
/// `None` when `XDG_RUNTIME_DIR` is not set, and so there is no private place for the socket.
pub fn default_socket() -> Option<PathBuf> {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty())?;
    Some(
        PathBuf::from(runtime_dir)
            .join("certauth")
            .join("agent.sock"),
    )
}

impl AgentConnection {
    /// Connects to the agent at `socket`, making sure it runs as this user; an error if none
    /// answers there.
    pub fn connect(socket: &Path) -> std::io::Result<Self> {
        let stream = open(socket)?;
        Ok(Self {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        })
    }

    fn send(&mut self, message: &Value) -> Result<(), TransportError> {
        let mut line = Zeroizing::new(message.to_string().into_bytes());
        line.push(b'\n');
        self.writer.write_all(&line)?;
        Ok(())
    }

    fn receive(&mut self) -> Result<Value, TransportError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(TransportError::Closed);
        }
        Ok(serde_json::from_str(&line)?)
    }

    fn request(&mut self, method: &str, params: Value) -> Result<u64, TransportError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "id": id, "method": method, "params": params }))?;
        Ok(id)
    }

    /// Calls `method` and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, CallError> {
        self.request(method, params)?;
        let response = self.receive()?;
        Ok(parse_response(&response)?)
    }

    /// `subscribe`: the agent's events, one at a time, starting with its replay of the current
    /// state. The iterator ends when the agent hangs up.
    pub fn subscribe(
        mut self,
    ) -> Result<impl Iterator<Item = Result<Value, TransportError>>, CallError> {
        self.call("subscribe", json!({}))?;
        Ok(std::iter::from_fn(move || match self.receive() {
            Err(TransportError::Closed) => None,
            other => Some(other),
        }))
    }

    /// `sign-in`, answering the agent's questions with `prompt` and `chooser`.
    pub fn sign_in(
        &mut self,
        params: &SignInParams,
        prompt: &mut dyn PinPrompt,
        chooser: &mut dyn Chooser,
    ) -> Result<Value, CallError> {
        let params = serde_json::to_value(params).map_err(TransportError::NotJson)?;
        let id = self.request("sign-in", params)?;
        let mut prompt_remedy = None;
        loop {
            let answer = match SignInMessage::parse(self.receive()?) {
                SignInMessage::Notice(notice) => {
                    prompt.notice(&format!("Note: {notice}"));
                    continue;
                }
                SignInMessage::Response(response) => {
                    return parse_response(&response).map_err(|mut failure| {
                        // A PIN this side could not give: what the user can do about it.
                        failure.remedy = failure.remedy.or(prompt_remedy);
                        failure.into()
                    });
                }
                SignInMessage::UnknownQuestion(ask) => {
                    return Err(TransportError::UnknownQuestion(ask).into())
                }
                SignInMessage::Question(question) => match question {
                    Question::Pin {
                        token,
                        certificate,
                        warning,
                        attempt,
                    } => {
                        let request = PinRequest {
                            token: &token,
                            certificate: &certificate,
                            warning: warning.as_deref().and_then(known_warning),
                            attempt,
                        };
                        prompt_remedy = self.send_pin(id, &request, prompt)?.or(prompt_remedy);
                        continue;
                    }
                    Question::ConfirmFinalTry { token } => {
                        json!({ "confirm": prompt.confirm_final_try(&token) })
                    }
                    Question::Confirm { question } => {
                        json!({ "confirm": prompt.confirm_sign_in(&question) })
                    }
                    Question::Choose { rows } => match chooser.choose(&rows) {
                        Ok(Some(index)) => ChoiceAnswer::Chosen(index),
                        Err(PickerError::NoTerminal) => ChoiceAnswer::NoTerminal,
                        Ok(None) | Err(_) => ChoiceAnswer::Cancelled,
                    }
                    .to_json(),
                },
            };
            let mut answer = answer;
            answer["id"] = json!(id);
            self.send(&answer)?;
        }
    }

    /// Asks `prompt` the PIN question and sends the answer (`null` when there is none), the
    /// PIN only ever in buffers that are wiped. A prompt that failed says so, and its remedy
    /// comes back.
    fn send_pin(
        &mut self,
        id: u64,
        request: &PinRequest<'_>,
        prompt: &mut dyn PinPrompt,
    ) -> Result<Option<Remedy>, TransportError> {
        let (pin, remedy) = match prompt.ask(request) {
            Ok(pin) => (pin, None),
            Err(e) => {
                prompt.notice(&format!("certauth: {e}"));
                (None, e.remedy)
            }
        };
        let encoded = Zeroizing::new(match &pin {
            Some(pin) => serde_json::to_string(pin.expose_secret())?,
            None => "null".to_owned(),
        });
        let line = Zeroizing::new(format!("{{\"id\":{id},\"pin\":{}}}\n", encoded.as_str()));
        self.writer.write_all(line.as_bytes())?;
        Ok(remedy)
    }
}
