//! Asking for a PIN through a `pinentry` program (GnuPG's Assuan protocol), so the desktop's own
//! PIN dialog (GTK, Qt, curses, tty) does the asking.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use zeroize::Zeroizing;

impl PinentryError {
    /// What the user can change so a pinentry works.
    pub fn remedy(&self) -> Option<crate::remedy::Remedy> {
        matches!(self, Self::CouldNotStart { .. })
            .then_some(crate::remedy::Remedy::GraphicalPinentry)
    }
}

/// A pinentry failure or refusal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinentryError {
    #[error("cannot start {program}: {reason}")]
    Start { program: String, reason: String },
    #[error(
        "pinentry {program} could not start: {line}; set GPG_TTY=$(tty) for a terminal pinentry"
    )]
    CouldNotStart { program: String, line: String },
    #[error("{program} does not speak the pinentry protocol: {line}")]
    Protocol { program: String, line: String },
    #[error("cancelled in {program}")]
    Cancelled { program: String },
    #[error("{program} failed: {reason}")]
    Io { program: String, reason: String },
    #[error("{program} did not answer within {seconds} s, so it was stopped")]
    TimedOut { program: String, seconds: u64 },
}

/// One conversation with a pinentry process.
pub struct Pinentry {
    program: String,
    child: Arc<Mutex<Running>>,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    /// Stops the program at a deadline, when one was set.
    watchdog: Option<Watchdog>,
}

/// The pinentry process, and whether it has been waited for (after which its pid, and the
/// process group it leads, may belong to someone else).
struct Running {
    child: Child,
    reaped: bool,
    /// It leads a process group of its own, which is stopped with it (Unix only).
    #[cfg_attr(not(unix), allow(dead_code, reason = "process groups are Unix's"))]
    own_group: bool,
}

impl Running {
    /// Stops the program, and every process it started when it leads its own group (a shell
    /// script's pinentry would otherwise keep the pipe open). Never after it was waited for.
    fn stop(&mut self) {
        if self.reaped {
            return;
        }
        #[cfg(unix)]
        if self.own_group {
            if let Some(pid) = rustix::process::Pid::from_raw(self.child.id().cast_signed()) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
        if let Err(e) = self.child.kill() {
            tracing::debug!(error = %e, "stopping pinentry");
        }
    }
}

/// Kills a pinentry that is still running at its deadline, so a program that never answers
/// cannot hold its caller for ever: the caller's next read then ends.
struct Watchdog {
    limit: Duration,
    fired: Arc<AtomicBool>,
    /// Dropped (or sent to) when the conversation ends first.
    _cancel: mpsc::Sender<()>,
}

impl Watchdog {
    fn arm(child: &Arc<Mutex<Running>>, limit: Duration) -> Self {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let (child, flag) = (Arc::clone(child), Arc::clone(&fired));
        std::thread::spawn(move || {
            if cancelled.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
                flag.store(true, Ordering::SeqCst);
                if let Ok(mut running) = child.lock() {
                    running.stop();
                }
            }
        });
        Self {
            limit,
            fired,
            _cancel: cancel,
        }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// The longest Assuan line, its line end included (ASSUAN_LINELENGTH is 1000 bytes before it).
const MAX_LINE: usize = 1002;

/// Assuan error code 83886179: operation cancelled (GPG_ERR_CANCELED from the pinentry source).
const CANCELLED: &str = "83886179";

impl Pinentry {
    /// Starts `program` and reads its greeting. The terminal it should use (for curses and tty
    /// pinentries) is taken from `GPG_TTY`, else the terminal on our stdin. A pinentry that
    /// exits or answers ERR before the first question could not start, most often for want of a
    /// terminal: the error says so.
    pub fn start(program: &Path) -> Result<Self, PinentryError> {
        Self::launch(program, None)
    }

    /// As [`Pinentry::start`], and the program is stopped if the whole conversation has not
    /// ended within `limit`: its start, every question and its answers.
    pub fn start_within(program: &Path, limit: Duration) -> Result<Self, PinentryError> {
        Self::launch(program, Some(limit))
    }

    fn launch(program: &Path, limit: Option<Duration>) -> Result<Self, PinentryError> {
        let name = program.display().to_string();
        let mut command = Command::new(program);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // With a deadline, the program gets a process group of its own, so that stopping it stops
        // what it started too. (Not without one: a terminal pinentry must stay in the terminal's
        // foreground group.)
        #[cfg(unix)]
        if limit.is_some() {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| PinentryError::Start {
            program: name.clone(),
            reason: e.to_string(),
        })?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(PinentryError::Start {
                program: name,
                reason: "no pipes".into(),
            });
        };
        let child = Arc::new(Mutex::new(Running {
            child,
            reaped: false,
            own_group: cfg!(unix) && limit.is_some(),
        }));
        let mut pinentry = Self {
            program: name,
            watchdog: limit.map(|limit| Watchdog::arm(&child, limit)),
            child,
            input,
            output: BufReader::new(output),
        };
        pinentry.starting(|p| p.expect_ok())?;
        if let Some(tty) = std::env::var_os("GPG_TTY")
            .filter(|tty| !tty.is_empty())
            .or_else(stdin_tty)
        {
            let option = format!("OPTION ttyname={}", tty.to_string_lossy());
            pinentry.starting(|p| p.command(&option))?;
        }
        if let Ok(term) = std::env::var("TERM") {
            pinentry.starting(|p| p.command(&format!("OPTION ttytype={term}")))?;
        }
        Ok(pinentry)
    }

