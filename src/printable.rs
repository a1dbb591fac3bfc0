//! Text from a token, a certificate or a server, made safe to show on a terminal or in a pinentry:
//! control characters (C0 with ESC, DEL, C1) and the invisible characters that reorder or hide
//! text (bidi overrides and isolates, zero-width characters) are shown as visible escapes such
//! as `\x1b` and `\u{202e}`, so a hostile token label cannot move the cursor, retitle the window
//! or disguise which token a PIN prompt is for. Everything else, accents and CJK included, is
//! shown as it is.
//!
//! It changes only how text is shown: labels are matched exactly (pkcs11: URIs, `--token`), so
//! the data model keeps them as they came, and JSON output keeps exact values (escaped the JSON
//! way, see [`write_json`]).

use std::fmt;
use std::io;

use serde::Serialize;

/// The most characters of one value [`printable`] shows; the rest is cut and `…` says so.
/// Token labels are at most 32 bytes, but certificate and object labels have no limit.
pub const MAX_CHARS: usize = 256;

/// Whether `c` must not reach a terminal as it is: a control character, a line or paragraph
/// separator, or an invisible format character that reorders, joins or hides text.
pub fn is_disguising(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'                      // soft hyphen
            | '\u{061c}'                    // Arabic letter mark
            | '\u{115f}' | '\u{1160}'       // Hangul fillers
            | '\u{180e}'                    // Mongolian vowel separator
            | '\u{200b}'..='\u{200f}'       // zero-width space, (non-)joiner, LRM, RLM
            | '\u{2028}' | '\u{2029}'       // line and paragraph separators
            | '\u{202a}'..='\u{202e}'       // bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'       // word joiner, invisible operators, bidi isolates
            | '\u{3164}' | '\u{ffa0}'       // Hangul fillers
            | '\u{feff}'                    // zero-width no-break space (BOM)
            | '\u{fff9}'..='\u{fffb}'       // interlinear annotation
            | '\u{e0000}'..='\u{e007f}' // tag characters
        )
}

/// `text` for a terminal; see [`printable`] and [`printable_message`].
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a> {
    text: &'a str,
    /// Whether a line feed stays a line feed (a message of several lines).
    keep_newlines: bool,
    max_chars: Option<usize>,
}

/// One value (a label, a name, a table cell) for a terminal: every control and disguising
/// character escaped, line feeds too, and at most [`MAX_CHARS`] characters.
pub fn printable(text: &str) -> Printable<'_> {
    Printable {
        text,
        keep_newlines: false,
        max_chars: Some(MAX_CHARS),
    }
}

