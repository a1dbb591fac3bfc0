//! Certificate authorities through the admin API: the classic store's envelope
//! (`POST /organization/{id}/certificateBasedAuthConfiguration`, Graph's "Create
//! certificateBasedAuthConfiguration") is taken, all of it or none, and every CA, however it was
//! uploaded, reads back in one shape from the list and from `GET` of the one CA.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use support::verifier::Verifier;
use support::woodgrove::woodgrove;

const CAS: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";
const CLASSIC: &str =
    "/v1.0/organization/84841066-274d-4ec0-a5c1-276be684bdd3/certificateBasedAuthConfiguration";

fn keys(ca: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = ca.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[test]
fn cas_uploaded_either_way_read_back_in_one_shape() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let call = |method: Method, path: &str, body: Option<Value>| v.as_admin(method, path, body);
    let der = std::fs::read(w.fixture.path("pki/ca/fabrikam-rogue.der")).unwrap();
    let certificate = base64::engine::general_purpose::STANDARD.encode(&der);
    let info = certauth::x509::cert_info::CertInfo::from_der(&der).unwrap();
    let (_, before) = call(Method::GET, CAS, None);
    let before = before["value"].as_array().unwrap().len();

    // Graph's classic envelope: one bad entry refuses the whole body, naming it.
    let good = json!({"isRootAuthority": true, "certificate": certificate,
        "certificateRevocationListUrl": "http://crl.fabrikam.example/root.crl",
        "deltaCertificateRevocationListUrl": null});
    let bad =
        json!({"isRootAuthority": true, "certificate": certificate, "issuerSki": "AB".repeat(20)});
    let (status, body) = call(
        Method::POST,
        CLASSIC,
        Some(json!({"certificateAuthorities": [good, bad]})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["target"], "certificateAuthorities[1].issuerSki",
        "{body}"
    );
    let (_, after) = call(Method::GET, CAS, None);
    assert_eq!(after["value"].as_array().unwrap().len(), before);

    let (status, created) = call(
        Method::POST,
        CLASSIC,
        Some(json!({"certificateAuthorities": [good]})),
    );
    assert_eq!(status, 201, "{created}");
    let classic_id = created["certificateAuthorities"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The list and the single GET agree, and every CA has the same properties.
    let (_, list) = call(Method::GET, CAS, None);
    let list = list["value"].as_array().unwrap().clone();
    assert_eq!(list.len(), before + 1);
    let (status, one) = call(Method::GET, &format!("{CAS}/{classic_id}"), None);
    assert_eq!(status, 200, "{one}");
    assert!(list.contains(&one), "{one}");
    for ca in &list {
        assert_eq!(keys(ca), keys(&one), "{ca}");
    }
    assert_eq!(
        one["@odata.type"],
        "#microsoft.graph.certificateAuthorityDetail"
    );
    assert_eq!(one["certificateAuthorityType"], "root");
    assert_eq!(one["certificate"], json!(certificate));
    assert_eq!(one["thumbprint"], json!(info.sha1.to_uppercase()));
    assert_eq!(one["issuer"], json!(info.subject));
    assert_eq!(
        one["issuerSubjectKeyIdentifier"],
        json!(certauth::x509::hex(info.subject_key_identifier.as_deref().unwrap()).to_uppercase())
    );
    assert_eq!(
        one["certificateRevocationListUrl"],
        "http://crl.fabrikam.example/root.crl"
    );
    assert_eq!(one["deltaCertificateRevocationListUrl"], Value::Null);
    assert_eq!(one["isIssuerHintEnabled"], false);
    for time in ["createdDateTime", "expirationDateTime"] {
        let text = one[time].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{time} {text}: {e}"));
    }

    // The same CA as a certificateAuthorityDetail reads back the same but for id and time.
    let (status, _) = call(Method::DELETE, &format!("{CAS}/{classic_id}"), None);
    assert_eq!(status, 204);
    assert_eq!(
        call(Method::GET, &format!("{CAS}/{classic_id}"), None).0,
        404
    );
    let (status, detail) = call(
        Method::POST,
        CAS,
        Some(
            json!({"certificate": certificate, "certificateAuthorityType": "root",
            "certificateRevocationListUrl": "http://crl.fabrikam.example/root.crl"}),
        ),
    );
    assert_eq!(status, 201, "{detail}");
    let (_, again) = call(
        Method::GET,
        &format!("{CAS}/{}", detail["id"].as_str().unwrap()),
        None,
    );
    let without = |ca: &Value| {
        let mut ca = ca.clone();
        ca.as_object_mut()
            .unwrap()
            .retain(|k, _| k != "id" && k != "createdDateTime");
        ca
    };
    assert_eq!(without(&again), without(&one));
}
