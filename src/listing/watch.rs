//! `certauth watch`: reader and card events as they happen, and the tokens after each card event,
//! as lines for a person or JSON, watched here or followed from a running agent's events. Reader names and token labels come from drivers and tokens:
//! printed through `printable`.

use std::io::Write;

use serde_json::Value;

use super::{event_from_json, event_json, now, tokens_json, WATCH_POLL};
use crate::printable::{self, printable};
use crate::reader::{ReaderEvent, Watcher};
use crate::token::inventory::{self, ModuleReport, ScanOptions};
use crate::token::module::LoadedModule;

/// How `watch` prints, and for how long.
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchOptions {
    /// JSON lines instead of lines for a person.
    pub json: bool,
    /// Stop after this many reader events.
    pub events: Option<usize>,
}

/// Watches until `options.events` reader events were printed (forever without a limit), scanning
/// the tokens of `modules` after each card event.
pub fn watch(
    (modules, mut reports): (Vec<LoadedModule>, Vec<ModuleReport>),
    options: WatchOptions,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut watcher = Watcher::new();
    let mut seen = 0usize;
    let mut told_waiting = false;
    loop {
        let events = watcher.poll(WATCH_POLL);
        if !watcher.service_running() && !told_waiting {
            // Said once while it is down; as JSON, unless the watcher just said it stopped.
            if !options.json {
                writeln!(
                    out,
                    "{} the smart card service (pcscd) is not running; waiting for it to start",
                    now()
                )?;
            } else if !events.contains(&ReaderEvent::ServiceStopped) {
                print_event(out, &ReaderEvent::ServiceStopped, true)?;
            }
            out.flush()?;
            told_waiting = true;
        }
        if watcher.service_running() {
            told_waiting = false;
        }
        for event in &events {
            print_event(out, event, options.json)?;
            seen += 1;
            if options.events.is_some_and(|limit| seen >= limit) {
                return Ok(());
            }
        }
        if events.iter().any(ReaderEvent::changes_cards) {
            let tokens = inventory::scan(&modules, &mut reports, &ScanOptions::default());
            print_tokens(out, &tokens_json(&tokens), options.json)?;
        }
        out.flush()?;
    }
}

/// As [`watch`], from an agent's event stream (`subscribe`): its replay of the current state,
/// then reader and tokens events as they come; other events (sign-ins) are not printed. Ends
/// with the stream, or once `options.events` reader events were printed.
pub fn follow<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
    events: impl Iterator<Item = Result<Value, E>>,
    options: WatchOptions,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut seen = 0usize;
    for value in events {
        let value = value.map_err(std::io::Error::other)?;
        if value["event"] == "tokens" {
            print_tokens(out, &value, options.json)?;
        } else if let Some(event) = event_from_json(&value) {
            if options.json {
                json_line(out, &value)?;
            } else {
                print_event(out, &event, false)?;
            }
            seen += 1;
            if options.events.is_some_and(|limit| seen >= limit) {
                break;
            }
        }
        out.flush()?;
    }
    out.flush()
}

fn print_event(out: &mut impl Write, event: &ReaderEvent, json: bool) -> std::io::Result<()> {
    if json {
        json_line(out, &event_json(event))
    } else {
        writeln!(out, "{} {}", now(), printable(&event.to_string()))
    }
}

/// A tokens event (as [`tokens_json`] writes it): as it is, or one line for a person.
fn print_tokens(out: &mut impl Write, tokens: &Value, json: bool) -> std::io::Result<()> {
    if json {
        return json_line(out, tokens);
    }
    let list = tokens["tokens"].as_array().map_or(&[][..], Vec::as_slice);
    if list.is_empty() {
        return writeln!(out, "{} tokens now: none", now());
    }
    let names: Vec<String> = list
        .iter()
        .map(|t| {
            format!(
                "`{}` ({} of {} certificates can sign in)",
                printable(t["label"].as_str().unwrap_or_default()),
                t["eligible"],
                t["certificates"]
            )
        })
        .collect();
    writeln!(out, "{} tokens now: {}", now(), names.join(", "))
}

/// One JSON document on one line.
fn json_line(out: &mut impl Write, value: &Value) -> std::io::Result<()> {
    printable::write_json(&mut *out, value, false)?;
    writeln!(out)
}
