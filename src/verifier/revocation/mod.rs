//! Revocation: CRLs fetched, verified and indexed by the verifier itself (not rustls-webpki's CRL
//! path, which rejects delta CRLs and lets a stale CRL hide a revocation), merged with their
//! deltas, and checked for every CA up the chain, failing closed.

pub mod cache;
pub mod check;
pub mod crl;
pub mod der_walk;
pub mod high_water;
pub mod index;
pub mod source;
