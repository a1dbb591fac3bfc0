//! The Woodgrove fixture, provisioned once per test process onto real SoftHSM tokens.
//!
//! SoftHSM keeps one token directory per process, so a test binary shares one fixture. The
//! provisioning sets `SOFTHSM2_CONF`, which child processes (the `certauth` binary) inherit.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use certauth::fixtures::spec::Spec;
use certauth::fixtures::{provision, Fixture, ProvisionOptions, Provisioning};
use secrecy::ExposeSecret;

pub struct Woodgrove {
    pub dir: tempfile::TempDir,
    pub spec: Spec,
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
        let mut command = Command::new(env!("CARGO_BIN_EXE_certauth"));
        command
            .env("SOFTHSM2_CONF", self.fixture.softhsm2_conf())
            .env("CERTAUTH_CONFIG", &self.config)
            .env_remove("CERTAUTH_PKCS11_MODULE")
            .env_remove("CERTAUTH_P11KIT_MODULE_DIRS")
            .env_remove("RUST_LOG")
            // No agent of the machine's user answers for these commands.
            .env_remove("CERTAUTH_AGENT_SOCKET")
            .env_remove("XDG_RUNTIME_DIR");
        // Loopback only: no proxy (with one, the server is not checked before the PIN either).
        for proxy in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            command.env_remove(proxy);
        }
        command
    }

    /// The SoftHSM module the fixture was made with.
    pub fn module(&self) -> &std::path::Path {
        &self.fixture.manifest.module
    }
}

pub fn woodgrove() -> &'static Woodgrove {
    static FIXTURE: OnceLock<Woodgrove> = OnceLock::new();
    FIXTURE.get_or_init(|| Woodgrove::provision(Spec::embedded_woodgrove().unwrap()))
}

impl Woodgrove {
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
            spec,
            fixture,
            config,
        }
    }
}
