//! Admin writes held to Microsoft Graph's schema, against a real verifier: a property Graph does not
//! declare is refused with Graph's 400 naming it and where it is (and nothing changes), read-only
//! properties may only be repeated, a PATCH replaces what it names and keeps the rest, Entra's
//! string rules hold, and Graph's own documentation examples (`tests/data/graph/`) are taken and
//! change the next sign-in.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use base64::Engine;
use certauth::x509::cert_info::CertInfo;
use reqwest::Method;
use serde_json::{json, Value};
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

const POLICY: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";
const CAS: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";
const ODATA_TYPE: &str = "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration";

/// A documentation example from `tests/data/graph/`.
fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/graph")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Graph's 400 for `target`: code BadRequest, the target, and a message holding `words`.
fn refused(answer: &(u16, Value), target: &str, words: &[&str]) {
    let (status, body) = answer;
    assert_eq!(*status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest", "{body}");
    assert_eq!(body["error"]["target"], target, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "`{word}` not in: {message}");
    }
}

fn get(v: &Verifier, key: &str, path: &str) -> Value {
    let (status, body) = v.admin(Method::GET, path, Some(key), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// A fixture certificate, parsed.
fn fixture_certificate(w: &Woodgrove, name: &str) -> CertInfo {
    let file = &w.fixture.manifest.certificate(name).unwrap().file_pem;
    let pem = std::fs::read(w.fixture.path(file)).unwrap();
    let der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    CertInfo::from_der(&der).unwrap()
}

#[test]
fn misspelled_properties_are_refused_and_nothing_changes() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let before = get(&v, &key, POLICY);
    assert_eq!(
        before["authenticationModeConfiguration"]["rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let answer = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(json!({"@odata.type": ODATA_TYPE, "stat": "disabled"})),
    );
    refused(
        &answer,
        "stat",
        &[
            "'stat'",
            "microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        ],
    );

    // `rule` for `rules`: serde's default would have emptied the rules.
    let answer = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(
            json!({"@odata.type": ODATA_TYPE, "authenticationModeConfiguration": {
            "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
            "rule": [{"x509CertificateRuleType": "issuerSubject",
                "identifier": "CN=Woodgrove Issuing CA 01, OU=PKI, O=Woodgrove Bank, C=US",
                "x509CertificateAuthenticationMode": "x509CertificateSingleFactor"}]}}),
        ),
    );
    refused(
        &answer,
        "authenticationModeConfiguration.rule",
        &[
            "'rule'",
            "microsoft.graph.x509CertificateAuthenticationModeConfiguration",
            "at authenticationModeConfiguration.rule",
        ],
    );

    // A misspelled key inside a rule.
    let mut rules = before["authenticationModeConfiguration"]["rules"].clone();
    let rule = rules[1].as_object_mut().unwrap();
    let mode = rule.remove("x509CertificateAuthenticationMode").unwrap();
    rule.insert("x509CertificateAuthenticationMod".into(), mode);
    let answer = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(json!({"@odata.type": ODATA_TYPE,
            "authenticationModeConfiguration": {"rules": rules}})),
    );
    refused(
        &answer,
        "authenticationModeConfiguration.rules[1].x509CertificateAuthenticationMod",
        &[
            "'x509CertificateAuthenticationMod'",
            "microsoft.graph.x509CertificateRule",
        ],
    );

    // Nothing changed: the multifactor rule still makes the OID certificate multifactor.
    assert_eq!(get(&v, &key, POLICY), before);
    let (code, answer) = v.sign_in(w, "alice-rsa2048-mfa", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor", "{answer}");
}

#[test]
fn ids_are_read_only() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let before = get(&v, &key, POLICY);

    let answer = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(json!({"@odata.type": ODATA_TYPE, "id": "Fido2", "state": "disabled"})),
    );
    refused(&answer, "id", &["read-only", "X509Certificate", "Fido2"]);
    assert_eq!(get(&v, &key, POLICY), before);
    let (status, body) = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(json!({"@odata.type": ODATA_TYPE, "id": "X509Certificate", "state": "disabled"})),
    );
    assert_eq!(status, 204, "{body}");
    let after = get(&v, &key, POLICY);
    assert_eq!(after["state"], "disabled");
    assert_eq!(after["id"], "X509Certificate");

    let alice = get(&v, &key, "/v1.0/users/alice@woodgrove.com");
    let id = alice["id"].as_str().unwrap().to_owned();
    let answer = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"id": "mallory", "displayName": "Mallory"})),
    );
    refused(&answer, "id", &["read-only", "mallory"]);
    assert_eq!(get(&v, &key, "/v1.0/users/alice@woodgrove.com"), alice);
    let (status, _) = v.admin(Method::GET, "/v1.0/users/mallory", Some(&key), None);
    assert_eq!(status, 404);
    let (status, body) = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"id": id, "displayName": "Alice W."})),
    );
    assert_eq!(status, 204, "{body}");
    let after = get(&v, &key, "/v1.0/users/alice@woodgrove.com");
    assert_eq!(after["displayName"], "Alice W.");
    assert_eq!(after["id"], alice["id"]);
}

