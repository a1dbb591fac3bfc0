//! How both binaries end on an error: one line on stderr that says what happened, and an exit code.

use std::process::ExitCode;

/// Prints `err` for a person and returns the exit code. A closed stdout (`certauth ... | head`) is
/// not an error.
pub fn exit_with(program: &str, err: &anyhow::Error) -> ExitCode {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    // Library errors already carry their causes in their message.
    eprintln!("{program}: error: {err}");
    ExitCode::FAILURE
}
