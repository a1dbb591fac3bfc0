//! Words for a POSIX shell, for the command lines both programs print for the user to paste.

use std::path::Path;

/// A word for a POSIX shell: as it is when it needs no quoting, in single quotes otherwise.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A path as a shell word.
pub fn shell_path(path: &Path) -> String {
    shell_word(&path.to_string_lossy())
}
