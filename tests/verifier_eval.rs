//! `certauth-verifier eval` as an admin runs it, offline, on the fixture PKI and the seed's Step 5
//! policy: the decision, its explanation, JSON, exit codes, and clear errors for bad input.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::process::{Command, Output};

use support::eval::with_fixture_crls;
use support::text;
use support::woodgrove::{woodgrove, Woodgrove};

/// `certauth-verifier eval --offline` of the fixture certificate `cert` for `username` under the
/// seed's Step 5 policy, with the fixture's CAs and users and no CRL.
fn eval_without_crls(w: &Woodgrove, cert: &str, username: &str) -> Command {
    let f = |p: &str| w.fixture.path(p).display().to_string();
    let mut command = support::programs::verifier();
    command
        .args([
            "eval",
            "--policy",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/softhsm-fixtures/policy-step5.json"
            ),
        ])
        .args(["--cas", &f(&w.fixture.manifest.trusted_authorities)])
        .args(["--users", &f("fixture.json")])
        .args(["--cert", &f(&format!("pki/users/{cert}.pem"))])
        .args(["--username", username, "--offline"]);
    command
}

/// [`eval_without_crls`] with every trusted CA's base and delta CRL, and `extra` arguments.
fn eval(w: &Woodgrove, cert: &str, username: &str, extra: &[&str]) -> Output {
    let mut command = eval_without_crls(w, cert, username);
    with_fixture_crls(w, &mut command);
    command.args(extra).output().unwrap()
}

#[test]
fn step5_multifactor_and_single_factor() {
    let w = woodgrove();
    let mfa = eval(w, "alice-rsa2048-mfa", "alice@woodgrove.com", &[]);
    assert_eq!(mfa.status.code(), Some(0), "{}", text(&mfa.stderr));
    let out = text(&mfa.stdout);
    assert!(
        out.starts_with("SIGNED IN as alice@woodgrove.com (multiFactor)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  rule              policyOID 1.2.3.4 -> multiFactor (low affinity required)"
        ),
        "{out}"
    );
    assert!(out.contains("How it was decided:"), "{out}");

    let sf = eval(w, "alice-p384", "alice@woodgrove.com", &["--json"]);
    assert_eq!(sf.status.code(), Some(0));
    let decision: serde_json::Value = serde_json::from_slice(&sf.stdout).unwrap();
    assert_eq!(decision["result"], "success");
    assert_eq!(decision["authenticationStrength"], "singleFactor");
    assert_eq!(
        decision["authenticationRule"]["x509CertificateRuleType"],
        "issuerSubject"
    );
    assert_eq!(
        decision["usernameBinding"]["x509CertificateField"],
        "PrincipalName"
    );
    assert_eq!(decision["revocation"][0]["crlNumber"], "41");
    assert_eq!(decision["revocation"][0]["deltaCrlNumber"], "42");
}

#[test]
fn a_refusal_exits_3_with_the_code_and_the_reason() {
    let w = woodgrove();
    let revoked = eval(w, "bob-revoked", "bob@woodgrove.com", &[]);
    assert_eq!(revoked.status.code(), Some(3));
    let out = text(&revoked.stdout);
    assert!(
        out.starts_with("REFUSED: AADSTS500171: certificate has been revoked"),
        "{out}"
    );
    assert!(out.contains("is on the base CRL of"), "{out}");
}

#[test]
fn offline_without_a_crl_fails_closed() {
    let w = woodgrove();
    let output = eval_without_crls(w, "alice-p384", "alice@woodgrove.com")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        text(&output.stdout).starts_with("REFUSED: AADSTS500173: base CRL of `C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01`: no base CRL was given"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn bad_input_is_named_never_a_panic() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/softhsm-fixtures/policy-step5.json"
        ))
        .unwrap()
        .replacen(
            "\"identifier\": \"1.2.3.4\"",
            "\"identifier\": \"All Issuance Policies\"",
            1,
        ),
    )
    .unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let step5 = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/softhsm-fixtures/policy-step5.json"
    ));
    let good_cert = w.fixture.path("pki/users/alice-p384.pem");
    for (policy, cert, expected) in [
        (&policy, &good_cert, "field `authenticationModeConfiguration.rules[1].identifier`: `All Issuance Policies` is not a policy OID in dotted form"),
        (&step5, &junk, "REFUSED: AADSTS50017: the certificate does not parse"),
    ] {
        let output = support::programs::verifier()
            .arg("eval")
            .arg("--policy")
            .arg(policy)
            .arg("--cas")
            .arg(w.fixture.path(&w.fixture.manifest.trusted_authorities))
            .arg("--users")
            .arg(w.fixture.path("fixture.json"))
            .arg("--cert")
            .arg(cert)
            .args(["--username", "alice@woodgrove.com", "--offline"])
            .output()
            .unwrap();
        let all = text(&output.stdout) + &text(&output.stderr);
        assert!(all.contains(expected), "{all}");
        assert!(!all.contains("panicked"), "{all}");
        assert_ne!(output.status.code(), Some(0));
    }
}

/// `eval` holds name chaining as the service does (tests/verifier_service.rs): a leaf signed with
/// the issuing CA's key and carrying its AKI, but naming the root as its issuer, gets neither the
/// root's multifactor rule nor a binding pinned to the root's name.
#[test]
fn trap_a_forged_issuer_name_is_refused_by_eval() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = support::software_cert::forged_issuer_alice(w, dir.path());
    let mut policy: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/softhsm-fixtures/policy-step5.json"
    )))
    .unwrap();
    policy["certificateUserBindings"]
        .as_array_mut()
        .unwrap()
        .push(
            serde_json::json!({"x509CertificateField": "IssuerAndSerialNumber",
            "userProperty": "certificateUserIds", "priority": 4, "trustAffinityLevel": "high"}),
        );
    policy["authenticationModeConfiguration"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(
            serde_json::json!({"x509CertificateRuleType": "issuerSubject",
            "identifier": "CN=Woodgrove Root CA, O=Woodgrove Bank, C=US",
            "x509CertificateAuthenticationMode": "x509CertificateMultiFactor",
            "x509CertificateRequiredAffinityLevel": "high"}),
        );
    let policy_file = dir.path().join("policy.json");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    let mut users: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.fixture.path("fixture.json")).unwrap()).unwrap();
    for user in users["users"].as_array_mut().unwrap() {
        if user["userPrincipalName"] == "alice@woodgrove.com" {
            user["authorizationInfo"] = serde_json::json!({"certificateUserIds": [
                support::software_cert::FORGED_PIN]});
        }
    }
    let users_file = dir.path().join("users.json");
    std::fs::write(&users_file, users.to_string()).unwrap();

    let mut command = support::programs::verifier();
    command
        .arg("eval")
        .arg("--policy")
        .arg(&policy_file)
        .arg("--cas")
        .arg(w.fixture.path(&w.fixture.manifest.trusted_authorities))
        .arg("--users")
        .arg(&users_file)
        .arg("--cert")
        .arg(&cert)
        .args(["--username", "alice@woodgrove.com", "--offline", "--json"]);
    with_fixture_crls(w, &mut command);
    let out = command.output().unwrap();
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(out.status.code(), Some(3), "{decision}");
    assert_eq!(decision["result"], "failure", "{decision}");
    assert_eq!(decision["errorCode"], "AADSTS50017", "{decision}");
}
