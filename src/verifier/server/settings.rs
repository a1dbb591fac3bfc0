//! The verifier's operating limits: connections, timeouts, CRL fetching and sign-in log retention.
//! Each has a documented default (README, "The verifier as a service") and a `serve` flag, so that
//! tests can set them short and operators can size them.

use std::time::Duration;

use crate::verifier::revocation::source::FetchLimits;

/// Limits and retention for one `serve` run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Open connections each listener admits; one more is refused with a clear close.
    pub max_connections: usize,
    /// How long a client may take to send a request body once its headers arrived.
    pub body_timeout: Duration,
    /// CRL download limits (size and time).
    pub crl_fetch: FetchLimits,
    /// How long a failed CRL download is remembered, so waiting sign-ins fail at once.
    pub crl_failure_memory: Duration,
    /// Sign-in log rows older than this are deleted.
    pub log_retention: Duration,
    /// The sign-in log keeps at most this many rows, the newest.
    pub log_max_rows: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            body_timeout: Duration::from_secs(30),
            crl_fetch: FetchLimits::default(),
            crl_failure_memory: Duration::from_secs(30),
            log_retention: Duration::from_secs(30 * 24 * 3600),
            log_max_rows: 1_000_000,
        }
    }
}
