//! The mutual-TLS echo server (`examples/certauth-mtls-echo.rs`) as a real process on loopback,
//! with a server certificate made for it and the Woodgrove root as the client CA.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};

use super::lines::Lines;
use super::woodgrove::Woodgrove;

/// Writes a canned answer for `--signin-response` in `dir`: `status` and the JSON `body`. Returns
/// the file's path.
pub fn canned(dir: &std::path::Path, status: u16, body: serde_json::Value) -> String {
    let file = dir.join(format!("answer-{status}.json"));
    std::fs::write(
        &file,
        serde_json::json!({"status": status, "body": body}).to_string(),
    )
    .unwrap();
    file.to_str().unwrap().to_owned()
}

pub struct EchoServer {
    child: Child,
    pub url: String,
    /// The CA that issued the server's certificate, for `--ca-file`.
    pub ca_file: PathBuf,
    /// The Woodgrove issuing and root CA certificates, for `--chain`.
    pub chain_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl EchoServer {
    /// Adds `--ca-file` (this server's CA) and `--chain` (the Woodgrove CAs) to a `certauth`
    /// command, so it trusts this server and can send its certificate's chain.
    pub fn trusted_by<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .arg("--ca-file")
            .arg(&self.ca_file)
            .arg("--chain")
            .arg(&self.chain_file)
    }

    /// `certauth ARGS` for this server: the fixture's SoftHSM module alone, this server trusted and
    /// the Woodgrove chain sent ([`Self::trusted_by`]), and `home` as its config and home
    /// directory.
    pub fn certauth(&self, w: &Woodgrove, home: &std::path::Path, args: &[&str]) -> Command {
        let mut command = w.certauth();
        command
            .args(args)
            .args(["--no-p11-kit", "--module"])
            .arg(w.module());
        self.trusted_by(&mut command);
        command.env("XDG_CONFIG_HOME", home).env("HOME", home);
        command
    }

    /// Starts the server trusting the Woodgrove root; `args` adds options such as `--tls12-only`.
    pub fn start(w: &Woodgrove, args: &[&str]) -> Self {
        Self::start_with_client_ca(w, &w.fixture.path("pki/ca/woodgrove-root.pem"), args)
    }

    /// Starts the server accepting client certificates from `client_ca` only.
    pub fn start_with_client_ca(w: &Woodgrove, client_ca: &std::path::Path, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "certauth test server CA");
        ca_params.distinguished_name = name;
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into().unwrap()),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer).unwrap();

        let ca_file = dir.path().join("server-ca.pem");
        let cert_file = dir.path().join("server.pem");
        let key_file = dir.path().join("server.key");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        std::fs::write(&cert_file, server_cert.pem()).unwrap();
        std::fs::write(&key_file, server_key.serialize_pem()).unwrap();

        let root = w.fixture.path("pki/ca/woodgrove-root.pem");
        let issuing = w.fixture.path("pki/ca/woodgrove-issuing.pem");
        let chain_file = dir.path().join("woodgrove-chain.pem");
        let chain =
            std::fs::read_to_string(&issuing).unwrap() + &std::fs::read_to_string(&root).unwrap();
        std::fs::write(&chain_file, chain).unwrap();

        let mut child = Command::new(super::example("certauth-mtls-echo"))
            .args([
                "--cert",
                cert_file.to_str().unwrap(),
                "--key",
                key_file.to_str().unwrap(),
            ])
            .args(["--client-ca", client_ca.to_str().unwrap()])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let (_, line) = lines.wait_for("the echo server's address", Duration::from_secs(10), |l| {
            l.starts_with("listening on ")
        });
        let url = line.trim_start_matches("listening on ").to_owned();
        Self {
            child,
            url,
            ca_file,
            chain_file,
            _dir: dir,
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        super::rig::stop(&mut self.child);
    }
}
