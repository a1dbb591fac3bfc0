//! Plain-text tables whose columns fit their widest cell. Cells hold text from tokens and
//! certificates, so each is kept as `printable` shows it.

use std::io::Write;

use crate::printable::printable;

/// Rows of cells under a header.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| printable(c).to_string()).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the table, each line starting with `indent`; the last column is not padded.
    pub fn write(&self, out: &mut impl Write, indent: &str) -> std::io::Result<()> {
        let columns = self.header.len();
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from(indent);
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped_and_aligned_as_shown() {
        let mut table = Table::new(&["ID", "NAME"]);
        table.row(vec!["01".into(), "Eve\x1b[2J\u{202e}".into()]);
        table.row(vec!["0a0b\x1b".into(), "Zoë".into()]);
        let mut out = Vec::new();
        table.write(&mut out, "  ").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  ID        NAME\n  01        Eve\\x1b[2J\\u{202e}\n  0a0b\\x1b  Zoë\n"
        );
    }
}
