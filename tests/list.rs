//! `certauth list` on the Woodgrove fixture's real SoftHSM tokens: every certificate with the right
//! facts and eligibility, p11-kit discovery from a registry directory, and broken modules beside
//! good ones.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::woodgrove::{woodgrove, Woodgrove};

/// `certauth list --json --all` for one token, logged in, with only the fixture's module.
fn list_logged_in(w: &Woodgrove, label: &str) -> Value {
    support::json_stdout(&w.list(&["--json", "--all"], Some(label)).output().unwrap())
}

/// `certauth list --all` for one token, logged in: the table it prints, once it succeeded.
fn table_logged_in(w: &Woodgrove, label: &str) -> String {
    let output = w.list(&["--all"], Some(label)).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

fn certificates_by_label(token: &Value) -> BTreeMap<String, Value> {
    token["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["label"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

fn reason_codes(cert: &Value) -> Vec<String> {
    cert["ineligibleReasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_json_reports_every_certificate_with_its_facts_and_eligibility() {
    let w = woodgrove();
    // Revocation and trust are the server's call: revoked and untrusted-CA certificates are
    // eligible here. Expired, not-yet-valid and logon-only ones are not.
    let expected_reasons: BTreeMap<&str, Vec<&str>> = [
        ("alice-rsa2048-mfa", vec![]),
        ("alice-p384", vec![]),
        ("alice-expired", vec!["expired"]),
        ("alice-smartcard-logon", vec!["smartcardLogonOnly"]),
        ("bob-p256-rfc822", vec![]),
        ("bob-rsa3072", vec![]),
        ("bob-rsa2048-pin-each-use", vec![]),
        ("bob-revoked", vec![]),
        ("bob-delta-revoked", vec![]),
        ("bob-not-yet-valid", vec!["notYetValid"]),
        ("bob-untrusted-ca", vec![]),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for token in &w.fixture.manifest.tokens {
        let document = list_logged_in(w, &token.label);
        assert_eq!(document["schema"], "certauth.list/1");
        assert_eq!(document["source"], "local");
        let tokens = document["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 1, "--token keeps one token");
        let listed = &tokens[0];
        assert_eq!(listed["label"], token.label.as_str());
        assert_eq!(listed["serial"], token.serial.as_str());
        assert_eq!(listed["loggedIn"], true);
        assert_eq!(listed["flags"]["loginRequired"], true);
        let certificates = certificates_by_label(listed);
        let names: Vec<&str> = token.certificates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            certificates.keys().map(String::as_str).collect::<Vec<_>>(),
            {
                let mut sorted = names.clone();
                sorted.sort_unstable();
                sorted
            }
        );
        for expected in &token.certificates {
            let cert = &certificates[&expected.name];
            let name = &expected.name;
            assert_eq!(cert["id"], expected.id.as_str(), "{name}");
            assert_eq!(cert["serialNumber"], expected.serial.as_str(), "{name}");
            assert_eq!(cert["subject"], expected.subject.as_str(), "{name}");
            assert_eq!(cert["sha256"], expected.sha256.as_str(), "{name}");
            assert_eq!(cert["notAfter"], expected.not_after.as_str(), "{name}");
            assert_eq!(cert["privateKey"]["presence"], "present", "{name}");
            assert_eq!(cert["privateKey"]["sensitive"], true, "{name}");
            assert_eq!(cert["privateKey"]["extractable"], false, "{name}");
            let always = w.spec.certificate(name).unwrap().always_authenticate;
            assert_eq!(cert["privateKey"]["alwaysAuthenticate"], always, "{name}");
            let mechanisms: Vec<&str> = cert["signMechanisms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            if expected.key_algorithm.is_rsa() {
                assert_eq!(cert["keyType"], "RSA", "{name}");
                assert_eq!(mechanisms, ["RSA-PKCS1", "RSA-PSS", "RSA-X-509"], "{name}");
            } else {
                assert_eq!(cert["keyType"], "EC", "{name}");
                assert_eq!(mechanisms, ["ECDSA"], "{name}");
            }
            assert_eq!(cert["keySize"], expected.key_algorithm.bits(), "{name}");
            let uri = cert["uri"].as_str().unwrap();
            assert!(uri.starts_with("pkcs11:token="), "{uri}");
            assert!(uri.contains(&format!("serial={};", token.serial)), "{uri}");
            assert!(
                uri.contains(&format!(
                    "object={name};id=%{};type=cert",
                    expected.id.to_uppercase()
                )),
                "{uri}"
            );
            assert_eq!(
                reason_codes(cert),
                expected_reasons[name.as_str()],
                "{name}: {}",
                cert["ineligibleReasons"]
            );
            assert_eq!(cert["eligible"], expected_reasons[name.as_str()].is_empty());
            checked += 1;
        }
    }
    assert_eq!(checked, expected_reasons.len());
}

#[test]
fn the_facts_of_the_seeds_mfa_certificate() {
    let w = woodgrove();
    let document = list_logged_in(w, "Woodgrove Alice");
    let certificates = certificates_by_label(&document["tokens"][0]);
    let cert = &certificates["alice-rsa2048-mfa"];
    assert_eq!(
        cert["issuer"],
        "C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01"
    );
    assert_eq!(
        cert["userPrincipalNames"],
        serde_json::json!(["alice@woodgrove.com"])
    );
    assert_eq!(cert["rfc822Names"], serde_json::json!([]));
    assert_eq!(cert["policies"], serde_json::json!(["1.2.3.4"]));
    assert_eq!(
        cert["extendedKeyUsage"],
        serde_json::json!([{"oid": "1.3.6.1.5.5.7.3.2", "name": "clientAuth"}])
    );
    assert_eq!(cert["keyUsage"], serde_json::json!(["digitalSignature"]));
    let issuing = w.fixture.manifest.authority("woodgrove-issuing").unwrap();
    assert_eq!(
        cert["authorityKeyIdentifier"],
        issuing.subject_key_identifier.as_str()
    );
    let ids: Vec<&str> = cert["certificateUserIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "X509:<PN>alice@woodgrove.com");
    assert!(
        ids.contains(&"X509:<I>C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01<SR>0110")
    );
    let ski = cert["subjectKeyIdentifier"]
        .as_str()
        .unwrap()
        .to_uppercase();
    assert!(ids.contains(&format!("X509:<SKI>{ski}").as_str()));

    let bob = list_logged_in(w, "Woodgrove Bob");
    let certificates = certificates_by_label(&bob["tokens"][0]);
    assert_eq!(
        certificates["bob-p256-rfc822"]["rfc822Names"],
        serde_json::json!(["bob@woodgrove.com"])
    );
    assert_eq!(
        certificates["bob-p256-rfc822"]["userPrincipalNames"],
        serde_json::json!([])
    );
    assert_eq!(
        certificates["bob-p256-rfc822"]["curve"],
        "1.2.840.10045.3.1.7"
    );
}

#[test]
fn without_a_login_private_keys_show_as_needing_one() {
    let w = woodgrove();
    let output = w.list(&["--json"], None).output().unwrap();
    let document = support::json_stdout(&output);
    let tokens = document["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    for token in tokens {
        assert_eq!(token["loggedIn"], false);
        for cert in token["certificates"].as_array().unwrap() {
            // Without --all only certificates that can sign in are listed.
            assert_eq!(cert["eligible"], true, "{}", cert["label"]);
            assert_eq!(cert["privateKey"]["presence"], "needsLogin");
            assert_eq!(cert["privateKey"]["publicKeyPresent"], true);
        }
    }
    let alice = certificates_by_label(&tokens[0]);
    assert_eq!(
        alice.keys().collect::<Vec<_>>(),
        ["alice-p384", "alice-rsa2048-mfa"]
    );

    let table = w.list(&[], None).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("Token `Woodgrove Alice`: SoftHSM project SoftHSM v2"),
        "{text}"
    );
    assert!(
        text.contains("(2 certificate(s) that cannot sign in are hidden; --all shows them)"),
        "{text}"
    );
    assert!(
        text.contains("Private keys on this token are hidden until you log in"),
        "{text}"
    );
}

#[test]
fn the_table_explains_why_a_certificate_cannot_sign_in() {
    let w = woodgrove();
    let text = table_logged_in(w, "Woodgrove Alice");
    let row = |id: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no row {id} in\n{text}"))
            .to_owned()
    };
    assert!(
        row("02 ").contains("Alice Wilber <alice@woodgrove.com>"),
        "{text}"
    );
    assert!(row("02 ").ends_with("yes"), "{text}");
    assert!(row("03 ").contains("no: expired on "), "{text}");
    assert!(
        row("04 ")
            .contains("no: for Windows smartcard logon only: its EKU lacks client authentication"),
        "{text}"
    );
}

/// Bob's two P-256 certificates have the same name and key type; the ISSUER column tells the one
/// from the Fabrikam Rogue CA apart.
#[test]
fn the_table_names_each_certificates_issuer() {
    let w = woodgrove();
    let text = table_logged_in(w, "Woodgrove Bob");
    assert!(
        text.lines()
            .any(|l| l.contains("ISSUER") && l.contains("CERTIFICATE")),
        "{text}"
    );
    let p256: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Bob Kelly <bob@woodgrove.com>") && l.contains("EC P-256"))
        .collect();
    assert_eq!(p256.len(), 2, "{text}");
    assert!(
        p256.iter().any(|l| l.contains("Fabrikam Rogue CA")),
        "{text}"
    );
    assert!(
        p256.iter().any(|l| l.contains("Woodgrove Issuing CA 01")),
        "{text}"
    );
}

#[test]
fn p11kit_registry_in_a_test_directory_finds_softhsm() {
    let w = woodgrove();
    let registry = w.dir.path().join("p11-kit-modules");
    std::fs::create_dir_all(&registry).unwrap();
    // `certauth list --json` finding its modules in the registry directory alone.
    let list_from_registry = || {
        w.certauth()
            .args(["list", "--json"])
            .env("CERTAUTH_P11KIT_MODULE_DIRS", &registry)
            .output()
            .unwrap()
    };
    std::fs::write(
        registry.join("softhsm2.module"),
        format!("# test registry\nmodule: {}\n", w.module().display()),
    )
    .unwrap();
    std::fs::write(
        registry.join("bogus.module"),
        "module: /nonexistent/libbogus-pkcs11.so\n",
    )
    .unwrap();
    std::fs::write(
        registry.join("not-for-us.module"),
        "module: /nonexistent/libother.so\ndisable-in: certauth\n",
    )
    .unwrap();
    let output = list_from_registry();
    let document = support::json_stdout(&output);
    let modules = document["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 2, "{modules:?}");
    let bogus = &modules[0];
    assert_eq!(bogus["path"], "/nonexistent/libbogus-pkcs11.so");
    assert_eq!(bogus["origin"]["kind"], "p11Kit");
    assert_eq!(bogus["error"], "no such file");
    let softhsm = &modules[1];
    assert_eq!(softhsm["path"], w.module().to_str().unwrap());
    assert_eq!(
        softhsm["origin"],
        serde_json::json!({"kind": "p11Kit", "file": registry.join("softhsm2.module")})
    );
    assert_eq!(softhsm["error"], Value::Null);
    assert_eq!(softhsm["library"]["manufacturer"], "SoftHSM");
    let labels: Vec<&str> = document["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Woodgrove Alice", "Woodgrove Bob"]);

    // A failing module that p11-kit marks critical fails the command, after the listing.
    std::fs::write(
        registry.join("bogus.module"),
        "module: /nonexistent/libbogus-pkcs11.so\ncritical: yes\n",
    )
    .unwrap();
    let output = list_from_registry();
    assert_eq!(output.status.code(), Some(1));
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["modules"][0]["critical"], true);
    assert_eq!(document["tokens"].as_array().unwrap().len(), 2);
    assert_eq!(
        String::from_utf8(output.stderr).unwrap().trim_end(),
        format!(
            "certauth: error: the PKCS#11 module /nonexistent/libbogus-pkcs11.so is marked critical in p11-kit {} and could not be used: no such file",
            registry.join("bogus.module").display()
        )
    );
}

#[test]
fn a_bogus_module_beside_a_good_one_still_lists_the_good_one() {
    let w = woodgrove();
    let not_pkcs11 = w.dir.path().join("not-a-module.so");
    std::fs::write(&not_pkcs11, b"this is no shared library").unwrap();
    let output = w
        .certauth()
        .args(["list", "--no-p11-kit", "--module"])
        .arg(&not_pkcs11)
        .arg("--module")
        .arg(w.module())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Token `Woodgrove Alice`"), "{text}");
    assert!(text.contains("Token `Woodgrove Bob`"), "{text}");
    let failures = text
        .split("Modules that could not be used:")
        .nth(1)
        .unwrap();
    assert!(
        failures.contains(&format!(
            "{} (from --module): not a loadable PKCS#11 library:",
            not_pkcs11.display()
        )),
        "{text}"
    );
}

#[test]
fn a_wrong_pin_is_reported_and_fails_the_command() {
    let w = woodgrove();
    let output = w
        .list(&[], Some("Woodgrove Bob"))
        .env("TOKEN_PIN", "000000")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "certauth: error: could not log in to `Woodgrove Bob`: wrong PIN"
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("not logged in: wrong PIN"), "{text}");
    assert!(!text.contains("000000") && !stderr.contains("000000"));
}

#[test]
fn an_unknown_token_label_names_the_tokens_present() {
    let w = woodgrove();
    let output = w
        .list(&[], None)
        .args(["--token", "Contoso"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap().trim_end(),
        "certauth: error: no token labelled `Contoso`; tokens present: `Woodgrove Alice`, `Woodgrove Bob`"
    );
}

#[test]
fn a_pin_needs_a_token() {
    let w = woodgrove();
    let output = w
        .certauth()
        .args(["list", "--pin", "env:TOKEN_PIN"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr)
        .unwrap()
        .contains("--token <LABEL>"));
}
