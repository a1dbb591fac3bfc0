//! The Woodgrove fixture provisioned onto real SoftHSM tokens, then read back through cryptoki: every
//! certificate has its private key, keys are sensitive and never extractable, signatures made on the
//! token verify against the certificates, and the CRLs revoke exactly what the spec says.
//!
//! SoftHSM keeps one token directory per process, so every test here shares one fixture and one
//! loaded module.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use certauth::fixtures::spec::{serial_bytes, CrlList, KeyAlgorithm, Spec};
use certauth::fixtures::{provision, Fixture, FixtureError, ProvisionOptions, Provisioning};
use certauth::pki::crl::{parse_crl, verify_crl_signature};
use certauth::x509::hex;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

mod support;

struct Shared {
    spec: &'static Spec,
    fixture: &'static Fixture,
    pkcs11: Pkcs11,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let woodgrove = support::woodgrove::provisioned_woodgrove();
        // Provisioning pointed SOFTHSM2_CONF at the fixture; reading back uses the same module.
        assert_eq!(
            std::env::var_os("SOFTHSM2_CONF").unwrap(),
            woodgrove.fixture.softhsm2_conf().as_os_str()
        );
        let pkcs11 = Pkcs11::new(woodgrove.module()).unwrap();
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .unwrap();
        Shared {
            spec: &woodgrove.spec,
            fixture: &woodgrove.fixture,
            pkcs11,
        }
    })
}

/// A session on the token with this label, its user logged in.
fn logged_in_session(label: &str) -> Session {
    let shared = shared();
    let slot = shared
        .pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| {
            let info = shared.pkcs11.get_token_info(*slot).unwrap();
            info.token_initialized() && info.label() == label
        })
        .unwrap_or_else(|| panic!("no token labelled {label}"));
    let session = shared.pkcs11.open_ro_session(slot).unwrap();
    let pin = &shared.spec.token(label).unwrap().pin;
    match session.login(UserType::User, Some(pin)) {
        // Login state is shared by every session of this process on the token.
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("login to {label}: {e}"),
    }
    session
}

/// Certificate DER by CKA_ID and CKA_LABEL.
fn certificates_on(session: &Session) -> BTreeMap<Vec<u8>, (String, Vec<u8>)> {
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .unwrap();
    handles
        .into_iter()
        .map(|h| {
            let (mut id, mut label, mut value) = (None, None, None);
            for attribute in session
                .get_attributes(
                    h,
                    &[
                        AttributeType::Id,
                        AttributeType::Label,
                        AttributeType::Value,
                    ],
                )
                .unwrap()
            {
                match attribute {
                    Attribute::Id(v) => id = Some(v),
                    Attribute::Label(v) => label = Some(String::from_utf8(v).unwrap()),
                    Attribute::Value(v) => value = Some(v),
                    _ => {}
                }
            }
            (id.unwrap(), (label.unwrap(), value.unwrap()))
        })
        .collect()
}

fn private_key(session: &Session, id: &[u8]) -> cryptoki::object::ObjectHandle {
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ])
        .unwrap();
    assert_eq!(
        keys.len(),
        1,
        "exactly one private key with CKA_ID {}",
        hex(id)
    );
    keys[0]
}

#[test]
fn every_token_lists_its_certificates_each_with_a_private_key() {
    let shared = shared();
    for token in &shared.fixture.manifest.tokens {
        let session = logged_in_session(&token.label);
        let on_token = certificates_on(&session);
        let expected: BTreeSet<&str> = shared
            .spec
            .certificates
            .iter()
            .filter(|c| c.token == token.label)
            .map(|c| c.name.as_str())
            .collect();
        let found: BTreeSet<&str> = on_token.values().map(|(label, _)| label.as_str()).collect();
        assert_eq!(found, expected, "certificates on {}", token.label);
        for (id, (label, der)) in &on_token {
            let key = private_key(&session, id);
            let manifest = shared.fixture.manifest.certificate(label).unwrap();
            assert_eq!(hex(id), manifest.id);
            assert_eq!(certauth::x509::sha256_thumbprint(der), manifest.sha256);
            let expected = if manifest.key_algorithm.is_rsa() {
                KeyType::RSA
            } else {
                KeyType::EC
            };
            let found = session
                .get_attributes(key, &[AttributeType::KeyType])
                .unwrap();
            assert!(
                matches!(found.as_slice(), [Attribute::KeyType(t)] if *t == expected),
                "{label}: key type {found:?}"
            );
        }
    }
}