    /// Runs one start-up step; an ERR answer or an exit then means the pinentry could not start.
    fn starting(
        &mut self,
        step: impl FnOnce(&mut Self) -> Result<(), PinentryError>,
    ) -> Result<(), PinentryError> {
        step(self).map_err(|e| match e {
            PinentryError::Protocol { program, line } if line.starts_with("ERR") => {
                PinentryError::CouldNotStart { program, line }
            }
            PinentryError::Io { program, reason } => PinentryError::CouldNotStart {
                program,
                line: reason,
            },
            other => other,
        })
    }

    /// Asks for a PIN. `error` is shown above the prompt (after a wrong PIN).
    pub fn get_pin(
        &mut self,
        description: &str,
        error: Option<&str>,
    ) -> Result<SecretString, PinentryError> {
        self.command("SETTITLE certauth")?;
        self.command(&format!("SETDESC {}", escape(description)))?;
        self.command("SETPROMPT PIN:")?;
        if let Some(error) = error {
            self.command(&format!("SETERROR {}", escape(error)))?;
        }
        self.send("GETPIN")?;
        let mut pin = Zeroizing::new(String::new());
        loop {
            let line = Zeroizing::new(self.read_line()?);
            if let Some(data) = line.strip_prefix("D ") {
                pin = unescape(data);
            } else if line.starts_with("OK") {
                return Ok(SecretString::from(pin.as_str()));
            } else {
                return Err(self.refusal(&line));
            }
        }
    }

    /// Gives up a question after `seconds` unanswered (the pinentry then answers as cancelled).
    pub fn set_timeout(&mut self, seconds: u32) -> Result<(), PinentryError> {
        self.command(&format!("SETTIMEOUT {seconds}"))
    }

    /// Asks a yes/no question; `Ok(false)` when the user declines.
    pub fn confirm(&mut self, description: &str) -> Result<bool, PinentryError> {
        self.command(&format!("SETDESC {}", escape(description)))?;
        self.send("CONFIRM")?;
        let line = self.read_line()?;
        if line.starts_with("OK") {
            Ok(true)
        } else if line.starts_with("ERR") {
            Ok(false)
        } else {
            Err(self.refusal(&line))
        }
    }

    fn command(&mut self, command: &str) -> Result<(), PinentryError> {
        self.send(command)?;
        self.expect_ok()
    }

    fn send(&mut self, line: &str) -> Result<(), PinentryError> {
        writeln!(self.input, "{line}")
            .and_then(|()| self.input.flush())
            .map_err(|e| PinentryError::Io {
                program: self.program.clone(),
                reason: e.to_string(),
            })
    }

    /// The next line that is not a comment or status line.
    fn read_line(&mut self) -> Result<String, PinentryError> {
        loop {
            let mut line = Zeroizing::new(String::new());
            // Assuan lines are at most 1000 bytes; a pinentry sending more (a runaway `D` line)
            // is refused without reading it all.
            let read = (&mut self.output)
                .take(MAX_LINE as u64 + 1)
                .read_line(&mut line)
                .map_err(|e| PinentryError::Io {
                    program: self.program.clone(),
                    reason: e.to_string(),
                })?;
            if read == 0 {
                return Err(match &self.watchdog {
                    Some(watchdog) if watchdog.fired() => PinentryError::TimedOut {
                        program: self.program.clone(),
                        seconds: watchdog.limit.as_secs(),
                    },
                    _ => PinentryError::Io {
                        program: self.program.clone(),
                        reason: "it exited".into(),
                    },
                });
            }
            if read > MAX_LINE {
                return Err(PinentryError::Protocol {
                    program: self.program.clone(),
                    line: format!("a line longer than {MAX_LINE} bytes (not shown)"),
                });
            }
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
            if !(line.starts_with('#') || line.starts_with("S ")) {
                return Ok(line);
            }
        }
    }

    fn expect_ok(&mut self) -> Result<(), PinentryError> {
        let line = self.read_line()?;
        if line.starts_with("OK") {
            Ok(())
        } else {
            Err(self.refusal(&line))
        }
    }

    fn refusal(&self, line: &str) -> PinentryError {
        if line.starts_with("ERR") && line.split_whitespace().nth(1) == Some(CANCELLED) {
            PinentryError::Cancelled {
                program: self.program.clone(),
            }
        } else {
            PinentryError::Protocol {
                program: self.program.clone(),
                line: line.to_owned(),
            }
        }
    }
}

/// The terminal on our stdin (`/proc/self/fd/0`), when stdin is one.
fn stdin_tty() -> Option<std::ffi::OsString> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    std::fs::read_link("/proc/self/fd/0")
        .ok()
        .map(std::path::PathBuf::into_os_string)
}

impl Drop for Pinentry {
    fn drop(&mut self) {
        let _ = self.send("BYE");
        let Ok(mut running) = self.child.lock() else {
            return;
        };
        // A pinentry refused mid-answer (a runaway line) may be blocked writing to a pipe nobody
        // reads: give it a moment to leave after BYE, then stop it.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let exited = loop {
            match running.child.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => break false,
                Err(e) => {
                    tracing::debug!(error = %e, "waiting for pinentry");
                    break true;
                }
            }
        };
        if exited {
            running.reaped = true;
            return;
        }
        running.stop();
        if let Err(e) = running.child.wait() {
            tracing::debug!(error = %e, "waiting for pinentry");
        }
        running.reaped = true;
    }
}

/// Assuan percent-escaping for a line argument.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes Assuan percent-escaping, into a buffer that is wiped when dropped.
fn unescape(data: &str) -> Zeroizing<String> {
    let bytes = data.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = data
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Zeroizing::new(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        assert_eq!(escape("50% off\nnow"), "50%25 off%0Anow");
        assert_eq!(unescape("12%2534").as_str(), "12%34");
        assert_eq!(unescape("plain").as_str(), "plain");
        assert_eq!(unescape("bad%zz").as_str(), "bad%zz");
    }
}
