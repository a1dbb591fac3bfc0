//! Files certauth trusts only when no one else could have written them (issue 13, item 6), as
//! ssh's `StrictModes` decides: a config, remembered-choice or PIN file owned by another user,
//! writable by its group or others, or in a directory others may write (and not sticky) is
//! refused, naming the file and the fix; a PIN file others may read works, with a warning.
//!
//! Real `certauth` processes. The config's module is OpenSC's PKCS#11 spy, which writes its log
//! the moment it is loaded: no log means the module's code never ran. The tests run as root, as CI
//! does, so they can `chown` a file to nobody (65534).

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::json;
use support::echo_server::{canned, EchoServer};
use support::spy::{self, logins, SPY};
use support::text;
use support::woodgrove::{woodgrove, Woodgrove};

const NOBODY: u32 = 65534;
/// certauth's exit codes for no usable certificate and for a PIN problem.
const EXIT_NO_CERTIFICATE: i32 = 4;
const EXIT_PIN: i32 = 5;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn give_to_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap_or_else(|e| {
        panic!(
            "cannot chown {} to nobody; these tests run as root, as CI does: {e}",
            path.display()
        )
    });
}

/// This test process's uid, which the `certauth` it runs shares.
fn own_uid() -> u32 {
    tempfile::tempfile().unwrap().metadata().unwrap().uid()
}

/// Why a file named `path` that belongs to nobody (uid 65534) is refused.
fn not_yours(path: &Path) -> String {
    let you = own_uid();
    format!(
        "it is owned by uid 65534, not by you (uid {you}) or root; if what it holds is yours, run `sudo chown {you} {}`, else remove it",
        path.display()
    )
}

/// Writes `config.toml` in `dir`, a config that loads the spy as a module; returns its path.
fn config_in(dir: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("modules = [\"{SPY}\"]\n")).unwrap();
    chmod(&path, 0o644);
    path
}

/// `certauth list` with the config `config`; returns its output and whether the config's module
/// (the spy) was loaded.
fn list_with(w: &Woodgrove, config: &Path) -> (Output, bool) {
    assert!(
        Path::new(SPY).is_file(),
        "{SPY} is missing: install Debian's opensc-pkcs11"
    );
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("spy.log");
    let output = w
        .certauth()
        .args(["list", "--no-p11-kit"])
        .env("CERTAUTH_CONFIG", config)
        .env("PKCS11SPY", w.module())
        .env("PKCS11SPY_OUTPUT", &log)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output, log.exists())
}

/// `list` refuses `config` with exactly `reason` (after "refusing CONFIG: "), and never loads its
/// module.
fn assert_config_refused(w: &Woodgrove, config: &Path, named: &Path, reason: &str) {
    let (output, loaded) = list_with(w, config);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "certauth: error: cannot use the config file: refusing {}: {reason}\n",
            named.display()
        )
    );
    assert!(!loaded, "the refused config's module was loaded");
}

#[test]
fn a_config_owned_by_another_user_is_refused_and_its_module_never_loads() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    // The same config, yours: its module loads (so the spy's log does show a loaded module).
    let (output, loaded) = list_with(w, &config);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        loaded,
        "the spy left no log: it cannot show whether a module loaded"
    );

    give_to_nobody(&config);
    let reason = not_yours(&config);
    assert_config_refused(w, &config, &config, &reason);

    // Through a link of your own, the file it leads to is judged.
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("config.toml");
    std::os::unix::fs::symlink(&config, &link).unwrap();
    let reason = not_yours(&link);
    assert_config_refused(w, &link, &link, &reason);
}

#[test]
fn a_config_its_group_or_others_may_write_is_refused() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    for (mode, who) in [
        (0o666, "its group and others"),
        (0o664, "its group"),
        (0o646, "others"),
    ] {
        chmod(&config, mode);
        let reason = format!(
            "it is writable by {who} (mode {mode:04o}); run `chmod go-w {}`",
            config.display()
        );
        assert_config_refused(w, &config, &config, &reason);
    }
}

