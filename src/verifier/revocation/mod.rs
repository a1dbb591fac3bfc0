//! Revocation: CRLs parsed, verified and indexed by the verifier itself (not rustls-webpki's CRL
//! path, which rejects delta CRLs and lets a stale CRL hide a revocation).

pub mod crl;
