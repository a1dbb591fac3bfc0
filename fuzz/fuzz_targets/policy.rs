//! The JSON an admin (or an attacker with an admin key) sends: the CBA policy, the user
//! directory and the CA list. Errors are fine; panics are not.
#![no_main]

use certauth::verifier::graph_files::{load_directory, load_policy};
use certauth::verifier::policy::CbaPolicy;
use certauth::verifier::trust::TrustStore;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = CbaPolicy::from_json(data, "fuzz");
    let _ = load_policy(data, "fuzz");
    let _ = load_directory(data, "fuzz", Some((data, "fuzz")));
    let _ = TrustStore::from_json(data, "fuzz");
});
