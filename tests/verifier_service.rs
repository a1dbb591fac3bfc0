//! A real `certauth-verifier serve` process and real `certauth sign-in` processes on the SoftHSM
//! fixture: the seed's Step 5, denials with Entra's codes, a PATCH changing the next sign-in, the
//! sign-in log, JWTs checked against the JWKS, the admin API's 401/403/400 paths, the expired-CA
//! rule, a kill -9 after a 204, and third-party clients (curl with OpenSSL's PKCS#11 engine,
//! openssl s_client with a PEM key).

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use support::software_cert;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

/// `certauth sign-in` as `username` with the fixture certificate `name`; (exit code, answer).
fn sign_in(w: &Woodgrove, v: &Verifier, name: &str, username: &str) -> (i32, Value) {
    v.sign_in(w, name, username)
}

/// One admin request: (status, JSON body or null).
fn admin(
    v: &Verifier,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    v.admin(method, path, key, body)
}

const POLICY: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";
const CAS: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";

#[test]
fn sign_ins_against_the_real_verifier() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();

    // The seed's Step 5: the issuer rule gives single-factor, the 1.2.3.4 rule multifactor.
    let (code, answer) = sign_in(w, &v, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "singleFactor");
    assert_eq!(
        answer["authenticationRule"]["x509CertificateRuleType"],
        "issuerSubject"
    );
    let (code, mfa) = sign_in(w, &v, "alice-rsa2048-mfa", "alice@woodgrove.com");
    assert_eq!(code, 0, "{mfa}");
    assert_eq!(mfa["authenticationStrength"], "multiFactor");
    assert_eq!(
        mfa["authenticationRule"]["x509CertificateRuleType"],
        "policyOID"
    );
    assert_eq!(
        mfa["usernameBinding"]["x509CertificateField"],
        "PrincipalName"
    );

    // Denials, with Entra's codes.
    for (name, username, expected) in [
        ("bob-revoked", "bob@woodgrove.com", "AADSTS500171"),
        ("bob-delta-revoked", "bob@woodgrove.com", "AADSTS500171"),
        ("bob-untrusted-ca", "bob@woodgrove.com", "AADSTS500176"),
        ("alice-p384", "bob@woodgrove.com", "AADSTS50034"),
    ] {
        let (code, answer) = sign_in(w, &v, name, username);
        assert_eq!(code, 3, "{name}: {answer}");
        assert_eq!(answer["status"], "failure");
        assert_eq!(answer["errorCode"], expected, "{name}: {answer}");
    }

    // The token is signed by a key in the JWKS and bound to the certificate.
    let (status, jwks) = admin(
        &v,
        reqwest::Method::GET,
        "/.well-known/jwks.json",
        None,
        None,
    );
    assert_eq!(status, 200);
    let claims = certauth::pki::jwt::verify(
        mfa["token"].as_str().unwrap(),
        &jwks,
        &certauth::pki::jwt::Expected::sign_in_token(),
    )
    .unwrap();
    assert_eq!(claims["upn"], "alice@woodgrove.com");
    assert_eq!(claims["amr"], json!(["x509", "mfa"]));
    let pem = std::fs::read(w.fixture.path("pki/users/alice-rsa2048-mfa.pem")).unwrap();
    let der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    assert_eq!(
        claims["cnf"]["x5t#S256"],
        certauth::pki::jwt::certificate_thumbprint(&der)
    );
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());

    // A PATCH that makes the default multifactor, with only the OID rule left, changes the next
    // sign-in of the single-factor certificate.
    let patch = json!({
        "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        "authenticationModeConfiguration": {
            "x509CertificateAuthenticationDefaultMode": "x509CertificateMultiFactor",
            "rules": [{"x509CertificateRuleType": "policyOID", "identifier": "1.2.3.4", "x509CertificateAuthenticationMode": "x509CertificateMultiFactor"}]
        }
    });
    let (status, body) = admin(&v, reqwest::Method::PATCH, POLICY, Some(&key), Some(patch));
    assert_eq!(status, 204, "{body}");
    let (code, answer) = sign_in(w, &v, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor");
    assert_eq!(
        answer["authenticationRule"]["x509CertificateRuleType"],
        "default"
    );

    // Every attempt is in the sign-in log, newest first, with its fields.
    let (status, log) = admin(
        &v,
        reqwest::Method::GET,
        "/v1.0/auditLogs/signIns",
        Some(&key),
        None,
    );
    assert_eq!(status, 200);
    let records = log["value"].as_array().unwrap();
    assert_eq!(records.len(), 7, "{log}");
    let revoked = records
        .iter()
        .find(|r| r["status"]["errorCode"] == 500171)
        .unwrap();
    assert_eq!(revoked["authenticationDetails"][0]["succeeded"], false);
    assert_eq!(revoked["userPrincipalName"], "bob@woodgrove.com");
    assert_eq!(revoked["ipAddress"], "127.0.0.1");
    assert_eq!(
        revoked["certificate"]["issuer"],
        "C=US,O=Woodgrove Bank,OU=PKI,CN=Woodgrove Issuing CA 01"
    );
    assert!(revoked["status"]["failureReason"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    let first_mfa = records
        .iter()
        .find(|r| {
            r["authenticationStrength"] == "multiFactor"
                && r["certificate"]["serialNumber"] == "1001"
        })
        .unwrap();
    assert_eq!(first_mfa["certificate"]["policyOids"], json!(["1.2.3.4"]));
    assert_eq!(
        first_mfa["usernameBinding"]["x509CertificateField"],
        "PrincipalName"
    );
    assert_eq!(first_mfa["authenticationRule"]["identifier"], "1.2.3.4");
    assert_eq!(first_mfa["revocation"][0]["crlNumber"], "41");
    let (_, failures) = admin(
        &v,
        reqwest::Method::GET,
        "/v1.0/auditLogs/signIns?$filter=status/errorCode ne 0 and userPrincipalName eq 'BOB@woodgrove.com'",
        Some(&key),
        None,
    );
    assert_eq!(failures["value"].as_array().unwrap().len(), 4, "{failures}");
}

#[test]
fn admin_api_keys_roles_and_validation() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let global = v.admin_key.clone().unwrap();
    let reader = v.api_key("reader");
    let policy_admin = v.api_key("authenticationPolicyAdministrator");

    assert_eq!(admin(&v, reqwest::Method::GET, POLICY, None, None).0, 401);
    let (status, body) = admin(&v, reqwest::Method::GET, POLICY, Some("cak_wrong"), None);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let (status, policy) = admin(&v, reqwest::Method::GET, POLICY, Some(&reader), None);
    assert_eq!(status, 200);
    assert_eq!(
        policy["@odata.type"],
        "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration"
    );
    assert_eq!(policy["state"], "enabled");

    let patch = json!({"@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration", "state": "disabled"});
    let (status, body) = admin(
        &v,
        reqwest::Method::PATCH,
        POLICY,
        Some(&reader),
        Some(patch.clone()),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");

    // Only a Global Administrator changes the CAs.
    let rogue = std::fs::read(w.fixture.path("pki/ca/fabrikam-rogue.der")).unwrap();
    use base64::Engine;
    let rogue_ca = json!({
        "certificate": base64::engine::general_purpose::STANDARD.encode(&rogue),
        "certificateAuthorityType": "root",
    });
    assert_eq!(
        admin(
            &v,
            reqwest::Method::POST,
            CAS,
            Some(&policy_admin),
            Some(rogue_ca.clone())
        )
        .0,
        403
    );

    // A policy OID that is not dotted is a 400 naming the field.
    let bad = json!({
        "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        "authenticationModeConfiguration": {"rules": [{"x509CertificateRuleType": "policyOID", "identifier": "All Issuance Policies", "x509CertificateAuthenticationMode": "x509CertificateMultiFactor"}]}
    });
    let (status, body) = admin(
        &v,
        reqwest::Method::PATCH,
        POLICY,
        Some(&policy_admin),
        Some(bad),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["target"],
        "authenticationModeConfiguration.rules[0].identifier"
    );

    // The expired-CA rule: once an expired CA sits in the store, no new CA is accepted.
    let (status, body) = admin(
        &v,
        reqwest::Method::POST,
        CAS,
        Some(&global),
        Some(expired_ca()),
    );
    assert_eq!(status, 201, "an expired CA itself may be uploaded: {body}");
    let (status, body) = admin(
        &v,
        reqwest::Method::POST,
        CAS,
        Some(&global),
        Some(rogue_ca),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has expired"),
        "{body}"
    );
    let (_, cas) = admin(&v, reqwest::Method::GET, CAS, Some(&reader), None);
    assert_eq!(cas["value"].as_array().unwrap().len(), 3);

    // DELETE restores Entra's default: the method off.
    assert_eq!(
        admin(&v, reqwest::Method::DELETE, POLICY, Some(&reader), None).0,
        403
    );
    assert_eq!(
        admin(
            &v,
            reqwest::Method::DELETE,
            POLICY,
            Some(&policy_admin),
            None
        )
        .0,
        204
    );
    let (_, policy) = admin(&v, reqwest::Method::GET, POLICY, Some(&reader), None);
    assert_eq!(policy["state"], "disabled");
    assert_eq!(policy["includeTargets"][0]["id"], "all_users");

    // certificateUserIds stay unique in the tenant.
    let taken =
        json!({"authorizationInfo": {"certificateUserIds": ["X509:<PN>alice@woodgrove.com"]}});
    let (status, body) = admin(
        &v,
        reqwest::Method::PATCH,
        "/v1.0/users/bob@woodgrove.com",
        Some(&policy_admin),
        Some(taken),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already belongs to alice@woodgrove.com"),
        "{body}"
    );
}

/// A CA certificate that expired yesterday, in Graph's shape.
fn expired_ca() -> Value {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "Contoso Old Root");
    params.distinguished_name = name;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let cert = params.self_signed(&key).unwrap();
    json!({
        "certificate": base64::engine::general_purpose::STANDARD.encode(cert.der()),
        "certificateAuthorityType": "root",
    })
}

#[test]
fn a_kill_9_right_after_a_204_loses_nothing() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let mut v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let patch = json!({
        "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        "crlValidationConfiguration": {"state": "enabled", "exemptedCertificateAuthoritiesSubjectKeyIdentifiers": ["AB12"]}
    });
    let (status, _) = admin(&v, reqwest::Method::PATCH, POLICY, Some(&key), Some(patch));
    assert_eq!(status, 204);
    v.kill_hard();
    let again = Verifier::start(w, state.path());
    assert!(
        again.admin_key.is_none(),
        "the first key survives, so no new one is made"
    );
    let (status, policy) = admin(&again, reqwest::Method::GET, POLICY, Some(&key), None);
    assert_eq!(status, 200);
    assert_eq!(
        policy["crlValidationConfiguration"]["exemptedCertificateAuthoritiesSubjectKeyIdentifiers"],
        json!(["AB12"])
    );
}