/// Graph's JSON is case-sensitive: `authorizationinfo` is not `authorizationInfo`. The example is
/// Entra's own (`tests/data/graph/README.md`), its value pinned to Alice's P-384 certificate.
#[test]
fn certificate_user_ids_from_entras_example_bind_the_next_sign_in() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let ski = certauth::x509::hex(
        &fixture_certificate(w, "alice-p384")
            .subject_key_identifier
            .unwrap(),
    )
    .to_uppercase();
    let mut body = example("update-user-certificateuserids.json");
    assert_eq!(
        body["authorizationInfo"]["certificateUserIds"][0],
        "X509:<PN>123456789098765@mil"
    );
    body["authorizationInfo"]["certificateUserIds"][0] = json!(format!("X509:<SKI>{ski}"));
    let bob = get(&v, &key, "/v1.0/users/bob@woodgrove.com");

    let mut wrong_case = serde_json::Map::new();
    wrong_case.insert(
        "authorizationinfo".into(),
        body["authorizationInfo"].clone(),
    );
    let answer = v.admin(
        Method::PATCH,
        "/v1.0/users/bob@woodgrove.com",
        Some(&key),
        Some(Value::Object(wrong_case)),
    );
    refused(
        &answer,
        "authorizationinfo",
        &[
            "'authorizationinfo'",
            "microsoft.graph.user",
            "did you mean 'authorizationInfo'?",
        ],
    );
    assert_eq!(get(&v, &key, "/v1.0/users/bob@woodgrove.com"), bob);
    let (code, answer) = v.sign_in(w, "alice-p384", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");

    let (status, answer) = v.admin(
        Method::PATCH,
        "/v1.0/users/bob@woodgrove.com",
        Some(&key),
        Some(body),
    );
    assert_eq!(status, 204, "{answer}");
    let (code, answer) = v.sign_in(w, "alice-p384", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["userPrincipalName"], "bob@woodgrove.com", "{answer}");
    assert_eq!(
        answer["usernameBinding"]["x509CertificateField"], "SubjectKeyIdentifier",
        "{answer}"
    );
}

/// What a GET answers (with the `@odata.context` annotations Graph adds) goes back as a PATCH and
/// changes nothing; the same for a user.
#[test]
fn a_get_response_patched_back_changes_nothing() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let before = get(&v, &key, POLICY);
    assert_eq!(before["@odata.type"], ODATA_TYPE);
    let mut body = before.clone();
    // Graph's GET also carries these (softhsm-fixtures/policy-step5.json is one); the verifier's
    // does not, so they are added as Graph writes them.
    body["@odata.context"] = json!("https://graph.microsoft.com/v1.0/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity");
    body["includeTargets@odata.context"] = json!("https://graph.microsoft.com/v1.0/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations('X509Certificate')/microsoft.graph.x509CertificateAuthenticationMethodConfiguration/includeTargets");
    body["authenticationModeConfiguration"]["@odata.type"] =
        json!("#microsoft.graph.x509CertificateAuthenticationModeConfiguration");
    let (status, answer) = v.admin(Method::PATCH, POLICY, Some(&key), Some(body));
    assert_eq!(status, 204, "{answer}");
    assert_eq!(get(&v, &key, POLICY), before);

    let alice = get(&v, &key, "/v1.0/users/alice@woodgrove.com");
    let mut body = alice.clone();
    body["@odata.context"] = json!("https://graph.microsoft.com/v1.0/$metadata#users/$entity");
    body["@odata.type"] = json!("#microsoft.graph.user");
    let (status, answer) = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(body),
    );
    assert_eq!(status, 204, "{answer}");
    assert_eq!(get(&v, &key, "/v1.0/users/alice@woodgrove.com"), alice);
    // Another resource's type is not taken.
    let answer = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"@odata.type": "#microsoft.graph.group", "displayName": "Alice"})),
    );
    refused(&answer, "@odata.type", &["microsoft.graph.user"]);
}

