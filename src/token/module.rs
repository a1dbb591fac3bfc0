//! Loading one PKCS#11 module in isolation: a module that is missing, is not a PKCS#11 library or
//! fails C_Initialize is reported with its path and the reason, and never stops the others.

use std::path::PathBuf;

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

/// Loads and initialises one module.
pub fn load(candidate: &ModuleCandidate) -> Result<LoadedModule, ModuleError> {
    let path = candidate.path.clone();
    if !path.exists() {
        return Err(ModuleError::Missing { path });
    }
    let pkcs11 = Pkcs11::new(&path).map_err(|e| ModuleError::NotPkcs11 {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone in this process (p11-kit, an earlier load) initialised it already: fine.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(ModuleError::Initialize {
                path,
                reason: e.to_string(),
            })
        }
    }
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
