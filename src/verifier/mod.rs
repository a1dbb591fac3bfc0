//! The reference verifier: decides, as Entra CBA would, whether a certificate signs a user in and how
//! strongly. It never imports the agent's token, reader, PIN or picker modules.

pub mod policy;
pub mod revocation;
