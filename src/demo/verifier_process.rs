//! The demo's verifier: the `certauth-verifier` program beside this one, run as its own process
//! serving the fixture's tenant, and stopped by its PID.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::error::{demo_error, DemoError, Step};
use crate::fixtures::Fixture;

/// The verifier process, stopped (by its PID) when dropped.
pub struct VerifierProcess {
    child: Child,
    pub url: reqwest::Url,
    pub server_ca: PathBuf,
}

impl VerifierProcess {
    /// How the verifier ended, once it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for VerifierProcess {
    fn drop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_verifier(fixture: &Fixture) -> Result<VerifierProcess, DemoError> {
    let exe = std::env::current_exe()?;
    let verifier = exe.with_file_name(format!("certauth-verifier{}", std::env::consts::EXE_SUFFIX));
    if !verifier.exists() {
        return Err(demo_error!(
            "{} is missing: build both programs (cargo build) to run the demo sign-in",
            verifier.display()
        ));
    }
    let mut child = Command::new(&verifier)
        .args(["serve", "--state-dir"])
        .arg(fixture.dir.join("verifier"))
        .arg("--tenant")
        .arg(&fixture.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .step(|| format!("cannot start {}", verifier.display()))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| demo_error!("no stdout from the verifier"))?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut server_ca) = (None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("  certauth endpoint") {
            url = Some(
                reqwest::Url::parse(rest.trim())
                    .step(|| format!("the verifier's endpoint {}", rest.trim()))?,
            );
        } else if let Some(rest) = line.strip_prefix("  server CA") {
            server_ca = Some(PathBuf::from(rest.trim()));
        } else if line.starts_with("Sign in") {
            break;
        }
    }
    // Keep reading what the verifier prints, so it never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    match (url, server_ca) {
        (Some(url), Some(server_ca)) => Ok(VerifierProcess {
            child,
            url,
            server_ca,
        }),
        _ => Err(demo_error!("the verifier did not say where it listens")),
    }
}
