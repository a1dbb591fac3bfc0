//! The policy engine over the Woodgrove fixture PKI, table-driven: each row of
//! `tests/data/policy/decisions.toml` is a certificate, a username, edits to the policy and the
//! directory, and the decision expected (strength, binding, rule or error code), run as a test of
//! its own. The policy is the seed's Step 5 configuration in Graph's own JSON; CRLs are the
//! fixture's, or crafted here with the fixture CA's key.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use certauth::fixtures::spec::RevocationReason;
use certauth::pki::crl::CrlKind;
use certauth::verifier::decide::{Decision, Engine};
use certauth::verifier::directory::Directory;
use certauth::verifier::graph_files::load_directory;
use certauth::verifier::outcome::{AuthenticationStrength, ErrorCode};
use certauth::verifier::policy::{property_name, CbaPolicy, Switch};
use certauth::verifier::revocation::source::{CrlSource, FetchLimits};
use certauth::verifier::trust::TrustStore;
use certauth::x509::cert_info::CertInfo;
use certauth::x509::user_ids::{certificate_user_id, BindingField, SerialOrder};
use serde::Deserialize;
use serde_json::{json, Value};
use support::crl::TestCrl;
use support::woodgrove::{woodgrove, Woodgrove};
use time::OffsetDateTime;

const STEP5: &[u8] = include_bytes!("../softhsm-fixtures/policy-step5.json");

fn step5() -> CbaPolicy {
    CbaPolicy::from_json(STEP5, "policy-step5.json").unwrap()
}

fn store(w: &Woodgrove) -> TrustStore {
    TrustStore::load(&w.fixture.path(&w.fixture.manifest.trusted_authorities)).unwrap()
}

fn directory(w: &Woodgrove) -> Directory {
    load_directory(
        &std::fs::read(w.fixture.path("fixture.json")).unwrap(),
        "fixture.json",
        None,
    )
    .unwrap()
    .directory
}

fn ski_of(w: &Woodgrove, ca: &str) -> String {
    w.fixture
        .manifest
        .authority(ca)
        .unwrap()
        .subject_key_identifier
        .clone()
}

/// The fixture's own CRLs, given by file as `certauth-verifier eval --crl` would.
fn fixture_crls(w: &Woodgrove) -> CrlSource {
    let source = CrlSource::offline();
    for ca in &w.fixture.manifest.authorities {
        source.provide(
            &ca.subject_key_identifier,
            CrlKind::Base,
            std::fs::read(w.fixture.path(&ca.crl.file)).unwrap(),
        );
        if let Some(delta) = &ca.delta_crl {
            source.provide(
                &ca.subject_key_identifier,
                CrlKind::Delta,
                std::fs::read(w.fixture.path(&delta.file)).unwrap(),
            );
        }
    }
    source
}

fn engine(policy: CbaPolicy, directory: Directory, store: TrustStore, crls: CrlSource) -> Engine {
    Engine::new(policy, store, directory, crls)
}

fn decide(engine: &Engine, der: &[u8], username: &str, now: OffsetDateTime) -> Decision {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(engine.decide(der, username, now))
}

/// A certificateUserIds value the fixture certificate `name` yields for `field`.
fn cuid(w: &Woodgrove, name: &str, field: BindingField) -> String {
    let info = CertInfo::from_der(&w.der(name)).unwrap();
    certificate_user_id(&info, field, SerialOrder::LittleEndian).unwrap()
}

