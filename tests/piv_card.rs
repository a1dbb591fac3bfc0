//! The virtual PIV card (`certauth-virtual-card` given keys) through OpenSC's PKCS#11 module, in
//! the PC/SC rig: OpenSC lists the token and its certificates, both keys sign what openssl
//! verifies, the 9C key wants the PIN for each signature, bad commands get status words, and the
//! PIN locks for real and unblocks with the PUK.
//!
//! [`PivRig::start`] gives later tests a card with Woodgrove certificates in a rig of its own.
//!
//! Each test starts its own rig (a private pcscd in its own namespaces) and card, so the tests
//! share nothing but the Woodgrove issuing CA and may run in parallel.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use support::rig::{self, PcscRig};

/// OpenSC's PKCS#11 module (Debian package opensc-pkcs11).
const OPENSC_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
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
    let w = support::woodgrove::woodgrove();
    let ca_pem = std::fs::read(w.fixture.path("pki/ca/woodgrove-issuing.pem")).unwrap();
    let ca_key = std::fs::read_to_string(w.fixture.path("pki/ca/woodgrove-issuing.key")).unwrap();
    let (_, ca) = x509_parser::pem::parse_x509_pem(&ca_pem).unwrap();
    let issuer =
        Issuer::from_ca_cert_der(&ca.contents.into(), KeyPair::from_pem(&ca_key).unwrap()).unwrap();
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
        let card = rig
            .command(support::example("certauth-virtual-card"))
            .args(["--port", &rig::VPCD_PORT.to_string(), "--trace"])
            .args(keys.card_args())
            .args(card_args)
            .stderr(File::create(&card_log).unwrap())
            .spawn()
            .unwrap();
        let mut piv = Self {
            card,
            keys,
            opensc_conf,
            card_log,
            rig,
        };
        piv.wait_for_card();
        piv
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
        command.args(["--module", OPENSC_MODULE]);
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

impl Drop for PivRig {
    fn drop(&mut self) {
        rig::stop(&mut self.card);
    }
}

fn describe(output: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The blocks of `pkcs11-tool -O` output: a heading line and its indented attribute lines.
fn object_blocks(listing: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(char::is_whitespace) => {
                block.push('\n');
                block.push_str(line);
            }
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks
}

/// The block of the object of `kind` ("Certificate Object", "Private Key Object") with `id`.
fn object<'a>(blocks: &'a [String], kind: &str, id: &str) -> &'a str {
    blocks
        .iter()
        .find(|block| {
            block.starts_with(kind)
                && block
                    .lines()
                    .any(|line| line.split_whitespace().eq(["ID:", id]))
        })
        .unwrap_or_else(|| panic!("no {kind} with ID {id} in:\n{}", blocks.join("\n")))
}

fn pem_to_der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
}

/// Extracts a certificate's public key (PEM) with openssl.
fn public_key(cert: &Path, out: &Path) {
    let status = Command::new("openssl")
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(cert)
        .arg("-out")
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "openssl x509 -pubkey {}", cert.display());
}

/// `openssl pkeyutl -verify` of `signature` over the digest `hash`.
fn openssl_verify(public_key: &Path, hash: &Path, signature: &Path, options: &[&str]) -> Output {
    let mut command = Command::new("openssl");
    command
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(public_key)
        .arg("-in")
        .arg(hash)
        .arg("-sigfile")
        .arg(signature);
    for option in options {
        command.args(["-pkeyopt", option]);
    }
    command.output().unwrap()
}

/// SHA-256 of `data`, written to `out` for pkcs11-tool and openssl.
fn write_sha256(data: &[u8], out: &Path) {
    use rsa::sha2::{Digest, Sha256};
    std::fs::write(out, Sha256::digest(data)).unwrap();
}

#[test]
fn opensc_lists_the_piv_token_and_both_certificates() {
    if !rig::can_run("opensc_lists_the_piv_token_and_both_certificates") {
        return;
    }
    let piv = PivRig::start(&[]);

    let slots = piv.succeed(piv.pkcs11_tool().arg("--list-slots"));
    assert!(
        slots.contains("token manufacturer : piv_II"),
        "not a PIV token:\n{slots}"
    );
    // OpenSC names the token after the 9A certificate's subject (a PKCS#11 label holds 32
    // characters: a longer name is cut).
    assert!(
        slots.contains("token label        : Alice Woodgrove\n"),
        "{slots}"
    );

    let listing = piv.succeed(piv.pkcs11_tool().arg("--list-objects"));
    let blocks = object_blocks(&listing);
    let authentication = object(&blocks, "Certificate Object", "01");
    assert!(
        authentication.contains("label:      Certificate for PIV Authentication")
            && authentication.contains("subject:    DN: CN=Alice Woodgrove\n"),
        "{authentication}"
    );
    let signature = object(&blocks, "Certificate Object", "02");
    assert!(
        signature.contains("label:      Certificate for Digital Signature")
            && signature.contains("subject:    DN: CN=Alice Woodgrove (signing)"),
        "{signature}"
    );

    // The certificates read back through PKCS#11 are the ones on the card, byte for byte.
    for (id, cert) in [("01", &piv.keys.rsa_cert), ("02", &piv.keys.ec_cert)] {
        let read = piv.keys.dir.path().join(format!("read-{id}.der"));
        piv.succeed(
            piv.pkcs11_tool()
                .args(["--read-object", "--type", "cert", "--id", id, "-o"])
                .arg(&read),
        );
        assert_eq!(
            std::fs::read(&read).unwrap(),
            pem_to_der(cert),
            "certificate {id}"
        );
    }

    // And they are what the helper promises: Woodgrove client certificates for the UPN.
    let issuing_ca = support::woodgrove::woodgrove()
        .fixture
        .path("pki/ca/woodgrove-issuing.pem");
    for cert in [&piv.keys.rsa_cert, &piv.keys.ec_cert] {
        let verified = Command::new("openssl")
            .args([
                "verify",
                "-partial_chain",
                "-purpose",
                "sslclient",
                "-CAfile",
            ])
            .arg(&issuing_ca)
            .arg(cert)
            .output()
            .unwrap();
        assert!(verified.status.success(), "{}", describe(&verified));
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(cert)
            .output()
            .unwrap();
        let text = String::from_utf8(text.stdout).unwrap();
        assert!(text.contains(&format!("UPN::{UPN}")), "{text}");
    }
}

