//! The agent's side of the local API: accepting connections, checking the peer's user, reading
//! request lines and answering each, the event stream for subscribers, and the back-and-forth of a
//! sign-in (questions to the client, its answers).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};

use super::confirm::Requester;
use super::lines::{ClientLines, Line, TooLong};
use super::protocol::{
    error_line, line_of, response_line, Answer, ErrorCode, Event, Failure, METHODS,
};
use super::Agent;
use crate::picker::remembered::{endpoint_key, RememberedChoices};

/// The longest request line accepted, newline not counted; a longer one ends the connection.
const MAX_REQUEST: usize = 64 * 1024;
/// The first pause after a failed `accept`, doubling up to [`MAX_PAUSE`] while it keeps failing.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// A run of failed accepts is over once none failed for this long.
const QUIET: Duration = Duration::from_secs(5);
/// Sign-ins under way at once: each may hold a thread of tokio's blocking pool while it waits for
/// its client's answer. A sign-in over the limit waits up to [`SIGN_IN_QUEUE`] for a place, then
/// is refused as `busy`.
pub const MAX_SIGN_INS: usize = 32;
const SIGN_IN_QUEUE: Duration = Duration::from_secs(5);

/// Accepts connections until SIGTERM or SIGINT.
pub async fn serve(listener: UnixListener, agent: Arc<Agent>) -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut pause = FIRST_PAUSE;
    // A run of failed accepts: when it started, and the latest failure.
    let mut failing: Option<(Instant, Instant)> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    pause = FIRST_PAUSE;
                    // Descriptors freeing one at a time make accept succeed and fail in turn: that
                    // is one run of failures, over only after a quiet spell.
                    let quiet = failing.filter(|(_, last)| last.elapsed() >= QUIET);
                    if let Some((since, last)) = quiet {
                        failing = None;
                        tracing::warn!(
                            "accepting connections again; accept had failed for {:.1} s",
                            last.duration_since(since).as_secs_f64()
                        );
                    }
                    let agent = Arc::clone(&agent);
                    tokio::spawn(async move {
                        if let Err(error) = connection(stream, agent).await {
                            tracing::debug!(%error, "connection ended");
                        }
                    });
                }
                Err(error) => {
                    // Out of descriptors (EMFILE) and the like: the agent keeps what it holds and
                    // tries again once open connections close, without spinning or flooding the log.
                    let now = Instant::now();
                    match &mut failing {
                        Some((_, last)) => *last = now,
                        None => {
                            failing = Some((now, now));
                            tracing::warn!(
                                %error,
                                "cannot accept connections; retrying with pauses of up to 1 s"
                            );
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = terminate.recv() => break,
                        _ = tokio::signal::ctrl_c() => break,
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            },
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping");
    Ok(())
}

/// Reads one request line; `None` at the end of the stream. A line over the limit is an error
/// answer, already sent.
async fn read_line(
    lines: &mut ClientLines,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<Option<Line>> {
    match lines.next().await? {
        None => Ok(None),
        Some(Ok(line)) => Ok(Some(line)),
        Some(Err(TooLong)) => {
            let refusal = error_line(
                &Value::Null,
                &Failure::new(
                    ErrorCode::RequestTooLarge,
                    format!("a request line may be at most {MAX_REQUEST} bytes before its newline"),
                ),
            );
            writer.write_all(refusal.as_bytes()).await?;
            Err(std::io::Error::other("request too large"))
        }
    }
}

/// Serves one client: its user is checked by peer credentials, then each request line gets one
/// response line.
async fn connection(stream: UnixStream, agent: Arc<Agent>) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let (reader, mut writer) = stream.into_split();
    if peer.uid() != agent.owner {
        tracing::warn!(
            uid = peer.uid(),
            pid = ?peer.pid(),
            "refused a connection from another user"
        );
        let refusal = error_line(
            &Value::Null,
            &Failure::new(
                ErrorCode::Forbidden,
                "this agent serves only the user who runs it",
            ),
        );
        writer.write_all(refusal.as_bytes()).await?;
        return Ok(());
    }
    let mut reader = ClientLines::new(reader, MAX_REQUEST);
    while let Some(line) = read_line(&mut reader, &mut writer).await? {
        match respond(&line, &agent).await {
            Reply::Line(response) => writer.write_all(response.as_bytes()).await?,
            Reply::Subscribed(response) => {
                // Subscribed before the replay is read, so that nothing after it is missed.
                let events = agent.events.subscribe();
                writer.write_all(response.as_bytes()).await?;
                writer.write_all(replay(&agent).await.as_bytes()).await?;
                return stream_events(events, reader, writer).await;
            }
            Reply::SignIn { id, params } => {
                let requester = Requester { pid: peer.pid() };
                converse(&agent, id, params, requester, &mut reader, &mut writer).await?;
            }
        }
    }
    Ok(())
}

/// What a request gets: a response line, a response line and then the event stream, or a
/// sign-in's conversation.
enum Reply {
    Line(String),
    Subscribed(String),
    SignIn { id: Value, params: Value },
}

/// The longest a replay waits for the agent's first look at the tokens.
const FIRST_LOOK_WAIT: Duration = Duration::from_secs(30);

/// The current state as event lines marked `"replay": true`: the readers and cards as
/// [`crate::reader::PcscStatus::as_events`] gives them, then the tokens, once the agent has looked
/// at them for the first time.
async fn replay(agent: &Arc<Agent>) -> String {
    let agent = Arc::clone(agent);
    let looked = tokio::task::spawn_blocking(move || {
        agent.await_first_look(FIRST_LOOK_WAIT);
        let pcsc = crate::reader::status();
        (pcsc, agent.scan().tokens)
    })
    .await;
    let Ok((pcsc, tokens)) = looked else {
        return String::new();
    };
    let events = pcsc.as_events();
    let values = events
        .iter()
        .map(crate::listing::event_json)
        .chain(std::iter::once(crate::listing::tokens_json(&tokens)));
    values
        .map(|mut value| {
            value["replay"] = Value::Bool(true);
            line_of(&value)
        })
        .collect()
}

/// Sends events to a subscriber until it hangs up (or says anything more).
async fn stream_events(
    mut events: broadcast::Receiver<String>,
    mut reader: ClientLines,
    mut writer: OwnedWriteHalf,
) -> std::io::Result<()> {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(line) => writer.write_all(line.as_bytes()).await?,
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    let notice = Event::EventsLost { count: lost }.line();
                    writer.write_all(notice.as_bytes()).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = reader.closed() => return Ok(()),
        }
    }
}

