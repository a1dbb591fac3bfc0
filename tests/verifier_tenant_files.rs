//! `certauth-verifier tenant export` and `tenant import`: a tenant as the folder of Graph GET
//! responses an admin would save. Export, import and export again give the same documents; `eval`
//! on the exported files decides as the service does for every fixture certificate; a folder with
//! one bad file is refused naming it, and the state is unchanged.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::eval::{eval, service_verdict, verdict};
use support::text;
use support::verifier::Verifier;
use support::woodgrove::woodgrove;

const FILES: [&str; 4] = [
    "x509Certificate.json",
    "certificateAuthorities.json",
    "users.json",
    "groups.json",
];

/// Certificates `certauth sign-in` refuses before the service sees them (expired, not yet valid,
/// smartcard logon only).
const CLIENT_REFUSES: [&str; 3] = [
    "alice-expired",
    "alice-smartcard-logon",
    "bob-not-yet-valid",
];

fn tenant(args: &[&std::ffi::OsStr]) -> Output {
    support::programs::verifier()
        .arg("tenant")
        .args(args)
        .output()
        .unwrap()
}

fn export(state: &Path, out: &Path) {
    let output = tenant(&[
        "export".as_ref(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        out.as_os_str(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

fn import(state: &Path, input: &Path, replace: bool) -> Output {
    let mut args = vec!["import".as_ref(), "--state-dir".as_ref(), state.as_os_str()];
    if replace {
        args.push("--replace".as_ref());
    }
    args.push(input.as_os_str());
    tenant(&args)
}

/// The folder's four documents, as text.
fn documents(dir: &Path) -> Vec<String> {
    FILES
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(name)).unwrap())
        .collect()
}

#[test]
fn export_import_export_is_identical_and_eval_decides_as_the_service() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let out = tempfile::tempdir().unwrap();
    let first = out.path().join("first");
    export(state.path(), &first);
    let users: Value = serde_json::from_str(&documents(&first)[2]).unwrap();
    assert_eq!(users["value"].as_array().unwrap().len(), 3, "{users}");

    // eval on the exported files decides as the service, for every fixture certificate.
    let file = |name: &str| first.join(name);
    let (policy, cas, users, groups) = (
        file(FILES[0]),
        file(FILES[1]),
        file(FILES[2]),
        file(FILES[3]),
    );
    let files = [
        ("--policy", policy.as_path()),
        ("--cas", cas.as_path()),
        ("--users", users.as_path()),
        ("--groups", groups.as_path()),
    ];
    let mut signed_in = 0;
    for certificate in &w.spec.certificates {
        if CLIENT_REFUSES.contains(&certificate.name.as_str()) {
            continue;
        }
        let username = certificate.user.as_deref().unwrap_or("alice@woodgrove.com");
        let (code, answer) = v.sign_in(w, &certificate.name, username);
        let service = service_verdict(code, &answer);
        signed_in += usize::from(code == 0);
        assert_eq!(
            verdict(&eval(w, &certificate.name, username, &files)),
            service,
            "{} as {username}: the service answered {answer}",
            certificate.name
        );
    }
    assert!(
        signed_in > 0 && signed_in < w.spec.certificates.len(),
        "{signed_in}"
    );
    drop(v);

    // Into a new state directory, and out again: the same documents.
    let copy = tempfile::tempdir().unwrap();
    let output = import(copy.path(), &first, false);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let second = out.path().join("second");
    export(copy.path(), &second);
    assert_eq!(documents(&first), documents(&second));

    // A state that holds a tenant is replaced only when asked.
    let output = import(copy.path(), &first, false);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--replace"),
        "{}",
        text(&output.stderr)
    );
    let output = import(copy.path(), &first, true);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let third = out.path().join("third");
    export(copy.path(), &third);
    assert_eq!(documents(&first), documents(&third));

    // The imported state serves (`--tenant` only publishes the fixture's CRLs on loopback: the
    // state already holds CAs, so nothing is imported from it).
    let v = Verifier::start(w, copy.path());
    let (code, answer) = v.sign_in(w, "alice-rsa2048-mfa", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");
    assert_eq!(answer["authenticationStrength"], "multiFactor", "{answer}");
}

#[test]
fn a_folder_with_one_bad_file_is_refused_naming_it_and_nothing_changes() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    drop(Verifier::start(w, state.path()));
    let out = tempfile::tempdir().unwrap();
    let before = out.path().join("before");
    export(state.path(), &before);

    // Another tenant's folder, its users file broken at one user.
    let bad = out.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    for name in FILES {
        std::fs::copy(before.join(name), bad.join(name)).unwrap();
    }
    let mut users: Value = serde_json::from_str(&documents(&bad)[2]).unwrap();
    users["value"][1]["authorizationInfo"]["certificateUserIds"] =
        serde_json::json!(["not a binding"]);
    std::fs::write(bad.join("users.json"), serde_json::to_vec(&users).unwrap()).unwrap();
    // And, to be sure the refusal is of the whole folder, a policy that would change things.
    let mut policy: Value = serde_json::from_str(&documents(&bad)[0]).unwrap();
    policy["state"] = "disabled".into();
    std::fs::write(
        bad.join("x509Certificate.json"),
        serde_json::to_vec(&policy).unwrap(),
    )
    .unwrap();

    let output = import(state.path(), &bad, true);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&bad.join("users.json").display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("value[1].authorizationInfo.certificateUserIds[0]"),
        "{stderr}"
    );
    let after = out.path().join("after");
    export(state.path(), &after);
    assert_eq!(documents(&before), documents(&after));

    // A CA file that is not a CA list, and a missing users file, are refused the same way.
    std::fs::copy(before.join("users.json"), bad.join("users.json")).unwrap();
    std::fs::copy(
        before.join("users.json"),
        bad.join("certificateAuthorities.json"),
    )
    .unwrap();
    let output = import(state.path(), &bad, true);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("certificateAuthorities.json"),
        "{}",
        text(&output.stderr)
    );
    std::fs::copy(
        before.join("certificateAuthorities.json"),
        bad.join("certificateAuthorities.json"),
    )
    .unwrap();
    std::fs::remove_file(bad.join("users.json")).unwrap();
    let output = import(state.path(), &bad, true);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("users.json is missing"),
        "{}",
        text(&output.stderr)
    );
    export(state.path(), &after);
    assert_eq!(documents(&before), documents(&after));
}
