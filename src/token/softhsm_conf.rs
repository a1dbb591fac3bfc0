//! Why SoftHSM cannot start: the file `SOFTHSM2_CONF` names, or its token directory, is gone.

use std::path::{Path, PathBuf};

/// What is missing, when `module` is SoftHSM and `SOFTHSM2_CONF` names a file that does not
/// exist or whose `directories.tokendir` does not exist; `None` otherwise.
pub fn missing(module: &Path) -> Option<String> {
    let is_softhsm = module
        .file_name()
        .is_some_and(|name| name.to_string_lossy().contains("softhsm"));
    if !is_softhsm {
        return None;
    }
    let conf = PathBuf::from(std::env::var_os("SOFTHSM2_CONF").filter(|c| !c.is_empty())?);
    match std::fs::metadata(&conf) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(format!(
                "SOFTHSM2_CONF names {}, which does not exist (a deleted demo or fixture directory?); unset it or point it at a SoftHSM config file",
                conf.display()
            ));
        }
        // Only a regular file is read: a FIFO (or a device) there would block this read as it
        // blocks SoftHSM, and says nothing about a missing directory.
        Ok(meta) if meta.is_file() => {}
        _ => return None,
    }
    let text = std::fs::read_to_string(&conf).ok()?;
    let tokendir = tokendir(&text)?;
    (!tokendir.is_dir()).then(|| {
        format!(
            "the token directory {} that SOFTHSM2_CONF ({}) names does not exist (a deleted demo or fixture directory?)",
            tokendir.display(),
            conf.display()
        )
    })
}

/// `directories.tokendir = DIR` in a softhsm2.conf.
fn tokendir(conf: &str) -> Option<PathBuf> {
    conf.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "directories.tokendir").then(|| PathBuf::from(value.trim()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_directory() {
        let conf = "# comment\ndirectories.tokendir = /tmp/x/tokens\nobjectstore.backend = file\n";
        assert_eq!(tokendir(conf), Some(PathBuf::from("/tmp/x/tokens")));
        assert_eq!(tokendir("log.level = INFO\n"), None);
    }

    #[test]
    fn other_modules_are_not_softhsm() {
        assert_eq!(missing(Path::new("/usr/lib/opensc-pkcs11.so")), None);
    }
}
