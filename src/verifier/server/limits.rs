//! What keeps a listener serving under load and abuse: the deadline on request bodies, the pause
//! after a failed `accept` (descriptors run out), and warnings that say a flood once instead of
//! once per event. It never decides a sign-in and never reads a request it is not handed.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, Request, Response, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use tokio::time::Sleep;

/// The first pause after a failed `accept`; each further failure doubles it up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two `accept` attempts while they fail.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// While `accept` keeps failing, or connections keep being refused, one reminder this often.
const REMINDER: Duration = Duration::from_secs(60);
/// A run of failed `accept` calls is over once none failed for this long.
const QUIET: Duration = Duration::from_secs(5);
/// Refused connections are reported at most this often per listener.
const REFUSAL_REPORT: Duration = Duration::from_secs(10);

/// The error a request body gives once its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(Duration);

/// A request body that fails once `timeout` has passed since the request's headers arrived, so a
/// client cannot hold a handler (and its connection) by sending a body slowly or not at all.
pub struct DeadlineBody {
    inner: Incoming,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps `service` so that each request's body must arrive within `timeout` of its headers. A
/// request whose body ran late is answered `408 Request Timeout` and its connection closed,
/// whatever the handler made of the failed read.
pub fn body_deadline(
    router: axum::Router,
    timeout: Duration,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
> {
    let service = hyper_util::service::TowerToHyperService::new(router);
    hyper::service::service_fn(move |request: Request<Incoming>| {
        let expired = Arc::new(AtomicBool::new(false));
        let request = request.map(|inner| DeadlineBody {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            expired: expired.clone(),
        });
        let answer = service.call(request);
        async move {
            let response = answer.await?;
            if !expired.load(Ordering::Relaxed) {
                return Ok(response);
            }
            let mut late = Response::new(Body::from(format!(
                "the request body did not arrive within {} s\n",
                timeout.as_secs_f64()
            )));
            *late.status_mut() = StatusCode::REQUEST_TIMEOUT;
            late.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            Ok(late)
        }
    })
}

/// Whether a failed `accept` concerns only the one connection (the peer gave up before it was
/// accepted), so the next `accept` may follow at once.
pub fn only_that_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}

/// A run of failed `accept` calls (EMFILE, ENFILE, ENOBUFS): how long to pause before the next
/// try, and one warning when the run starts, a reminder a minute, and one line once it is over.
///
/// A run ends only after a quiet spell: while descriptors free up one at a time, `accept`
/// succeeds and fails in turn, and that is still one run, not a warning per connection.
#[derive(Debug)]
pub struct AcceptFailures {
    listener: &'static str,
    pause: Duration,
    run: Option<Run>,
    /// Lines logged, for the tests.
    warnings: u64,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    failures: u64,
    started: Instant,
    last_failure: Instant,
    reminded: Instant,
}

impl AcceptFailures {
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            pause: FIRST_PAUSE,
            run: None,
            warnings: 0,
        }
    }

    /// Records a failure; the pause to take before the next `accept`.
    pub fn failed(&mut self, error: &std::io::Error) -> Duration {
        let now = Instant::now();
        match &mut self.run {
            None => {
                self.run = Some(Run {
                    failures: 1,
                    started: now,
                    last_failure: now,
                    reminded: now,
                });
                self.warnings += 1;
                tracing::warn!(
                    listener = self.listener,
                    %error,
                    "cannot accept connections; retrying with pauses of up to {} s, and serving the open ones meanwhile",
                    MAX_PAUSE.as_secs()
                );
            }
            Some(run) => {
                run.failures += 1;
                run.last_failure = now;
                if now.duration_since(run.reminded) >= REMINDER {
                    run.reminded = now;
                    self.warnings += 1;
                    tracing::warn!(
                        listener = self.listener,
                        %error,
                        failures = run.failures,
                        "still cannot accept connections after {} s",
                        now.duration_since(run.started).as_secs()
                    );
                }
            }
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        pause
    }

    /// Records a successful `accept`: the next failure pauses briefly again, and a run of
    /// failures that has been over for a while is reported as over.
    pub fn accepted(&mut self) {
        self.pause = FIRST_PAUSE;
        let Some(run) = self.run else { return };
        if run.last_failure.elapsed() < QUIET {
            return;
        }
        self.run = None;
        self.warnings += 1;
        tracing::warn!(
            listener = self.listener,
            failures = run.failures,
            "accepting connections again; accept had failed for {:.1} s",
            run.last_failure.duration_since(run.started).as_secs_f64()
        );
    }
}

/// Connections refused because the listener is full: one warning, then at most one line every
/// few seconds with how many more were refused.
#[derive(Debug)]
pub struct Refusals {
    listener: &'static str,
    limit: usize,
    unreported: u64,
    reported: Option<Instant>,
}

impl Refusals {
    pub fn new(listener: &'static str, limit: usize) -> Self {
        Self {
            listener,
            limit,
            unreported: 0,
            reported: None,
        }
    }

    pub fn refused(&mut self) {
        self.unreported += 1;
        let now = Instant::now();
        if self
            .reported
            .is_some_and(|at| now.duration_since(at) < REFUSAL_REPORT)
        {
            return;
        }
        self.reported = Some(now);
        tracing::warn!(
            listener = self.listener,
            limit = self.limit,
            refused = self.unreported,
            "connection limit reached: refusing new connections until open ones close (--max-connections)"
        );
        self.unreported = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_pauses_grow_to_a_second_and_start_over_after_a_success() {
        let mut failures = AcceptFailures::new("test");
        let error = std::io::Error::from_raw_os_error(24); // EMFILE
        let pauses: Vec<Duration> = (0..10).map(|_| failures.failed(&error)).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(pauses[9], MAX_PAUSE);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        failures.accepted();
        assert_eq!(failures.failed(&error), FIRST_PAUSE);
    }

    #[test]
    fn accepts_that_fail_and_succeed_in_turn_are_one_warning() {
        let mut failures = AcceptFailures::new("test");
        let error = std::io::Error::from_raw_os_error(24);
        for _ in 0..1000 {
            failures.failed(&error);
            failures.accepted();
        }
        assert_eq!(failures.warnings, 1);
        assert_eq!(failures.run.map(|r| r.failures), Some(1000));
    }

    #[test]
    fn a_peer_that_gave_up_is_no_reason_to_pause() {
        assert!(only_that_connection(&std::io::Error::from(
            std::io::ErrorKind::ConnectionAborted
        )));
        assert!(!only_that_connection(&std::io::Error::from_raw_os_error(
            24
        )));
    }
}
