//! Whether a file certauth takes settings or a PIN from may be trusted, by ssh's `StrictModes`
//! rule: it owns the check and its messages, and it never reads a file it would refuse.
//!
//! The rule, on Unix (elsewhere files are read as they are):
//!
//! - The file (after following links) is owned by this user or root, and neither its group nor
//!   others may write it. A character device (`/dev/zero`, `/dev/tty`) is exempt from the write
//!   rule: its bytes come from a driver, not from whoever may write to it.
//! - Every directory above it is owned by this user or root, and neither its group nor others may
//!   write it, unless it is sticky (`/tmp`): there, only an entry's owner can rename or remove it.
//!   "Above it" means every directory on the path as given and on its real path, so a link in a
//!   directory others may write is refused, and so is a link to a file in one.
//! - A file holding a secret (a PIN) that its group or others may read is used, with a warning.
//! - A file that does not exist is not refused, wherever it would be: nothing is read. A write
//!   checks the directories it writes in ([`check_directories_for_writing`]).
//!
//! The directories are checked before the file is opened (so a FIFO planted by someone else never
//! blocks the open), and the file's own owner and mode are those of the opened handle, so what is
//! read is what was checked.

// Owners and modes are judged only on Unix; elsewhere the rule is compiled but not called.
#![cfg_attr(not(unix), allow(dead_code))]

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a file holds: the fix for a loose mode, and whether being readable matters, follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Settings others must not change (config, remembered choices).
    Settings,
    /// A secret others must not change or read (a PIN).
    Secret,
}

/// A file refused because someone other than this user (or root) could have written it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing {}: {problem}; {}", path.display(), self.fix())]
pub struct UnsafeFile {
    /// The file, as it was named.
    pub path: PathBuf,
    pub problem: Problem,
    pub holds: Holds,
}

/// What is wrong with a file or one of the directories above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file belongs to another user.
    Owner { uid: u32, you: u32 },
    /// The file's group or others may write it; `mode` is its permission bits.
    Writable { mode: u32 },
    /// A directory above the file belongs to another user, who could replace the file.
    DirectoryOwner { dir: PathBuf, uid: u32, you: u32 },
    /// A directory above the file is writable by its group or others and not sticky.
    DirectoryWritable { dir: PathBuf, mode: u32 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Owner { uid, you } => {
                write!(f, "it is owned by uid {uid}, not by you (uid {you}) or root")
            }
            Self::Writable { mode } => write!(
                f,
                "it is writable by {} (mode {mode:04o})",
                who(*mode, WRITE_BITS)
            ),
            Self::DirectoryOwner { dir, uid, you } => write!(
                f,
                "its directory {} is owned by uid {uid}, not by you (uid {you}) or root, who could replace the file",
                dir.display()
            ),
            Self::DirectoryWritable { dir, mode } => write!(
                f,
                "its directory {} is writable by {} (mode {mode:04o}) and not sticky, so they could replace the file",
                dir.display(),
                who(*mode, WRITE_BITS)
            ),
        }
    }
}

impl UnsafeFile {
    /// What to run (or do) about it.
    pub fn fix(&self) -> String {
        let path = shell_quoted(&self.path);
        match (&self.problem, self.holds) {
            (Problem::Owner { you, .. }, _) => {
                format!("if what it holds is yours, run `sudo chown {you} {path}`, else remove it")
            }
            (Problem::Writable { .. }, Holds::Settings) => format!("run `chmod go-w {path}`"),
            (Problem::Writable { .. }, Holds::Secret) => format!("run `chmod 600 {path}`"),
            (Problem::DirectoryOwner { .. }, _) => {
                "keep the file in a directory of your own".to_owned()
            }
            (Problem::DirectoryWritable { dir, .. }, _) => {
                format!("run `chmod go-w {}`", shell_quoted(dir))
            }
        }
    }
}

