//! How both binaries end on an error: one line on stderr that says what happened, and an exit code.
//! The message can quote a token label, a certificate name or a server's words, so it is printed
//! through `printable_message`.

use std::process::ExitCode;

use certauth::printable::printable_message;

/// Prints `err` for a person and returns the exit code. A closed stdout (`certauth ... | head`) is
/// not an error.
pub fn exit_with(program: &str, err: &anyhow::Error) -> ExitCode {
    let broken_pipe = err.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| cause.downcast_ref::<serde_json::Error>()?.io_error_kind());
        kind == Some(std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("{program}: error: {}", printable_message(&describe(err)));
    ExitCode::FAILURE
}

/// The error and its causes on one line. Library errors often quote their cause already; a cause
/// is added only when the text so far does not already say it.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
