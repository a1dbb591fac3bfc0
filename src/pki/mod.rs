//! What both halves verify, and nothing about who is trusted: chain building with name chaining
//! ([`chain`]), CRLs ([`crl`]) and sign-in tokens against a JWKS ([`jwt`]). The verifier decides
//! with these which CAs, CRLs and keys count; the agent side (the PAM helper offline, `oidc-login`)
//! checks with them what it caches or is handed.
//!
//! It builds on [`crate::x509`] only, and imports neither half: no `verifier`, and none of `token`,
//! `reader`, `pin`, `picker`, `tls`, `signin` or `agent` (held by `tests/architecture.rs`).

pub mod chain;
pub mod crl;
pub mod jwt;