/// The decision table, `tests/data/policy/decisions.toml` (its opening comment says how a case
/// reads).
const DECISIONS: &str = include_str!("data/policy/decisions.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    cases: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    certificate: String,
    username: String,
    /// Edits to the Step 5 policy's Graph JSON, in order.
    #[serde(default)]
    policy: Vec<PolicyEdit>,
    /// Changes to directory users, by UPN.
    #[serde(default)]
    users: BTreeMap<String, UserEdit>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PolicyEdit {
    /// Replaces the value at a JSON pointer.
    Set { set: String, to: Value },
    /// Appends to the array at a JSON pointer.
    Push { push: String, value: Value },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UserEdit {
    on_premises_user_principal_name: Option<String>,
    certificate_user_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expect {
    Success {
        strength: String,
        field: BindingField,
        property: String,
        rule: String,
    },
    Failure {
        error: String,
    },
}

fn decision_table() -> &'static BTreeMap<String, Case> {
    static TABLE: OnceLock<BTreeMap<String, Case>> = OnceLock::new();
    TABLE.get_or_init(|| {
        toml::from_str::<Table>(DECISIONS)
            .unwrap_or_else(|e| panic!("data/policy/decisions.toml: {e}"))
            .cases
    })
}

/// A string of the table with its `${…}` placeholder filled in from the fixture: `${ski:CA}`,
/// `${cuid:CERT:FIELD}` and `${cuid:CERT:FIELD:lowercase}`.
fn expand(w: &Woodgrove, text: &str) -> String {
    let Some(placeholder) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
        return text.to_owned();
    };
    let field = |name: &str| -> BindingField { serde_json::from_value(json!(name)).unwrap() };
    match placeholder.split(':').collect::<Vec<_>>()[..] {
        ["ski", ca] => ski_of(w, ca),
        ["cuid", cert, name] => cuid(w, cert, field(name)),
        // Matching is case-insensitive past the `X509:<tag>` prefix.
        ["cuid", cert, name, "lowercase"] => {
            let value = cuid(w, cert, field(name));
            let (tag, rest) = value.split_once('>').unwrap();
            format!("{tag}>{}", rest.to_lowercase())
        }
        _ => panic!("unknown placeholder {text}"),
    }
}

/// Every string in `value` expanded (see [`expand`]).
fn expand_json(w: &Woodgrove, value: &mut Value) {
    match value {
        Value::String(text) => *text = expand(w, text),
        Value::Array(items) => items.iter_mut().for_each(|v| expand_json(w, v)),
        Value::Object(fields) => fields.values_mut().for_each(|v| expand_json(w, v)),
        _ => {}
    }
}

/// The Step 5 policy with `edits` made to its Graph JSON.
fn edited_step5(w: &Woodgrove, name: &str, edits: &[PolicyEdit]) -> CbaPolicy {
    let mut graph: Value = serde_json::from_slice(STEP5).unwrap();
    for edit in edits {
        let (pointer, mut value) = match edit {
            PolicyEdit::Set { set, to } => (set, to.clone()),
            PolicyEdit::Push { push, value } => (push, value.clone()),
        };
        expand_json(w, &mut value);
        let at = graph
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{name}: no {pointer} in the Step 5 policy"));
        match edit {
            PolicyEdit::Set { .. } => *at = value,
            PolicyEdit::Push { .. } => at.as_array_mut().unwrap().push(value),
        }
    }
    let policy = CbaPolicy::from_value(&graph, "policy-step5.json")
        .unwrap_or_else(|e| panic!("{name}: policy invalid: {e:?}"));
    policy
        .validate()
        .unwrap_or_else(|e| panic!("{name}: policy invalid: {e:?}"));
    policy
}

/// The fixture's directory with `edits` made to its users.
fn edited_directory(w: &Woodgrove, name: &str, edits: &BTreeMap<String, UserEdit>) -> Directory {
    let mut dir = directory(w);
    for (upn, edit) in edits {
        let user = dir
            .users
            .iter_mut()
            .find(|u| u.user_principal_name == *upn)
            .unwrap_or_else(|| panic!("{name}: no user {upn} in the fixture"));
        if let Some(on_premises) = &edit.on_premises_user_principal_name {
            user.on_premises_user_principal_name = Some(on_premises.clone());
        }
        if let Some(ids) = &edit.certificate_user_ids {
            user.authorization_info.certificate_user_ids =
                ids.iter().map(|id| expand(w, id)).collect();
        }
    }
    dir
}

/// Runs the table's case `name` and checks its decision.
fn decision_case(name: &str) {
    let w = woodgrove();
    let case = decision_table()
        .get(name)
        .unwrap_or_else(|| panic!("no case {name} in data/policy/decisions.toml"));
    let policy = edited_step5(w, name, &case.policy);
    let dir = edited_directory(w, name, &case.users);
    let engine = engine(policy, dir, store(w), fixture_crls(w));
    let decision = decide(
        &engine,
        &w.der(&case.certificate),
        &case.username,
        OffsetDateTime::now_utc(),
    );
    let ok = match &case.expect {
        Expect::Success {
            strength,
            field,
            property,
            rule,
        } => {
            decision.succeeded()
                && decision.strength().map(AuthenticationStrength::as_str) == Some(strength)
                && decision.username_binding.as_ref().is_some_and(|b| {
                    b.x509_certificate_field == *field && property_name(b.user_property) == property
                })
                && decision
                    .authentication_rule
                    .as_ref()
                    .is_some_and(|r| r.x509_certificate_rule_type == *rule)
        }
        Expect::Failure { error } => {
            !decision.succeeded() && decision.error_code.map(ErrorCode::as_str) == Some(error)
        }
    };
    assert!(
        ok,
        "{name}: got {}",
        serde_json::to_string_pretty(&decision).unwrap()
    );
}

/// One #[test] per case of the decision table, named by its key there; and a test that the two
/// lists agree, so a case added to the file is not silently skipped.
macro_rules! decision_cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::decision_case(stringify!($name));
            }
        )*

        #[test]
        fn every_case_of_the_table_has_its_test() {
            let tests: Vec<&str> = vec![$(stringify!($name)),*];
            let table: Vec<&str> = super::decision_table().keys().map(String::as_str).collect();
            let mut sorted = tests.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, table);
        }
    };
}