#[test]
fn every_private_key_is_sensitive_and_never_extractable() {
    let shared = shared();
    for token in &shared.fixture.manifest.tokens {
        let session = logged_in_session(&token.label);
        for (id, (label, _)) in certificates_on(&session) {
            let key = private_key(&session, &id);
            let attributes = session
                .get_attributes(
                    key,
                    &[
                        AttributeType::Sensitive,
                        AttributeType::Extractable,
                        AttributeType::AlwaysSensitive,
                        AttributeType::NeverExtractable,
                        AttributeType::Private,
                        AttributeType::Local,
                    ],
                )
                .unwrap();
            let mut seen = 0;
            for attribute in attributes {
                match attribute {
                    Attribute::Sensitive(v)
                    | Attribute::AlwaysSensitive(v)
                    | Attribute::NeverExtractable(v)
                    | Attribute::Private(v)
                    | Attribute::Local(v) => {
                        assert!(v, "{label}: {attribute:?} should be true");
                        seen += 1;
                    }
                    Attribute::Extractable(v) => {
                        assert!(!v, "{label}: key must not be extractable");
                        seen += 1;
                    }
                    _ => {}
                }
            }
            assert_eq!(seen, 6, "{label}: every attribute reported");
            // CKA_VALUE of a sensitive key is refused: get_attributes leaves it out.
            let value = session
                .get_attributes(key, &[AttributeType::Value])
                .unwrap();
            assert!(
                value.is_empty(),
                "{label}: private key value must not be readable"
            );
        }
    }
}

#[test]
fn signatures_made_on_the_token_verify_against_the_certificate() {
    use ring::signature::{self, UnparsedPublicKey};
    let shared = shared();
    let message = b"certauth fixture signature check";
    for token in &shared.fixture.manifest.tokens {
        let session = logged_in_session(&token.label);
        for (id, (label, der)) in certificates_on(&session) {
            let key = private_key(&session, &id);
            let spec = shared.spec.certificate(&label).unwrap();
            let (_, cert) = X509Certificate::from_der(&der).unwrap();
            let public_key = cert.public_key().subject_public_key.data.to_vec();
            let (signature, algorithm): (Vec<u8>, &dyn signature::VerificationAlgorithm) =
                match spec.key {
                    KeyAlgorithm::P256 => {
                        let digest = ring::digest::digest(&ring::digest::SHA256, message);
                        let raw = session
                            .sign(&Mechanism::Ecdsa, key, digest.as_ref())
                            .unwrap();
                        assert_eq!(raw.len(), 64, "{label}: CKM_ECDSA gives raw r||s");
                        (raw, &signature::ECDSA_P256_SHA256_FIXED)
                    }
                    KeyAlgorithm::P384 => {
                        let digest = ring::digest::digest(&ring::digest::SHA384, message);
                        let raw = session
                            .sign(&Mechanism::Ecdsa, key, digest.as_ref())
                            .unwrap();
                        assert_eq!(raw.len(), 96, "{label}: CKM_ECDSA gives raw r||s");
                        (raw, &signature::ECDSA_P384_SHA384_FIXED)
                    }
                    rsa if spec.always_authenticate => {
                        // Without a context-specific login the token refuses to sign.
                        assert!(session
                            .sign(&Mechanism::Sha256RsaPkcs, key, message)
                            .is_err());
                        session.sign_init(&Mechanism::Sha256RsaPkcs, key).unwrap();
                        let pin = &shared.spec.token(&spec.token).unwrap().pin;
                        session.login(UserType::ContextSpecific, Some(pin)).unwrap();
                        session.sign_update(message).unwrap();
                        let sig = session.sign_final().unwrap();
                        assert_eq!(sig.len() * 8, rsa.bits() as usize, "{label}: modulus size");
                        (sig, &signature::RSA_PKCS1_2048_8192_SHA256)
                    }
                    rsa => {
                        let sig = session
                            .sign(&Mechanism::Sha256RsaPkcs, key, message)
                            .unwrap();
                        assert_eq!(sig.len() * 8, rsa.bits() as usize, "{label}: modulus size");
                        (sig, &signature::RSA_PKCS1_2048_8192_SHA256)
                    }
                };
            UnparsedPublicKey::new(algorithm, &public_key)
                .verify(message, &signature)
                .unwrap_or_else(|_| panic!("{label}: token signature does not verify"));
            // And a signature over other data must not.
            assert!(
                UnparsedPublicKey::new(algorithm, &public_key)
                    .verify(b"other data", &signature)
                    .is_err(),
                "{label}: signature must bind the message"
            );
        }
    }
}

