//! `certauth-verifier tenant export` and `tenant import`: a state directory's tenant to and from a
//! folder of Graph GET responses.

use std::path::Path;

use anyhow::{anyhow, Context};
use certauth::verifier::store::Store;
use certauth::verifier::tenant_files;

use crate::cli::TenantCommand;
use crate::serve::DATABASE;

pub fn run(command: &TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Export { state_dir, out } => export(state_dir, out),
        TenantCommand::Import {
            state_dir,
            replace,
            input,
        } => import(state_dir, input, *replace),
    }
}

fn export(state_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let database = state_dir.join(DATABASE);
    if !database.is_file() {
        return Err(anyhow!(
            "{} holds no verifier state ({} is missing)",
            state_dir.display(),
            DATABASE
        ));
    }
    let store = Store::open(&database)?;
    let files = tenant_files::export(&store)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (name, document) in files {
        let path = out.join(name);
        let mut text = serde_json::to_vec_pretty(&document)?;
        text.push(b'\n');
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn import(state_dir: &Path, input: &Path, replace: bool) -> anyhow::Result<()> {
    // Read and checked whole before the state is opened.
    let files = tenant_files::read(input)?;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let store = Store::open(&state_dir.join(DATABASE))?;
    store.replace_tenant(&files, replace)?;
    println!(
        "imported into {}: the policy, {} CAs, {} users, {} groups",
        state_dir.display(),
        files.cas.len(),
        files.directory.users.len(),
        files.directory.groups.len()
    );
    Ok(())
}