/// Properties Graph declares and the verifier does not model are taken (and ignored); only
/// undeclared ones are refused. Graph's "Create user" example and its response are taken as
/// they are.
#[test]
fn graph_declared_properties_the_verifier_does_not_model_are_taken() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let (status, created) = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(example("create-user.json")),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["userPrincipalName"],
        "AdeleV@contoso.onmicrosoft.com"
    );
    assert_eq!(created["displayName"], "Adele Vance");
    let (status, body) = v.admin(
        Method::DELETE,
        "/v1.0/users/AdeleV@contoso.onmicrosoft.com",
        Some(&key),
        None,
    );
    assert_eq!(status, 204, "{body}");
    let (status, created) = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(example("create-user-response.json")),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["id"], "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
    let (status, created) = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(
            json!({"userPrincipalName": "dave@woodgrove.com", "displayName": "Dave",
            "accountEnabled": true, "mail": "dave@woodgrove.com", "memberOf": ["cba-users"]}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    let (status, body) = v.admin(
        Method::POST,
        "/v1.0/groups",
        Some(&key),
        Some(
            json!({"id": "auditors", "displayName": "Auditors", "mailEnabled": false,
            "mailNickname": "auditors", "securityEnabled": true}),
        ),
    );
    assert_eq!(status, 201, "{body}");

    let users = get(&v, &key, "/v1.0/users")["value"]
        .as_array()
        .unwrap()
        .len();
    let answer = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(json!({"userPrincipalName": "erin@woodgrove.com", "accountEnabeld": true})),
    );
    refused(
        &answer,
        "accountEnabeld",
        &["'accountEnabeld'", "microsoft.graph.user"],
    );
    let answer = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(json!({"userPrincipalName": "erin@woodgrove.com",
            "authorizationInfo": {"certificateUserId": ["X509:<PN>erin@woodgrove.com"]}})),
    );
    refused(
        &answer,
        "authorizationInfo.certificateUserId",
        &["microsoft.graph.authorizationInfo"],
    );
    assert_eq!(
        get(&v, &key, "/v1.0/users")["value"]
            .as_array()
            .unwrap()
            .len(),
        users
    );
    let answer = v.admin(
        Method::POST,
        "/v1.0/groups",
        Some(&key),
        Some(json!({"id": "readers", "displayname": "Readers"})),
    );
    refused(&answer, "displayname", &["did you mean 'displayName'?"]);
}

#[test]
fn patch_replaces_what_it_names_and_keeps_the_rest() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let before = get(&v, &key, POLICY);

    // A collection is replaced whole; nothing else moves.
    let binding = json!({"x509CertificateField": "RFC822Name", "userProperty": "userPrincipalName",
        "priority": 7, "trustAffinityLevel": "low"});
    let (status, body) = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(json!({"@odata.type": ODATA_TYPE, "certificateUserBindings": [binding]})),
    );
    assert_eq!(status, 204, "{body}");
    let after = get(&v, &key, POLICY);
    assert_eq!(after["certificateUserBindings"], json!([binding]));
    let mut expected = before.clone();
    expected["certificateUserBindings"] = json!([binding]);
    assert_eq!(after, expected);

    // A complex value is replaced whole: what it leaves out takes its default.
    let (status, body) = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(
            json!({"@odata.type": ODATA_TYPE, "authenticationModeConfiguration": {
            "x509CertificateAuthenticationDefaultMode": "x509CertificateMultiFactor"}}),
        ),
    );
    assert_eq!(status, 204, "{body}");
    let after = get(&v, &key, POLICY);
    expected["authenticationModeConfiguration"] = json!({
        "x509CertificateAuthenticationDefaultMode": "x509CertificateMultiFactor",
        "x509CertificateDefaultRequiredAffinityLevel": "low",
        "rules": []});
    assert_eq!(after, expected);

    // A user's collection too.
    let (status, body) = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"memberOf": ["cba-users"]})),
    );
    assert_eq!(status, 204, "{body}");
    let alice = get(&v, &key, "/v1.0/users/alice@woodgrove.com");
    assert_eq!(alice["memberOf"], json!(["cba-users"]));
    assert_eq!(
        alice["authorizationInfo"]["certificateUserIds"],
        json!(["X509:<PN>alice@woodgrove.com"])
    );
}

