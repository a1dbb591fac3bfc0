//! `certauth-verifier api-key`: a new admin API key in an existing state directory.

use std::io::Write;
use std::path::PathBuf;

use super::{CommandError, DATABASE};
use crate::verifier::server::admin::create_api_key;
use crate::verifier::store::{Role, Store};

/// The key to make.
#[derive(Debug)]
pub struct ApiKeyOptions {
    pub state_dir: PathBuf,
    /// A role's Graph name, such as `globalAdministrator`.
    pub role: String,
    pub name: String,
}

/// Makes the key and writes it, the only time it is shown, on `out`.
pub fn create(options: &ApiKeyOptions, out: &mut impl Write) -> Result<(), CommandError> {
    let role = Role::parse(&options.role).ok_or_else(|| CommandError::UnknownRole {
        role: options.role.clone(),
    })?;
    if !options.state_dir.is_dir() {
        return Err(CommandError::NoStateDirectory {
            dir: options.state_dir.clone(),
        });
    }
    let store = Store::open(&options.state_dir.join(DATABASE))?;
    let key = create_api_key(&store, role, &options.name)?;
    writeln!(out, "{}", key.expose())?;
    Ok(())
}
