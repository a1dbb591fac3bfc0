//! Bad input to the fixture builder gets a clear error naming the file and the field, never a panic:
//! through the library, and through `certauth fixture` as a user meets it.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use certauth::fixtures::spec::{Spec, SpecError, EMBEDDED_WOODGROVE};
use certauth::fixtures::{provision, FixtureError, ProvisionOptions};
use certauth::toml_file::TomlError;

fn spec_file(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `certauth fixture` and returns (exit code, stderr).
fn certauth_fixture(args: &[&str]) -> (i32, String) {
    let output = support::programs::certauth()
        .arg("fixture")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "certauth panicked: {stderr}");
    (output.status.code().unwrap(), stderr)
}

#[test]
fn malformed_toml_names_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = EMBEDDED_WOODGROVE.replacen("[tenant]", "[tenant", 1);
    let path = spec_file(dir.path(), &text);
    let err = Spec::load(&path).unwrap_err();
    let SpecError::Syntax(TomlError {
        path: named, line, ..
    }) = &err
    else {
        panic!("expected a syntax error, got {err:?}");
    };
    assert_eq!(named, &path);
    let expected_line = text.lines().position(|l| l == "[tenant").unwrap() + 1;
    assert_eq!(*line, expected_line);
    assert!(err
        .to_string()
        .starts_with(&format!("{}:{expected_line}:", path.display())));
}

#[test]
fn a_missing_field_is_named_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = EMBEDDED_WOODGROVE.replacen("so_pin = \"87654321\"\n", "", 1);
    let path = spec_file(dir.path(), &text);
    let err = Spec::load(&path).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("field `tokens[1]`"), "{shown}");
    assert!(shown.contains("missing field `so_pin`"), "{shown}");
}

#[test]
fn a_misspelt_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = EMBEDDED_WOODGROVE.replacen("not_after_days = 365\n", "not_after_dayz = 365\n", 1);
    let err = Spec::load(&spec_file(dir.path(), &text)).unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains("unknown field `not_after_dayz`"), "{shown}");
}

#[test]
fn an_unknown_ca_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        EMBEDDED_WOODGROVE.replacen("issuer = \"fabrikam-rogue\"", "issuer = \"contoso-ca\"", 1);
    let path = spec_file(dir.path(), &text);
    let err = Spec::load(&path).unwrap_err();
    let SpecError::Invalid {
        path: named,
        field,
        message,
    } = &err
    else {
        panic!("expected a validation error, got {err:?}");
    };
    assert_eq!(named, &path);
    assert_eq!(field, "certificates[10].issuer");
    assert_eq!(
        message,
        "unknown authority `contoso-ca`; known: woodgrove-root, woodgrove-issuing, fabrikam-rogue"
    );

    // The same error as a user of the command line sees it.
    let out = dir.path().join("out");
    let (code, stderr) = certauth_fixture(&[
        "--dir",
        out.to_str().unwrap(),
        "--spec",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "certauth: error: {}: field `certificates[10].issuer`: unknown authority `contoso-ca`; known: woodgrove-root, woodgrove-issuing, fabrikam-rogue",
            path.display()
        )
    );
    assert!(!out.exists(), "nothing is provisioned from a bad spec");
}

#[test]
fn semantic_mistakes_are_named() {
    let cases = [
        (
            "policies = [\"1.2.3.4\"]",
            "policies = [\"All Issuance Policies\"]",
            "certificates[1].policies[0]",
            "is not a dotted OID",
        ),
        (
            "key = \"p384\"\nserial = \"01\"",
            "key = \"rsa2048\"\nserial = \"01\"",
            "authorities[0].key",
            "cannot generate RSA-2048",
        ),
        (
            "url = \"http://crl.woodgrove.com/pki/woodgrove-root-ca.crl\"",
            "url = \"ldap://crl.woodgrove.com/pki/woodgrove-root-ca.crl\"",
            "authorities[0].crl.url",
            "is not an http:// URL",
        ),
        (
            "serial = \"1002\"",
            "serial = \"1001\"",
            "certificates[1].serial",
            "already used by woodgrove-issuing",
        ),
        (
            "groups = [\"cba-users\", \"finance\"]",
            "groups = [\"cba-users\", \"payroll\"]",
            "users[0].groups",
            "unknown group `payroll`",
        ),
        (
            "pin = \"123456\"",
            "pin = \"12\"",
            "tokens[0].pin",
            "a PIN is 4 to 255 characters",
        ),
    ];
    for (from, to, field, words) in cases {
        assert!(
            EMBEDDED_WOODGROVE.contains(from),
            "fixture text changed: {from}"
        );
        let text = EMBEDDED_WOODGROVE.replacen(from, to, 1);
        let err = Spec::parse(&text, Path::new("woodgrove.toml")).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("woodgrove.toml: field `{field}`: ")),
            "{shown}"
        );
        assert!(shown.contains(words), "{shown}");
        // A PIN never appears in an error, even one about the PIN.
        assert!(!shown.contains("\"12\""), "{shown}");
    }
}

#[test]
fn a_token_directory_under_a_file_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"").unwrap();
    let target = file.join("tokens");
    let spec = Spec::embedded_woodgrove().unwrap();
    let err = provision(&spec, &target, &ProvisionOptions::default()).unwrap_err();
    assert!(
        matches!(err, FixtureError::DirectoryNotWritable { ref path, .. } if *path == target),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .contains("choose a directory you can write to"));
}

#[test]
fn a_read_only_token_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("read-only");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o555)).unwrap();

    let (code, stderr) = certauth_fixture(&["--dir", target.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "certauth: error: cannot use {} as the fixture directory: it is read-only; choose a directory you can write to",
            target.display()
        )
    );
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn a_non_empty_directory_without_a_fixture_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    let spec = Spec::embedded_woodgrove().unwrap();
    let err = provision(&spec, dir.path(), &ProvisionOptions::default()).unwrap_err();
    assert!(
        matches!(err, FixtureError::DirectoryNotEmpty { .. }),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_missing_softhsm_names_the_package() {
    let dir = tempfile::tempdir().unwrap();
    let output = support::programs::certauth()
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .env("CERTAUTH_SOFTHSM_MODULE", "/nonexistent/libsofthsm2.so")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("SoftHSM is not installed"), "{stderr}");
    assert!(stderr.contains("apt-get install softhsm2"), "{stderr}");
}