/// Graph's x509 method update example, as the documentation gives it: the next sign-in binds
/// through onPremisesUserPrincipalName only and is multifactor by the new default mode.
#[test]
fn the_x509_update_example_from_graphs_documentation_is_applied() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let before = get(&v, &key, POLICY);
    let (code, answer) = v.sign_in(w, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "singleFactor");

    let (status, body) = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(example(
            "update-x509certificateauthenticationmethodconfiguration.json",
        )),
    );
    assert_eq!(status, 204, "{body}");
    let policy = get(&v, &key, POLICY);
    assert_eq!(policy["state"], "enabled");
    assert_eq!(
        policy["certificateUserBindings"],
        json!([{"x509CertificateField": "PrincipalName",
            "userProperty": "onPremisesUserPrincipalName", "priority": 1}])
    );
    assert_eq!(policy["includeTargets"][0]["id"], "all_users");
    // What the example leaves out is kept.
    assert_eq!(
        policy["crlValidationConfiguration"],
        before["crlValidationConfiguration"]
    );
    assert_eq!(
        policy["issuerHintsConfiguration"],
        before["issuerHintsConfiguration"]
    );

    // Alice's onPremisesUserPrincipalName is not her certificate's UPN: no binding matches.
    let (code, answer) = v.sign_in(w, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS50034", "{answer}");
    let (status, body) = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"onPremisesUserPrincipalName": "alice@woodgrove.com"})),
    );
    assert_eq!(status, 204, "{body}");
    let (code, answer) = v.sign_in(w, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor", "{answer}");
    assert_eq!(
        answer["usernameBinding"]["userProperty"], "onPremisesUserPrincipalName",
        "{answer}"
    );
}

/// A CA's thumbprint, issuer, SKI and expiry are the certificate's: an upload may repeat them,
/// not contradict them. Graph's own example (placeholders filled from the fixture's untrusted
/// CA) is taken, and the CA's certificates then chain.
#[test]
fn ca_properties_derived_from_the_certificate_must_agree_with_it() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let der = std::fs::read(w.fixture.path("pki/ca/fabrikam-rogue.der")).unwrap();
    let ca = CertInfo::from_der(&der).unwrap();
    let ski = certauth::x509::hex(ca.subject_key_identifier.as_deref().unwrap()).to_uppercase();
    let expires = ca
        .not_after
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let base = json!({
        "certificate": base64::engine::general_purpose::STANDARD.encode(&der),
        "certificateAuthorityType": "root",
    });
    let with = |property: &str, value: Value| {
        let mut body = base.clone();
        body[property] = value;
        body
    };
    let cas = get(&v, &key, CAS)["value"].as_array().unwrap().len();
    for (body, target) in [
        (with("thumbprint", json!("00".repeat(20))), "thumbprint"),
        (
            with(
                "issuer",
                json!("CN=Woodgrove Root CA, O=Woodgrove Bank, C=US"),
            ),
            "issuer",
        ),
        (
            with("issuerSubjectKeyIdentifier", json!("AB".repeat(20))),
            "issuerSubjectKeyIdentifier",
        ),
        (
            with("expirationDateTime", json!("2027-08-29T02:05:57Z")),
            "expirationDateTime",
        ),
    ] {
        let answer = v.admin(Method::POST, CAS, Some(&key), Some(body));
        refused(
            &answer,
            target,
            &["read-only", "calculated from the certificate"],
        );
    }
    // The classic store's shape, with its own name for the SKI.
    let classic = json!({"certificate": base["certificate"], "isRootAuthority": true,
        "issuerSki": "AB".repeat(20)});
    refused(
        &v.admin(Method::POST, CAS, Some(&key), Some(classic)),
        "issuerSki",
        &["read-only"],
    );
    assert_eq!(get(&v, &key, CAS)["value"].as_array().unwrap().len(), cas);
    let (code, answer) = v.sign_in(w, "bob-untrusted-ca", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS500176", "{answer}");

    // Graph's example, its placeholders filled in from the certificate.
    let mut example = example("certificateauthoritydetail.json");
    assert_eq!(example["certificate"], "Binary");
    example["certificate"] = base["certificate"].clone();
    example["certificateAuthorityType"] = json!("root");
    example["issuer"] = json!(ca.subject);
    example["issuerSubjectKeyIdentifier"] = json!(ski);
    example["thumbprint"] = json!(ca.sha1.to_uppercase());
    example["expirationDateTime"] = json!(expires);
    // The page's spelling is not the declared one.
    let answer = v.admin(Method::POST, CAS, Some(&key), Some(example.clone()));
    refused(
        &answer,
        "deltacertificateRevocationListUrl",
        &["did you mean 'deltaCertificateRevocationListUrl'?"],
    );
    let fields = example.as_object_mut().unwrap();
    let delta = fields.remove("deltacertificateRevocationListUrl").unwrap();
    fields.insert("deltaCertificateRevocationListUrl".into(), delta);
    let (status, created) = v.admin(Method::POST, CAS, Some(&key), Some(example));
    assert_eq!(status, 201, "{created}");
    assert_ne!(created["id"], "90777c92-2eb3-4a68-931d-4a3e1e1c741f");
    assert!(created.get("createdDateTime").is_none(), "{created}");
    assert_eq!(created["thumbprint"], ca.sha1.to_uppercase());
    assert_eq!(
        get(&v, &key, CAS)["value"].as_array().unwrap().len(),
        cas + 1
    );

    // The CA is trusted now; it has no CRL, so it must be exempted from required CRL checks.
    let (code, answer) = v.sign_in(w, "bob-untrusted-ca", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS500175", "{answer}");
    let (status, body) = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(
            json!({"@odata.type": ODATA_TYPE, "crlValidationConfiguration": {
            "state": "enabled", "exemptedCertificateAuthoritiesSubjectKeyIdentifiers": [ski]}}),
        ),
    );
    assert_eq!(status, 204, "{body}");
    let (code, answer) = v.sign_in(w, "bob-untrusted-ca", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["userPrincipalName"], "bob@woodgrove.com", "{answer}");
}

