//! `certauth list`: the certificates on every token, as a table grouped by reader and token, or as
//! JSON in the schema `docs/list-json.md` documents. What a token or a reader says of itself is
//! shown through `printable`; the JSON keeps it exact.

use std::io::Write;

use anyhow::anyhow;
use certauth::listing;
use certauth::printable;
use certauth::reader;
use certauth::token::inventory::{self, Login, ScanOptions};
use serde_json::json;

use crate::cli::ListArgs;

pub fn run(args: &ListArgs) -> anyhow::Result<()> {
    if let Some(document) = from_agent(args)? {
        let mut out = std::io::stdout().lock();
        printable::write_json(&mut out, &document, true)?;
        writeln!(out)?;
        out.flush()?;
        return listing::critical_failure(&document).map_or(Ok(()), |e| Err(anyhow!(e)));
    }
    let (modules, mut reports) = crate::tokens::load(&args.modules)?;
    let login = match (&args.pin, &args.token) {
        (Some(source), Some(label)) => Some(Login {
            token_label: label.clone(),
            pin: source.read()?,
        }),
        _ => None,
    };
    let options = ScanOptions {
        login,
        ..ScanOptions::default()
    };
    let mut tokens = inventory::scan(&modules, &mut reports, &options);
    if let Some(label) = &args.token {
        listing::keep_only(&mut tokens, label).map_err(|e| anyhow!(e))?;
    }
    let pcsc = reader::status();
    let mut out = std::io::stdout().lock();
    if args.json {
        let document = listing::to_json(
            listing::Source::Local,
            &pcsc,
            &reports,
            &tokens,
            args.all,
            options.now,
        );
        printable::write_json(&mut out, &document, true)?;
        writeln!(out)?;
    } else {
        listing::text::print_human(&mut out, &pcsc, &reports, &tokens, args.all)?;
    }
    out.flush()?;
    if let Some(module) = reports.iter().find(|m| m.critical && m.error.is_some()) {
        return Err(anyhow!(
            "the PKCS#11 module {} is marked critical in {} and could not be used: {}",
            module.path.display(),
            module.origin,
            module.error.as_deref().unwrap_or_default()
        ));
    }
    if let Some(problem) = tokens.iter().find_map(|t| {
        t.login_problem
            .as_ref()
            .map(|p| format!("could not log in to `{}`: {p}", t.label))
    }) {
        return Err(anyhow!(problem));
    }
    Ok(())
}

/// The running agent's `list --json` document, when the agent can answer for this command: JSON
/// output, no module options of its own, no login. `None` means list here.
fn from_agent(args: &ListArgs) -> anyhow::Result<Option<serde_json::Value>> {
    let local_only = !args.json
        || args.no_agent
        || args.token.is_some()
        || args.pin.is_some()
        || !args.modules.modules.is_empty()
        || args.modules.no_p11_kit;
    if local_only {
        return Ok(None);
    }
    let Some(mut agent) = crate::agent_client::running(&args.agent) else {
        return Ok(None);
    };
    let document = agent.call("list", json!({ "all": args.all }))?;
    Ok(Some(document))
}
