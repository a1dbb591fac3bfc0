//! The files `certauth-verifier eval` (and `serve --tenant/--policy`) read, in the shapes Microsoft
//! Graph returns them (`tests/data/graph/eval/`, sources in its README): list responses, expanded
//! memberships from either side, the whole authenticationMethodsPolicy, and the verifier's own
//! admin API output. Each decides as the shape accepted before; a file of another shape is an error
//! naming the shape expected and the shape found, never a verdict.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use support::eval::{eval, verdict, STEP5};
use support::text;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};

const POLICY: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";

/// Files given to `eval`, as (option, path).
type Files<'a> = Vec<(&'a str, &'a Path)>;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/graph/eval")
        .join(name)
}

fn fixture_users(w: &Woodgrove) -> PathBuf {
    w.fixture.path("fixture.json")
}

/// Certificates and usernames whose Step 5 decisions differ: multifactor, single-factor, RFC822
/// binding, revoked, outside the targeted group, unknown user.
const CASES: [(&str, &str); 6] = [
    ("alice-rsa2048-mfa", "alice@woodgrove.com"),
    ("alice-p384", "alice@woodgrove.com"),
    ("bob-p256-rfc822", "bob@woodgrove.com"),
    ("bob-revoked", "bob@woodgrove.com"),
    ("alice-p384", "carol@woodgrove.com"),
    ("alice-p384", "nobody@woodgrove.com"),
];

/// The Step 5 verdicts with the fixture's own directory, as the tests before this file pinned
/// them; the files below must give the same.
fn expected_step5() -> Vec<Value> {
    let ok =
        |strength| json!({"signedIn": true, "errorCode": null, "authenticationStrength": strength});
    let refused =
        |code| json!({"signedIn": false, "errorCode": code, "authenticationStrength": null});
    vec![
        ok("multiFactor"),
        ok("singleFactor"),
        ok("singleFactor"),
        refused("AADSTS500171"),
        refused("AADSTS130501"),
        refused("AADSTS50034"),
    ]
}

fn verdicts(w: &Woodgrove, files: &[(&str, &Path)]) -> Vec<Value> {
    CASES
        .iter()
        .map(|(cert, username)| verdict(&eval(w, cert, username, files)))
        .collect()
}

/// Step 5 with other targets.
fn step5_with(dir: &Path, name: &str, include: Value, exclude: Value) -> PathBuf {
    let mut policy: Value = serde_json::from_slice(&std::fs::read(STEP5).unwrap()).unwrap();
    policy["includeTargets"] = include;
    policy["excludeTargets"] = exclude;
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

fn group(id: &str) -> Value {
    json!({"targetType": "group", "id": id, "isRegistrationRequired": false})
}

#[test]
fn graph_user_lists_decide_as_the_fixture_directory() {
    let w = woodgrove();
    let fixture = fixture_users(w);
    assert_eq!(
        verdicts(w, &[("--users", &fixture)]),
        expected_step5(),
        "the baseline"
    );
    // List users with memberOf expanded (groups as directoryObjects, a directory role beside them).
    let memberof = data("users-memberof.json");
    assert_eq!(verdicts(w, &[("--users", &memberof)]), expected_step5());
    // List users, and List groups with members expanded.
    let list = data("users-list.json");
    let groups = data("groups-members.json");
    assert_eq!(
        verdicts(w, &[("--users", &list), ("--groups", &groups)]),
        expected_step5()
    );
    // The plain list alone, under a policy for all users: the same as the fixture's directory
    // under that policy.
    let dir = tempfile::tempdir().unwrap();
    let everyone = step5_with(
        dir.path(),
        "all.json",
        json!([group("all_users")]),
        json!([]),
    );
    let policy = ("--policy", everyone.as_path());
    assert_eq!(
        verdicts(w, &[policy, ("--users", &list)]),
        verdicts(w, &[policy, ("--users", &fixture)])
    );
}

#[test]
fn group_targets_follow_memberships_from_either_side() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let policy = step5_with(
        dir.path(),
        "targets.json",
        json!([group("cba-users")]),
        json!([group("engineering")]),
    );
    let memberof = data("users-memberof.json");
    let list = data("users-list.json");
    let groups = data("groups-members.json");
    for files in [
        vec![("--users", memberof.as_path())],
        vec![("--users", list.as_path()), ("--groups", groups.as_path())],
    ] {
        let mut files = files;
        files.push(("--policy", policy.as_path()));
        let alice = eval(w, "alice-p384", "alice@woodgrove.com", &files);
        assert_eq!(verdict(&alice)["signedIn"], true, "{files:?}");
        let bob = eval(w, "bob-p256-rfc822", "bob@woodgrove.com", &files);
        assert_eq!(verdict(&bob)["errorCode"], "AADSTS130501", "{files:?}");
        assert!(
            text(&bob.stdout).contains("excluded by the group target `engineering`"),
            "{}",
            text(&bob.stdout)
        );
        let carol = eval(w, "alice-p384", "carol@woodgrove.com", &files);
        assert!(
            text(&carol.stdout)
                .contains("`carol@woodgrove.com` is not in the method's included targets"),
            "{}",
            text(&carol.stdout)
        );
    }
    // Without either side of the membership nobody is in `cba-users`.
    let alone = eval(
        w,
        "alice-p384",
        "alice@woodgrove.com",
        &[("--users", &list), ("--policy", &policy)],
    );
    assert_eq!(verdict(&alone)["errorCode"], "AADSTS130501");
}

