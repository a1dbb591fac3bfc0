//! A real `certauth-verifier serve` process on loopback, serving the Woodgrove fixture tenant.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::lines::Lines;
use super::woodgrove::Woodgrove;

pub struct Verifier {
    child: Child,
    pub state_dir: PathBuf,
    pub certauth_url: String,
    pub admin_url: String,
    pub server_ca: PathBuf,
    /// The Global Administrator key printed at first start (None on a restart).
    pub admin_key: Option<String>,
}

impl Verifier {
    /// Starts a verifier over `state_dir`, importing the fixture tenant on first start.
    pub fn start(w: &Woodgrove, state_dir: &Path) -> Self {
        Self::start_with(w, state_dir, &[])
    }

    /// As [`Verifier::start`], with more `serve` arguments (limits, timeouts).
    pub fn start_with(w: &Woodgrove, state_dir: &Path, extra: &[&str]) -> Self {
        Self::start_logging(w, state_dir, extra, Stdio::inherit())
    }

    /// As [`Verifier::start_with`], its log (stderr) going to `stderr` (a file, say).
    pub fn start_logging(
        w: &Woodgrove,
        state_dir: &Path,
        extra: &[&str],
        stderr: impl Into<Stdio>,
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certauth-verifier"))
            .args(["serve", "--state-dir"])
            .arg(state_dir)
            .arg("--tenant")
            .arg(&w.fixture.dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let mut field = |prefix: &str| {
            let (_, line) =
                lines.wait_for(prefix, Duration::from_secs(20), |l| l.starts_with(prefix));
            line[prefix.len()..].trim().to_owned()
        };
        let _ = field("certauth-verifier is serving");
        let certauth_url = field("  certauth endpoint");
        let admin_url = field("  admin API ");
        let server_ca = PathBuf::from(field("  server CA"));
        let admin_key = {
            let (_, line) =
                lines.wait_for("the key or the examples", Duration::from_secs(5), |l| {
                    l.starts_with("  admin API key") || l.starts_with("Sign in")
                });
            line.strip_prefix("  admin API key")
                .map(|k| k.trim().to_owned())
        };
        Self {
            child,
            state_dir: state_dir.to_owned(),
            certauth_url,
            admin_url,
            server_ca,
            admin_key,
        }
    }

    /// A key for `role`, made with `certauth-verifier api-key`.
    pub fn api_key(&self, role: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_certauth-verifier"))
            .args(["api-key", "--role", role, "--state-dir"])
            .arg(&self.state_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// SIGKILL, as a crash would.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        super::rig::stop(&mut self.child);
    }
}
