//! OpenSC's PKCS#11 spy (`pkcs11-spy.so`) in front of the Woodgrove SoftHSM module: it logs every
//! call certauth makes, so `C_Login` calls and token reads are counted, not guessed.

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
    calls(log, "C_Login")
}

/// How many times the spy has seen `function` so far.
pub fn calls(log: &Path, function: &str) -> usize {
    let suffix = format!(" {function}");
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(&suffix))
        .count()
}

/// What reading tokens costs between two points: tokens read in full (a token's full read asks
/// for its mechanism list once: two C_GetMechanismList calls, one for the length and one for the
/// list) and the lines in which the spy shows a CKA_VALUE asked for or given (a certificate's
/// contents read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    pub tokens: usize,
    pub values: usize,
}

pub fn reads(log: &Path) -> Reads {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    Reads {
        tokens: calls(log, "C_GetMechanismList") / 2,
        values: text
            .lines()
            .filter(|l| l.starts_with("    CKA_VALUE "))
            .count(),
    }
}

pub fn since(before: Reads, log: &Path) -> Reads {
    let now = reads(log);
    Reads {
        tokens: now.tokens - before.tokens,
        values: now.values - before.values,
    }
}