#[test]
fn both_keys_sign_and_openssl_verifies_the_signatures() {
    if !rig::can_run("both_keys_sign_and_openssl_verifies_the_signatures") {
        return;
    }
    let piv = PivRig::start(&[]);
    let dir = piv.keys.dir.path();
    let hash = dir.join("message.sha256");
    write_sha256(b"sign me, Woodgrove", &hash);
    let other_hash = dir.join("other.sha256");
    write_sha256(b"not what was signed", &other_hash);

    // 9A: RSA-PKCS-PSS; OpenSC pads and the card does the raw RSA operation.
    let rsa_signature = dir.join("9a.sig");
    piv.succeed(
        piv.pkcs11_tool()
            .args(["--login", "--pin", PIN, "--sign", "--id", "01"])
            .args(["-m", "RSA-PKCS-PSS", "--hash-algorithm", "SHA256"])
            .args(["--mgf", "MGF1-SHA256", "-i"])
            .arg(&hash)
            .arg("-o")
            .arg(&rsa_signature),
    );
    let rsa_public = dir.join("9a.pub");
    public_key(&piv.keys.rsa_cert, &rsa_public);
    let pss = [
        "rsa_padding_mode:pss",
        "digest:sha256",
        "rsa_mgf1_md:sha256",
        "rsa_pss_saltlen:auto",
    ];
    let verified = openssl_verify(&rsa_public, &hash, &rsa_signature, &pss);
    assert!(verified.status.success(), "{}", describe(&verified));
    let wrong = openssl_verify(&rsa_public, &other_hash, &rsa_signature, &pss);
    assert!(!wrong.status.success(), "the check accepts anything");

    // 9C: ECDSA over the hash, as a DER signature.
    let ec_signature = dir.join("9c.sig");
    piv.succeed(
        piv.pkcs11_tool()
            .args(["--login", "--pin", PIN, "--sign", "--id", "02"])
            .args(["-m", "ECDSA", "--signature-format", "openssl", "-i"])
            .arg(&hash)
            .arg("-o")
            .arg(&ec_signature),
    );
    let ec_public = dir.join("9c.pub");
    public_key(&piv.keys.ec_cert, &ec_public);
    let verified = openssl_verify(&ec_public, &hash, &ec_signature, &[]);
    assert!(verified.status.success(), "{}", describe(&verified));
    let wrong = openssl_verify(&ec_public, &other_hash, &ec_signature, &[]);
    assert!(!wrong.status.success(), "the check accepts anything");
}

#[test]
fn the_signature_key_needs_the_pin_for_each_signature() {
    if !rig::can_run("the_signature_key_needs_the_pin_for_each_signature") {
        return;
    }
    let piv = PivRig::start(&[]);

    // OpenSC flags the 9C key CKA_ALWAYS_AUTHENTICATE, and not the 9A key.
    let listing = piv.succeed(piv.login(PIN).args(["--type", "privkey"]));
    let blocks = object_blocks(&listing);
    let signature_key = object(&blocks, "Private Key Object", "02");
    assert!(
        signature_key.contains("always authenticate"),
        "{signature_key}"
    );
    let authentication_key = object(&blocks, "Private Key Object", "01");
    assert!(
        !authentication_key.contains("always authenticate"),
        "{authentication_key}"
    );

    // The card agrees: a 9A signature leaves the PIN verified, a 9C signature does not. An
    // empty VERIFY asks the card (9000 verified, 63Cx not).
    let hash = piv.keys.dir.path().join("message.sha256");
    write_sha256(b"PIN always", &hash);
    let sign = |id: &str, mechanism: &str| {
        piv.succeed(
            piv.pkcs11_tool()
                .args([
                    "--login", "--pin", PIN, "--sign", "--id", id, "-m", mechanism,
                ])
                .arg("-i")
                .arg(&hash)
                .arg("-o")
                .arg(piv.keys.dir.path().join("signature")),
        );
    };
    let pin_state = || piv.transmit(&["00200080"])[1].clone();
    sign("01", "RSA-PKCS");
    assert_eq!(pin_state(), "9000", "after a 9A signature");
    sign("02", "ECDSA");
    assert_eq!(pin_state(), "63C3", "after a 9C signature");
}