/// A message of several lines (an error with its details) for a terminal: as [`printable`], but
/// line feeds stay, and the length is not capped. The values it embeds may still add lines, so
/// prefer [`printable`] on each value where the message is built.
pub fn printable_message(text: &str) -> Printable<'_> {
    Printable {
        text,
        keep_newlines: true,
        max_chars: None,
    }
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;

        for (shown, c) in self.text.chars().enumerate() {
            if self.max_chars.is_some_and(|max| shown >= max) {
                return f.write_char('…');
            }
            match c {
                '\n' if self.keep_newlines => f.write_char('\n')?,
                c if is_disguising(c) => write_escape(f, c)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// `\n`, `\r`, `\t`, `\x1b` for the other ASCII controls, `\u{202e}` for the rest.
fn write_escape(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        c if c.is_ascii() => write!(f, "\\x{:02x}", u32::from(c)),
        c => write!(f, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// Writes `value` as JSON (pretty or on one line) whose text is safe for a terminal: serde_json
/// escapes C0 controls itself, and this escapes the rest of [`is_disguising`] (DEL, C1, bidi
/// controls) as `\uXXXX` too. The values a JSON reader gets are exactly the original ones.
pub fn write_json<W: io::Write, T: Serialize + ?Sized>(
    writer: W,
    value: &T,
    pretty: bool,
) -> serde_json::Result<()> {
    if pretty {
        let formatter = TerminalSafe(serde_json::ser::PrettyFormatter::new());
        value.serialize(&mut serde_json::Serializer::with_formatter(
            writer, formatter,
        ))
    } else {
        let formatter = TerminalSafe(serde_json::ser::CompactFormatter);
        value.serialize(&mut serde_json::Serializer::with_formatter(
            writer, formatter,
        ))
    }
}

/// A JSON formatter that escapes every [`is_disguising`] character inside strings.
struct TerminalSafe<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if !is_disguising(c) {
                continue;
            }
            self.0.write_string_fragment(writer, &fragment[start..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + c.len_utf8();
        }
        self.0.write_string_fragment(writer, &fragment[start..])
    }

    // Everything else as the wrapped formatter does it.
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

    use super::*;

    fn shown(text: &str) -> String {
        printable(text).to_string()
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(shown("Evil\x1b[2Jtoken"), "Evil\\x1b[2Jtoken");
        assert_eq!(
            shown("\x1b]0;pwned\x07title"),
            "\\x1b]0;pwned\\x07title",
            "an OSC window-title sequence"
        );
        assert_eq!(shown("a\nb\rc\td\0e\x7f"), "a\\nb\\rc\\td\\x00e\\x7f");
        assert_eq!(shown("c1 \u{9b}31m csi"), "c1 \\u{9b}31m csi");
        assert_eq!(shown("\u{85}next line"), "\\u{85}next line");
    }

    #[test]
    fn bidi_and_invisible_characters_are_shown() {
        assert_eq!(shown("Bank\u{202e}nip"), "Bank\\u{202e}nip");
        assert_eq!(
            shown("\u{2066}a\u{2069}\u{200b}b\u{feff}\u{e0041}"),
            "\\u{2066}a\\u{2069}\\u{200b}b\\u{feff}\\u{e0041}"
        );
        assert_eq!(shown("line\u{2028}sep"), "line\\u{2028}sep");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "Woodgrove Alice",
            "Zoë Ångström-Müller",
            "山田太郎のカード",
            "Иван",
            "عربي",
            "C:\\keys\\card",
            "emoji 🔑",
        ] {
            assert_eq!(shown(text), text);
            assert_eq!(printable_message(text).to_string(), text);
        }
    }

    #[test]
    fn a_message_keeps_its_lines_and_escapes_the_rest() {
        assert_eq!(
            printable_message("summary\n  token `a\x1b[1Ab`\r").to_string(),
            "summary\n  token `a\\x1b[1Ab`\\r"
        );
        let long = "x".repeat(MAX_CHARS * 2);
        assert_eq!(printable_message(&long).to_string(), long);
    }

    #[test]
    fn an_absurdly_long_value_is_cut() {
        let long = "é".repeat(MAX_CHARS + 10);
        let expected = "é".repeat(MAX_CHARS) + "…";
        assert_eq!(shown(&long), expected);
        assert_eq!(shown(&"é".repeat(MAX_CHARS)), "é".repeat(MAX_CHARS));
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = shown("a\x1b[2J\u{202e}b");
        assert_eq!(shown(&once), once);
        assert_eq!(printable_message(&once).to_string(), once);
    }

    #[test]
    fn json_keeps_exact_values_in_terminal_safe_text() {
        let value = serde_json::json!({
            "label": "Evil\x1b[2J\u{202e}\u{9b}\x7f\u{e0041} Zoë 山田",
            "list": ["\u{2066}"],
        });
        for pretty in [true, false] {
            let mut out = Vec::new();
            write_json(&mut out, &value, pretty).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                !text.chars().any(|c| is_disguising(c) && c != '\n'),
                "{text:?}"
            );
            assert!(
                text.contains(r"Evil\u001b[2J\u202e\u009b\u007f\udb40\udc41 Zoë 山田"),
                "{text}"
            );
            let back: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, value);
        }
    }
}
