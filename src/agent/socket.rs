//! Where the agent listens: the socket systemd passed it (socket activation), or one it binds
//! itself in a directory only its user can enter, mode 0600.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use super::client::own_uid;

/// Why the agent cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// No socket was named and `XDG_RUNTIME_DIR` is not set.
    #[error("XDG_RUNTIME_DIR is not set, so there is no private place for the agent's socket")]
    NoRuntimeDir,
    /// Something other than a socket is where the socket should be; it was left alone.
    #[error("{} is {what}, not a socket; it was left alone", path.display())]
    NotASocket { path: PathBuf, what: &'static str },
    /// The socket passed by systemd, or the path to bind, is not fit to use.
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// A [`ListenError::Refused`] with a formatted message.
macro_rules! refused {
    ($($arg:tt)*) => {
        ListenError::Refused(format!($($arg)*))
    };
}

/// Names what failed, for an I/O error.
trait What<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, ListenError>;
}

impl<T> What<T> for std::io::Result<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, ListenError> {
        self.map_err(|source| ListenError::Io {
            what: what(),
            source,
        })
    }
}

/// A listening socket and what the agent needs to know of it.
pub struct Listening {
    pub listener: UnixListener,
    pub path: PathBuf,
    /// The uid this agent runs as: the only peer served.
    pub owner: u32,
    /// Whether systemd made the socket (and so removes it).
    pub activated: bool,
}

/// The socket systemd passed (`LISTEN_FDS`), else `socket` bound afresh.
pub fn listen(socket: Option<&Path>) -> Result<Listening, ListenError> {
    if let Some(listening) = activated()? {
        return Ok(listening);
    }
    let path = match socket {
        Some(path) => path.to_owned(),
        None => super::client::default_socket().ok_or(ListenError::NoRuntimeDir)?,
    };
    let listener = bind(&path)?;
    let owner = own_uid().what(|| "cannot tell which user this agent runs as".to_owned())?;
    Ok(Listening {
        listener,
        path,
        owner,
        activated: false,
    })
}

/// The first socket of systemd's socket activation, if this process was given one.
fn activated() -> Result<Option<Listening>, ListenError> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let listener = fds
        .take_unix_listener(0)
        .what(|| {
            "the socket passed by systemd (LISTEN_FDS) is not a Unix stream socket".to_owned()
        })?
        .ok_or_else(|| refused!("the socket passed by systemd (LISTEN_FDS) was already taken"))?;
    listener
        .set_nonblocking(true)
        .what(|| "cannot use the socket passed by systemd".to_owned())?;
    let address = listener
        .local_addr()
        .what(|| "cannot use the socket passed by systemd".to_owned())?;
    let path = address
        .as_pathname()
        .ok_or_else(|| refused!("the socket passed by systemd has no path"))?
        .to_owned();
    let metadata = std::fs::metadata(&path)
        .what(|| format!("cannot inspect the passed socket {}", path.display()))?;
    let owner = own_uid().what(|| "cannot tell which user this agent runs as".to_owned())?;
    if metadata.uid() != owner {
        return Err(refused!(
            "the socket passed by systemd, {}, belongs to uid {}, not to this agent's user (uid {owner})",
            path.display(),
            metadata.uid()
        ));
    }
    // Connecting to a Unix socket takes write permission on it.
    if metadata.mode() & 0o022 != 0 {
        return Err(refused!(
            "the socket passed by systemd, {}, is open to other users (mode {:o}); set SocketMode=0600",
            path.display(),
            metadata.mode() & 0o777
        ));
    }
    Ok(Some(Listening {
        listener: UnixListener::from_std(listener)
            .what(|| "cannot use the socket passed by systemd".to_owned())?,
        path,
        owner,
        activated: true,
    }))
}

/// Clears the way for a new socket at `path`: removes a stale socket (one nobody answers on), and
/// refuses to touch anything else there, be it a live agent's socket, a file, a directory or a
/// symbolic link (`--socket` naming the wrong path must not cost the user a file).
fn remove_stale(path: &Path) -> Result<(), ListenError> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).what(|| format!("cannot inspect {}", path.display())),
    };
    if !metadata.file_type().is_socket() {
        let what = if metadata.is_dir() {
            "a directory"
        } else if metadata.file_type().is_symlink() {
            "a symbolic link"
        } else if metadata.is_file() {
            "a file"
        } else {
            "not a socket"
        };
        return Err(ListenError::NotASocket {
            path: path.to_owned(),
            what,
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(refused!(
            "an agent is already serving {}; stop it first",
            path.display()
        )),
        // Nobody listens: what a crashed agent leaves behind.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .what(|| format!("cannot remove the stale socket {}", path.display())),
        Err(e) => Err(refused!(
            "cannot tell whether an agent serves {} ({e}); it was left alone",
            path.display()
        )),
    }
}

/// Binds the socket with mode 0600 in a directory only its user can enter, replacing a stale
/// socket but never a live agent's.
fn bind(socket: &Path) -> Result<UnixListener, ListenError> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .what(|| format!("cannot create {}", dir.display()))?;
        }
    }
    remove_stale(socket)?;
    let listener =
        UnixListener::bind(socket).what(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .what(|| format!("cannot make {} private", socket.display()))?;
    Ok(listener)
}