/// A secret file its group or others may read: used, but worth a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is readable by {} (mode {mode:04o}); run `chmod 600 {}`", path.display(), who(*mode, READ_BITS), shell_quoted(path))]
pub struct Exposed {
    pub path: PathBuf,
    pub mode: u32,
}

/// Why a file could not be opened: it could not be read, or it was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Unsafe(#[from] UnsafeFile),
}

impl OpenError {
    /// Whether the file (or a directory above it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// A file that passed the check, opened for reading.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    /// Set for a [`Holds::Secret`] file its group or others may read.
    pub exposed: Option<Exposed>,
}

/// Opens `path` to read, following links, once it and the directories above it pass the rule.
pub fn open(path: &Path, holds: Holds) -> Result<Opened, OpenError> {
    if let Err(refused) = check_directories(path, holds, true) {
        // Nothing there is nothing read: a missing file is missing, wherever it would be.
        return Err(match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => e.into(),
            _ => refused,
        });
    }
    let file = File::open(path)?;
    let exposed = check_opened(&file, path, holds)?;
    Ok(Opened { file, exposed })
}

/// Reads all of `path` once it passes the rule.
pub fn read(path: &Path, holds: Holds) -> Result<Vec<u8>, OpenError> {
    let mut bytes = Vec::new();
    open(path, holds)?.file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads all of `path` as text once it passes the rule.
pub fn read_to_string(path: &Path, holds: Holds) -> Result<String, OpenError> {
    let mut text = String::new();
    open(path, holds)?.file.read_to_string(&mut text)?;
    Ok(text)
}

/// Checks the directories `path` is to be written in: those above it as named and really, not
/// following `path` itself (a write replaces a link there rather than following it).
pub fn check_directories_for_writing(path: &Path, holds: Holds) -> Result<(), OpenError> {
    check_directories(path, holds, false)
}

const ROOT: u32 = 0;
const WRITE_BITS: u32 = 0o022;
const READ_BITS: u32 = 0o044;
const STICKY: u32 = 0o1000;
const FILE_TYPE: u32 = 0o170_000;
const CHAR_DEVICE: u32 = 0o020_000;

/// The owner and `st_mode` (type and permission bits) of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facts {
    uid: u32,
    mode: u32,
}

impl Facts {
    fn is_char_device(self) -> bool {
        self.mode & FILE_TYPE == CHAR_DEVICE
    }

    fn permissions(self) -> u32 {
        self.mode & 0o7777
    }
}

/// The rule for the file itself.
fn judge_file(facts: Facts, you: u32) -> Result<(), Problem> {
    if facts.uid != you && facts.uid != ROOT {
        return Err(Problem::Owner {
            uid: facts.uid,
            you,
        });
    }
    if !facts.is_char_device() && facts.mode & WRITE_BITS != 0 {
        return Err(Problem::Writable {
            mode: facts.permissions(),
        });
    }
    Ok(())
}

/// The rule for a directory above the file.
fn judge_directory(dir: &Path, facts: Facts, you: u32) -> Result<(), Problem> {
    if facts.uid != you && facts.uid != ROOT {
        return Err(Problem::DirectoryOwner {
            dir: dir.to_owned(),
            uid: facts.uid,
            you,
        });
    }
    if facts.mode & WRITE_BITS != 0 && facts.mode & STICKY == 0 {
        return Err(Problem::DirectoryWritable {
            dir: dir.to_owned(),
            mode: facts.permissions(),
        });
    }
    Ok(())
}

/// The permission bits of a secret its group or others may read.
fn exposure(facts: Facts) -> Option<u32> {
    (!facts.is_char_device() && facts.mode & READ_BITS != 0).then_some(facts.permissions())
}

/// "its group", "others" or both, for the bits of `mode` among `bits` (group and other).
fn who(mode: u32, bits: u32) -> &'static str {
    match (mode & bits & 0o070 != 0, mode & bits & 0o007 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        _ => "others",
    }
}