#[test]
fn curl_with_the_openssl_pkcs11_engine_signs_in() {
    let w = woodgrove();
    let engine = [
        "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("OpenSSL's PKCS#11 engine (apt-get install libengine-pkcs11-openssl)");
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let conf = state.path().join("openssl.cnf");
    std::fs::write(
        &conf,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n[engine_section]\npkcs11 = pkcs11_section\n\
             [pkcs11_section]\nengine_id = pkcs11\ndynamic_path = {engine}\nMODULE_PATH = {}\ninit = 0\n",
            w.module().display()
        ),
    )
    .unwrap();
    let curl = |name: &str, username: &str| {
        let token = &w.spec.certificate(name).unwrap().token;
        let uri = format!("pkcs11:token={};object={name}", token.replace(' ', "%20"));
        let output = Command::new("curl")
            .args(["-sS", "--engine", "pkcs11", "--cacert"])
            .arg(&v.server_ca)
            .args(["--cert-type", "ENG", "--cert", &format!("{uri};type=cert")])
            .args([
                "--key-type",
                "ENG",
                "--key",
                &format!("{uri};type=private;pin-value={}", w.pin(token)),
            ])
            .args([
                "-H",
                "Content-Type: application/json",
                "-d",
                &json!({"username": username}).to_string(),
            ])
            .arg(format!("{}/certauth/signin", v.certauth_url))
            .env("OPENSSL_CONF", &conf)
            .env("SOFTHSM2_CONF", w.fixture.softhsm2_conf())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let answer = curl("alice-rsa2048-mfa", "alice@woodgrove.com");
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor");
    // curl presents what the agent never would: the server still refuses it.
    let expired = curl("alice-expired", "alice@woodgrove.com");
    assert_eq!(expired["errorCode"], "AADSTS500172", "{expired}");
}

/// Signs in as `username` with `openssl s_client` presenting a PEM certificate and key; the raw
/// HTTP answer.
fn s_client_sign_in(
    v: &Verifier,
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
    username: &str,
) -> String {
    let address = v.certauth_url.trim_start_matches("https://").to_owned();
    let body = json!({"username": username}).to_string();
    let request = format!(
        "POST /certauth/signin HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &address, "-cert"])
        .arg(cert_file)
        .arg("-key")
        .arg(key_file)
        .arg("-CAfile")
        .arg(&v.server_ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn openssl_s_client_with_a_pem_key_signs_in() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let (cert_file, key_file) = software_cert::issued_alice(w, state.path());
    let response = s_client_sign_in(&v, &cert_file, &key_file, "alice@woodgrove.com");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"success\""), "{response}");
    assert!(
        response.contains("\"authenticationStrength\":\"singleFactor\""),
        "{response}"
    );
}

/// A leaf signed with the issuing CA's key and carrying its AKI, but naming the root CA as its
/// issuer, must not get the root's multifactor rule nor pass a high-affinity binding pinned to
/// the root (RFC 5280 name chaining). `eval` is held to the same in tests/verifier_eval.rs.
#[test]
fn trap_a_forged_issuer_name_is_refused() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let (cert_file, key_file) = software_cert::forged_issuer_alice(w, state.path());

    // The root's rule is multifactor and needs high affinity; Alice is pinned to the root's
    // name and the forged serial.
    let (status, mut policy) = admin(&v, reqwest::Method::GET, POLICY, Some(&key), None);
    assert_eq!(status, 200);
    policy["certificateUserBindings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"x509CertificateField": "IssuerAndSerialNumber",
            "userProperty": "certificateUserIds", "priority": 4, "trustAffinityLevel": "high"}));
    policy["authenticationModeConfiguration"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"x509CertificateRuleType": "issuerSubject",
            "identifier": "CN=Woodgrove Root CA, O=Woodgrove Bank, C=US",
            "x509CertificateAuthenticationMode": "x509CertificateMultiFactor",
            "x509CertificateRequiredAffinityLevel": "high"}));
    let (status, answer) = admin(&v, reqwest::Method::PATCH, POLICY, Some(&key), Some(policy));
    assert_eq!(status, 204, "{answer}");
    let (status, answer) = admin(
        &v,
        reqwest::Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"authorizationInfo": {"certificateUserIds": [
            software_cert::FORGED_PIN]}})),
    );
    assert_eq!(status, 204, "{answer}");

    let response = s_client_sign_in(&v, &cert_file, &key_file, "alice@woodgrove.com");
    assert!(!response.contains("\"status\":\"success\""), "{response}");
    assert!(
        response.contains("\"errorCode\":\"AADSTS50017\""),
        "{response}"
    );
    assert!(
        response.contains("names `C=US,O=Woodgrove Bank,CN=Woodgrove Root CA` as its issuer"),
        "{response}"
    );
    // The log records the refusal.
    let (_, log) = admin(
        &v,
        reqwest::Method::GET,
        "/v1.0/auditLogs/signIns?$filter=status/errorCode ne 0&$top=1",
        Some(&key),
        None,
    );
    assert_eq!(log["value"][0]["status"]["errorCode"], 50017, "{log}");
}

