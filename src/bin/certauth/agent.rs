//! `certauth agent`: the long-running agent for the user's session. It loads the PKCS#11 modules
//! once, watches readers and cards (scanning the tokens again after each card event), and serves
//! the local API (`docs/agent-api.md`) on a Unix socket: newline-delimited JSON requests and
//! responses, and a stream of events to subscribers, for the user who runs it and no one else.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Context};
use certauth::token::inventory::{self, ModuleReport, ScanOptions, TokenReport};
use certauth::token::module::LoadedModule;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;

use crate::cli::AgentArgs;

/// The longest request line accepted; a longer one ends the connection.
const MAX_REQUEST: u64 = 64 * 1024;
/// The methods this agent answers.
const METHODS: &[&str] = &["status", "list", "subscribe"];
/// Events kept for a slow subscriber before it is told some were lost.
const EVENT_BACKLOG: usize = 256;

/// The modules, loaded once: a module is initialised once per process (SoftHSM crashes when two
/// threads initialise it at once), and scans take turns.
struct Tokens {
    modules: Vec<LoadedModule>,
    reports: Vec<ModuleReport>,
}

struct Agent {
    tokens: Mutex<Tokens>,
    socket: PathBuf,
    /// The uid that owns the socket: the only peer served.
    owner: u32,
    started: Instant,
    /// Reader, card and token events, as JSON lines.
    events: broadcast::Sender<String>,
}

/// What one scan saw: the module reports (updated by the scan) and the tokens.
struct Scan {
    reports: Vec<ModuleReport>,
    tokens: Vec<TokenReport>,
    /// The time eligibility was judged at.
    now: time::OffsetDateTime,
}

impl Agent {
    /// Scans every token, taking its turn with other scans; `None` if an earlier scan panicked.
    fn scan(&self) -> Option<Scan> {
        let tokens = self.tokens.lock().ok()?;
        let mut reports = tokens.reports.clone();
        let options = ScanOptions::default();
        let found = inventory::scan(&tokens.modules, &mut reports, &options);
        Some(Scan {
            reports,
            tokens: found,
            now: options.now,
        })
    }
}

pub fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let socket = match &args.socket {
        Some(path) => path.clone(),
        None => default_socket()?,
    };
    let (modules, reports) = crate::tokens::load(&args.modules)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = bind(&socket)?;
        let owner = std::fs::metadata(&socket)?.uid();
        let agent = Arc::new(Agent {
            tokens: Mutex::new(Tokens { modules, reports }),
            socket: socket.clone(),
            owner,
            started: Instant::now(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        });
        let watching = Arc::clone(&agent);
        std::thread::Builder::new()
            .name("pcsc-watch".into())
            .spawn(move || watch(&watching))
            .context("cannot start watching readers")?;
        println!("certauth agent listening on {}", socket.display());
        let served = serve(listener, agent).await;
        let _ = std::fs::remove_file(&socket);
        served
    })
}

/// `$XDG_RUNTIME_DIR/certauth/agent.sock`: the per-user runtime directory, private by design.
fn default_socket() -> anyhow::Result<PathBuf> {
    let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .ok_or_else(|| {
            anyhow!("XDG_RUNTIME_DIR is not set, so there is no private place for the agent's socket; give one with --socket")
        })?;
    Ok(PathBuf::from(runtime_dir)
        .join("certauth")
        .join("agent.sock"))
}

/// Binds the socket with mode 0600 in a directory only its user can enter, replacing a stale
/// socket but never a live agent's.
fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(anyhow!(
                "an agent is already serving {}; stop it first",
                socket.display()
            ));
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove the stale socket {}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", socket.display()))?;
    Ok(listener)
}

/// Watches readers and cards for as long as the agent runs; after each card event the tokens
/// are scanned again. Every event goes to the subscribers.
fn watch(agent: &Agent) {
    let mut watcher = certauth::reader::Watcher::new();
    loop {
        let events = watcher.poll(crate::watch::POLL);
        for event in &events {
            tracing::debug!(%event, subscribers = agent.events.receiver_count(), "reader event");
            let _ = agent.events.send(line_of(&crate::watch::event_json(event)));
        }
        if events
            .iter()
            .any(certauth::reader::ReaderEvent::changes_cards)
        {
            tracing::debug!("scanning tokens after a card event");
            let Some(scan) = agent.scan() else {
                return;
            };
            tracing::debug!(tokens = scan.tokens.len(), "scanned");
            let _ = agent
                .events
                .send(line_of(&crate::watch::tokens_json(&scan.tokens)));
        }
    }
}

/// Accepts connections until SIGTERM or SIGINT.
async fn serve(listener: UnixListener, agent: Arc<Agent>) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting a connection")?;
                let agent = Arc::clone(&agent);
                tokio::spawn(async move {
                    if let Err(error) = connection(stream, agent).await {
                        tracing::debug!(%error, "connection ended");
                    }
                });
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping");
    Ok(())
}

