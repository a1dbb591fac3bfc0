//! OpenSC's PKCS#11 spy (`pkcs11-spy.so`) in front of the Woodgrove SoftHSM module: it logs every
//! call certauth makes, so `C_Login` calls are counted, not guessed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::echo_server::EchoServer;
use super::woodgrove::Woodgrove;

pub const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

/// `certauth request` with Bob's RSA certificate through the spy, its PIN from `pin_source` and
/// its config directory `dir`; returns the command and the spy's log file.
pub fn request(
    w: &Woodgrove,
    server: &EchoServer,
    dir: &Path,
    pin_source: &str,
) -> (Command, PathBuf) {
    assert!(
        Path::new(SPY).is_file(),
        "{SPY} is missing: install Debian's opensc-pkcs11"
    );
    let log = dir.join("spy.log");
    let sha256 = w.sha256("bob-rsa3072");
    let mut command = w.certauth();
    command
        .args(["-vvv", "request", &server.url, "--cert", &sha256])
        .args(["--pin", pin_source])
        .args(["--no-p11-kit", "--module", SPY]);
    server.trusted_by(&mut command);
    command
        .env("PKCS11SPY", w.module())
        .env("PKCS11SPY_OUTPUT", &log)
        .env("XDG_CONFIG_HOME", dir)
        .env("HOME", dir)
        .stdin(Stdio::null());
    (command, log)
}

/// How many times the spy saw `C_Login`.
pub fn logins(log: &Path) -> usize {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    log.lines().filter(|l| l.ends_with(" C_Login")).count()
}