#[test]
fn the_card_answers_bad_commands_with_status_words() {
    if !rig::can_run("the_card_answers_bad_commands_with_status_words") {
        return;
    }
    let piv = PivRig::start(&[]);
    // A signature request: 7C { 82 00, 81 <5 bytes> }.
    let request = "0B7C09820081050001020304";
    let cases = [
        ("00FF0000", "6D00", "an unknown instruction"),
        ("80CB3FFF00", "6E00", "a proprietary class"),
        ("00CB3FFE00", "6A86", "GET DATA with P1P2 other than 3FFF"),
        ("00CB3FFF025C01", "6A80", "GET DATA with a cut tag list"),
        (
            "00CB3FFF055C035FC10300",
            "6A82",
            "GET DATA of an absent object",
        ),
        ("00C0000000", "6985", "GET RESPONSE with nothing pending"),
        ("00A40000023F00", "6A82", "SELECT of a file"),
        (
            "0087079A027C00",
            "6A80",
            "GENERAL AUTHENTICATE without a challenge",
        ),
        (
            &format!("0087119C{request}"),
            "6982",
            "a 9C signature before VERIFY",
        ),
        (
            &format!("0087079A{request}"),
            "6982",
            "a 9A signature before VERIFY",
        ),
        (
            &format!("0087119A{request}"),
            "6A86",
            "the EC algorithm for slot 9A",
        ),
        (&format!("0087079B{request}"), "6A88", "an absent key"),
        ("002000800331323300", "6A80", "VERIFY with a 3-byte PIN"),
        ("00200081", "6A88", "VERIFY of the PUK"),
        (
            "002C008003313233",
            "6A80",
            "RESET RETRY COUNTER without a new PIN",
        ),
        // None of the above cost a PIN try.
        ("00200080", "63C3", "the PIN state"),
    ];
    let apdus: Vec<&str> = cases.iter().map(|(apdu, _, _)| *apdu).collect();
    let words = piv.transmit(&apdus);
    assert_eq!(words[0], "9000", "SELECT");
    for ((apdu, expected, what), word) in cases.iter().zip(&words[1..]) {
        assert_eq!(word, expected, "{what}: {apdu}\n{}", piv.card_log());
    }
    // And the card still works.
    piv.succeed(&mut piv.login(PIN));
}

#[test]
fn wrong_pins_lock_the_card_and_the_puk_unblocks_it() {
    if !rig::can_run("wrong_pins_lock_the_card_and_the_puk_unblocks_it") {
        return;
    }
    let piv = PivRig::start(&["--pin", PIN, "--puk", PUK, "--retries", "3"]);
    let wrong_pin = "999999";
    let incorrect = |what: &str| {
        let output = piv.fail(&mut piv.login(wrong_pin));
        assert!(output.contains("CKR_PIN_INCORRECT"), "{what}:\n{output}");
    };

    // Two wrong PINs: one try left, and OpenSC says so.
    incorrect("1st wrong PIN of 3");
    let flags = piv.token_flags();
    assert!(!flags.contains("final user PIN try"), "{flags}");
    incorrect("2nd wrong PIN of 3");
    let flags = piv.token_flags();
    assert!(flags.contains("final user PIN try"), "{flags}");
    assert!(!flags.contains("user PIN locked"), "{flags}");

    // The right PIN still works, and restores the tries.
    piv.succeed(&mut piv.login(PIN));
    let flags = piv.token_flags();
    assert!(!flags.contains("final user PIN try"), "{flags}");

    // Three wrong PINs lock it; then even the right PIN is refused.
    incorrect("1st wrong PIN of 3, again");
    incorrect("2nd wrong PIN of 3, again");
    incorrect("3rd wrong PIN of 3");
    let flags = piv.token_flags();
    assert!(flags.contains("user PIN locked"), "{flags}");
    let output = piv.fail(&mut piv.login(PIN));
    assert!(output.contains("CKR_PIN_LOCKED"), "{output}");

    // The PUK unblocks it, with OpenSC's stock configuration. A wrong PUK costs a PUK try.
    let unblock = |puk: &str| {
        let mut command = piv.rig.command("pkcs15-tool");
        command
            .env_remove("OPENSC_CONF")
            .args(["--unblock-pin", "--puk", puk, "--new-pin", PIN]);
        command
    };
    let output = piv.fail(&mut unblock("87654321"));
    assert!(output.contains("tries left: 2"), "{output}");
    assert!(piv.token_flags().contains("user PIN locked"));
    piv.succeed(&mut unblock(PUK));
    let flags = piv.token_flags();
    assert!(!flags.contains("user PIN locked"), "{flags}");
    assert!(!flags.contains("final user PIN try"), "{flags}");
    piv.succeed(&mut piv.login(PIN));
}
