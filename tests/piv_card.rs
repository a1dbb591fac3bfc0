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

use std::path::Path;
use std::process::{Command, Output};

use support::piv::{describe, pem_to_der, PivRig, PIN, PUK, UPN};
use support::rig;

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

#[test]
fn the_card_exits_when_pcscd_goes_away() {
    if !rig::can_run("the_card_exits_when_pcscd_goes_away") {
        return;
    }
    let mut piv = PivRig::start(&[]);
    piv.rig.stop_pcscd();
    let status = piv.card_exit(std::time::Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "the card did not exit cleanly: {status:?}\n{}",
        piv.card_log()
    );
}
