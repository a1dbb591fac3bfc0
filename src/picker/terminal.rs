//! The interactive certificate picker: a list on the terminal, arrow keys and Enter to choose, and
//! a details view (issuer, serial, policy OIDs, EKU, thumbprints) to check before choosing. It draws
//! on stderr, so the command's output on stdout stays clean. Every row's text comes from a token
//! or a certificate (or an agent), so it is drawn through [`printable`].

use std::io::{IsTerminal, Write};

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{execute, queue};

use crate::printable::printable;

/// One candidate as the picker shows it (and as the agent sends it to a client to show).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    #[error("choosing a certificate needs a terminal")]
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
        queue!(out, Clear(ClearType::All))?;
        for (line, (text, highlighted)) in (0u16..).zip(screen_lines(heading, rows, state)) {
            queue!(out, MoveTo(0, line))?;
            if highlighted {
                queue!(out, SetAttribute(Attribute::Reverse), Print(text))?;
                queue!(out, SetAttribute(Attribute::Reset))?;
            } else {
                queue!(out, Print(text))?;
            }
        }
        out.flush()
    }
}

/// The lines of one screen, each with whether it is highlighted. Every text from a row (from a
/// token, a certificate or the agent) goes through [`printable`].
fn screen_lines(heading: &str, rows: &[PickerRow], state: &State) -> Vec<(String, bool)> {
    let mut lines = vec![
        (printable(heading).to_string(), false),
        (String::new(), false),
    ];
    let mut say = |text: String| lines.push((text, false));
    if state.details {
        let row = &rows[state.selected];
        say(format!(
            "Certificate information: {}",
            printable(&row.title)
        ));
        say(String::new());
        let details: Vec<(String, String)> = row
            .details
            .iter()
            .map(|(k, v)| (printable(k).to_string(), printable(v).to_string()))
            .collect();
        let width = details
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (label, value) in &details {
            say(format!("  {label:<width$}  {value}"));
        }
        say(String::new());
        say("Enter: use this certificate   Esc/d: back to the list".to_owned());
    } else {
        for (i, row) in rows.iter().enumerate() {
            let marker = if i == state.selected { ">" } else { " " };
            lines.push((
                format!("{marker} {}", printable(&row.title)),
                i == state.selected,
            ));
            lines.push((
                format!(
                    "    issued by {}  ·  expires {}  ·  token {}",
                    printable(&row.issuer),
                    printable(&row.expires),
                    printable(&row.token)
                ),
                false,
            ));
        }
        lines.push((String::new(), false));
        lines.push((
            "Up/Down: move   d: details   Enter: use this certificate   Esc: cancel".to_owned(),
            false,
        ));
    }
    lines
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(self.out, Show, LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_a_hostile_token_are_drawn_escaped() {
        let rows = vec![PickerRow {
            title: "Eve\x1b[2J <eve@example.com>".into(),
            issuer: "Evil\u{202e}AC".into(),
            expires: "2030-01-01".into(),
            token: "Bank\x1b]0;title\x07".into(),
            details: vec![("Token".into(), "Bank\x1b[1A (serial 1)".into())],
        }];
        for details in [false, true] {
            let state = State {
                selected: 0,
                details,
            };
            let lines = screen_lines("Choose\x1b[H", &rows, &state);
            let all: String = lines.iter().map(|(text, _)| text.as_str()).collect();
            assert!(
                !all.contains('\x1b') && !all.contains('\u{202e}'),
                "{all:?}"
            );
            assert_eq!(lines[0].0, "Choose\\x1b[H");
            if details {
                assert!(all.contains("Token  Bank\\x1b[1A (serial 1)"), "{all}");
            } else {
                assert_eq!(
                    lines[2],
                    ("> Eve\\x1b[2J <eve@example.com>".to_owned(), true)
                );
                assert_eq!(
                    lines[3].0,
                    "    issued by Evil\\u{202e}AC  ·  expires 2030-01-01  ·  token Bank\\x1b]0;title\\x07"
                );
            }
        }
    }
}
