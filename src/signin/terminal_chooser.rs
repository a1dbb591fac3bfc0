//! The terminal picker as the [`Chooser`] of a sign-in made at a terminal.

use crate::picker::select::Chooser;
use crate::picker::terminal::{self, PickerError, PickerRow};
use crate::printable::printable_message;

/// The picker, on the terminal.
pub struct TerminalChooser {
    pub heading: String,
}

impl Chooser for TerminalChooser {
    fn choose(&mut self, rows: &[PickerRow]) -> Result<Option<usize>, PickerError> {
        terminal::pick(&self.heading, rows)
    }

    fn notice(&mut self, message: &str) {
        eprintln!("Note: {}", printable_message(message));
    }
}
