//! `certauth watch`: reader and card events as they happen, and the tokens after each card event.
//! Reader names and token labels come from drivers and tokens: printed through `printable`.

use std::io::Write;

use certauth::listing::{event_json, now, tokens_json, WATCH_POLL};
use certauth::printable::{self, printable};
use certauth::reader::{ReaderEvent, Watcher};
use certauth::token::inventory::{self, ScanOptions, TokenReport};
use serde_json::Value;

use crate::cli::WatchArgs;

pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    let (modules, mut reports) = crate::tokens::load(&args.modules)?;
    let mut watcher = Watcher::new();
    let mut out = std::io::stdout().lock();
    let mut seen = 0usize;
    let mut told_waiting = false;
    loop {
        let events = watcher.poll(WATCH_POLL);
        if !watcher.service_running() && !told_waiting {
            // Said once while it is down; as JSON, unless the watcher just said it stopped.
            if !args.json {
                writeln!(
                    out,
                    "{} the smart card service (pcscd) is not running; waiting for it to start",
                    now()
                )?;
            } else if !events.contains(&ReaderEvent::ServiceStopped) {
                print_event(&mut out, &ReaderEvent::ServiceStopped, true)?;
            }
            out.flush()?;
            told_waiting = true;
        }
        if watcher.service_running() {
            told_waiting = false;
        }
        for event in &events {
            print_event(&mut out, event, args.json)?;
            seen += 1;
            if args.events.is_some_and(|limit| seen >= limit) {
                return Ok(());
            }
        }
        if events.iter().any(ReaderEvent::changes_cards) {
            let tokens = inventory::scan(&modules, &mut reports, &ScanOptions::default());
            print_tokens(&mut out, &tokens, args.json)?;
        }
        out.flush()?;
    }
}

fn print_event(out: &mut impl Write, event: &ReaderEvent, json: bool) -> std::io::Result<()> {
    if json {
        json_line(out, &event_json(event))
    } else {
        writeln!(out, "{} {}", now(), printable(&event.to_string()))
    }
}

fn print_tokens(out: &mut impl Write, tokens: &[TokenReport], json: bool) -> std::io::Result<()> {
    if json {
        return json_line(out, &tokens_json(tokens));
    }
    if tokens.is_empty() {
        return writeln!(out, "{} tokens now: none", now());
    }
    let names: Vec<String> = tokens
        .iter()
        .map(|t| {
            let eligible = t
                .certificates
                .iter()
                .filter(|c| c.eligibility.is_eligible())
                .count();
            format!(
                "`{}` ({eligible} of {} certificates can sign in)",
                printable(&t.label),
                t.certificates.len()
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
