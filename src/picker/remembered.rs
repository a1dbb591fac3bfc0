//! The certificate a user chose for an endpoint and username, remembered in the config directory
//! (`remembered-certificates.json`) so the next sign-in needs no choice. A file or directory
//! someone else could have written is neither read nor written ([`crate::file_safety`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::file_safety::{self, Holds, OpenError, UnsafeFile};

const FILE_NAME: &str = "remembered-certificates.json";

/// What is remembered of a choice: enough to find the certificate again, nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RememberedCertificate {
    pub sha256: String,
    pub uri: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RememberedError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("no config directory is known for this user (is HOME set?)")]
    NoConfigDir,
    /// The file, or the directory it is saved in, is owned or writable by someone else.
    #[error(transparent)]
    Unsafe(#[from] UnsafeFile),
}

/// The remembered choices, by endpoint then lowercase username.
#[derive(Debug, Clone, Default)]
pub struct RememberedChoices {
    path: PathBuf,
    entries: BTreeMap<String, BTreeMap<String, RememberedCertificate>>,
}

impl RememberedChoices {
    /// The file in the user's config directory.
    pub fn default_path() -> Result<PathBuf, RememberedError> {
        directories::ProjectDirs::from("", "", "certauth")
            .map(|dirs| dirs.config_dir().join(FILE_NAME))
            .ok_or(RememberedError::NoConfigDir)
    }

