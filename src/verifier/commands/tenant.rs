//! `certauth-verifier tenant export` and `tenant import`: a state directory's tenant to and from a
//! folder of Graph GET responses.

use std::io::Write;
use std::path::PathBuf;

use super::{CommandError, DATABASE};
use crate::verifier::store::{Store, StoreError};
use crate::verifier::tenant_files::{
    self, CAS_CONTEXT, CAS_FILE, GROUPS_CONTEXT, GROUPS_FILE, POLICY_FILE, USERS_CONTEXT,
    USERS_FILE,
};
use serde_json::{json, Value};

/// What `tenant export` writes, and where.
#[derive(Debug)]
pub struct ExportOptions {
    pub state_dir: PathBuf,
    pub out: PathBuf,
}

/// What `tenant import` reads, and into which state.
#[derive(Debug)]
pub struct ImportOptions {
    pub state_dir: PathBuf,
    pub input: PathBuf,
    /// Whether a state that already holds a tenant may be overwritten.
    pub replace: bool,
}

/// Writes the tenant's files and names each on `out`.
pub fn export(options: &ExportOptions, out: &mut impl Write) -> Result<(), CommandError> {
    let database = options.state_dir.join(DATABASE);
    if !database.is_file() {
        return Err(CommandError::NoVerifierState {
            dir: options.state_dir.clone(),
        });
    }
    let store = Store::open(&database)?;
    let files = documents(&store)?;
    std::fs::create_dir_all(&options.out).map_err(CommandError::create(&options.out))?;
    for (name, document) in files {
        let path = options.out.join(name);
        let mut text = serde_json::to_vec_pretty(&document)?;
        text.push(b'\n');
        if let Err(source) = std::fs::write(&path, text) {
            return Err(CommandError::Write { path, source });
        }
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

/// Reads and checks the files whole, then replaces the state's tenant with them.
pub fn import(options: &ImportOptions, out: &mut impl Write) -> Result<(), CommandError> {
    let files = tenant_files::read(&options.input)?;
    let state_dir = &options.state_dir;
    std::fs::create_dir_all(state_dir).map_err(CommandError::create(state_dir))?;
    let store = Store::open(&state_dir.join(DATABASE))?;
    store.replace_tenant(&files, options.replace)?;
    writeln!(
        out,
        "imported into {}: the policy, {} CAs, {} users, {} groups",
        state_dir.display(),
        files.cas.len(),
        files.directory.users.len(),
        files.directory.groups.len()
    )?;
    Ok(())
}

/// The store's tenant as `(file name, document)`, each the GET response an admin would save.
fn documents(store: &Store) -> Result<Vec<(&'static str, Value)>, StoreError> {
    Ok(vec![
        (POLICY_FILE, serde_json::to_value(store.policy()?)?),
        (
            CAS_FILE,
            json!({"@odata.context": CAS_CONTEXT, "value": store.certificate_authorities()?}),
        ),
        (
            USERS_FILE,
            json!({"@odata.context": USERS_CONTEXT, "value": store.users()?}),
        ),
        (
            GROUPS_FILE,
            json!({"@odata.context": GROUPS_CONTEXT, "value": store.groups()?}),
        ),
    ])
}