#[test]
fn crls_revoke_exactly_what_the_spec_says() {
    let shared = shared();
    for authority in &shared.fixture.manifest.authorities {
        let ca_der = std::fs::read(shared.fixture.path(&authority.certificate_der)).unwrap();
        let spec = shared.spec.authority(&authority.id).unwrap();
        let expected = |list: CrlList| -> BTreeSet<String> {
            shared
                .spec
                .certificates
                .iter()
                .filter(|c| c.issuer == authority.id)
                .filter(|c| c.revoked.as_ref().is_some_and(|r| r.list == list))
                .map(|c| hex(&serial_bytes(&c.serial)))
                .collect()
        };

        let base_der = std::fs::read(shared.fixture.path(&authority.crl.file)).unwrap();
        verify_crl_signature(&base_der, &ca_der).unwrap();
        let base = parse_crl(&base_der).unwrap();
        assert_eq!(base.number, Some(spec.crl.number.to_string()));
        assert_eq!(base.delta_of, None);
        assert_eq!(
            base.authority_key_id.as_deref(),
            Some(authority.subject_key_identifier.as_str())
        );
        let base_serials: BTreeSet<String> =
            base.revoked.iter().map(|r| r.serial.clone()).collect();
        assert_eq!(
            base_serials,
            expected(CrlList::Base),
            "{} base CRL",
            authority.id
        );

        match (&authority.delta_crl, &spec.delta_crl) {
            (Some(delta), Some(delta_spec)) => {
                let delta_der = std::fs::read(shared.fixture.path(&delta.file)).unwrap();
                verify_crl_signature(&delta_der, &ca_der).unwrap();
                let facts = parse_crl(&delta_der).unwrap();
                assert_eq!(facts.number, Some(delta_spec.number.to_string()));
                assert_eq!(facts.delta_of, Some(spec.crl.number.to_string()));
                let serials: BTreeSet<String> =
                    facts.revoked.iter().map(|r| r.serial.clone()).collect();
                assert_eq!(
                    serials,
                    expected(CrlList::Delta),
                    "{} delta CRL",
                    authority.id
                );
                assert!(facts.this_update >= base.this_update);
            }
            (None, None) => assert!(expected(CrlList::Delta).is_empty()),
            other => panic!("{}: delta CRL mismatch {other:?}", authority.id),
        }
    }
    // The spec's two revoked certificates, by name, as the issue asks.
    let issuing = shared
        .fixture
        .manifest
        .authority("woodgrove-issuing")
        .unwrap();
    assert_eq!(issuing.crl.revoked_serials, vec!["2003"]);
    assert_eq!(
        issuing.delta_crl.as_ref().unwrap().revoked_serials,
        vec!["2004"]
    );
}

#[test]
fn a_crl_signed_by_another_ca_is_refused() {
    let shared = shared();
    let issuing = shared
        .fixture
        .manifest
        .authority("woodgrove-issuing")
        .unwrap();
    let rogue = shared.fixture.manifest.authority("fabrikam-rogue").unwrap();
    let crl = std::fs::read(shared.fixture.path(&issuing.crl.file)).unwrap();
    let rogue_ca = std::fs::read(shared.fixture.path(&rogue.certificate_der)).unwrap();
    let err = verify_crl_signature(&crl, &rogue_ca).unwrap_err();
    assert!(
        matches!(err, certauth::pki::crl::CrlError::WrongIssuer { .. }),
        "{err:?}"
    );
}

/// The certificate a spec entry produced, read from the token.
fn certificate_der(name: &str) -> Vec<u8> {
    let token = &shared().spec.certificate(name).unwrap().token;
    let session = logged_in_session(token);
    certificates_on(&session)
        .into_values()
        .find(|(label, _)| label == name)
        .map(|(_, der)| der)
        .unwrap()
}

