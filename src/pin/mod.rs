//! Where a PIN comes from: a terminal prompt without echo, a `pinentry` program, or for headless
//! use `env:VAR` and `file:PATH` (never the command line). The PIN is held in a [`SecretString`]
//! from the moment it is read. The token's login ([`crate::token::login`]) decides when a PIN
//! may be sent at all. A PIN file someone else owns or may write is refused, and one others may
//! read is used with a warning ([`crate::file_safety`]).

pub mod pinentry;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::file_safety::{self, Exposed, Holds, OpenError, UnsafeFile};
use crate::printable::{printable, printable_message};
use crate::remedy::Remedy;
use crate::token::login::{PinPrompt, PinPromptError, PinRequest};
use crate::token::pin_length::MAX_PIN_BYTES;

/// A PIN source, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `env:VAR`
    Environment(String),
    /// `file:PATH`; the first line is the PIN.
    File(PathBuf),
    /// `prompt`: ask on the terminal, without echo.
    Terminal,
    /// `pinentry` or `pinentry:PROGRAM`.
    Pinentry(PathBuf),
}

/// Why no PIN could be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinSourceError {
    #[error(
        "`{0}` is not a PIN source; use prompt, pinentry[:PROGRAM], env:VARIABLE or file:PATH"
    )]
    Syntax(String),
    #[error("the environment variable {0} holding the PIN is not set")]
    MissingVariable(String),
    #[error("cannot read the PIN file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the first line of the PIN file {path} is longer than {max} bytes; it cannot be a PIN, so it was not read further")]
    FileLineTooLong { path: PathBuf, max: usize },
    /// The PIN file is owned or writable by someone else.
    #[error(transparent)]
    Unsafe(#[from] UnsafeFile),
    #[error("the PIN from {0} is empty")]
    Empty(String),
    #[error("{0} asks on a terminal, and there is none")]
    NoTerminal(String),
}

impl std::str::FromStr for PinSource {
    type Err = PinSourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(Self::Environment(var.to_owned())),
            Some(("file", path)) if !path.is_empty() => Ok(Self::File(PathBuf::from(path))),
            Some(("pinentry", program)) if !program.is_empty() => {
                Ok(Self::Pinentry(PathBuf::from(program)))
            }
            None if text == "pinentry" => Ok(Self::Pinentry(PathBuf::from("pinentry"))),
            None if text == "prompt" => Ok(Self::Terminal),
            _ => Err(PinSourceError::Syntax(text.to_owned())),
        }
    }
}

impl PinSource {
    /// The default: the terminal when there is one.
    pub fn default_for_this_process() -> Option<Self> {
        std::io::stdin().is_terminal().then_some(Self::Terminal)
    }

    /// Whether a person is asked (so a second attempt may bring a different PIN).
    pub fn is_interactive(&self) -> bool {
        matches!(self, Self::Terminal | Self::Pinentry(_))
    }

    /// Reads a PIN from a headless source (`env:`, `file:`).
    pub fn read(&self) -> Result<SecretString, PinSourceError> {
        let (pin, named) = match self {
            Self::Environment(var) => {
                let value =
                    std::env::var(var).map_err(|_| PinSourceError::MissingVariable(var.clone()))?;
                (Zeroizing::new(value), format!("${var}"))
            }
            Self::File(path) => (read_first_line(path)?, path.display().to_string()),
            Self::Terminal => return Err(PinSourceError::NoTerminal("prompt".into())),
            Self::Pinentry(program) => {
                return Err(PinSourceError::NoTerminal(program.display().to_string()))
            }
        };
        if pin.is_empty() {
            return Err(PinSourceError::Empty(named));
        }
        Ok(SecretString::from(pin.as_str()))
    }
}