mod decisions {
    decision_cases! {
        step5_policy_oid_wins_over_issuer,
        step5_issuer_rule_alone,
        an_oid_bound_to_both_strengths_is_single_factor,
        issuer_and_oid_beats_oid,
        no_rule_the_tenant_default,
        principal_name_to_on_premises_upn,
        principal_name_to_certificate_user_ids,
        rfc822_name_to_certificate_user_ids,
        issuer_and_subject_to_certificate_user_ids,
        subject_to_certificate_user_ids,
        subject_key_identifier_to_certificate_user_ids,
        sha1_public_key_to_certificate_user_ids,
        issuer_and_serial_number_to_certificate_user_ids,
        fallback_past_an_absent_field,
        fallback_past_a_mismatch,
        no_binding_matches,
        no_binding_value_on_the_certificate,
        tenant_requires_high_affinity_principal_name_alone_fails,
        tenant_requires_high_affinity_ski_passes,
        an_mfa_rule_requiring_high_affinity,
        revoked_in_the_base_crl,
        revoked_only_in_the_delta_crl,
        expired,
        not_yet_valid,
        untrusted_ca,
        user_out_of_scope,
        user_in_an_excluded_group,
        unknown_user,
        cba_disabled,
        ca_scoping_admits_a_member,
        ca_scoping_refuses_a_non_member,
        smartcard_logon_only_not_for_client_authentication,
    }
}

#[test]
fn the_explanation_tells_the_story() {
    let w = woodgrove();
    let engine = engine(step5(), directory(w), store(w), fixture_crls(w));
    let decision = decide(
        &engine,
        &w.der("alice-rsa2048-mfa"),
        "alice@woodgrove.com",
        OffsetDateTime::now_utc(),
    );
    assert!(decision.succeeded(), "{decision:?}");
    let text = decision.explanation.join("\n");
    assert!(
        text.contains("User `alice@woodgrove.com` found by the username typed."),
        "{text}"
    );
    assert!(
        text.contains("Chain built by AKI/SKI to a trusted root"),
        "{text}"
    );
    assert!(text.contains("not revoked (CRL 41, delta 42)"), "{text}");
    assert!(
        text.contains("Authentication binding: the policyOID rule `1.2.3.4` gives multiFactor"),
        "{text}"
    );
    assert!(text.contains("Binding PrincipalName -> userPrincipalName (priority 1): `alice@woodgrove.com` matches the user."), "{text}");
    assert_eq!(decision.chain.len(), 2);
    assert_eq!(decision.revocation.len(), 2);
    assert_eq!(
        decision.certificate.as_ref().unwrap().policy_oids,
        vec!["1.2.3.4"]
    );
}

/// A CRL for `ca` signed with `signer`'s key (normally the same CA; another to forge one).
fn crafted_crl(
    w: &Woodgrove,
    ca: &str,
    signer: &str,
    number: u64,
    delta_of: Option<u64>,
    entries: &[(&str, RevocationReason)],
    next_update: OffsetDateTime,
) -> Vec<u8> {
    let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    TestCrl {
        ca,
        signer,
        number,
        delta_of,
        entries,
        revoked_at: an_hour_ago,
        this_update: an_hour_ago,
        next_update,
    }
    .sign(w)
}

