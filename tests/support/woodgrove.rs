//! The Woodgrove fixture, provisioned once per test process onto real SoftHSM tokens, and copied
//! for each test.
//!
//! SoftHSM keeps one token directory per process, so the test process itself works on the one
//! provisioned fixture; provisioning sets `SOFTHSM2_CONF` for it. The child processes a test starts
//! (`certauth`, the agent) work on that test's own copy of the tokens: SoftHSM rewrites a token's
//! file on every `C_Login`, and another process that reads the token directory at that moment skips
//! the token, so tests running side by side must not share one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use certauth::fixtures::spec::Spec;
use certauth::fixtures::{provision, Fixture, ProvisionOptions, Provisioning};
use secrecy::ExposeSecret;

pub struct Woodgrove {
    pub dir: tempfile::TempDir,
    pub spec: Arc<Spec>,
    pub fixture: Fixture,
    /// An empty certauth config file, so no user config leaks into tests.
    pub config: PathBuf,
}

impl Woodgrove {
    /// The user PIN of a token, by label.
    pub fn pin(&self, label: &str) -> String {
        self.spec
            .token(label)
            .unwrap()
            .pin
            .expose_secret()
            .to_owned()
    }

    /// `certauth` with this fixture's SoftHSM, nothing from the machine's p11-kit registry, and no
    /// running agent to find.
    pub fn certauth(&self) -> Command {
        let mut command = super::programs::certauth();
        command
            .env("SOFTHSM2_CONF", self.fixture.softhsm2_conf())
            .env("CERTAUTH_CONFIG", &self.config);
        command
    }

    /// `certauth list ARGS` with this fixture's module alone; with `token`, logged in to that
    /// token (`--token`, and its PIN from the environment).
    pub fn list(&self, args: &[&str], token: Option<&str>) -> Command {
        let mut command = self.certauth();
        command
            .arg("list")
            .args(args)
            .args(["--no-p11-kit", "--module"])
            .arg(self.module());
        if let Some(label) = token {
            command
                .args(["--token", label, "--pin", "env:TOKEN_PIN"])
                .env("TOKEN_PIN", self.pin(label));
        }
        command
    }

    /// The SHA-256 thumbprint of the fixture certificate `name`, as `--cert` takes it.
    pub fn sha256(&self, name: &str) -> String {
        self.fixture
            .manifest
            .certificate(name)
            .unwrap()
            .sha256
            .clone()
    }

    /// The DER of the fixture certificate `name`.
    pub fn der(&self, name: &str) -> Vec<u8> {
        let manifest = self.fixture.manifest.certificate(name).unwrap();
        let pem = std::fs::read(self.fixture.path(&manifest.file_pem)).unwrap();
        x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
    }

    /// The SoftHSM module the fixture was made with.
    pub fn module(&self) -> &std::path::Path {
        &self.fixture.manifest.module
    }
}

/// This test's Woodgrove, for the processes it starts: a copy of the process's provisioned
/// fixture, made on the test's first call (libtest runs each test on a thread of its own).
pub fn woodgrove() -> &'static Woodgrove {
    thread_local! {
        static COPY: &'static Woodgrove = Box::leak(Box::new(provisioned_woodgrove().copy()));
    }
    COPY.with(|copy| *copy)
}

/// The fixture the test process itself provisioned and opens in-process: the one token directory
/// its own SoftHSM uses (`SOFTHSM2_CONF`).
pub fn provisioned_woodgrove() -> &'static Woodgrove {
    static PROVISIONED: OnceLock<Woodgrove> = OnceLock::new();
    PROVISIONED.get_or_init(|| Woodgrove::provision(Spec::embedded_woodgrove().unwrap()))
}

impl Woodgrove {
    /// The same fixture in a directory of its own: its tokens, PKI files and SoftHSM config.
    fn copy(&self) -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (from, to) = (&self.fixture.dir, dir.path().join("woodgrove"));
        copy_tree(from, &to);
        let conf = self
            .fixture
            .softhsm2_conf()
            .strip_prefix(from)
            .unwrap()
            .to_owned();
        let text = std::fs::read_to_string(to.join(&conf)).unwrap();
        let from_text = from.to_str().unwrap();
        assert!(text.contains(from_text), "{text}");
        std::fs::write(
            to.join(&conf),
            text.replace(from_text, to.to_str().unwrap()),
        )
        .unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        Woodgrove {
            fixture: Fixture::open(&to).unwrap(),
            dir,
            spec: Arc::clone(&self.spec),
            config,
        }
    }

    /// Provisions `spec` (the Woodgrove one, or another with the same authority ids, so the
    /// helpers find its CA files) onto fresh SoftHSM tokens. One per test process: SoftHSM keeps
    /// the first token directory a process uses.
    pub fn provision(spec: Spec) -> Self {
        // A static is never dropped, so the directory outlives the process: keep it under the
        // target directory, where `cargo clean` finds it, rather than in /tmp.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (fixture, outcome) = provision(
            &spec,
            &dir.path().join("woodgrove"),
            &ProvisionOptions::default(),
        )
        .unwrap();
        assert_eq!(outcome, Provisioning::Created);
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "").unwrap();
        Woodgrove {
            dir,
            spec: Arc::new(spec),
            fixture,
            config,
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
