//! The interactive certificate picker: a list on the terminal, arrow keys and Enter to choose, and
//! a details view (issuer, serial, policy OIDs, EKU, thumbprints) to check before choosing. It draws
//! on stderr, so the command's output on stdout stays clean.

use std::io::{IsTerminal, Write};

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{execute, queue};

/// One candidate as the picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerRow {
    /// Subject name and UPN.
    pub title: String,
    pub issuer: String,
    pub expires: String,
    pub token: String,
    /// Label and value pairs for the details view.
    pub details: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PickerError {
    #[error("choosing a certificate needs a terminal; name one with --cert instead")]
    NoTerminal,
    #[error("the terminal failed: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Shows `rows` and returns the index chosen, or `None` if the user cancelled.
pub fn pick(heading: &str, rows: &[PickerRow]) -> Result<Option<usize>, PickerError> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(PickerError::NoTerminal);
    }
    let mut screen = Screen::enter()?;
    let mut state = State {
        selected: 0,
        details: false,
    };
    loop {
        screen.draw(heading, rows, &state)?;
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        match handle(key, &mut state, rows.len()) {
            Action::Stay => {}
            Action::Choose => return Ok(Some(state.selected)),
            Action::Cancel => return Ok(None),
        }
    }
}

struct State {
    selected: usize,
    details: bool,
}

enum Action {
    Stay,
    Choose,
    Cancel,
}

fn handle(key: KeyEvent, state: &mut State, count: usize) -> Action {
    match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Action::Cancel,
        KeyCode::Enter => Action::Choose,
        KeyCode::Esc | KeyCode::Char('q') if state.details => {
            state.details = false;
            Action::Stay
        }
        KeyCode::Esc | KeyCode::Char('q') => Action::Cancel,
        KeyCode::Char('d') | KeyCode::Char('i') | KeyCode::Right | KeyCode::Tab => {
            state.details = !state.details;
            Action::Stay
        }
        KeyCode::Left => {
            state.details = false;
            Action::Stay
        }
        KeyCode::Up | KeyCode::Char('k') if !state.details => {
            state.selected = state.selected.checked_sub(1).unwrap_or(count - 1);
            Action::Stay
        }
        KeyCode::Down | KeyCode::Char('j') if !state.details => {
            state.selected = (state.selected + 1) % count;
            Action::Stay
        }
        _ => Action::Stay,
    }
}

/// The alternate screen in raw mode, restored on drop whatever happens.
struct Screen {
    out: std::io::Stderr,
}

impl Screen {
    fn enter() -> std::io::Result<Self> {
        terminal::enable_raw_mode()?;
        let mut out = std::io::stderr();
        execute!(out, EnterAlternateScreen, Hide)?;
        Ok(Self { out })
    }

    fn draw(&mut self, heading: &str, rows: &[PickerRow], state: &State) -> std::io::Result<()> {
        let out = &mut self.out;
        queue!(out, Clear(ClearType::All), MoveTo(0, 0))?;
        let mut line = 0u16;
        let mut say = |out: &mut std::io::Stderr, text: &str, bold: bool| -> std::io::Result<()> {
            queue!(out, MoveTo(0, line))?;
            if bold {
                queue!(out, SetAttribute(Attribute::Reverse))?;
            }
            queue!(out, Print(text))?;
            if bold {
                queue!(out, SetAttribute(Attribute::Reset))?;
            }
            line += 1;
            Ok(())
        };
        say(out, heading, false)?;
        say(out, "", false)?;
        if state.details {
            let row = &rows[state.selected];
            say(
                out,
                &format!("Certificate information: {}", row.title),
                false,
            )?;
            say(out, "", false)?;
            let width = row.details.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (label, value) in &row.details {
                say(out, &format!("  {label:<width$}  {value}"), false)?;
            }
            say(out, "", false)?;
            say(
                out,
                "Enter: use this certificate   Esc/d: back to the list",
                false,
            )?;
        } else {
            for (i, row) in rows.iter().enumerate() {
                let marker = if i == state.selected { ">" } else { " " };
                say(out, &format!("{marker} {}", row.title), i == state.selected)?;
                say(
                    out,
                    &format!(
                        "    issued by {}  ·  expires {}  ·  token {}",
                        row.issuer, row.expires, row.token
                    ),
                    false,
                )?;
            }
            say(out, "", false)?;
            say(
                out,
                "Up/Down: move   d: details   Enter: use this certificate   Esc: cancel",
                false,
            )?;
        }
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(self.out, Show, LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}