/// `path` as a shell word: as it is when that is safe, else in single quotes.
fn shell_quoted(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Every directory above `path`: on the path as named (each as it resolves), on the real path of
/// the directory holding it, and, when `follow` is set, on the real path of the file it links to.
#[cfg(unix)]
fn directories_above(path: &Path, follow: bool) -> std::io::Result<Vec<PathBuf>> {
    let absolute = std::path::absolute(path)?;
    let Some(parent) = absolute.parent() else {
        return Ok(Vec::new());
    };
    let real_parent = std::fs::canonicalize(parent).ok();
    // A file that does not resolve (a pipe under /dev/fd) has only the directories named.
    let real_file_parent = follow
        .then(|| std::fs::canonicalize(&absolute).ok())
        .flatten()
        .and_then(|real| real.parent().map(Path::to_owned));
    let mut dirs: Vec<PathBuf> = Vec::new();
    let chains = [Some(parent.to_owned()), real_parent, real_file_parent];
    for dir in chains.iter().flatten().flat_map(|start| start.ancestors()) {
        if !dirs.iter().any(|seen| seen == dir) {
            dirs.push(dir.to_owned());
        }
    }
    Ok(dirs)
}

#[cfg(unix)]
fn check_directories(path: &Path, holds: Holds, follow: bool) -> Result<(), OpenError> {
    use std::os::unix::fs::MetadataExt;
    let you = own_uid();
    for dir in directories_above(path, follow)? {
        let meta = std::fs::metadata(&dir)?;
        let facts = Facts {
            uid: meta.uid(),
            mode: meta.mode(),
        };
        judge_directory(&dir, facts, you).map_err(|problem| UnsafeFile {
            path: path.to_owned(),
            problem,
            holds,
        })?;
    }
    Ok(())
}

#[cfg(unix)]
fn check_opened(file: &File, path: &Path, holds: Holds) -> Result<Option<Exposed>, OpenError> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    let facts = Facts {
        uid: meta.uid(),
        mode: meta.mode(),
    };
    judge_file(facts, own_uid()).map_err(|problem| UnsafeFile {
        path: path.to_owned(),
        problem,
        holds,
    })?;
    Ok(match holds {
        Holds::Secret => exposure(facts).map(|mode| Exposed {
            path: path.to_owned(),
            mode,
        }),
        Holds::Settings => None,
    })
}

/// This process's effective uid: whose files it may trust besides root's.
#[cfg(unix)]
fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
fn check_directories(_: &Path, _: Holds, _: bool) -> Result<(), OpenError> {
    Ok(())
}

