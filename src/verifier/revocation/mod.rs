//! Revocation: CRLs fetched, verified and indexed by the verifier itself (not rustls-webpki's CRL
//! path, which rejects delta CRLs and lets a stale CRL hide a revocation), merged with their
//! deltas, and checked for every CA up the chain, failing closed. Parsing, verifying and reading
//! one CRL is the shared `pki::crl`; this module holds what the verifier decides around it: where
//! CRLs come from, the cache, the replay marks, and which CAs must have one.

pub mod cache;
pub mod check;
pub mod high_water;
pub mod source;