/// Serves one client: its user is checked by peer credentials, then each request line gets one
/// response line.
async fn connection(stream: UnixStream, agent: Arc<Agent>) -> anyhow::Result<()> {
    let peer = stream.peer_cred()?;
    let (reader, mut writer) = stream.into_split();
    if peer.uid() != agent.owner {
        tracing::warn!(
            uid = peer.uid(),
            pid = ?peer.pid(),
            "refused a connection from another user"
        );
        let refusal = error_response(
            &Value::Null,
            "forbidden",
            "this agent serves only the user who runs it",
        );
        writer.write_all(refusal.as_bytes()).await?;
        return Ok(());
    }
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_REQUEST + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Ok(());
        }
        if line.len() as u64 > MAX_REQUEST {
            let refusal = error_response(
                &Value::Null,
                "requestTooLarge",
                &format!("a request line may be at most {MAX_REQUEST} bytes"),
            );
            writer.write_all(refusal.as_bytes()).await?;
            return Ok(());
        }
        match respond(&line, &agent).await {
            Reply::Line(response) => writer.write_all(response.as_bytes()).await?,
            Reply::Subscribed(response) => {
                let events = agent.events.subscribe();
                writer.write_all(response.as_bytes()).await?;
                return stream_events(events, reader, writer).await;
            }
        }
    }
}

/// What a request gets: a response line, or a response line and then the event stream.
enum Reply {
    Line(String),
    Subscribed(String),
}

/// Sends events to a subscriber until it hangs up (or says anything more).
async fn stream_events(
    mut events: broadcast::Receiver<String>,
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut writer: tokio::net::unix::OwnedWriteHalf,
) -> anyhow::Result<()> {
    let mut ignored = [0u8; 1];
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(line) => writer.write_all(line.as_bytes()).await?,
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    let notice = line_of(&json!({"event": "eventsLost", "count": lost}));
                    writer.write_all(notice.as_bytes()).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = reader.read(&mut ignored) => return Ok(()),
        }
    }
}

/// The reply to one request line.
async fn respond(line: &[u8], agent: &Arc<Agent>) -> Reply {
    let request: Value = match serde_json::from_slice(line) {
        Ok(request @ Value::Object(_)) => request,
        Ok(_) => {
            return Reply::Line(error_response(
                &Value::Null,
                "badRequest",
                "a request is a JSON object",
            ))
        }
        Err(e) => {
            return Reply::Line(error_response(
                &Value::Null,
                "badRequest",
                &format!("not JSON: {e}"),
            ));
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(json!({}));
    let result = match request.get("method").and_then(Value::as_str) {
        Some("status") => Ok(status(agent)),
        Some("list") => list(agent, &params).await,
        Some("subscribe") => {
            return Reply::Subscribed(line_of(
                &json!({ "id": id, "result": { "subscribed": true } }),
            ))
        }
        Some(other) => Err((
            "unknownMethod",
            format!(
                "no method `{other}`; this agent answers {}",
                METHODS.join(", ")
            ),
        )),
        None => Err((
            "badRequest",
            "a request needs a \"method\" string".to_owned(),
        )),
    };
    Reply::Line(match result {
        Ok(result) => line_of(&json!({ "id": id, "result": result })),
        Err((code, message)) => error_response(&id, code, &message),
    })
}

fn status(agent: &Agent) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "socket": agent.socket,
        "uptimeSeconds": agent.started.elapsed().as_secs(),
        "methods": METHODS,
    })
}

/// `list`: what `certauth list --json` prints (`params.all` as `--all`).
async fn list(agent: &Arc<Agent>, params: &Value) -> Result<Value, (&'static str, String)> {
    let all = match params.get("all") {
        None => false,
        Some(Value::Bool(all)) => *all,
        Some(_) => return Err(("badRequest", "`all` must be true or false".to_owned())),
    };
    let agent = Arc::clone(agent);
    tokio::task::spawn_blocking(move || {
        let scan = agent
            .scan()
            .ok_or(("internal", "an earlier scan failed".to_owned()))?;
        let pcsc = certauth::reader::status();
        Ok(crate::list::to_json(
            &pcsc,
            &scan.reports,
            &scan.tokens,
            all,
            scan.now,
        ))
    })
    .await
    .map_err(|e| ("internal", format!("the scan failed: {e}")))?
}

fn error_response(id: &Value, code: &str, message: &str) -> String {
    line_of(&json!({ "id": id, "error": { "code": code, "message": message } }))
}

fn line_of(value: &Value) -> String {
    let mut line = value.to_string();
    line.push('\n');
    line
}