/// Alice's P-384 sign-in under the seed's Step 5, now, with `crl` as the issuing CA's base CRL.
fn alice_with_base_crl(w: &Woodgrove, crl: Vec<u8>) -> Decision {
    let crls = fixture_crls(w);
    crls.provide(&ski_of(w, "woodgrove-issuing"), CrlKind::Base, crl);
    decide(
        &engine(step5(), directory(w), store(w), crls),
        &w.der("alice-p384"),
        "alice@woodgrove.com",
        OffsetDateTime::now_utc(),
    )
}

/// Asserts that `decision` refused with Entra's `code` and a message that says `says`.
fn refused_with(decision: &Decision, code: &str, says: &str) {
    assert_eq!(
        decision.error_code.map(ErrorCode::as_str),
        Some(code),
        "{decision:?}"
    );
    assert!(decision.message.contains(says), "{}", decision.message);
}

fn in_days(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(days)
}

#[test]
fn remove_from_crl_in_a_delta_takes_a_certificate_off_hold() {
    let w = woodgrove();
    let issuing = ski_of(w, "woodgrove-issuing");
    let on_hold = crafted_crl(
        w,
        "woodgrove-issuing",
        "woodgrove-issuing",
        50,
        None,
        &[("bob-p256-rfc822", RevocationReason::CertificateHold)],
        in_days(7),
    );
    let empty_delta = crafted_crl(
        w,
        "woodgrove-issuing",
        "woodgrove-issuing",
        51,
        Some(50),
        &[],
        in_days(1),
    );
    let released = crafted_crl(
        w,
        "woodgrove-issuing",
        "woodgrove-issuing",
        51,
        Some(50),
        &[("bob-p256-rfc822", RevocationReason::RemoveFromCrl)],
        in_days(1),
    );
    let now = OffsetDateTime::now_utc();

    let held = fixture_crls(w);
    held.provide(&issuing, CrlKind::Base, on_hold.clone());
    held.provide(&issuing, CrlKind::Delta, empty_delta);
    let decision = decide(
        &engine(step5(), directory(w), store(w), held),
        &w.der("bob-p256-rfc822"),
        "bob@woodgrove.com",
        now,
    );
    refused_with(&decision, "AADSTS500171", "(certificateHold)");

    let off_hold = fixture_crls(w);
    off_hold.provide(&issuing, CrlKind::Base, on_hold);
    off_hold.provide(&issuing, CrlKind::Delta, released);
    let decision = decide(
        &engine(step5(), directory(w), store(w), off_hold),
        &w.der("bob-p256-rfc822"),
        "bob@woodgrove.com",
        now,
    );
    assert!(decision.succeeded(), "{decision:?}");
}

#[test]
fn a_crl_signed_by_another_key_fails_closed() {
    let w = woodgrove();
    let forged = crafted_crl(
        w,
        "woodgrove-issuing",
        "fabrikam-rogue",
        99,
        None,
        &[],
        in_days(7),
    );
    let decision = alice_with_base_crl(w, forged);
    refused_with(&decision, "AADSTS2205015", "signature does not verify");
}

#[test]
fn a_crl_number_going_backwards_is_refused() {
    let w = woodgrove();
    let issuing = ski_of(w, "woodgrove-issuing");
    let crls = fixture_crls(w);
    let engine = engine(step5(), directory(w), store(w), crls);
    let now = OffsetDateTime::now_utc();
    assert!(decide(&engine, &w.der("alice-p384"), "alice@woodgrove.com", now).succeeded());
    // A week on, the cached CRL 41 is stale; the server now offers an older CRL 40.
    let later = now + time::Duration::days(7);
    let replayed = crafted_crl(
        w,
        "woodgrove-issuing",
        "woodgrove-issuing",
        40,
        None,
        &[],
        later + time::Duration::days(7),
    );
    engine
        .crls
        .source()
        .provide(&issuing, CrlKind::Base, replayed);
    let decision = decide(&engine, &w.der("alice-p384"), "alice@woodgrove.com", later);
    refused_with(
        &decision,
        "AADSTS500174",
        "CRL number 40, lower than the 41 already seen",
    );
}

