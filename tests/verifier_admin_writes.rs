//! Admin writes under concurrency and stored data that cannot load, against a real verifier:
//! every acknowledged write is kept, uniqueness races have one winner, a bad row never bricks
//! the server, and every stored string keeps to Entra's rules.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::verifier::Verifier;
use support::woodgrove::woodgrove;

const POLICY: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";
const CAS: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";

/// Sends `requests` (method, path, body) at once; the answers in the same order.
fn all_at_once(
    v: &Verifier,
    key: &str,
    requests: Vec<(Method, String, Option<Value>)>,
) -> Vec<(u16, Value)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = v.admin_client();
        let calls = requests
            .into_iter()
            .map(|(method, path, body)| {
                let client = client.clone();
                async move { v.admin_with(&client, method, &path, Some(key), body).await }
            })
            .collect::<Vec<_>>();
        futures_join_all(calls).await
    })
}

/// Joins futures concurrently on the current task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    // Borrowing futures cannot be spawned: poll them together on this task instead.
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut pending: Vec<_> = futures.into_iter().enumerate().collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, future)| match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => {
                outputs[*i] = Some(output);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// Of racing duplicates exactly one was created (201); the others got Graph's 400 naming
/// `property`.
fn one_winner(answers: &[(u16, Value)], property: &str) {
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["error"]["target"], property, "{body}");
    }
}

fn new_root_ca(name: &str) -> Value {
    use base64::Engine;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).unwrap();
    json!({
        "certificate": base64::engine::general_purpose::STANDARD.encode(cert.der()),
        "certificateAuthorityType": "root",
    })
}

#[test]
fn parallel_admin_writers_are_all_kept() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();

    // Parallel creates with distinct UPNs, and a delete of Bob racing them.
    let mut requests: Vec<_> = (0..24)
        .map(|i| {
            (
                Method::POST,
                "/v1.0/users".to_owned(),
                Some(json!({"userPrincipalName": format!("racer{i}@woodgrove.com")})),
            )
        })
        .collect();
    requests.insert(
        12,
        (Method::DELETE, "/v1.0/users/bob@woodgrove.com".into(), None),
    );
    let answers = all_at_once(&v, &key, requests);
    for (status, body) in &answers {
        assert!(matches!(status, 201 | 204), "{status} {body}");
    }
    let (_, users) = v.admin(Method::GET, "/v1.0/users", Some(&key), None);
    let upns: Vec<&str> = users["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap())
        .collect();
    for i in 0..24 {
        assert!(
            upns.contains(&format!("racer{i}@woodgrove.com").as_str()),
            "racer{i} lost: {upns:?}"
        );
    }
    assert!(!upns.contains(&"bob@woodgrove.com"), "{upns:?}");
    // Deleted means deleted for sign-in too.
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS50034", "{answer}");

    // The same UPN created in parallel: one 201, the rest 400 naming the property.
    let answers = all_at_once(
        &v,
        &key,
        (0..8)
            .map(|_| {
                (
                    Method::POST,
                    "/v1.0/users".to_owned(),
                    Some(json!({"userPrincipalName": "twin@woodgrove.com"})),
                )
            })
            .collect(),
    );
    one_winner(&answers, "userPrincipalName");

    // Parallel PATCHes of different policy fields all stay.
    for round in 0..4 {
        let hints = round % 2 == 0;
        let answers = all_at_once(
            &v,
            &key,
            vec![
                (
                    Method::PATCH,
                    POLICY.into(),
                    Some(json!({
                    "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
                    "issuerHintsConfiguration": {"state": if hints {"enabled"} else {"disabled"}}})),
                ),
                (
                    Method::PATCH,
                    POLICY.into(),
                    Some(json!({
                    "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
                    "excludeTargets": if hints { json!([{"targetType": "group", "id": "finance"}]) } else { json!([]) }})),
                ),
            ],
        );
        assert!(answers.iter().all(|(s, _)| *s == 204), "{answers:?}");
        let (_, policy) = v.admin(Method::GET, POLICY, Some(&key), None);
        assert_eq!(
            policy["issuerHintsConfiguration"]["state"],
            if hints { "enabled" } else { "disabled" },
            "{policy}"
        );
        assert_eq!(
            policy["excludeTargets"].as_array().unwrap().len(),
            usize::from(hints),
            "{policy}"
        );
    }
}

