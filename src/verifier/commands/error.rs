//! What can stop a verifier command, with the facts a message needs: paths, addresses, names.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::fixtures::error::FixtureError;
use crate::fixtures::spec::SpecError;
use crate::pki::crl::CrlError;
use crate::verifier::graph_files::GraphFileError;
use crate::verifier::server::tls::IdentityError;
use crate::verifier::server::ServeError;
use crate::verifier::store::StoreError;
use crate::verifier::tenant_files::TenantFileError;
use crate::verifier::trust::TrustStoreError;

use super::DATABASE;

/// A verifier command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen for stop signals")]
    StopSignals(#[source] std::io::Error),
    #[error("cannot listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("`{role}` is not a role: use globalAdministrator, authenticationPolicyAdministrator or reader")]
    UnknownRole { role: String },
    #[error("the state directory {} does not exist", dir.display())]
    NoStateDirectory { dir: PathBuf },
    #[error("{} holds no verifier state ({DATABASE} is missing)", dir.display())]
    NoVerifierState { dir: PathBuf },
    #[error("{}: not valid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("{}: holds a PEM `{found}` block where `{expected}` was expected", path.display())]
    PemLabel {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// A CRL file that does not parse, or whose signature the given CA did not make.
    #[error("{}", file.display())]
    Crl {
        file: PathBuf,
        #[source]
        source: CrlError,
    },
    #[error("{}: issued by `{issuer}`, which is not among the trusted CAs", file.display())]
    UnknownCrlIssuer { file: PathBuf, issuer: String },
    #[error(transparent)]
    GraphFile(#[from] GraphFileError),
    #[error(transparent)]
    TrustStore(#[from] TrustStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    TenantFiles(#[from] TenantFileError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    // Not transparent: the I/O error stays in the chain, where a closed stdout is recognised.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

impl CommandError {
    /// A failed read of `path`.
    pub fn read(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        |source| Self::Read {
            path: path.to_owned(),
            source,
        }
    }

    /// A failed creation of `path`.
    pub fn create(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        |source| Self::Create {
            path: path.to_owned(),
            source,
        }
    }
}
