//! `certauth-verifier eval` over the Woodgrove fixture, and its verdicts in the form the service's
//! answers are compared in.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

use super::text;
use super::woodgrove::Woodgrove;

pub const STEP5: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/softhsm-fixtures/policy-step5.json"
);

/// `eval --offline --json` of the fixture certificate `cert` for `username` with the fixture's
/// CRLs, and `files` as (flag, path); `--policy` is Step 5 and `--cas` the fixture's unless
/// `files` gives them.
pub fn eval(w: &Woodgrove, cert: &str, username: &str, files: &[(&str, &Path)]) -> Output {
    let f = |p: &str| w.fixture.path(p);
    let mut command = super::programs::verifier();
    command.arg("eval");
    if !files.iter().any(|(flag, _)| *flag == "--cas") {
        command
            .arg("--cas")
            .arg(f(&w.fixture.manifest.trusted_authorities));
    }
    command
        .arg("--cert")
        .arg(f(&format!("pki/users/{cert}.pem")))
        .args(["--username", username, "--offline", "--json"]);
    if !files.iter().any(|(flag, _)| *flag == "--policy") {
        command.args(["--policy", STEP5]);
    }
    for (flag, path) in files {
        command.arg(flag).arg(path);
    }
    with_fixture_crls(w, &mut command);
    command.output().unwrap()
}

/// `--crl` for every trusted CA's base and delta CRL.
pub fn with_fixture_crls(w: &Woodgrove, command: &mut Command) {
    let f = |p: &str| w.fixture.path(p);
    for ca in w
        .fixture
        .manifest
        .authorities
        .iter()
        .filter(|ca| ca.trusted)
    {
        command.arg("--crl").arg(f(&ca.crl.file));
        if let Some(delta) = &ca.delta_crl {
            command.arg("--crl").arg(f(&delta.file));
        }
    }
}

/// What a decision comes to: signed in or not, the error code and the strength.
pub fn verdict(out: &Output) -> Value {
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no decision (exit {:?}): {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let signed_in = decision["result"] == "success";
    assert_eq!(
        out.status.code(),
        Some(if signed_in { 0 } else { 3 }),
        "{decision}"
    );
    json!({
        "signedIn": signed_in,
        "errorCode": decision["errorCode"],
        "authenticationStrength": decision["authenticationStrength"],
    })
}

/// The service's answer to a sign-in (`Verifier::sign_in`) in [`verdict`]'s form.
pub fn service_verdict(code: i32, answer: &Value) -> Value {
    json!({
        "signedIn": code == 0,
        "errorCode": answer["errorCode"],
        "authenticationStrength": answer["authenticationStrength"],
    })
}