#[cfg(not(unix))]
fn check_opened(_: &File, _: &Path, _: Holds) -> Result<Option<Exposed>, OpenError> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YOU: u32 = 1000;
    const OTHER: u32 = 65534;
    const REGULAR: u32 = 0o100_000;
    const DIRECTORY: u32 = 0o040_000;

    fn file(uid: u32, permissions: u32) -> Facts {
        Facts {
            uid,
            mode: REGULAR | permissions,
        }
    }

    fn dir(uid: u32, permissions: u32) -> Facts {
        Facts {
            uid,
            mode: DIRECTORY | permissions,
        }
    }

    #[test]
    fn a_file_is_trusted_when_yours_or_roots_and_written_by_no_one_else() {
        for facts in [
            file(YOU, 0o600),
            file(YOU, 0o644),
            file(ROOT, 0o644),
            file(YOU, 0o400),
        ] {
            assert_eq!(judge_file(facts, YOU), Ok(()), "{facts:?}");
        }
        assert_eq!(
            judge_file(file(OTHER, 0o600), YOU),
            Err(Problem::Owner {
                uid: OTHER,
                you: YOU
            })
        );
        for permissions in [0o620, 0o602, 0o666, 0o777] {
            assert_eq!(
                judge_file(file(YOU, permissions), YOU),
                Err(Problem::Writable { mode: permissions }),
            );
        }
        // Root trusts no other user's file.
        assert!(judge_file(file(YOU, 0o600), ROOT).is_err());
    }

    #[test]
    fn a_character_device_is_judged_by_its_owner_alone() {
        let zero = Facts {
            uid: ROOT,
            mode: CHAR_DEVICE | 0o666,
        };
        assert_eq!(judge_file(zero, YOU), Ok(()));
        assert_eq!(exposure(zero), None);
        let foreign = Facts {
            uid: OTHER,
            mode: CHAR_DEVICE | 0o600,
        };
        assert!(judge_file(foreign, YOU).is_err());
    }

    #[test]
    fn a_directory_may_be_shared_only_when_sticky() {
        let at = Path::new("/d");
        for facts in [
            dir(YOU, 0o700),
            dir(ROOT, 0o755),
            dir(ROOT, 0o1777),
            dir(YOU, 0o1770),
        ] {
            assert_eq!(judge_directory(at, facts, YOU), Ok(()), "{facts:?}");
        }
        assert_eq!(
            judge_directory(at, dir(YOU, 0o777), YOU),
            Err(Problem::DirectoryWritable {
                dir: at.to_owned(),
                mode: 0o777
            })
        );
        assert!(judge_directory(at, dir(ROOT, 0o775), YOU).is_err());
        assert_eq!(
            judge_directory(at, dir(OTHER, 0o755), YOU),
            Err(Problem::DirectoryOwner {
                dir: at.to_owned(),
                uid: OTHER,
                you: YOU
            })
        );
        // Sticky does not make another user's directory trusted.
        assert!(judge_directory(at, dir(OTHER, 0o1777), YOU).is_err());
    }

    #[test]
    fn a_secret_readable_by_others_is_exposed() {
        assert_eq!(exposure(file(YOU, 0o600)), None);
        assert_eq!(exposure(file(YOU, 0o400)), None);
        assert_eq!(exposure(file(YOU, 0o640)), Some(0o640));
        assert_eq!(exposure(file(YOU, 0o604)), Some(0o604));
    }

    #[test]
    fn messages_name_the_file_what_is_wrong_and_the_fix() {
        let refused = |problem, holds| {
            UnsafeFile {
                path: PathBuf::from("/x/config.toml"),
                problem,
                holds,
            }
            .to_string()
        };
        assert_eq!(
            refused(Problem::Writable { mode: 0o666 }, Holds::Settings),
            "refusing /x/config.toml: it is writable by its group and others (mode 0666); run `chmod go-w /x/config.toml`"
        );
        assert_eq!(
            refused(Problem::Writable { mode: 0o602 }, Holds::Secret),
            "refusing /x/config.toml: it is writable by others (mode 0602); run `chmod 600 /x/config.toml`"
        );
        assert_eq!(
            refused(Problem::Owner { uid: OTHER, you: YOU }, Holds::Settings),
            "refusing /x/config.toml: it is owned by uid 65534, not by you (uid 1000) or root; if what it holds is yours, run `sudo chown 1000 /x/config.toml`, else remove it"
        );
        assert_eq!(
            refused(
                Problem::DirectoryWritable {
                    dir: PathBuf::from("/x"),
                    mode: 0o777
                },
                Holds::Settings
            ),
            "refusing /x/config.toml: its directory /x is writable by its group and others (mode 0777) and not sticky, so they could replace the file; run `chmod go-w /x`"
        );
        let exposed = Exposed {
            path: PathBuf::from("/run/my pin"),
            mode: 0o644,
        };
        assert_eq!(
            exposed.to_string(),
            "/run/my pin is readable by its group and others (mode 0644); run `chmod 600 '/run/my pin'`"
        );
    }

    #[cfg(unix)]
    mod on_disk {
        use std::os::unix::fs::PermissionsExt;

        use super::super::*;

        fn chmod(path: &Path, mode: u32) {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }

        fn refused(result: Result<Opened, OpenError>) -> Problem {
            match result {
                Err(OpenError::Unsafe(refusal)) => refusal.problem,
                other => panic!("not refused: {other:?}"),
            }
        }

        #[test]
        fn a_private_file_in_a_temporary_directory_reads() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("config.toml");
            std::fs::write(&path, "x = 1").unwrap();
            chmod(&path, 0o644);
            assert_eq!(read_to_string(&path, Holds::Settings).unwrap(), "x = 1");
            let opened = open(&path, Holds::Secret).unwrap();
            assert_eq!(opened.exposed.map(|e| e.mode), Some(0o644));
            chmod(&path, 0o600);
            assert_eq!(open(&path, Holds::Secret).unwrap().exposed, None);
        }

        #[test]
        fn a_writable_file_or_directory_is_refused() {
            let dir = tempfile::tempdir().unwrap();
            let shared = dir.path().join("shared");
            std::fs::create_dir(&shared).unwrap();
            let path = shared.join("config.toml");
            std::fs::write(&path, "").unwrap();
            chmod(&path, 0o666);
            assert_eq!(
                refused(open(&path, Holds::Settings)),
                Problem::Writable { mode: 0o666 }
            );
            chmod(&path, 0o644);
            chmod(&shared, 0o777);
            assert_eq!(
                refused(open(&path, Holds::Settings)),
                Problem::DirectoryWritable {
                    dir: shared.clone(),
                    mode: 0o777
                }
            );
            assert!(check_directories_for_writing(&path, Holds::Settings).is_err());
            chmod(&shared, 0o1777);
            assert!(open(&path, Holds::Settings).is_ok());
        }

        #[test]
        fn links_are_judged_at_both_ends() {
            let dir = tempfile::tempdir().unwrap();
            let shared = dir.path().join("shared");
            let private = dir.path().join("private");
            std::fs::create_dir(&shared).unwrap();
            std::fs::create_dir(&private).unwrap();
            // A link in a private directory to a file in a shared one.
            let target = shared.join("config.toml");
            std::fs::write(&target, "").unwrap();
            let link = private.join("config.toml");
            std::os::unix::fs::symlink(&target, &link).unwrap();
            chmod(&shared, 0o777);
            assert_eq!(
                refused(open(&link, Holds::Settings)),
                Problem::DirectoryWritable {
                    dir: shared.clone(),
                    mode: 0o777
                }
            );
            // Writing replaces the link, so only the link's directory counts.
            assert!(check_directories_for_writing(&link, Holds::Settings).is_ok());
            // A link in a shared directory to a private file.
            chmod(&shared, 0o755);
            let private_target = private.join("real.toml");
            std::fs::write(&private_target, "").unwrap();
            let planted = shared.join("planted.toml");
            std::os::unix::fs::symlink(&private_target, &planted).unwrap();
            chmod(&shared, 0o777);
            assert!(matches!(
                refused(open(&planted, Holds::Settings)),
                Problem::DirectoryWritable { .. }
            ));
        }

        #[test]
        fn a_missing_file_is_not_found_even_in_a_shared_directory() {
            let dir = tempfile::tempdir().unwrap();
            assert!(open(&dir.path().join("none"), Holds::Settings)
                .unwrap_err()
                .is_not_found());
            assert!(open(&dir.path().join("no/none"), Holds::Settings)
                .unwrap_err()
                .is_not_found());
            chmod(dir.path(), 0o777);
            assert!(open(&dir.path().join("none"), Holds::Settings)
                .unwrap_err()
                .is_not_found());
            assert!(
                check_directories_for_writing(&dir.path().join("none"), Holds::Settings).is_err()
            );
        }

        #[test]
        fn a_relative_path_is_judged_from_the_current_directory() {
            let dirs = directories_above(Path::new("Cargo.toml"), true).unwrap();
            assert_eq!(dirs[0], std::env::current_dir().unwrap());
            assert_eq!(dirs.last().map(PathBuf::as_path), Some(Path::new("/")));
        }
    }
}
