//! Reads a child's output line by line on a thread, so a test can wait for a line with a deadline
//! and know when it arrived.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct Lines {
    receiver: Receiver<(Instant, String)>,
    /// Everything seen so far, for failure messages.
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(output: impl Read + Send + 'static) -> Self {
        let (sender, receiver) = channel();
        std::thread::spawn(move || {
            // Keep draining after the receiver is gone, so the child never meets a closed pipe.
            for line in BufReader::new(output).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send((Instant::now(), line));
            }
        });
        Self {
            receiver,
            seen: Vec::new(),
        }
    }

    /// The first line `wanted` accepts, with when it was read; panics after `timeout`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> (Instant, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok((at, line)) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return (at, line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "no {what} within {timeout:?}; saw:\n{}",
                        self.seen.join("\n")
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("output ended before {what}; saw:\n{}", self.seen.join("\n"))
                }
            }
        }
    }
}
