//! moved: choosing a certificate is `crate::picker::select` now. This keeps the old path, and a
//! `select` that answers with a [`SignInError`], for src/bin until the merge.

use super::error::SignInError;
use crate::token::inventory::TokenReport;

pub use crate::picker::select::{describe_candidate, Chooser, SelectOptions, Selection}; // moved: old path kept for src/bin until the merge

/// [`crate::picker::select::select`], its error as a sign-in's.
// moved: old path and error type kept for src/bin until the merge
pub fn select(
    tokens: &[TokenReport],
    options: &SelectOptions,
    chooser: &mut dyn Chooser,
) -> Result<Selection, SignInError> {
    Ok(crate::picker::select::select(tokens, options, chooser)?)
}
