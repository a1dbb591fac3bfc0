//! The virtual PIV card in the PC/SC rig: keys and certificates from the Woodgrove issuing CA,
//! the card process started in the rig, and OpenSC's tools pointed at it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::rig::{self, PcscRig};

/// Where Debian and other distributions put OpenSC's PKCS#11 module (package opensc-pkcs11).
const OPENSC_MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
];
pub const PIN: &str = "123456";
pub const PUK: &str = "12345678";
/// The user principal name in both certificates' subjectAltName.
pub const UPN: &str = "alice@woodgrove.com";
/// The Microsoft UPN otherName (szOID_NT_PRINCIPAL_NAME).
const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];
/// OpenSC with only its PIV driver (no probing of other card types) and no on-disk cache, so
/// one test's certificates never turn up in another's token.
const OPENSC_CONF: &str = "app default {\n\
                           \tcard_drivers = PIV-II;\n\
                           \tframework pkcs15 {\n\t\tuse_file_caching = no;\n\t}\n\
                           }\n";
/// SELECT of the PIV application by its AID prefix (as OpenSC sends it).
const SELECT_PIV: &str = "00A4040009A00000030800001000";
/// How long the card may take to appear: pcscd polls vpcd every 400 ms.
const CARD_PATIENCE: Duration = Duration::from_secs(10);

/// The card's keys (PKCS#8 PEM from `openssl genpkey`) and certificates (PEM, issued to
/// [`UPN`] by the Woodgrove issuing CA): RSA-2048 for slot 9A, EC P-256 for slot 9C.
pub struct CardKeys {
    pub dir: tempfile::TempDir,
    pub rsa_key: PathBuf,
    pub rsa_cert: PathBuf,
    pub ec_key: PathBuf,
    pub ec_cert: PathBuf,
}

impl CardKeys {
    /// Makes both keys and has the Woodgrove issuing CA certify them.
    pub fn issue() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let (rsa_key, rsa_cert, ec_key, ec_cert) = (
            path("9a.key"),
            path("9a.pem"),
            path("9c.key"),
            path("9c.pem"),
        );
        genpkey(
            &rsa_key,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        );
        genpkey(
            &ec_key,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        issue_certificate(&rsa_key, "Alice Woodgrove", &rsa_cert);
        issue_certificate(&ec_key, "Alice Woodgrove (signing)", &ec_cert);
        Self {
            dir,
            rsa_key,
            rsa_cert,
            ec_key,
            ec_cert,
        }
    }

    /// The arguments that put these keys on the card.
    fn card_args(&self) -> Vec<&std::ffi::OsStr> {
        vec![
            "--rsa-key".as_ref(),
            self.rsa_key.as_os_str(),
            "--rsa-cert".as_ref(),
            self.rsa_cert.as_os_str(),
            "--ec-key".as_ref(),
            self.ec_key.as_os_str(),
            "--ec-cert".as_ref(),
            self.ec_cert.as_os_str(),
        ]
    }
}

fn genpkey(out: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "openssl genpkey: {output:?}");
}

/// Issues a client-authentication certificate for the key at `key` from the Woodgrove issuing
/// CA, with [`UPN`] as its UPN, and writes it as PEM to `out`.
fn issue_certificate(key: &Path, common_name: &str, out: &Path) {
    let w = super::woodgrove::woodgrove();
    let ca_der = pem_to_der(&w.fixture.path("pki/ca/woodgrove-issuing.pem"));
    let ca_key = std::fs::read_to_string(w.fixture.path("pki/ca/woodgrove-issuing.key")).unwrap();
    let issuer =
        Issuer::from_ca_cert_der(&ca_der.into(), KeyPair::from_pem(&ca_key).unwrap()).unwrap();
    let subject_key = KeyPair::from_pem(&std::fs::read_to_string(key).unwrap()).unwrap();

    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.subject_alt_names = vec![SanType::OtherName((UPN_OID.to_vec(), UPN.into()))];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    let cert = params.signed_by(&subject_key, &issuer).unwrap();
    std::fs::write(out, cert.pem()).unwrap();
}

/// A PC/SC rig with the virtual PIV card in reader 0, holding a fresh [`CardKeys`].
///
/// Dropping it stops the card, then pcscd.
pub struct PivRig {
    card: Child,
    /// The extra arguments the card was started with, for a re-insertion.
    card_args: Vec<String>,
    pub keys: CardKeys,
    /// The private OpenSC configuration ([`OPENSC_CONF`]).
    pub opensc_conf: PathBuf,
    /// The card's stderr (`--trace`: one line per APDU, never its data).
    card_log: PathBuf,
    pub rig: PcscRig,
}

impl PivRig {
    /// Starts a rig and a card with new keys; `card_args` go to the card after the keys (for
    /// example `--retries 3`). Returns once OpenSC sees the card.
    pub fn start(card_args: &[&str]) -> Self {
        let keys = CardKeys::issue();
        let opensc_conf = keys.dir.path().join("opensc.conf");
        std::fs::write(&opensc_conf, OPENSC_CONF).unwrap();
        let card_log = keys.dir.path().join("card.log");
        let rig = PcscRig::start();
        let card_args: Vec<String> = card_args.iter().map(|a| (*a).to_owned()).collect();
        let card = spawn_card(&rig, &keys, &card_args, &card_log);
        let mut piv = Self {
            card,
            card_args,
            keys,
            opensc_conf,
            card_log,
            rig,
        };
        piv.wait_for_card();
        piv
    }

