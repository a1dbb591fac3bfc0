//! Loading one PKCS#11 module in isolation: a module that is missing, is not a PKCS#11 library,
//! fails C_Initialize or does not finish it within a deadline is reported with its path and the
//! reason, and never stops the others.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use serde::Serialize;

use super::discovery::ModuleCandidate;

/// Why a module could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    #[error("{path}: no such file")]
    Missing { path: PathBuf },
    #[error("{path}: not a loadable PKCS#11 library: {reason}")]
    NotPkcs11 { path: PathBuf, reason: String },
    #[error("{path}: C_Initialize failed: {reason}")]
    Initialize { path: PathBuf, reason: String },
    /// Still loading or initialising when the deadline passed; the thread doing it is left
    /// behind (a call into a module cannot be cancelled).
    #[error("{path}: {}", stuck_message(*.after))]
    TimedOut { path: PathBuf, after: Duration },
}

/// Milliseconds to wait for a module to load and initialise, instead of [`DEFAULT_DEADLINE`].
pub const DEADLINE_ENV: &str = "CERTAUTH_MODULE_TIMEOUT_MS";
/// How long a module may take to load and initialise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The deadline `CERTAUTH_MODULE_TIMEOUT_MS` sets, else [`DEFAULT_DEADLINE`] (also when it is
/// not a whole number, which is logged).
pub fn deadline_from_env() -> Duration {
    let Some(value) = std::env::var_os(DEADLINE_ENV) else {
        return DEFAULT_DEADLINE;
    };
    match value.to_str().and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(ms) => Duration::from_millis(ms),
        None => {
            tracing::warn!(
                value = %value.to_string_lossy(),
                "{DEADLINE_ENV} is not a number of milliseconds; waiting the default {} s",
                DEFAULT_DEADLINE.as_secs()
            );
            DEFAULT_DEADLINE
        }
    }
}

/// What a module that missed its deadline is reported as.
pub fn stuck_message(after: Duration) -> String {
    format!(
        "did not finish initialising within {} s; it is skipped",
        after.as_secs_f64()
    )
}

/// What the module says about itself (C_GetInfo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LibraryInfo {
    pub manufacturer: String,
    pub description: String,
    pub version: String,
}

/// A loaded, initialised module.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    pub candidate: ModuleCandidate,
    pub pkcs11: Pkcs11,
    pub info: Option<LibraryInfo>,
}

/// Loads and initialises one module on a thread of its own, waiting at most `deadline` for it: a
/// module can block in C_Initialize for ever (a config file that is a FIFO, a dead daemon). One
/// that misses the deadline is never touched again: should it ever finish, it stays loaded and
/// unused, as unloading a library that may have started threads of its own is not safe.
pub fn load_within(
    candidate: &ModuleCandidate,
    deadline: Duration,
) -> Result<LoadedModule, ModuleError> {
    // No buffer: a result is either taken by the waiter or handed back to the loading thread.
    let (finished, outcome) = mpsc::sync_channel(0);
    let loading = candidate.clone();
    let spawned = std::thread::Builder::new()
        .name("pkcs11-load".into())
        .spawn(move || {
            if let Err(mpsc::SendError(Ok(module))) = finished.send(load(&loading)) {
                tracing::warn!(module = %loading.path.display(), "a PKCS#11 module finished initialising after its deadline; it stays unused");
                std::mem::forget(module);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to load a PKCS#11 module; loading it without a deadline");
        return load(candidate);
    }
    match outcome.recv_timeout(deadline) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ModuleError::TimedOut {
            path: candidate.path.clone(),
            after: deadline,
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ModuleError::Initialize {
            path: candidate.path.clone(),
            reason: "loading it crashed (the loading thread panicked)".to_owned(),
        }),
    }
}

/// Loads and initialises one module, waiting as long as it takes (so only ever on a thread
/// [`load_within`] can leave behind).
fn load(candidate: &ModuleCandidate) -> Result<LoadedModule, ModuleError> {
    let pkcs11 = initialise(&candidate.path)?;
    let info = pkcs11.get_library_info().ok().map(|info| LibraryInfo {
        manufacturer: info.manufacturer_id().to_owned(),
        description: info.library_description().to_owned(),
        version: info.library_version().to_string(),
    });
    Ok(LoadedModule {
        candidate: candidate.clone(),
        pkcs11,
        info,
    })
}

/// Loads the module at `path` and calls C_Initialize, in this thread and without a deadline.
pub(crate) fn initialise(path: &Path) -> Result<Pkcs11, ModuleError> {
    let path = path.to_owned();
    if !path.exists() {
        return Err(ModuleError::Missing { path });
    }
    #[cfg(unix)]
    if let Some(dir) = super::host::enabled() {
        return super::host::host(&path, dir).map_err(|e| ModuleError::Initialize {
            path,
            reason: format!("cannot host it out of process: {e}"),
        });
    }
    let pkcs11 = Pkcs11::new(&path).map_err(|e| ModuleError::NotPkcs11 {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone in this process (p11-kit, an earlier load) initialised it already: fine.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(pkcs11),
        Err(e) => Err(ModuleError::Initialize {
            path,
            reason: e.to_string(),
        }),
    }
}

impl ModuleError {
    /// Why the module could not be used, without its path.
    pub fn reason(&self) -> String {
        match self {
            Self::Missing { .. } => "no such file".to_owned(),
            Self::NotPkcs11 { reason, .. } | Self::Initialize { reason, .. } => reason.clone(),
            Self::TimedOut { after, .. } => stuck_message(*after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::discovery::ModuleOrigin;

    #[test]
    fn a_missed_deadline_reads_in_seconds() {
        assert_eq!(
            stuck_message(DEFAULT_DEADLINE),
            "did not finish initialising within 10 s; it is skipped"
        );
        assert_eq!(
            stuck_message(Duration::from_millis(1500)),
            "did not finish initialising within 1.5 s; it is skipped"
        );
    }

    #[test]
    fn a_module_that_fails_at_once_is_reported_as_it_failed() {
        let path = PathBuf::from("/nonexistent/libnothing-pkcs11.so");
        let candidate = ModuleCandidate {
            path: path.clone(),
            origin: ModuleOrigin::CommandLine,
            critical: false,
        };
        assert_eq!(
            load_within(&candidate, DEFAULT_DEADLINE).err(),
            Some(ModuleError::Missing { path })
        );
    }
}