/// Entra's limits: a UPN of at most 64 characters before the @ and a DNS domain after it;
/// certificateUserIds at most 10 per user, 1024 characters each, in one of the tagged forms.
#[test]
fn upn_and_certificate_user_id_limits_are_entras() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let users = get(&v, &key, "/v1.0/users");

    for upn in [
        format!("{}@woodgrove.com", "a".repeat(65)),
        format!("a@{}.com", "w".repeat(45)),
        "dave@woodgrove..com".to_owned(),
        "dave@-woodgrove.com".to_owned(),
        "dave.@woodgrove.com".to_owned(),
        "da&ve@woodgrove.com".to_owned(),
    ] {
        let answer = v.admin(
            Method::POST,
            "/v1.0/users",
            Some(&key),
            Some(json!({"userPrincipalName": upn})),
        );
        refused(&answer, "userPrincipalName", &["not a valid UPN"]);
    }
    let answer = v.admin(
        Method::PATCH,
        "/v1.0/users/bob@woodgrove.com",
        Some(&key),
        Some(json!({"userPrincipalName": "bob@woodgrove.com."})),
    );
    refused(&answer, "userPrincipalName", &["not a valid UPN"]);

    let cuids = |values: Vec<String>| json!({"authorizationInfo": {"certificateUserIds": values}});
    let eleven = (0..11)
        .map(|i| format!("X509:<PN>bob{i}@woodgrove.com"))
        .collect();
    let long = vec![format!("X509:<PN>{}@woodgrove.com", "b".repeat(1010))];
    let answers = [
        (
            cuids(eleven),
            "authorizationInfo.certificateUserIds",
            "at most 10",
        ),
        (
            cuids(long),
            "authorizationInfo.certificateUserIds[0]",
            "at most 1024",
        ),
        (
            cuids(vec!["X509:<pn>bob@woodgrove.com".into()]),
            "authorizationInfo.certificateUserIds[0]",
            "unknown tag",
        ),
        (
            cuids(vec!["X509:<UPN>bob@woodgrove.com".into()]),
            "authorizationInfo.certificateUserIds[0]",
            "unknown tag",
        ),
        (
            cuids(vec![
                "X509:<RFC822>bob@woodgrove.com".into(),
                "X509:<SKI>not-hex".into(),
            ]),
            "authorizationInfo.certificateUserIds[1]",
            "hex",
        ),
        (
            cuids(vec![
                "X509:<I>C=US,O=Woodgrove Bank,CN=Woodgrove Root CA".into()
            ]),
            "authorizationInfo.certificateUserIds[0]",
            "<S> or <SR>",
        ),
        (
            cuids(vec!["X509:<PN>".into()]),
            "authorizationInfo.certificateUserIds[0]",
            "empty",
        ),
    ];
    for (body, target, words) in answers {
        let answer = v.admin(
            Method::PATCH,
            "/v1.0/users/bob@woodgrove.com",
            Some(&key),
            Some(body),
        );
        refused(&answer, target, &[words]);
    }
    assert_eq!(get(&v, &key, "/v1.0/users"), users);
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
}