    /// Waits up to `patience` for the card process to exit on its own; its status if it did.
    pub fn card_exit(&mut self, patience: Duration) -> Option<std::process::ExitStatus> {
        rig::exit_within(&mut self.card, patience)
    }

    /// Pulls the card out: the card process stops, and pcscd sees the reader empty.
    pub fn remove_card(&mut self) {
        rig::stop(&mut self.card);
    }

    /// Puts the card back (the same keys, its PIN state fresh, as after a power cycle) and
    /// returns once OpenSC sees it.
    pub fn insert_card(&mut self) {
        rig::stop(&mut self.card);
        self.card = spawn_card(&self.rig, &self.keys, &self.card_args, &self.card_log);
        self.wait_for_card();
    }

    fn wait_for_card(&mut self) {
        let started = Instant::now();
        while started.elapsed() < CARD_PATIENCE {
            if let Some(status) = self.card.try_wait().unwrap() {
                panic!("the card exited ({status}):\n{}", self.card_log());
            }
            let mut atr = self.opensc("opensc-tool");
            if atr
                .args(["--reader", "0", "--atr"])
                .output()
                .unwrap()
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no card in reader 0 after {CARD_PATIENCE:?}:\n{}",
            self.card_log()
        );
    }

    /// An OpenSC tool in the rig, with the private configuration.
    pub fn opensc(&self, program: &str) -> Command {
        let mut command = self.rig.command(program);
        command.env("OPENSC_CONF", &self.opensc_conf);
        command
    }

    /// `pkcs11-tool` with OpenSC's module, in the rig.
    pub fn pkcs11_tool(&self) -> Command {
        let mut command = self.opensc("pkcs11-tool");
        command.arg("--module").arg(opensc_module());
        command
    }

    /// What the card logged so far, for failure messages.
    pub fn card_log(&self) -> String {
        std::fs::read_to_string(&self.card_log).unwrap_or_default()
    }

    /// Runs `command` and returns its stdout; panics with everything when it fails.
    pub fn succeed(&self, command: &mut Command) -> String {
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}\ncard log:\n{}",
            describe(&output),
            self.card_log()
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `command`, which must fail, and returns its stdout and stderr.
    pub fn fail(&self, command: &mut Command) -> String {
        let output = command.output().unwrap();
        assert!(
            !output.status.success(),
            "{command:?} succeeded:\n{}",
            describe(&output)
        );
        describe(&output)
    }

    /// The "token flags" line of the card's token (`pkcs11-tool -L`).
    pub fn token_flags(&self) -> String {
        let slots = self.succeed(self.pkcs11_tool().arg("--list-slots"));
        slots
            .lines()
            .find(|line| line.trim_start().starts_with("token flags"))
            .unwrap_or_else(|| panic!("no token flags in:\n{slots}"))
            .to_owned()
    }

    /// Logs in to the token with `pin` and lists its objects.
    pub fn login(&self, pin: &str) -> Command {
        let mut command = self.pkcs11_tool();
        command.args(["--login", "--pin", pin, "--list-objects"]);
        command
    }

    /// Selects the PIV application, sends `apdus` (hex) with `opensc-tool --send-apdu` and
    /// returns the status word of each (`"9000"`), the SELECT's first.
    pub fn transmit(&self, apdus: &[&str]) -> Vec<String> {
        let mut command = self.opensc("opensc-tool");
        command.args(["--reader", "0", "--send-apdu", SELECT_PIV]);
        for apdu in apdus {
            command.args(["--send-apdu", apdu]);
        }
        let output = self.succeed(&mut command);
        let words: Vec<String> = output
            .lines()
            .filter_map(|line| line.strip_prefix("Received (SW1=0x"))
            .map(|rest| rest.replace(", SW2=0x", "")[..4].to_owned())
            .collect();
        assert_eq!(words.len(), apdus.len() + 1, "{output}");
        words
    }
}

/// Starts `certauth-virtual-card` with `keys` on the rig's first vpcd port, logging to `log`.
fn spawn_card(rig: &PcscRig, keys: &CardKeys, args: &[String], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    rig.command(super::example("certauth-virtual-card"))
        .args(["--port", &rig::VPCD_PORT.to_string(), "--trace"])
        .args(keys.card_args())
        .args(args)
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Drop for PivRig {
    fn drop(&mut self) {
        rig::stop(&mut self.card);
    }
}

pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// OpenSC's PKCS#11 module on this machine.
pub fn opensc_module() -> PathBuf {
    OPENSC_MODULE_DIRS
        .iter()
        .map(|dir| Path::new(dir).join("opensc-pkcs11.so"))
        .find(|path| path.exists())
        .expect("opensc-pkcs11.so is not installed")
}

/// The DER of the first certificate in a PEM file.
pub fn pem_to_der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
}