/// Reads the first line of a PIN file, and never more than [`MAX_PIN_BYTES`] and a line end, so
/// `file:/dev/zero` or a wrong path to a large file is refused at once instead of read whole.
fn read_first_line(path: &std::path::Path) -> Result<Zeroizing<String>, PinSourceError> {
    use std::io::Read;

    let file_error = |reason: String| PinSourceError::File {
        path: path.to_owned(),
        reason,
    };
    let opened = match file_safety::open(path, Holds::Secret) {
        Ok(opened) => opened,
        Err(OpenError::Io(e)) => return Err(file_error(e.to_string())),
        Err(OpenError::Unsafe(refused)) => return Err(refused.into()),
    };
    if let Some(exposed) = &opened.exposed {
        warn_once(exposed);
    }
    let file = opened.file;
    // A fixed buffer, never reallocated, so no copy of the PIN is left behind unwiped.
    let mut buf = Zeroizing::new([0u8; MAX_PIN_BYTES + 2]);
    let mut len = 0;
    let mut limited = file.take(buf.len() as u64);
    while len < buf.len() {
        match limited.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(file_error(e.to_string())),
        }
        if buf[..len].contains(&b'\n') {
            break;
        }
    }
    let read = &buf[..len];
    let line = match read.iter().position(|&b| b == b'\n') {
        Some(end) => &read[..end],
        None => read,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_PIN_BYTES {
        return Err(PinSourceError::FileLineTooLong {
            path: path.to_owned(),
            max: MAX_PIN_BYTES,
        });
    }
    let text = std::str::from_utf8(line)
        .map_err(|_| file_error("its first line is not UTF-8 text".into()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Says on stderr, once per file and process, that a PIN file others may read should not be.
fn warn_once(exposed: &Exposed) {
    static WARNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !warned.contains(&exposed.path) {
        warned.push(exposed.path.clone());
        eprintln!("Warning: the PIN file {exposed}.");
    }
}

/// Asks for PINs from one [`PinSource`], and tells the user about PIN state on stderr.
pub struct PinAsker {
    source: PinSource,
}

impl PinAsker {
    pub fn new(source: PinSource) -> Self {
        Self { source }
    }

    fn ask_terminal(&self, request: &PinRequest<'_>) -> Result<SecretString, PinPromptError> {
        if !std::io::stdin().is_terminal() {
            return Err(PinPromptError {
                message: "there is no terminal to ask for it on".into(),
                remedy: Some(Remedy::PinSource),
            });
        }
        if let Some(warning) = request.warning {
            eprintln!("Warning: {warning}.");
        }
        let typed = Zeroizing::new(
            rpassword::prompt_password(terminal_prompt(request))
                .map_err(|e| PinPromptError::new(e.to_string()))?,
        );
        Ok(SecretString::from(typed.as_str()))
    }

    fn ask_pinentry(
        &self,
        program: &std::path::Path,
        request: &PinRequest<'_>,
    ) -> Result<SecretString, PinPromptError> {
        let failed = |e: pinentry::PinentryError| PinPromptError {
            message: e.to_string(),
            remedy: e.remedy(),
        };
        let mut pinentry = pinentry::Pinentry::start(program).map_err(failed)?;
        let error = match (request.attempt, request.warning) {
            (1, warning) => warning.map(str::to_owned),
            (_, Some(warning)) => Some(format!("Wrong PIN. {warning}")),
            (_, None) => Some("Wrong PIN".to_owned()),
        };
        pinentry
            .get_pin(&pinentry_description(request), error.as_deref())
            .map_err(failed)
    }
}

impl PinAsker {
    /// Asks a person `question` and then `button`: on the terminal, where `word` must be typed,
    /// or through pinentry. `false` when no person can answer.
    fn ask_yes(&self, question: &str, button: &str, word: &str) -> bool {
        match &self.source {
            PinSource::Terminal => {
                eprint!("{question} {button} Type {word}: ");
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == word
            }
            PinSource::Pinentry(program) => pinentry::Pinentry::start(program)
                .and_then(|mut p| p.confirm(&format!("{question}\n{button}")))
                .unwrap_or(false),
            _ => false,
        }
    }
}

// The token label and the certificate's name come from the token: shown through `printable`, so
// a label holding escape sequences cannot redraw the prompt to name another token.

/// The terminal's PIN prompt.
fn terminal_prompt(request: &PinRequest<'_>) -> String {
    format!(
        "PIN for token `{}` (to use {}): ",
        printable(request.token),
        printable(request.certificate)
    )
}

/// The text a pinentry shows above the PIN field.
fn pinentry_description(request: &PinRequest<'_>) -> String {
    format!(
        "Enter the PIN of token \"{}\" to sign in with\n{}",
        printable(request.token),
        printable(request.certificate)
    )
}

/// The final-try question, for the terminal and for a pinentry.
fn final_try_question(token: &str) -> String {
    format!(
        "The PIN of `{}` is on its FINAL TRY: a wrong PIN locks the token.",
        printable(token)
    )
}

impl PinPrompt for PinAsker {
    fn ask(&mut self, request: &PinRequest<'_>) -> Result<Option<SecretString>, PinPromptError> {
        let result = match &self.source {
            PinSource::Terminal => self.ask_terminal(request),
            PinSource::Pinentry(program) => self.ask_pinentry(program, request),
            headless => headless
                .read()
                .map_err(|e| PinPromptError::new(e.to_string())),
        };
        result.map(Some)
    }

    fn can_retry(&self) -> bool {
        self.source.is_interactive()
    }

    fn confirm_final_try(&mut self, token: &str) -> bool {
        self.ask_yes(&final_try_question(token), "Try anyway?", "YES")
    }

    fn confirm_sign_in(&mut self, question: &str) -> bool {
        self.ask_yes(&printable_message(question).to_string(), "Allow it?", "yes")
    }

    fn notice(&mut self, message: &str) {
        eprintln!("{}", printable_message(message));
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!("env:PIN".parse(), Ok(PinSource::Environment("PIN".into())));
        assert_eq!(
            "file:/run/pin".parse(),
            Ok(PinSource::File("/run/pin".into()))
        );
        assert_eq!("prompt".parse(), Ok(PinSource::Terminal));
        assert_eq!(
            "pinentry".parse(),
            Ok(PinSource::Pinentry("pinentry".into()))
        );
        assert_eq!(
            "pinentry:/usr/bin/pinentry-tty".parse(),
            Ok(PinSource::Pinentry("/usr/bin/pinentry-tty".into()))
        );
        assert_eq!(
            "123456".parse::<PinSource>(),
            Err(PinSourceError::Syntax("123456".into()))
        );
    }

    #[test]
    fn prompts_show_a_hostile_label_escaped() {
        let request = PinRequest {
            token: "Evil\x1b[2J\x1b]0;Bank\x07\u{202e}kcab",
            certificate: "Eve \x1b[1A<eve@example.com>",
            warning: None,
            attempt: 1,
        };
        let texts = [
            terminal_prompt(&request),
            pinentry_description(&request),
            final_try_question(request.token),
        ];
        for text in &texts {
            assert!(
                !text.contains('\x1b') && !text.contains('\u{202e}'),
                "{text:?}"
            );
        }
        assert_eq!(
            texts[0],
            "PIN for token `Evil\\x1b[2J\\x1b]0;Bank\\x07\\u{202e}kcab` (to use Eve \\x1b[1A<eve@example.com>): "
        );
        assert_eq!(
            texts[1],
            "Enter the PIN of token \"Evil\\x1b[2J\\x1b]0;Bank\\x07\\u{202e}kcab\" to sign in with\nEve \\x1b[1A<eve@example.com>"
        );
        let ordinary = PinRequest {
            token: "Carte de Zoë",
            certificate: "山田太郎",
            warning: None,
            attempt: 1,
        };
        assert_eq!(
            terminal_prompt(&ordinary),
            "PIN for token `Carte de Zoë` (to use 山田太郎): "
        );
    }

    #[test]
    fn reads_the_first_line_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "2468\nignored\n").unwrap();
        let pin = PinSource::File(path).read().unwrap();
        assert_eq!(pin.expose_secret(), "2468");
    }

    #[cfg(unix)]
    #[test]
    fn a_pin_file_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "2468\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622)).unwrap();
        let refused = PinSource::File(path.clone()).read().unwrap_err();
        assert!(matches!(refused, PinSourceError::Unsafe(_)), "{refused}");
        assert!(
            refused
                .to_string()
                .ends_with(&format!("run `chmod 600 {}`", path.display())),
            "{refused}"
        );
    }

    #[test]
    fn a_pin_file_is_read_one_bounded_line_at_most() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1357\r\n").unwrap();
        assert_eq!(
            PinSource::File(path.clone())
                .read()
                .unwrap()
                .expose_secret(),
            "1357"
        );
        let longest = "7".repeat(MAX_PIN_BYTES);
        std::fs::write(&path, format!("{longest}\r\n")).unwrap();
        assert_eq!(
            PinSource::File(path.clone())
                .read()
                .unwrap()
                .expose_secret(),
            longest
        );
        std::fs::write(&path, "7".repeat(MAX_PIN_BYTES + 1)).unwrap();
        assert_eq!(
            PinSource::File(path.clone()).read().unwrap_err(),
            PinSourceError::FileLineTooLong {
                path: path.clone(),
                max: MAX_PIN_BYTES
            }
        );
        let zero = std::path::PathBuf::from("/dev/zero");
        assert_eq!(
            PinSource::File(zero.clone()).read().unwrap_err(),
            PinSourceError::FileLineTooLong {
                path: zero,
                max: MAX_PIN_BYTES
            }
        );
    }
}
