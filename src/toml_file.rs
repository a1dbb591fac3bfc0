//! Reading TOML into serde types, with errors that name the file, the line and column, and the
//! field path (`certificates[3].issuer`).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// TOML that is malformed or does not fit the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}:{column}: {}{message}", field_prefix(.field))]
pub struct TomlError {
    pub path: PathBuf,
    /// Absent when the text is not TOML at all.
    pub field: Option<String>,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses `text`; `path` names it in errors.
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, TomlError> {
    let error = |field: Option<String>, err: &toml::de::Error| {
        let (line, column) = err
            .span()
            .map(|span| line_and_column(text, span.start))
            .unwrap_or((1, 1));
        TomlError {
            path: path.to_owned(),
            field,
            line,
            column,
            message: err.message().trim().to_owned(),
        }
    };
    let deserializer = toml::de::Deserializer::parse(text).map_err(|e| error(None, &e))?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| error(Some(e.path().to_string()), e.inner()))
}

fn field_prefix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map_or_else(String::new, |f| format!("field `{f}`: "))
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}