/// The trusted CAs with the issuing CA's CRL settings changed.
fn store_with_issuing(w: &Woodgrove, crl: Option<&str>, delta: Option<&str>) -> TrustStore {
    let path = w.fixture.path(&w.fixture.manifest.trusted_authorities);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for ca in json["value"].as_array_mut().unwrap() {
        if ca["certificateAuthorityType"] == "intermediate" {
            ca["certificateRevocationListUrl"] = crl.map_or(serde_json::Value::Null, Into::into);
            ca["deltaCertificateRevocationListUrl"] =
                delta.map_or(serde_json::Value::Null, Into::into);
        }
    }
    TrustStore::from_json(json.to_string().as_bytes(), "edited").unwrap()
}

#[test]
fn an_unreachable_crl_fails_closed() {
    let w = woodgrove();
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = store_with_issuing(
        w,
        Some(&format!("http://127.0.0.1:{port}/issuing.crl")),
        None,
    );
    let source = CrlSource::http(FetchLimits {
        max_bytes: 1 << 20,
        timeout: Duration::from_secs(2),
    });
    let root = w.fixture.manifest.authority("woodgrove-root").unwrap();
    source.provide(
        &root.subject_key_identifier,
        CrlKind::Base,
        std::fs::read(w.fixture.path(&root.crl.file)).unwrap(),
    );
    let decision = decide(
        &engine(step5(), directory(w), store, source),
        &w.der("alice-p384"),
        "alice@woodgrove.com",
        OffsetDateTime::now_utc(),
    );
    refused_with(&decision, "AADSTS500173", "could not be reached");
}

/// Alice's P-384 certificate under `policy` at `now`, where the issuing CA has no CRL at all.
fn alice_without_an_issuing_crl(w: &Woodgrove, policy: CbaPolicy, now: OffsetDateTime) -> Decision {
    let engine = engine(
        policy,
        directory(w),
        store_with_issuing(w, None, None),
        fixture_crls(w),
    );
    decide(&engine, &w.der("alice-p384"), "alice@woodgrove.com", now)
}

#[test]
fn required_crl_validation_and_exempted_cas() {
    let w = woodgrove();
    let now = OffsetDateTime::now_utc();
    // The issuing CA has no CRL at all; Step 5's policy requires CRL validation.
    let required = alice_without_an_issuing_crl(w, step5(), now);
    assert_eq!(
        required.error_code.map(ErrorCode::as_str),
        Some("AADSTS500175"),
        "{required:?}"
    );

    let mut policy = step5();
    policy
        .crl_validation_configuration
        .exempted_certificate_authorities_subject_key_identifiers =
        vec![ski_of(w, "woodgrove-issuing").to_uppercase()];
    let exempt = alice_without_an_issuing_crl(w, policy, now);
    assert!(exempt.succeeded(), "{exempt:?}");
    assert_eq!(format!("{:?}", exempt.revocation[0].status), "Exempt");

    let mut policy = step5();
    policy.crl_validation_configuration.state = Switch::Disabled;
    let relaxed = alice_without_an_issuing_crl(w, policy, now);
    assert!(relaxed.succeeded(), "{relaxed:?}");
}

#[test]
fn concurrent_sign_ins_share_one_download_per_crl() {
    let w = woodgrove();
    let engine = Arc::new(engine(step5(), directory(w), store(w), fixture_crls(w)));
    let der = w.der("alice-p384");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let decisions = runtime.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let engine = engine.clone();
                let der = der.clone();
                tokio::spawn(async move {
                    engine
                        .decide(&der, "alice@woodgrove.com", OffsetDateTime::now_utc())
                        .await
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.unwrap());
        }
        out
    });
    assert!(decisions.iter().all(Decision::succeeded));
    // The issuing CA's base and delta CRLs and the root's CRL: three, not forty-eight.
    assert_eq!(engine.crls.source().fetch_count(), 3);
}