#[test]
fn tls_resumption_never_skips_the_handshake() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    // A client that would resume if it could: one config, two connections.
    let roots = certauth::tls::client_config::trusted_roots(Some(&v.server_ca)).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap(),
    );
    let address = v.certauth_url.trim_start_matches("https://").to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for attempt in 0..3 {
        let kind = runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let mut tls = connector
                .connect("127.0.0.1".try_into().unwrap(), stream)
                .await
                .unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut response = Vec::new();
            let _ = tls.read_to_end(&mut response).await;
            tls.get_ref().1.handshake_kind()
        });
        assert_eq!(
            kind,
            Some(rustls::HandshakeKind::Full),
            "connection {attempt} resumed"
        );
    }
}

#[test]
fn with_no_arguments_it_serves_the_demo_tenant_and_stops_cleanly_on_sigterm() {
    let mut child = support::programs::verifier()
        .args(["serve", "--log-json", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = support::lines::Lines::new(child.stdout.take().unwrap());
    let mut logs = support::lines::Lines::new(child.stderr.take().unwrap());
    let wait = std::time::Duration::from_secs(30);
    let (_, dir) = lines.wait_for("the banner", wait, |l| {
        l.starts_with("certauth-verifier is serving the tenant in ")
    });
    let (_, key) = lines.wait_for("the admin key", wait, |l| l.starts_with("  admin API key"));
    let (_, example) = lines.wait_for("how to sign in", wait, |l| {
        l.contains("certauth sign-in https://127.0.0.1:")
    });
    assert!(
        example.contains("--username bob@woodgrove.com"),
        "{example}"
    );
    assert!(
        key.trim_start_matches("  admin API key")
            .trim()
            .starts_with("cak_"),
        "{key}"
    );
    // Structured logs: one JSON object per line.
    let (_, log) = logs.wait_for("a JSON log line", wait, |l| l.starts_with('{'));
    let log: Value = serde_json::from_str(&log).unwrap();
    assert!(
        log["level"].is_string() && log["fields"].is_object(),
        "{log}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let dir = dir.trim_start_matches("certauth-verifier is serving the tenant in ");
    assert!(
        !std::path::Path::new(dir).exists(),
        "the demo tenant's directory is removed"
    );
}

#[test]
fn oversized_bodies_are_refused() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let huge = json!({
        "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        "padding": "x".repeat(2 * 1024 * 1024),
    });
    let (status, _) = admin(&v, reqwest::Method::PATCH, POLICY, Some(&key), Some(huge));
    assert_eq!(status, 413);
    let (status, body) = admin(&v, reqwest::Method::GET, "/healthz", None, None);
    assert_eq!((status, body), (200, Value::Null));
}

/// At `-vvv` (trace), the verifier's log holds neither an API key nor an issued token: both are
/// `SecretText`, whose `Debug` is redacted, and neither is logged as text.
#[test]
fn secrets_never_reach_the_trace_log() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let log_path = state.path().join("verifier.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let v = Verifier::start_logging(w, &state.path().join("state"), &["-vvv"], log);
    let reader_key = v.api_key("reader");
    let (status, _) = admin(&v, reqwest::Method::GET, POLICY, Some(&reader_key), None);
    assert_eq!(status, 200);
    let (status, _) = admin(
        &v,
        reqwest::Method::GET,
        POLICY,
        v.admin_key.as_deref(),
        None,
    );
    assert_eq!(status, 200);
    let (code, answer) = sign_in(w, &v, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    let token = answer["token"].as_str().unwrap().to_owned();
    drop(v);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("TRACE") || logged.contains("DEBUG"),
        "no trace log: {logged}"
    );
    assert!(!logged.contains(&reader_key), "the API key is in the log");
    // The signature part alone is unique to this token.
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !logged.contains(signature),
        "the issued token is in the log"
    );
}
