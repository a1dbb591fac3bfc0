//! Where a PIN comes from. Headless sources (`env:VAR`, `file:PATH`) for scripts and tests; the
//! PIN is held in a [`SecretString`] from the moment it is read.

use std::path::PathBuf;

use secrecy::SecretString;
use zeroize::Zeroizing;

/// A non-interactive PIN source, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `env:VAR`
    Environment(String),
    /// `file:PATH`; the first line is the PIN.
    File(PathBuf),
}

/// Why no PIN could be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PinSourceError {
    #[error("`{0}` is not a PIN source; use env:VARIABLE or file:PATH")]
    Syntax(String),
    #[error("the environment variable {0} holding the PIN is not set")]
    MissingVariable(String),
    #[error("cannot read the PIN file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the PIN from {0} is empty")]
    Empty(String),
}

impl std::str::FromStr for PinSource {
    type Err = PinSourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("env", var)) if !var.is_empty() => Ok(Self::Environment(var.to_owned())),
            Some(("file", path)) if !path.is_empty() => Ok(Self::File(PathBuf::from(path))),
            _ => Err(PinSourceError::Syntax(text.to_owned())),
        }
    }
}

impl PinSource {
    /// Reads the PIN.
    pub fn read(&self) -> Result<SecretString, PinSourceError> {
        let (pin, named) = match self {
            Self::Environment(var) => {
                let value =
                    std::env::var(var).map_err(|_| PinSourceError::MissingVariable(var.clone()))?;
                (Zeroizing::new(value), format!("${var}"))
            }
            Self::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| PinSourceError::File {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let text = Zeroizing::new(text);
                let first = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
                (first, path.display().to_string())
            }
        };
        if pin.is_empty() {
            return Err(PinSourceError::Empty(named));
        }
        Ok(SecretString::from(pin.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!("env:PIN".parse(), Ok(PinSource::Environment("PIN".into())));
        assert_eq!(
            "file:/run/pin".parse(),
            Ok(PinSource::File("/run/pin".into()))
        );
        assert_eq!(
            "123456".parse::<PinSource>(),
            Err(PinSourceError::Syntax("123456".into()))
        );
    }

    #[test]
    fn reads_the_first_line_of_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "2468\nignored\n").unwrap();
        let pin = PinSource::File(path).read().unwrap();
        assert_eq!(pin.expose_secret(), "2468");
    }
}