    /// Loads `path`; a missing file is an empty store, and one someone else could have written is
    /// refused. A file that does not parse (a crash, an edit gone wrong) must not stop the sign-in
    /// or the `forget` meant to reset it: it is moved aside to `<file>.corrupt`, said once, and the
    /// store starts empty.
    pub fn load(path: &Path) -> Result<Self, RememberedError> {
        let entries = match file_safety::read(path, Holds::Settings) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(entries) => entries,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    let kept = std::fs::rename(path, &aside).is_ok();
                    tracing::warn!(
                        path = %path.display(),
                        error = %e,
                        "the remembered certificate choices do not read back and start afresh{}",
                        if kept { format!(" (the old file is {})", aside.display()) } else { String::new() }
                    );
                    BTreeMap::new()
                }
            },
            Err(e) if e.is_not_found() => BTreeMap::new(),
            Err(OpenError::Io(e)) => {
                return Err(RememberedError::Read {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })
            }
            Err(OpenError::Unsafe(refused)) => return Err(refused.into()),
        };
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    pub fn get(&self, endpoint: &str, username: &str) -> Option<&RememberedCertificate> {
        self.entries.get(endpoint)?.get(&username.to_lowercase())
    }

    pub fn set(&mut self, endpoint: &str, username: &str, choice: RememberedCertificate) {
        self.entries
            .entry(endpoint.to_owned())
            .or_default()
            .insert(username.to_lowercase(), choice);
    }

    /// Forgets one endpoint's choices, or all; returns how many were dropped.
    pub fn forget(&mut self, endpoint: Option<&str>) -> usize {
        match endpoint {
            Some(endpoint) => self.entries.remove(endpoint).map_or(0, |users| users.len()),
            None => {
                let count = self.entries.values().map(BTreeMap::len).sum();
                self.entries.clear();
                count
            }
        }
    }

    /// Writes the store atomically, creating the directory (mode 0700 on Unix) if needed, and
    /// never into a directory someone else could change.
    /// The choice remembered in the user's file for `endpoint` and `username`; a file that
    /// cannot be read is logged and reads as none.
    pub fn saved_choice(endpoint: &str, username: &str) -> Option<RememberedCertificate> {
        Self::default_path()
            .and_then(|path| Self::load(&path))
            .inspect_err(
                |e| tracing::warn!(error = %e, "the remembered certificate choices are not used"),
            )
            .ok()
            .and_then(|store| store.get(endpoint, username).cloned())
    }

    /// Remembers `choice` for `endpoint` and `username` in the user's file.
    pub fn remember_saved(
        endpoint: &str,
        username: &str,
        choice: RememberedCertificate,
    ) -> Result<(), RememberedError> {
        let mut store = Self::load(&Self::default_path()?)?;
        store.set(endpoint, username, choice);
        store.save()
    }

    /// Forgets the choices remembered in the user's file for `endpoint` (every one when `None`),
    /// and says how many went.
    pub fn forget_saved(endpoint: Option<&str>) -> Result<usize, RememberedError> {
        let mut store = Self::load(&Self::default_path()?)?;
        let forgotten = store.forget(endpoint);
        store.save()?;
        Ok(forgotten)
    }

    pub fn save(&self) -> Result<(), RememberedError> {
        let write_error = |e: std::io::Error| RememberedError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).map_err(write_error)?;
        }
        match file_safety::check_directories_for_writing(&self.path, Holds::Settings) {
            Ok(()) => {}
            Err(OpenError::Io(e)) => return Err(write_error(e)),
            Err(OpenError::Unsafe(refused)) => return Err(refused.into()),
        }
        let text =
            serde_json::to_vec_pretty(&self.entries).map_err(|e| RememberedError::Write {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        // A new file with a random name, created exclusively and owner-only, then renamed over the
        // old one: a link planted at a predictable temporary path is never written through, and a
        // link at the file's own path is replaced, not followed.
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let mut file = tempfile::Builder::new()
            .prefix(".remembered-certificates-")
            .tempfile_in(dir)
            .map_err(write_error)?;
        std::io::Write::write_all(&mut file, &text)
            .and_then(|()| file.as_file().sync_all())
            .map_err(write_error)?;
        file.persist(&self.path).map_err(|e| write_error(e.error))?;
        Ok(())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The key an endpoint URL is remembered under: scheme, host and port.
pub fn endpoint_key(url: &reqwest::Url) -> String {
    let port = url.port_or_known_default().unwrap_or(443);
    format!(
        "{}://{}:{port}",
        url.scheme(),
        url.host_str().unwrap_or_default().to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(n: u8) -> RememberedCertificate {
        RememberedCertificate {
            sha256: format!("{n:02x}").repeat(32),
            uri: format!("pkcs11:id=%{n:02X}"),
            description: format!("cert {n}"),
        }
    }

    #[test]
    fn remembers_per_endpoint_and_user_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(FILE_NAME);
        let mut store = RememberedChoices::load(&path).unwrap();
        store.set("https://a:443", "Bob@Woodgrove.com", choice(1));
        store.set("https://a:443", "alice@woodgrove.com", choice(2));
        store.set("https://b:8443", "bob@woodgrove.com", choice(3));
        store.save().unwrap();

        let mut again = RememberedChoices::load(&path).unwrap();
        assert_eq!(
            again.get("https://a:443", "bob@woodgrove.com"),
            Some(&choice(1))
        );
        assert_eq!(again.forget(Some("https://a:443")), 2);
        assert_eq!(again.get("https://a:443", "bob@woodgrove.com"), None);
        assert_eq!(again.forget(None), 1);
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_forget_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"{\"https://a:443\": {\"bob\": tru").unwrap();
        let mut store = RememberedChoices::load(&path).unwrap();
        assert_eq!(store.forget(None), 0);
        store.set("https://a:443", "bob@woodgrove.com", choice(1));
        store.save().unwrap();
        assert_eq!(
            RememberedChoices::load(&path)
                .unwrap()
                .get("https://a:443", "bob@woodgrove.com"),
            Some(&choice(1))
        );
        assert!(path.with_extension("json.corrupt").is_file());
    }

    #[cfg(unix)]
    #[test]
    fn saving_never_writes_through_a_planted_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("json.partial")).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let mut store = RememberedChoices::load(&path).unwrap_or_default();
        store.path = path.clone();
        store.set("https://a:443", "bob@woodgrove.com", choice(1));
        store.save().unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "the link itself is replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_or_directory_others_may_write_is_neither_read_nor_written() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut store = RememberedChoices::load(&path).unwrap();
        store.set("https://a:443", "bob@woodgrove.com", choice(1));
        store.save().unwrap();
        chmod(&path, 0o666);
        assert!(matches!(
            RememberedChoices::load(&path),
            Err(RememberedError::Unsafe(_))
        ));
        assert!(path.is_file(), "a refused file is left where it is");

        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o777);
        store.path = shared.join(FILE_NAME);
        assert!(matches!(store.save(), Err(RememberedError::Unsafe(_))));
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    }

    #[test]
    fn endpoint_keys_normalise() {
        let url = reqwest::Url::parse("https://Verifier.Example/certauth/signin").unwrap();
        assert_eq!(endpoint_key(&url), "https://verifier.example:443");
        let url = reqwest::Url::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!(endpoint_key(&url), "https://127.0.0.1:8443");
    }
}