#[test]
fn a_whole_methods_policy_decides_as_its_x509_entry() {
    let w = woodgrove();
    let fixture = fixture_users(w);
    let whole = data("authentication-methods-policy.json");
    assert_eq!(
        verdicts(w, &[("--users", &fixture), ("--policy", &whole)]),
        expected_step5()
    );
}

#[test]
fn the_verifiers_own_user_list_decides_as_the_service_does() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let key = v.admin_key.clone().unwrap();
    // Erin, made through the admin API in a new group, signs in with Alice's P-384 certificate by
    // its subject key identifier (Step 5's third binding).
    let der = x509_parser::pem::parse_x509_pem(
        &std::fs::read(w.fixture.path("pki/users/alice-p384.pem")).unwrap(),
    )
    .unwrap()
    .1
    .contents;
    let ski = certauth::x509::user_ids::certificate_user_id(
        &certauth::x509::cert_info::CertInfo::from_der(&der).unwrap(),
        certauth::x509::user_ids::BindingField::Ski,
        certauth::x509::user_ids::SerialOrder::LittleEndian,
    )
    .unwrap();
    let post = |path: &str, body: Value| {
        let (status, answer) = v.admin(reqwest::Method::POST, path, Some(&key), Some(body));
        assert_eq!(status, 201, "{answer}");
    };
    post(
        "/v1.0/groups",
        json!({"id": "pilot", "displayName": "CBA pilot"}),
    );
    post(
        "/v1.0/users",
        json!({"userPrincipalName": "erin@woodgrove.com", "displayName": "Erin Lee",
            "authorizationInfo": {"certificateUserIds": [ski]}, "memberOf": ["cba-users", "pilot"]}),
    );
    let dir = tempfile::tempdir().unwrap();
    let save = |path: &str, name: &str| {
        let (status, list) = v.admin(reqwest::Method::GET, path, Some(&key), None);
        assert_eq!(status, 200, "{list}");
        let file = dir.path().join(name);
        std::fs::write(&file, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
        file
    };
    let users = save("/v1.0/users", "users.json");
    let groups = save("/v1.0/groups", "groups.json");
    let files = [("--users", users.as_path()), ("--groups", groups.as_path())];

    let mut signed_in = 0;
    for (cert, username) in [
        ("alice-p384", "erin@woodgrove.com"),
        ("alice-rsa2048-mfa", "alice@woodgrove.com"),
        ("bob-revoked", "bob@woodgrove.com"),
        ("alice-p384", "carol@woodgrove.com"),
        ("bob-p256-rfc822", "erin@woodgrove.com"),
    ] {
        let (code, answer) = v.sign_in(w, cert, username);
        let service = json!({
            "signedIn": code == 0,
            "errorCode": answer["errorCode"],
            "authenticationStrength": answer["authenticationStrength"],
        });
        signed_in += usize::from(code == 0);
        assert_eq!(
            verdict(&eval(w, cert, username, &files)),
            service,
            "{cert} as {username}: the service answered {answer}"
        );
    }
    assert_eq!(signed_in, 2, "Erin and Alice sign in at the service");

    // The service's user list names its groups by id: without the group list they are unknown,
    // which is an error, not a verdict.
    let out = eval(
        w,
        "alice-p384",
        "erin@woodgrove.com",
        &[("--users", &users)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).is_empty());
    assert!(
        text(&out.stderr).contains("unknown group `cba-users`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn wrong_shapes_are_errors_never_verdicts() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, json: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, json).unwrap();
        path
    };
    let foo = write("foo.json", r#"{"foo": 1}"#);
    let empty = write("empty.json", "[]");
    let fixture = fixture_users(w);
    let step5 = PathBuf::from(STEP5);
    let users = data("users-memberof.json");
    let groups = data("groups-members.json");
    let whole = data("authentication-methods-policy.json");
    let no_x509 = data("authentication-methods-policy-without-x509.json");
    const EXPECT_POLICY: &str = "expected the x509Certificate method configuration (GET /policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate) or the whole authenticationMethodsPolicy holding it (GET /policies/authenticationMethodsPolicy); found";
    const EXPECT_USERS: &str = "expected a user list: Graph's `{\"value\": [...]}` (GET /users, with $expand=memberOf for memberships), an array of users, or `{\"users\": [...], \"groups\": [...]}`; found";
    const EXPECT_GROUPS: &str = "expected a group list: Graph's `{\"value\": [...]}` (GET /groups, with $expand=members for members) or an array of groups; found";
    let cases: [(Files, String); 9] = [
        (
            vec![("--users", &fixture), ("--policy", &users)],
            format!("users-memberof.json: {EXPECT_POLICY} a user list (3 users) — did you swap --policy and --users?"),
        ),
        (
            vec![("--users", &step5)],
            format!("policy-step5.json: {EXPECT_USERS} the x509Certificate method configuration (a policy) — did you swap --users and --policy?"),
        ),
        (
            vec![("--users", &whole)],
            format!("{EXPECT_USERS} the whole authenticationMethodsPolicy (a policy) — did you swap --users and --policy?"),
        ),
        (
            vec![("--users", &foo)],
            format!("foo.json: {EXPECT_USERS} a JSON object with keys `foo`\n"),
        ),
        (
            vec![("--users", &fixture), ("--policy", &foo)],
            format!("foo.json: {EXPECT_POLICY} a JSON object with keys `foo`\n"),
        ),
        (
            vec![("--users", &fixture), ("--policy", &empty)],
            format!("empty.json: {EXPECT_POLICY} an empty list\n"),
        ),
        (
            vec![("--users", &fixture), ("--policy", &no_x509)],
            format!("{EXPECT_POLICY} an authenticationMethodsPolicy with no x509Certificate entry in authenticationMethodConfigurations (only `Fido2`, `MicrosoftAuthenticator`, `Sms`, `TemporaryAccessPass`, `Email`)\n"),
        ),
        (
            vec![("--users", &groups)],
            format!("groups-members.json: {EXPECT_USERS} a group list (3 groups) — did you swap --users and --groups?"),
        ),
        (
            vec![("--users", &fixture), ("--groups", &users)],
            format!("users-memberof.json: {EXPECT_GROUPS} a user list (3 users) — did you swap --groups and --users?"),
        ),
    ];
    for (files, expected) in cases {
        let out = eval(w, "alice-p384", "alice@woodgrove.com", &files);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{files:?}: {}{stderr}",
            text(&out.stdout)
        );
        assert_eq!(text(&out.stdout), "", "{files:?}: a verdict was printed");
        assert!(
            stderr.contains(&expected),
            "{files:?}:\n{stderr}\nlacks\n{expected}"
        );
    }
}

#[test]
fn a_page_of_a_longer_list_is_named_on_stderr() {
    let w = woodgrove();
    let mut users: Value =
        serde_json::from_slice(&std::fs::read(data("users-memberof.json")).unwrap()).unwrap();
    users["@odata.nextLink"] =
        json!("https://graph.microsoft.com/v1.0/users?$expand=memberOf&$skiptoken=X%274453707");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page1.json");
    std::fs::write(&file, users.to_string()).unwrap();
    let out = eval(
        w,
        "alice-p384",
        "alice@woodgrove.com",
        &[("--users", &file)],
    );
    assert_eq!(verdict(&out)["signedIn"], true);
    assert!(
        text(&out.stderr).contains("page1.json: `value` holds 3 entries, one page of a longer list (it has an @odata.nextLink); what the other pages hold is missing"),
        "{}",
        text(&out.stderr)
    );
}

/// `serve --policy` reads the same files: the whole policy document imports its x509Certificate
/// entry; a user list is refused at start.
#[test]
fn serve_takes_the_same_policy_files() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let whole = data("authentication-methods-policy.json");
    let v = Verifier::start_with(w, state.path(), &["--policy", whole.to_str().unwrap()]);
    let key = v.admin_key.clone().unwrap();
    let (status, policy) = v.admin(reqwest::Method::GET, POLICY, Some(&key), None);
    assert_eq!(status, 200, "{policy}");
    let step5: Value = serde_json::from_slice(&std::fs::read(STEP5).unwrap()).unwrap();
    assert_eq!(policy["state"], "enabled");
    assert_eq!(policy["includeTargets"], step5["includeTargets"]);
    assert_eq!(
        policy["authenticationModeConfiguration"],
        step5["authenticationModeConfiguration"]
    );
    let (code, answer) = v.sign_in(w, "alice-rsa2048-mfa", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor");
    drop(v);

    let state = tempfile::tempdir().unwrap();
    let out = support::programs::verifier()
        .args(Verifier::serve_args(w, state.path()))
        .arg("--policy")
        .arg(data("users-list.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr)
            .contains("users-list.json: expected the x509Certificate method configuration"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("found a user list (3 users)"),
        "{}",
        text(&out.stderr)
    );
}
