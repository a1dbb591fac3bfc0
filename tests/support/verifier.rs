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
        let mut command = super::programs::verifier();
        command
            .args(Self::serve_args(w, state_dir))
            .args(extra)
            .stderr(stderr);
        Self::spawn(command, state_dir)
    }

    /// `serve --state-dir DIR --tenant FIXTURE`, for a command that wraps the verifier.
    pub fn serve_args(w: &Woodgrove, state_dir: &Path) -> Vec<std::ffi::OsString> {
        vec![
            "serve".into(),
            "--state-dir".into(),
            state_dir.into(),
            "--tenant".into(),
            w.fixture.dir.clone().into(),
        ]
    }

    /// Runs `command` (which must exec the verifier in place, so its PID is the verifier's) and
    /// reads its banner.
    pub fn spawn(mut command: Command, state_dir: &Path) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
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
        let out = super::programs::verifier()
            .args(["api-key", "--role", role, "--state-dir"])
            .arg(&self.state_dir)
            .output()
            .unwrap();
        super::stdout_text(&out).trim().to_owned()
    }

    /// SIGKILL, as a crash would.
    pub fn kill_hard(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `certauth sign-in` as `username` with the fixture certificate `name` (its SoftHSM token);
    /// (exit code, JSON answer).
    pub fn sign_in(&self, w: &Woodgrove, name: &str, username: &str) -> (i32, serde_json::Value) {
        let token = &w.spec.certificate(name).unwrap().token;
        let sha256 = &w.fixture.manifest.certificate(name).unwrap().sha256;
        let home = tempfile::tempdir().unwrap();
        let output = w
            .certauth()
            .args([
                "sign-in",
                &self.certauth_url,
                "--username",
                username,
                "--json",
                "--no-remember",
            ])
            .args(["--no-p11-kit", "--module"])
            .arg(w.module())
            .args(["--cert", sha256, "--pin", "env:TOKEN_PIN", "--ca-file"])
            .arg(&self.server_ca)
            .env("TOKEN_PIN", w.pin(token))
            .env("XDG_CONFIG_HOME", home.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let answer = serde_json::from_str(&stdout).unwrap_or_else(|_| {
            panic!(
                "{name}: no answer on stdout: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap(), answer)
    }

    /// An HTTPS client for the admin API that trusts the verifier's server CA.
    pub fn admin_client(&self) -> reqwest::Client {
        certauth::tls::install_crypto_provider();
        let roots = certauth::tls::client_config::trusted_roots(Some(&self.server_ca)).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .build()
            .unwrap()
    }

    /// One admin request with `client`: (status, JSON body or null).
    pub async fn admin_with(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = client.request(method, format!("{}{path}", self.admin_url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// One admin request with the key the first start printed, blocking.
    pub fn as_admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.admin(method, path, self.admin_key.as_deref(), body)
    }

    /// One admin request, blocking: (status, JSON body or null).
    pub fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(self.admin_with(&self.admin_client(), method, path, key, body))
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        super::rig::stop(&mut self.child);
    }
}