#[test]
fn identical_ca_uploads_race_to_one_and_the_server_still_restarts() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let mut v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let ca = new_root_ca("Contoso Race Root");
    let answers = all_at_once(
        &v,
        &key,
        (0..8)
            .map(|_| (Method::POST, CAS.to_owned(), Some(ca.clone())))
            .collect(),
    );
    one_winner(&answers, "certificate");
    let (_, cas) = v.admin(Method::GET, CAS, Some(&key), None);
    let copies = cas["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["certificate"] == ca["certificate"])
        .count();
    assert_eq!(copies, 1, "{cas}");
    // Writes go on, and the server restarts over its state.
    let (status, body) = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(json!({"userPrincipalName": "after@woodgrove.com"})),
    );
    assert_eq!(status, 201, "{body}");
    v.kill_hard();
    let v = Verifier::start(w, state.path());
    let (status, body) = v.admin(
        Method::POST,
        "/v1.0/users",
        Some(&key),
        Some(json!({"userPrincipalName": "restarted@woodgrove.com"})),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn a_stored_row_that_cannot_load_never_bricks_the_server() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let mut v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    v.kill_hard();

    // What an older verifier could leave behind: a second copy of the issuing CA (no keys in
    // the unique columns), a user row that is not JSON, and a policy that does not parse.
    let db = rusqlite::Connection::open(state.path().join("verifier.db")).unwrap();
    let issuing: String = db
        .query_row(
            "SELECT json FROM certificate_authorities WHERE json LIKE '%\"intermediate\"%' LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    db.execute(
        "INSERT INTO certificate_authorities (id, json, created) VALUES ('bad-copy', ?1, '2026-01-01T00:00:00Z')",
        [&issuing],
    )
    .unwrap();
    db.execute(
        "INSERT INTO users (id, upn, json) VALUES ('broken', 'broken@woodgrove.com', '{not json')",
        [],
    )
    .unwrap();
    drop(db);

    let v = Verifier::start(w, state.path());
    // Chains through the duplicated CA fail closed, naming the row to delete.
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 3, "{answer}");
    assert_eq!(answer["errorCode"], "AADSTS500176", "{answer}");
    // The rest of the admin API works, and the bad rows can be deleted through it.
    let (status, _) = v.admin(Method::DELETE, "/v1.0/users/broken", Some(&key), None);
    assert_eq!(status, 204);
    let (status, _) = v.admin(Method::DELETE, &format!("{CAS}/bad-copy"), Some(&key), None);
    assert_eq!(status, 204);
    let (code, answer) = v.sign_in(w, "bob-p256-rfc822", "bob@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
}

#[test]
fn an_emptied_database_in_a_used_state_directory_is_refused() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let mut v = Verifier::start(w, state.path());
    v.kill_hard();
    let db = state.path().join("verifier.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(state.path().join(format!("verifier.db{suffix}")));
    }
    std::fs::write(&db, b"").unwrap();
    let out = support::programs::verifier()
        .args(["serve", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is empty (0 bytes)"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("admin API key"));
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
}

#[test]
fn stored_strings_keep_to_entras_rules() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    let huge = format!("{}@woodgrove.com", "a".repeat(900 * 1024));
    for (upn, target) in [
        ("nul\u{0}@woodgrove.com", "userPrincipalName"),
        (
            "evil\u{202E}moc.dnargoow@woodgrove.com",
            "userPrincipalName",
        ),
        (huge.as_str(), "userPrincipalName"),
        ("slash/y@woodgrove.com", "userPrincipalName"),
    ] {
        let (status, body) = v.admin(
            Method::POST,
            "/v1.0/users",
            Some(&key),
            Some(json!({"userPrincipalName": upn})),
        );
        assert!(status == 400 || status == 413, "{status} {body}");
        if status == 400 {
            assert_eq!(body["error"]["target"], target, "{body}");
        }
    }
    let (status, body) = v.admin(
        Method::PATCH,
        "/v1.0/users/alice@woodgrove.com",
        Some(&key),
        Some(json!({"displayName": "Alice\u{2066} Admin"})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["target"], "displayName", "{body}");
    let (status, body) = v.admin(
        Method::PATCH,
        POLICY,
        Some(&key),
        Some(json!({
            "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
            "excludeTargets": [{"targetType": "group", "id": "fin\u{0}ance"}]})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["target"], "excludeTargets[0].id", "{body}");
    // Nothing of it was stored.
    let (_, users) = v.admin(Method::GET, "/v1.0/users", Some(&key), None);
    assert_eq!(users["value"].as_array().unwrap().len(), 3, "{users}");
}