/// Runs a sign-in once it has one of the [`MAX_SIGN_INS`] places (else `busy`), passing its
/// questions (PIN, certificate, final try) to the client and the client's answers back, until the
/// sign-in's own answer. Requests sent meanwhile are refused as `busy`; a client that hangs up
/// cancels any question still open.
async fn converse(
    agent: &Arc<Agent>,
    id: Value,
    params: Value,
    requester: Requester,
    reader: &mut ClientLines,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let place = Arc::clone(&agent.sign_ins).acquire_owned();
    let Ok(Ok(place)) = tokio::time::timeout(SIGN_IN_QUEUE, place).await else {
        let busy = error_line(
            &id,
            &Failure::new(
                ErrorCode::Busy,
                format!(
                    "the agent already runs {MAX_SIGN_INS} sign-ins, as many as it takes at once; try again when one has finished"
                ),
            ),
        );
        writer.write_all(busy.as_bytes()).await?;
        return Ok(());
    };
    let (questions, mut asked) = mpsc::unbounded_channel::<String>();
    let (answers, answered) = std::sync::mpsc::channel::<Answer>();
    let signing_in = super::sign_in::sign_in(
        Arc::clone(agent),
        id.clone(),
        params,
        questions,
        answered,
        requester,
    );
    let mut running = tokio::spawn(async move {
        // The place is given back when the sign-in ends, even after its client has left.
        let _place = place;
        signing_in.await
    });
    loop {
        tokio::select! {
            Some(question) = asked.recv() => writer.write_all(question.as_bytes()).await?,
            finished = &mut running => {
                while let Ok(question) = asked.try_recv() {
                    writer.write_all(question.as_bytes()).await?;
                }
                let response = response_line(
                    &id,
                    finished.unwrap_or_else(|e| Err(Failure::internal(format!("the sign-in failed: {e}")))),
                );
                writer.write_all(response.as_bytes()).await?;
                return Ok(());
            }
            line = read_line(reader, writer) => {
                let Some(line) = line? else {
                    // The client left: questions go unanswered, so the sign-in stops at the next.
                    return Ok(());
                };
                match Answer::parse(&line) {
                    Ok(answer) => {
                        let _ = answers.send(answer);
                    }
                    Err(Ok(request)) => {
                        let busy = error_line(
                            request.get("id").unwrap_or(&Value::Null),
                            &Failure::new(
                                ErrorCode::Busy,
                                "a sign-in is running on this connection; answer its question or use another connection",
                            ),
                        );
                        writer.write_all(busy.as_bytes()).await?;
                    }
                    Err(Err(e)) => {
                        let bad = error_line(&Value::Null, &Failure::bad_request(format!("not JSON: {e}")));
                        writer.write_all(bad.as_bytes()).await?;
                    }
                }
            }
        }
    }
}