#[test]
fn graph_json_is_accepted_verbatim_and_bad_policy_names_the_field() {
    let policy = step5();
    assert_eq!(policy.authentication_mode_configuration.rules.len(), 2);
    let cases = [
        (
            r#""identifier": "1.2.3.4""#,
            r#""identifier": "All Issuance Policies""#,
            "authenticationModeConfiguration.rules[1].identifier",
        ),
        (
            r#""priority": 2"#,
            r#""priority": 1"#,
            "certificateUserBindings[1].priority",
        ),
        (
            r#""x509CertificateField": "SubjectKeyIdentifier",
      "userProperty": "certificateUserIds""#,
            r#""x509CertificateField": "SubjectKeyIdentifier",
      "userProperty": "userPrincipalName""#,
            "certificateUserBindings[2].userProperty",
        ),
        (
            r#""state": "enabled",
  "excludeTargets""#,
            r#""state": "unknownFutureValue",
  "excludeTargets""#,
            "state",
        ),
    ];
    let text = std::str::from_utf8(STEP5).unwrap();
    for (from, to, field) in cases {
        assert!(text.contains(from), "fixture changed: {from}");
        let err =
            CbaPolicy::from_json(text.replacen(from, to, 1).as_bytes(), "p.json").unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("p.json: field `{field}`: ")),
            "{err}"
        );
    }
    let err = CbaPolicy::from_json(b"{not json", "p.json").unwrap_err();
    assert!(err.to_string().starts_with("p.json: field `"), "{err}");
}

#[test]
fn bad_certificate_authorities_are_refused_with_the_field() {
    let w = woodgrove();
    let path = w.fixture.path(&w.fixture.manifest.trusted_authorities);
    let text = std::fs::read_to_string(path).unwrap();
    let https = text.replacen("http://crl.woodgrove.com", "https://crl.woodgrove.com", 1);
    let err = TrustStore::from_json(https.as_bytes(), "cas.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cas.json: [0].certificateRevocationListUrl: "),
        "{err}"
    );
    assert!(err.contains("plain HTTP"), "{err}");

    // An upload is refused while any trusted CA has expired.
    let mut store = store(w);
    let later = OffsetDateTime::now_utc() + time::Duration::days(4000);
    let rogue = TrustStore::load(&w.fixture.path("pki/ca/fabrikam-rogue.pem")).unwrap();
    let err = store.add(rogue.cas()[0].clone(), later).unwrap_err();
    assert!(err.to_string().contains("has expired"), "{err}");
}

#[test]
fn an_expired_crl_fails_closed() {
    let w = woodgrove();
    let stale = crafted_crl(
        w,
        "woodgrove-issuing",
        "woodgrove-issuing",
        45,
        None,
        &[],
        OffsetDateTime::now_utc() - time::Duration::minutes(5),
    );
    let decision = alice_with_base_crl(w, stale);
    refused_with(&decision, "AADSTS500172", "expired at");
}

#[test]
fn crls_fetched_over_http_within_the_size_limit() {
    use certauth::fixtures::crl_server::CrlSite;
    let w = woodgrove();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, stop) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(CrlSite::for_fixture(&w.fixture).serve(listener, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    });
    // The fixture's CAs, their CRLs published on loopback at the paths their URLs name.
    let path = w.fixture.path(&w.fixture.manifest.trusted_authorities);
    let json = std::fs::read_to_string(path)
        .unwrap()
        .replace("http://crl.woodgrove.com", &format!("http://{addr}"));
    let fetching = |max_bytes| {
        let store = TrustStore::from_json(json.as_bytes(), "loopback").unwrap();
        let source = CrlSource::http(FetchLimits {
            max_bytes,
            timeout: Duration::from_secs(5),
        });
        engine(step5(), directory(w), store, source)
    };
    let now = OffsetDateTime::now_utc();
    let fine = fetching(20 * 1024 * 1024);
    let decision =
        runtime.block_on(fine.decide(&w.der("bob-delta-revoked"), "bob@woodgrove.com", now));
    assert_eq!(
        decision.error_code.map(ErrorCode::as_str),
        Some("AADSTS500171"),
        "fetched over HTTP, the delta CRL revokes: {decision:?}"
    );
    let decision = runtime.block_on(fine.decide(&w.der("alice-p384"), "alice@woodgrove.com", now));
    assert!(decision.succeeded(), "{decision:?}");

    let tight = fetching(100);
    let decision = runtime.block_on(tight.decide(&w.der("alice-p384"), "alice@woodgrove.com", now));
    refused_with(&decision, "AADSTS2205014", "larger than the 100-byte limit");
    let _ = stop.send(());
}
