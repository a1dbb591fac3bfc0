//! CRL parsers on arbitrary bytes: the lean DER walker the verifier indexes with, the full
//! verify-and-index against a CA, and the display parser. None may panic.
#![no_main]

use std::sync::OnceLock;

use certauth::pki::crl::{self, der_walk, RevocationList};
use certauth::verifier::trust::{TrustStore, TrustedCa};
use libfuzzer_sys::fuzz_target;

/// A fixed CA, so signature checks run on the fuzzed CRLs.
fn ca() -> &'static TrustedCa {
    static CA: OnceLock<TrustedCa> = OnceLock::new();
    CA.get_or_init(|| {
        let pem = include_str!("../seed-ca.pem");
        let dir = std::env::temp_dir().join("certauth-fuzz-ca.pem");
        std::fs::write(&dir, pem).unwrap();
        TrustStore::load(&dir).unwrap().cas()[0].clone()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = der_walk::split(data) {
        for entry in der_walk::revoked_entries(raw.revoked) {
            let _ = entry;
        }
        for ext in der_walk::extensions(raw.extensions) {
            let _ = ext;
        }
    }
    let _ = RevocationList::verify_and_index(data, &ca().info);
    let _ = crl::parse_crl(data);
});