fn policies(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::CertificatePolicies(p) => Some(
                p.iter()
                    .map(|i| i.policy_id.to_id_string())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn certificates_carry_what_the_spec_asks_for() {
    let shared = shared();
    let now = OffsetDateTime::now_utc();

    let der = certificate_der("alice-rsa2048-mfa");
    let (_, alice) = X509Certificate::from_der(&der).unwrap();
    let sans = alice.subject_alternative_name().unwrap().unwrap();
    assert!(sans.value.general_names.iter().any(|n| matches!(n,
        GeneralName::OtherName(oid, _) if oid.to_id_string() == "1.3.6.1.4.1.311.20.2.3")));
    assert!(der.windows(19).any(|w| w == b"alice@woodgrove.com"));
    assert_eq!(policies(&alice), vec!["1.2.3.4"]);
    let eku = alice.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth);
    assert_eq!(alice.public_key().parsed().unwrap().key_size(), 2048);
    assert!(alice.validity().is_valid_at(now.into()));

    let der = certificate_der("bob-p256-rfc822");
    let (_, bob) = X509Certificate::from_der(&der).unwrap();
    let names = &bob
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(names, &vec![GeneralName::RFC822Name("bob@woodgrove.com")]);

    let der = certificate_der("bob-rsa3072");
    let (_, rsa3072) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(rsa3072.public_key().parsed().unwrap().key_size(), 3072);

    let der = certificate_der("alice-p384");
    let (_, p384) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(p384.public_key().parsed().unwrap().key_size(), 384);

    let der = certificate_der("alice-expired");
    let (_, expired) = X509Certificate::from_der(&der).unwrap();
    assert!(expired.validity().not_after.to_datetime() < now);

    let der = certificate_der("bob-not-yet-valid");
    let (_, future) = X509Certificate::from_der(&der).unwrap();
    assert!(future.validity().not_before.to_datetime() > now);

    let der = certificate_der("alice-smartcard-logon");
    let (_, logon) = X509Certificate::from_der(&der).unwrap();
    let eku = logon.extended_key_usage().unwrap().unwrap().value;
    assert!(!eku.client_auth && !eku.any);
    let other: Vec<String> = eku.other.iter().map(|o| o.to_id_string()).collect();
    assert_eq!(other, vec!["1.3.6.1.4.1.311.20.2.2"]);

    // Leaves chain to their issuer by signature and by AKI = SKI.
    for (untrusted, name) in [(false, "alice-rsa2048-mfa"), (true, "bob-untrusted-ca")] {
        let der = certificate_der(name);
        let (_, leaf) = X509Certificate::from_der(&der).unwrap();
        let issuer_id = &shared.spec.certificate(name).unwrap().issuer;
        let authority = shared.fixture.manifest.authority(issuer_id).unwrap();
        assert_eq!(authority.trusted, !untrusted);
        let ca_der = std::fs::read(shared.fixture.path(&authority.certificate_der)).unwrap();
        let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(
            certauth::x509::authority_key_identifier(&leaf),
            certauth::x509::subject_key_identifier(&ca)
        );
    }

    // Two certificates for one user on one token: the picker has a real choice.
    let alice_on_token = shared
        .spec
        .certificates
        .iter()
        .filter(|c| {
            c.token == "Woodgrove Alice" && c.user.as_deref() == Some("alice@woodgrove.com")
        })
        .count();
    assert!(alice_on_token >= 2);
}

#[test]
fn provisioning_again_reports_already_provisioned() {
    let shared = shared();
    let (again, outcome) = provision(
        shared.spec,
        &shared.fixture.dir,
        &ProvisionOptions::default(),
    )
    .unwrap();
    assert_eq!(outcome, Provisioning::AlreadyProvisioned);
    assert_eq!(
        again.manifest.spec_digest,
        shared.fixture.manifest.spec_digest
    );
    assert_eq!(
        again
            .manifest
            .tokens
            .iter()
            .map(|t| &t.serial)
            .collect::<Vec<_>>(),
        shared
            .fixture
            .manifest
            .tokens
            .iter()
            .map(|t| &t.serial)
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_directory_provisioned_from_another_spec_is_refused() {
    let shared = shared();
    let changed = format!(
        "{}\n# changed\n",
        certauth::fixtures::spec::EMBEDDED_WOODGROVE
    );
    let other = Spec::parse(&changed, std::path::Path::new("changed.toml")).unwrap();
    let err = provision(&other, &shared.fixture.dir, &ProvisionOptions::default()).unwrap_err();
    assert!(
        matches!(err, FixtureError::ProvisionedFromOtherSpec { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("use a fresh directory"));
}

#[test]
fn tokens_live_in_the_fixture_directory_only() {
    let shared = shared();
    let conf = std::fs::read_to_string(shared.fixture.softhsm2_conf()).unwrap();
    let token_dir = shared.fixture.dir.join("tokens");
    assert!(conf.contains(&format!("directories.tokendir = {}", token_dir.display())));
    let tokens = std::fs::read_dir(&token_dir).unwrap().count();
    assert_eq!(tokens, shared.spec.tokens.len());
}