/// The reply to one request line.
async fn respond(line: &[u8], agent: &Arc<Agent>) -> Reply {
    let request: Value = match serde_json::from_slice(line) {
        Ok(request @ Value::Object(_)) => request,
        Ok(_) => {
            return Reply::Line(error_line(
                &Value::Null,
                &Failure::bad_request("a request is a JSON object"),
            ))
        }
        Err(e) => {
            return Reply::Line(error_line(
                &Value::Null,
                &Failure::bad_request(format!("not JSON: {e}")),
            ));
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(json!({}));
    let result = match request.get("method").and_then(Value::as_str) {
        Some("status") => status(agent).await,
        Some("list") => list(agent, &params).await,
        Some("forget") => forget(agent, &params).await,
        Some("lock") => lock(agent).await,
        Some("sign-in") => return Reply::SignIn { id, params },
        Some("subscribe") => {
            return Reply::Subscribed(line_of(
                &json!({ "id": id, "result": { "subscribed": true } }),
            ))
        }
        Some(other) => Err(Failure::new(
            ErrorCode::UnknownMethod,
            format!(
                "no method `{other}`; this agent answers {}",
                METHODS.join(", ")
            ),
        )),
        None => Err(Failure::bad_request("a request needs a \"method\" string")),
    };
    Reply::Line(response_line(&id, result))
}

async fn status(agent: &Arc<Agent>) -> Result<Value, Failure> {
    let held = Arc::clone(agent);
    // The sessions' lock may be held through a slow keyring call.
    let sessions = agent
        .control
        .run(move || held.sessions.describe())
        .await
        .ok_or_else(|| Failure::internal("status failed"))?;
    Ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "socket": agent.socket,
        "uptimeSeconds": agent.started.elapsed().as_secs(),
        "methods": METHODS,
        "lockOnRemoval": agent.settings.lock_on_removal,
        "sessions": sessions,
    }))
}

/// `list`: what `certauth list --json` prints (`params.all` as `--all`).
async fn list(agent: &Arc<Agent>, params: &Value) -> Result<Value, Failure> {
    let all = optional_bool(params, "all")?;
    let agent = Arc::clone(agent);
    tokio::task::spawn_blocking(move || {
        let scan = agent.scan();
        let pcsc = crate::reader::status();
        Ok(crate::listing::to_json(
            crate::listing::Source::Agent,
            &pcsc,
            &scan.reports,
            &scan.tokens,
            all,
            scan.now,
        ))
    })
    .await
    .map_err(|e| Failure::internal(format!("the scan failed: {e}")))?
}

/// `forget {url?, username?}`: drops the cached sign-ins (and remembered certificate choices) for
/// the endpoint and username, each if given.
async fn forget(agent: &Arc<Agent>, params: &Value) -> Result<Value, Failure> {
    let endpoint = match params.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(
            reqwest::Url::parse(url)
                .map_err(|e| Failure::bad_request(format!("`url` is not a URL: {e}")))?,
        ),
        Some(_) => return Err(Failure::bad_request("`url` must be a string")),
    };
    let username = match params.get("username") {
        None | Some(Value::Null) => None,
        Some(Value::String(username)) => Some(username.clone()),
        Some(_) => return Err(Failure::bad_request("`username` must be a string")),
    };
    let agent = Arc::clone(agent);
    tokio::task::spawn_blocking(move || {
        let sign_in_url = endpoint
            .as_ref()
            .map(|url| crate::signin::protocol::sign_in_url(url).to_string());
        let dropped = agent
            .sessions
            .forget(sign_in_url.as_deref(), username.as_deref());
        // Choices are remembered per endpoint and user; forgetting one user's would need more
        // than the store offers, so a request naming a user leaves choices alone.
        let choices = match username {
            None => RememberedChoices::forget_saved(endpoint.as_ref().map(endpoint_key).as_deref())
                .map_err(|e| Failure::internal(e.to_string()))?,
            Some(_) => 0,
        };
        let mut result = dropped.to_json();
        result["certificateChoices"] = json!(choices);
        Ok(result)
    })
    .await
    .map_err(|e| Failure::internal(format!("forgetting failed: {e}")))?
}

/// `lock`: every cached sign-in dropped and every held login closed.
async fn lock(agent: &Arc<Agent>) -> Result<Value, Failure> {
    let held = Arc::clone(agent);
    let dropped = agent
        .control
        .run(move || held.sessions.lock())
        .await
        .ok_or_else(|| Failure::internal("locking failed"))?;
    Ok(dropped.to_json())
}

/// A boolean parameter that may be left out (false).
pub fn optional_bool(params: &Value, name: &str) -> Result<bool, Failure> {
    match params.get(name) {
        None => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(Failure::bad_request(format!(
            "`{name}` must be true or false"
        ))),
    }
}
