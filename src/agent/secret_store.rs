//! Where the agent keeps its cached sign-ins between runs: the OS keyring (the Secret Service on
//! Linux, Credential Manager on Windows, the Keychain on macOS), or, when there is none, nowhere but
//! the agent's memory. Never a plain file.

use std::time::Duration;

/// What went wrong with a store, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// One secret, read and written whole.
pub trait SecretStore: Send {
    /// `keyring` or `memory`.
    fn kind(&self) -> &'static str;
    fn load(&self) -> Result<Option<String>, StoreError>;
    fn save(&self, text: &str) -> Result<(), StoreError>;
    fn clear(&self) -> Result<(), StoreError>;
}

/// Keeps nothing: the cache itself is the only copy, gone when the agent stops.
pub struct MemoryOnly;

impl SecretStore for MemoryOnly {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn load(&self) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn save(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn clear(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The keyring service name the agent's secret is filed under.
pub const KEYRING_SERVICE: &str = "certauth-agent";
/// The keyring account (user) name of the one secret.
pub const KEYRING_ACCOUNT: &str = "cached-sign-ins";

/// How long a keyring call may take: a Secret Service that waits for an unlock prompt no one
/// can answer must not hang the agent.
const KEYRING_DEADLINE: Duration = Duration::from_secs(10);

/// Opens the OS keyring, checking that it answers. The error says why it cannot be used.
pub fn open_keyring() -> Result<Box<dyn SecretStore>, StoreError> {
    keyring_impl::Keyring::open().map(|k| Box::new(k) as Box<dyn SecretStore>)
}

/// A keyring call, run on the keyring thread.
type Job = Box<dyn FnOnce() + Send>;

/// The one thread that talks to the keyring, taking calls in the order they were made (a write
/// that outlived its deadline can never land after a later delete), each waited for at most
/// [`KEYRING_DEADLINE`].
#[cfg_attr(
    not(any(target_os = "linux", windows, target_os = "macos")),
    allow(dead_code, reason = "no keyring on this platform")
)]
struct KeyringThread {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

#[cfg_attr(
    not(any(target_os = "linux", windows, target_os = "macos")),
    allow(dead_code, reason = "no keyring on this platform")
)]
impl KeyringThread {
    fn start() -> Result<Self, StoreError> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })
            .map_err(|e| StoreError(format!("cannot start the keyring thread: {e}")))?;
        Ok(Self {
            jobs: std::sync::Mutex::new(jobs),
        })
    }

    fn call<T: Send + 'static>(
        &self,
        what: &str,
        call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = sender.send(call());
        });
        self.jobs
            .lock()
            .map_err(|_| StoreError("the keyring thread failed".into()))?
            .send(job)
            .map_err(|_| StoreError("the keyring thread has stopped".into()))?;
        receiver.recv_timeout(KEYRING_DEADLINE).unwrap_or_else(|_| {
            Err(StoreError(format!(
                "the keyring did not answer {what} within {} s (is it locked, waiting for a prompt?)",
                KEYRING_DEADLINE.as_secs()
            )))
        })
    }
}

#[cfg(any(target_os = "linux", windows, target_os = "macos"))]
mod keyring_impl {
    use super::{KeyringThread, SecretStore, StoreError, KEYRING_ACCOUNT, KEYRING_SERVICE};

    pub struct Keyring {
        thread: KeyringThread,
    }

    fn entry() -> Result<keyring::Entry, StoreError> {
        keyring::Entry::new(KEYRING_SERVICE, KEYRING_ACCOUNT)
            .map_err(|e| StoreError(format!("the keyring refused the entry: {e}")))
    }

    fn load() -> Result<Option<String>, StoreError> {
        match entry()?.get_password() {
            Ok(text) => Ok(Some(text)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(StoreError(e.to_string())),
        }
    }

    impl Keyring {
        /// A keyring that answered a read.
        pub fn open() -> Result<Self, StoreError> {
            let thread = KeyringThread::start()?;
            thread.call("a first read", load)?;
            Ok(Self { thread })
        }
    }

    impl SecretStore for Keyring {
        fn kind(&self) -> &'static str {
            "keyring"
        }

        fn load(&self) -> Result<Option<String>, StoreError> {
            self.thread.call("a read", load)
        }

        fn save(&self, text: &str) -> Result<(), StoreError> {
            let text = zeroize::Zeroizing::new(text.to_owned());
            self.thread.call("a write", move || {
                entry()?
                    .set_password(&text)
                    .map_err(|e| StoreError(e.to_string()))
            })
        }

        fn clear(&self) -> Result<(), StoreError> {
            self.thread
                .call("a delete", || match entry()?.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                    Err(e) => Err(StoreError(e.to_string())),
                })
        }
    }
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
mod keyring_impl {
    use super::StoreError;

    pub struct Keyring;

    impl Keyring {
        pub fn open() -> Result<super::MemoryOnly, StoreError> {
            Err(StoreError(
                "certauth has no keyring support on this platform".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_calls_run_in_order_and_a_slow_one_times_out_without_reordering() {
        let thread = KeyringThread::start().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let first = std::sync::Arc::clone(&log);
        let second = std::sync::Arc::clone(&log);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                thread
                    .call("a write", move || {
                        std::thread::sleep(Duration::from_millis(200));
                        first.lock().unwrap().push("write");
                        Ok(())
                    })
                    .unwrap();
            });
            std::thread::sleep(Duration::from_millis(50));
            thread
                .call("a delete", move || {
                    second.lock().unwrap().push("delete");
                    Ok(())
                })
                .unwrap();
        });
        assert_eq!(*log.lock().unwrap(), ["write", "delete"]);
    }
}