#[test]
fn a_config_in_a_directory_others_may_write_is_refused_unless_it_is_sticky() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let config = config_in(&shared);
    chmod(&shared, 0o777);
    let reason = format!(
        "its directory {0} is writable by its group and others (mode 0777) and not sticky, so they could replace the file; run `chmod go-w {0}`",
        shared.display()
    );
    assert_config_refused(w, &config, &config, &reason);

    // Like /tmp: others may add files there, but not replace yours.
    chmod(&shared, 0o1777);
    let (output, loaded) = list_with(w, &config);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(loaded);
}

#[test]
fn the_agent_will_not_start_on_a_config_others_may_write() {
    let w = woodgrove();
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    chmod(&config, 0o666);
    let log = dir.path().join("spy.log");
    let socket = dir.path().join("agent.sock");
    let child = w
        .certauth()
        .args(["agent", "--no-p11-kit", "--socket"])
        .arg(&socket)
        .env("CERTAUTH_CONFIG", &config)
        .env("PKCS11SPY", w.module())
        .env("PKCS11SPY_OUTPUT", &log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut agent = support::rig::Stopping(child);
    let status = support::rig::exit_within(&mut agent.0, Duration::from_secs(20))
        .expect("the agent started on a config others may write");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut agent.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "certauth: error: cannot use the config file: refusing {0}: it is writable by its group and others (mode 0666); run `chmod go-w {0}`\n",
            config.display()
        )
    );
    assert!(!log.exists(), "the refused config's module was loaded");
    assert!(!socket.exists());
}

/// A home whose remembered choices name Alice's MFA certificate for `server`.
fn home_remembering_alice(w: &Woodgrove, server: &EchoServer) -> (tempfile::TempDir, PathBuf) {
    let (home, file) = support::home_and_remembered_file();
    let endpoint = server.url.trim_end_matches('/').to_owned();
    let mfa = &w
        .fixture
        .manifest
        .certificate("alice-rsa2048-mfa")
        .unwrap()
        .sha256;
    std::fs::write(
        &file,
        json!({ endpoint: { "alice@woodgrove.com": {
            "sha256": mfa, "uri": "pkcs11:object=alice;type=cert", "description": "Alice's MFA certificate"
        }}})
        .to_string(),
    )
    .unwrap();
    chmod(&file, 0o644);
    (home, file)
}

/// `certauth sign-in` as Alice with no `--cert` and no terminal: four certificates could sign in,
/// so only a remembered choice makes it succeed.
fn sign_in_as_alice(w: &Woodgrove, server: &EchoServer, home: &Path) -> Output {
    server
        .certauth(
            w,
            home,
            &["sign-in", &server.url, "--username", "alice@woodgrove.com"],
        )
        .args(["--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", w.pin("Woodgrove Alice"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn remembered_choices_someone_else_could_have_written_are_not_used() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let success = canned(
        answers.path(),
        200,
        json!({"status": "success", "userPrincipalName": "alice@woodgrove.com"}),
    );
    let server = EchoServer::start(w, &["--signin-response", &success]);

    // Yours: the remembered choice signs in.
    let (home, _) = home_remembering_alice(w, &server);
    let output = sign_in_as_alice(w, &server, home.path());
    assert!(output.status.success(), "{}", text(&output.stderr));

    let owned_by_nobody = |file: &Path| {
        give_to_nobody(file);
        not_yours(file)
    };
    let writable = |file: &Path| {
        chmod(file, 0o666);
        format!(
            "it is writable by its group and others (mode 0666); run `chmod go-w {}`",
            file.display()
        )
    };
    let linked_to_nobodys = |file: &Path| {
        let real = file.with_file_name("real.json");
        std::fs::rename(file, &real).unwrap();
        std::os::unix::fs::symlink(&real, file).unwrap();
        give_to_nobody(&real);
        not_yours(file)
    };
    let setups: [&dyn Fn(&Path) -> String; 3] = [&owned_by_nobody, &writable, &linked_to_nobodys];
    for spoil in setups {
        let (home, file) = home_remembering_alice(w, &server);
        let reason = spoil(&file);
        let output = sign_in_as_alice(w, &server, home.path());
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "Warning: the remembered certificate choices are not used: refusing {}: {reason}\n",
                file.display()
            )),
            "{stderr}"
        );
        assert_eq!(output.status.code(), Some(EXIT_NO_CERTIFICATE), "{stderr}");
        assert!(
            stderr
                .contains("several certificates can sign in and there is no terminal to choose on"),
            "{stderr}"
        );
    }
}

