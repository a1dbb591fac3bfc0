//! The `certauth-verifier` commands as library calls: each takes an options struct that the binary
//! fills from its arguments, writes what a person reads to a writer it is given, and fails with a
//! [`CommandError`] that carries facts. Advice (which flag to change) is the binary's.

pub mod api_key;
pub mod crl;
pub mod duration;
pub mod error;
pub mod eval;
pub mod serve;
pub mod tenant;

pub use error::CommandError;

/// The verifier's state inside a state directory.
pub const DATABASE: &str = "verifier.db";

/// A multi-threaded runtime for a command that runs async code.
fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, CommandError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder.enable_all().build().map_err(CommandError::Runtime)
}
