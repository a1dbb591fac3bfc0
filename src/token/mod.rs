//! PKCS#11: which modules to load (p11-kit registry, config, environment, command line), loading
//! each in isolation, and the inventory of tokens, certificates and keys.
//!
//! Tokens are identified by module, serial and label, never by slot id: slot ids change when a
//! module re-initialises.

pub mod discovery;
pub mod info;
pub mod inventory;
pub mod module;
pub mod pin_length;
pub mod softhsm_conf;
pub mod uri;