/// `certauth forget` (every endpoint) with the config directory `home`.
fn forget(w: &Woodgrove, home: &Path) -> Output {
    w.certauth()
        .arg("forget")
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn forget_never_writes_where_someone_else_could_change_the_file() {
    let w = woodgrove();
    let (home, file) = support::home_and_remembered_file();
    let store = file.parent().unwrap();
    let before = r#"{"https://a.example:443": {}}"#;
    std::fs::write(&file, before).unwrap();
    chmod(&file, 0o666);

    let output = forget(w, home.path());
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "certauth: error: refusing {0}: it is writable by its group and others (mode 0666); run `chmod go-w {0}`\n",
            file.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o666);

    // No file yet, in a directory others may write: none is made there.
    std::fs::remove_file(&file).unwrap();
    chmod(store, 0o777);
    let output = forget(w, home.path());
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "certauth: error: refusing {0}: its directory {1} is writable by its group and others (mode 0777) and not sticky, so they could replace the file; run `chmod go-w {1}`\n",
            file.display(),
            store.display()
        )
    );
    assert_eq!(std::fs::read_dir(store).unwrap().count(), 0);
}

#[test]
fn forget_never_writes_through_a_planted_link() {
    let w = woodgrove();
    let (home, file) = support::home_and_remembered_file();
    let victim = home.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    std::os::unix::fs::symlink(&victim, file.with_extension("json.partial")).unwrap();

    let output = forget(w, home.path());
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&file).unwrap();
    assert!(meta.is_file(), "the link itself is replaced");
    assert_eq!(meta.mode() & 0o777, 0o600);
}

/// A PIN file holding Bob's right PIN, with `mode`.
fn pin_file(w: &Woodgrove, dir: &Path, mode: u32) -> PathBuf {
    let file = dir.join("pin");
    support::write_private(&file, format!("{}\n", w.pin("Woodgrove Bob")));
    chmod(&file, mode);
    file
}

#[test]
fn a_pin_file_someone_else_owns_or_may_write_is_refused_before_any_login() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    for (mode, foreign) in [(0o666, false), (0o620, false), (0o600, true)] {
        let dir = tempfile::tempdir().unwrap();
        let file = pin_file(w, dir.path(), mode);
        let shown = file.display();
        let reason = if foreign {
            give_to_nobody(&file);
            not_yours(&file)
        } else {
            let who = if mode == 0o666 {
                "its group and others"
            } else {
                "its group"
            };
            format!("it is writable by {who} (mode {mode:04o}); run `chmod 600 {shown}`")
        };
        let (mut command, log) = spy::request(w, &server, dir.path(), &format!("file:{shown}"));
        let output = command.output().unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(EXIT_PIN), "{stderr}");
        let expected = format!("refusing {shown}: {reason}");
        assert!(stderr.contains(&expected), "{expected}\n{stderr}");
        assert_eq!(logins(&log), 0, "a C_Login was made:\n{stderr}");
    }
}

#[test]
fn a_pin_file_others_may_read_works_with_a_warning() {
    let w = woodgrove();
    let server = EchoServer::start(w, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = pin_file(w, dir.path(), 0o644);
    let (mut command, log) =
        spy::request(w, &server, dir.path(), &format!("file:{}", file.display()));
    let output = command.output().unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(logins(&log), 1, "{stderr}");
    let warning = format!(
        "Warning: the PIN file {0} is readable by its group and others (mode 0644); run `chmod 600 {0}`.\n",
        file.display()
    );
    assert_eq!(stderr.matches(&warning).count(), 1, "{stderr}");

    // Owner-only: no warning.
    chmod(&file, 0o600);
    std::fs::remove_file(&log).unwrap();
    let (mut command, log) =
        spy::request(w, &server, dir.path(), &format!("file:{}", file.display()));
    let output = command.output().unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(logins(&log), 1, "{stderr}");
    assert!(!stderr.contains("Warning: the PIN file"), "{stderr}");
}
