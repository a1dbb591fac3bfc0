//! A token holding a certificate object whose DER does not parse, and a certificate without its
//! key: `certauth list` shows both as unusable with the reason, and lists the rest as usual.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, CertificateType, ObjectClass};
use cryptoki::session::UserType;
use secrecy::SecretString;

#[test]
fn broken_and_keyless_certificates_are_listed_as_unusable() {
    let w = support::woodgrove::provisioned_woodgrove();
    let label = "Woodgrove Alice";
    {
        let pkcs11 = Pkcs11::new(w.module()).unwrap();
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        let slot = pkcs11
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| pkcs11.get_token_info(*s).unwrap().label() == label)
            .unwrap();
        let session = pkcs11.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&SecretString::from(w.pin(label))))
            .unwrap();
        let good = std::fs::read_to_string(w.fixture.path("pki/users/alice-p384.pem")).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(good.as_bytes()).unwrap();
        for (id, object_label, value) in [
            (0x90u8, "garbage", b"\x30\x03not a certificate".to_vec()),
            (0x91u8, "orphan", pem.contents.clone()),
        ] {
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::CertificateType(CertificateType::X_509),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Id(vec![id]),
                    Attribute::Label(object_label.as_bytes().to_vec()),
                    // SoftHSM insists on a subject; an empty Name will do.
                    Attribute::Subject(vec![0x30, 0x00]),
                    Attribute::Value(value),
                ])
                .unwrap();
        }
        drop(session);
        pkcs11.finalize().unwrap();
    }

    let document =
        support::json_stdout(&w.list(&["--json", "--all"], Some(label)).output().unwrap());
    let certificates = document["tokens"][0]["certificates"].as_array().unwrap();
    assert_eq!(
        certificates.len(),
        6,
        "the four fixture certificates and the two added"
    );
    let find = |label: &str| certificates.iter().find(|c| c["label"] == label).unwrap();

    let garbage = find("garbage");
    assert_eq!(garbage["eligible"], false);
    assert_eq!(garbage["ineligibleReasons"][0]["code"], "unparsable");
    assert!(garbage["parseError"]
        .as_str()
        .unwrap()
        .starts_with("not a valid X.509 certificate"));
    assert_eq!(garbage["subject"], serde_json::Value::Null);

    let orphan = find("orphan");
    assert_eq!(orphan["privateKey"]["presence"], "absent");
    assert_eq!(orphan["eligible"], false);
    assert_eq!(orphan["ineligibleReasons"][0]["code"], "noPrivateKey");
    assert_eq!(orphan["signMechanisms"], serde_json::json!([]));

    assert_eq!(find("alice-rsa2048-mfa")["eligible"], true);

    let table = w
        .certauth()
        .args(["list", "--all", "--no-p11-kit", "--module"])
        .arg(w.module())
        .args(["--token", label, "--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", w.pin(label))
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("`garbage` (unreadable)"), "{text}");
    assert!(
        text.contains("no: the certificate does not parse"),
        "{text}"
    );
    assert!(
        text.contains("no: the token holds no private key for it"),
        "{text}"
    );
}
