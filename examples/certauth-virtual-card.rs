//! `certauth-virtual-card`: a virtual smart card for the test rig. It connects to the
//! `vsmartcard-vpcd` reader driver of a running pcscd and answers as a card would.
//!
//! Built for tests (as an example, so it is never installed). It is one of two cards:
//!
//! - With no key options, a minimal card ([`AtrCard`]) that answers power-on with an ATR and
//!   refuses every command with 6D00. `tests/pcsc_watch.rs` inserts and removes it.
//! - With `--rsa-key`/`--rsa-cert` (slot 9A, RSA-2048) and/or `--ec-key`/`--ec-cert` (slot 9C,
//!   EC P-256), a PIV card ([`PivCard`], NIST SP 800-73-4) with just enough of the applet for
//!   OpenSC's PIV-II driver: SELECT, GET DATA, VERIFY with a real retry counter, CHANGE
//!   REFERENCE DATA, RESET RETRY COUNTER, GENERAL AUTHENTICATE, command chaining and
//!   GET RESPONSE. Its state lives in memory only: a restart restores the PIN and the counters.
//!
//! The vpcd protocol: each message is a 2-byte big-endian length and a body. A 1-byte body is a
//! control code (0 power off, 1 power on, 2 reset, 4 get ATR); only "get ATR" is answered. Any
//! longer body is an APDU, answered with a response APDU.
//!
//! Inserting the card is starting this program; removing it is stopping it. It exits 0 when
//! pcscd closes the connection. It never prints a PIN, a PUK or a key, even with `--trace`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use p256::ecdsa::signature::hazmat::PrehashSigner;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::BigUint;
use subtle::ConstantTimeEq;

/// The ATR of the ISO 7816 card in the vsmartcard project: one pcscd accepts without fuss.
const DEFAULT_ATR: &[u8] = &[
    0x3b, 0x95, 0x13, 0x81, 0x01, 0x80, 0x73, 0xff, 0x01, 0x00, 0x0b,
];
/// vpcd's first reader listens on 0x8C7B.
const DEFAULT_PORT: u16 = 0x8c7b;
/// How long to keep trying to reach vpcd, which starts with pcscd.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);

const CTRL_POWER_OFF: u8 = 0x00;
const CTRL_POWER_ON: u8 = 0x01;
const CTRL_RESET: u8 = 0x02;
const CTRL_GET_ATR: u8 = 0x04;

const USAGE: &str = "usage: certauth-virtual-card [--port PORT] [--atr HEX] [--trace]
           [--rsa-key KEY --rsa-cert CERT] [--ec-key KEY --ec-cert CERT]
           [--pin PIN] [--puk PUK] [--retries N]
Connects to vpcd on 127.0.0.1:PORT (default 35963) as a card. Without keys it is a card that
only has an ATR. With keys (PKCS#8 PEM; certificates PEM) it is a PIV card: RSA-2048 in slot 9A,
EC P-256 in slot 9C. PIN 123456, PUK 12345678 and 3 retries unless given. --trace logs each
APDU's header and status word (never its data) to stderr.";

// ---------------------------------------------------------------------------------------------
// Options

/// What the command line asks for.
struct Options {
    port: u16,
    atr: Vec<u8>,
    trace: bool,
    /// Present when any key option is given: the card is then a PIV card.
    piv: Option<PivOptions>,
}

/// The PIV card's files and secrets, as given on the command line.
struct PivOptions {
    rsa: Option<(PathBuf, PathBuf)>,
    ec: Option<(PathBuf, PathBuf)>,
    pin: Vec<u8>,
    puk: Vec<u8>,
    retries: u8,
}

/// The raw command line, before the PIV options are checked for consistency.
#[derive(Default)]
struct RawPivOptions {
    rsa_key: Option<PathBuf>,
    rsa_cert: Option<PathBuf>,
    ec_key: Option<PathBuf>,
    ec_cert: Option<PathBuf>,
    pin: Option<String>,
    puk: Option<String>,
    retries: Option<u8>,
}

fn parse_args() -> Result<Options, String> {
    let mut port = DEFAULT_PORT;
    let mut atr = DEFAULT_ATR.to_vec();
    let mut trace = false;
    let mut raw = RawPivOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--atr" => atr = parse_hex(&value()?).ok_or("--atr takes hex bytes")?,
            "--trace" => trace = true,
            "--rsa-key" => raw.rsa_key = Some(value()?.into()),
            "--rsa-cert" => raw.rsa_cert = Some(value()?.into()),
            "--ec-key" => raw.ec_key = Some(value()?.into()),
            "--ec-cert" => raw.ec_cert = Some(value()?.into()),
            "--pin" => raw.pin = Some(value()?),
            "--puk" => raw.puk = Some(value()?),
            "--retries" => {
                raw.retries = Some(value()?.parse().map_err(|e| format!("--retries: {e}"))?);
            }
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Options {
        port,
        atr,
        trace,
        piv: piv_options(raw)?,
    })
}

/// Checks the PIV options: keys come with their certificates, and the PIN, PUK and retries only
/// make sense for a PIV card.
fn piv_options(raw: RawPivOptions) -> Result<Option<PivOptions>, String> {
    let pair = |key: Option<PathBuf>, cert: Option<PathBuf>, slot: &str| match (key, cert) {
        (Some(key), Some(cert)) => Ok(Some((key, cert))),
        (None, None) => Ok(None),
        _ => Err(format!("--{slot}-key and --{slot}-cert go together")),
    };
    let rsa = pair(raw.rsa_key, raw.rsa_cert, "rsa")?;
    let ec = pair(raw.ec_key, raw.ec_cert, "ec")?;
    if rsa.is_none() && ec.is_none() {
        if raw.pin.is_some() || raw.puk.is_some() || raw.retries.is_some() {
            return Err(
                "--pin, --puk and --retries need a PIV card (--rsa-key or --ec-key)".into(),
            );
        }
        return Ok(None);
    }
    let retries = raw.retries.unwrap_or(3);
    if !(1..=15).contains(&retries) {
        return Err("--retries must be 1 to 15 (the count must fit in 63Cx)".into());
    }
    let secret = |value: Option<String>, default: &str, name: &str| {
        let value = value.unwrap_or_else(|| default.to_owned()).into_bytes();
        if (6..=8).contains(&value.len()) {
            Ok(value)
        } else {
            Err(format!("--{name} must be 6 to 8 characters"))
        }
    };
    Ok(Some(PivOptions {
        rsa,
        ec,
        pin: secret(raw.pin, "123456", "pin")?,
        puk: secret(raw.puk, "12345678", "puk")?,
        retries,
    }))
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    if !digits.len().is_multiple_of(2) || digits.is_empty() {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The vpcd connection

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let started = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => return Ok(stream),
            Err(e) if started.elapsed() < CONNECT_PATIENCE => {
                if e.kind() != ErrorKind::ConnectionRefused {
                    eprintln!("certauth-virtual-card: connecting: {e}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads one length-prefixed message; `None` when vpcd (pcscd) has gone away.
fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    // vpcd writes the length and the body in two send() calls: without quick ACKs, Nagle and
    // delayed ACK cost about 40 ms per APDU.
    socket2::SockRef::from(&*stream).set_tcp_quickack(true)?;
    let mut length = [0u8; 2];
    match stream.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
    socket2::SockRef::from(&*stream).set_tcp_quickack(true)?;
    stream.read_exact(&mut body)?;
    Ok(Some(body))
}

fn send(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(body.len())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "message over 64 KiB"))?;
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(body);
    stream.write_all(&message)
}

/// Answers vpcd until it goes away.
fn serve(port: u16, card: &mut dyn Card) -> std::io::Result<()> {
    let mut stream = connect(port)?;
    stream.set_nodelay(true)?;
    while let Some(message) = read_message(&mut stream)? {
        match message.as_slice() {
            [CTRL_GET_ATR] => send(&mut stream, card.atr())?,
            [CTRL_POWER_ON | CTRL_POWER_OFF | CTRL_RESET] => card.reset(),
            [other] => eprintln!("certauth-virtual-card: unknown control code {other:#04x}"),
            apdu => {
                let response = card.transmit(apdu);
                send(&mut stream, &response)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cards

/// A card as vpcd sees it: an ATR, a reset, and an answer to every APDU.
trait Card {
    /// The answer to reset.
    fn atr(&self) -> &[u8];
    /// Power off, power on or warm reset: the card forgets its volatile state.
    fn reset(&mut self);
    /// Answers a command APDU with a response APDU (data and status word). Never panics.
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;
}

/// The minimal card: an ATR and nothing else. Every command is refused with 6D00.
struct AtrCard {
    atr: Vec<u8>,
}

impl Card for AtrCard {
    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reset(&mut self) {}

    fn transmit(&mut self, _apdu: &[u8]) -> Vec<u8> {
        Sw::INS_NOT_SUPPORTED.to_bytes().to_vec()
    }
}

// ---------------------------------------------------------------------------------------------
// APDUs and BER-TLV

/// A status word (SW1 SW2). As an `Err`, any status but 9000.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Sw(u16);

impl Sw {
    const OK: Sw = Sw(0x9000);
    const WRONG_LENGTH: Sw = Sw(0x6700);
    const SECURITY_STATUS_NOT_SATISFIED: Sw = Sw(0x6982);
    const AUTHENTICATION_BLOCKED: Sw = Sw(0x6983);
    const CONDITIONS_NOT_SATISFIED: Sw = Sw(0x6985);
    const WRONG_DATA: Sw = Sw(0x6a80);
    const NOT_FOUND: Sw = Sw(0x6a82);
    const WRONG_P1_P2: Sw = Sw(0x6a86);
    const REFERENCE_NOT_FOUND: Sw = Sw(0x6a88);
    const INS_NOT_SUPPORTED: Sw = Sw(0x6d00);
    const CLA_NOT_SUPPORTED: Sw = Sw(0x6e00);
    const UNKNOWN_ERROR: Sw = Sw(0x6f00);

    /// 63Cx: verification failed, `tries` tries left.
    fn tries_left(tries: u8) -> Sw {
        Sw(0x63c0 | u16::from(tries.min(15)))
    }

    /// 61xx: `remaining` more bytes wait for GET RESPONSE (00 means 256 or more).
    fn more_data(remaining: usize) -> Sw {
        Sw(0x6100 | (remaining.min(256) & 0xff) as u16)
    }

    fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

/// A command APDU, short or extended, with its chained parts already joined.
struct Command {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
    /// Le, the most response bytes wanted; `None` when absent. A zero Le is 256 (short) or
    /// 65536 (extended).
    le: Option<usize>,
}

impl Command {
    /// Parses the four ISO 7816-4 cases, short and extended. Any other shape is 6700.
    fn parse(apdu: &[u8]) -> Result<Command, Sw> {
        let [cla, ins, p1, p2, body @ ..] = apdu else {
            return Err(Sw::WRONG_LENGTH);
        };
        let short_le = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let extended_le = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => 65536,
            n => usize::from(n),
        };
        let (data, le) = match *body {
            [] => (&[][..], None),
            [le] => (&[][..], Some(short_le(le))),
            [0, hi, lo] => (&[][..], Some(extended_le(hi, lo))),
            [0, hi, lo, ref rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([hi, lo]));
                match rest.len().checked_sub(lc) {
                    _ if lc == 0 => return Err(Sw::WRONG_LENGTH),
                    Some(0) => (rest, None),
                    Some(2) => (&rest[..lc], Some(extended_le(rest[lc], rest[lc + 1]))),
                    _ => return Err(Sw::WRONG_LENGTH),
                }
            }
            [0, ..] => return Err(Sw::WRONG_LENGTH),
            [lc, ref rest @ ..] => {
                let lc = usize::from(lc);
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest, None),
                    Some(1) => (&rest[..lc], Some(short_le(rest[lc]))),
                    _ => return Err(Sw::WRONG_LENGTH),
                }
            }
        };
        Ok(Command {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data: data.to_vec(),
            le,
        })
    }

    /// CLA bit 0x10: more parts of this command follow.
    fn is_chained(&self) -> bool {
        self.cla & 0x10 != 0
    }
}

/// The result of a command: response data with 9000, or a status word alone.
type Reply = Result<Vec<u8>, Sw>;

/// Encodes one BER-TLV: `tag` (already encoded, one or more bytes) and `value`.
fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    let len = value.len();
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => {
            // 82 or 83 and the length in as few big-endian bytes as hold it.
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    out.extend_from_slice(value);
    out
}

/// Splits `data` into BER-TLVs: (encoded tag, value). `None` if it is not well formed.
fn parse_tlvs(mut data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (tag, rest) = split_tag(data)?;
        let (len, rest) = split_length(rest)?;
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        out.push((tag, value));
        data = rest;
    }
    Some(out)
}

fn split_tag(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *data.first()?;
    let mut len = 1;
    if first & 0x1f == 0x1f {
        // Subsequent bytes continue while their top bit is set.
        loop {
            let byte = *data.get(len)?;
            len += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    Some(data.split_at(len))
}

fn split_length(data: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = data.split_first()?;
    match first {
        0..=0x7f => Some((usize::from(first), rest)),
        0x81 => Some((usize::from(*rest.first()?), rest.get(1..)?)),
        0x82 => {
            let bytes = rest.get(..2)?;
            Some((
                usize::from(u16::from_be_bytes([bytes[0], bytes[1]])),
                rest.get(2..)?,
            ))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The PIV card

/// The PIV application identifier (NIST SP 800-73-4 part 1, 2.2); SELECT may send a prefix.
const PIV_AID: &[u8] = &[
    0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// The shortest AID prefix SELECT accepts: the registered application provider (NIST).
const PIV_RID_LEN: usize = 5;

const INS_VERIFY: u8 = 0x20;
const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
const INS_RESET_RETRY_COUNTER: u8 = 0x2c;
const INS_GENERAL_AUTHENTICATE: u8 = 0x87;
const INS_SELECT: u8 = 0xa4;
const INS_GET_RESPONSE: u8 = 0xc0;
const INS_GET_DATA: u8 = 0xcb;

/// Key references (P2) of the PIN and the PUK.
const KEY_REF_PIN: u8 = 0x80;
const KEY_REF_PUK: u8 = 0x81;
/// Key references of the two key slots.
const SLOT_AUTHENTICATION: u8 = 0x9a;
const SLOT_SIGNATURE: u8 = 0x9c;
/// Algorithm identifiers (P1 of GENERAL AUTHENTICATE).
const ALG_RSA_2048: u8 = 0x07;
const ALG_ECC_P256: u8 = 0x11;

/// Data object tags (GET DATA).
const TAG_CHUID: &[u8] = &[0x5f, 0xc1, 0x02];
const TAG_CERT_9A: &[u8] = &[0x5f, 0xc1, 0x05];
const TAG_CERT_9C: &[u8] = &[0x5f, 0xc1, 0x0a];

/// The longest response sent at once with a short Le; the rest waits for GET RESPONSE.
const SHORT_RESPONSE_MAX: usize = 256;
/// The longest response data that fits in one vpcd message with its status word.
const VPCD_RESPONSE_MAX: usize = u16::MAX as usize - 2;

/// A PIN or a PUK with its retry counter. Not `Debug`: it holds a secret.
struct ReferenceData {
    /// The value padded with 0xFF to 8 bytes, as it travels in VERIFY.
    value: [u8; 8],
    tries_left: u8,
    retries: u8,
}

impl ReferenceData {
    fn new(value: &[u8], retries: u8) -> Option<Self> {
        Some(ReferenceData {
            value: pad_reference(value)?,
            tries_left: retries,
            retries,
        })
    }

    fn is_blocked(&self) -> bool {
        self.tries_left == 0
    }

    /// Checks a padded candidate: a match resets the counter, a miss costs a try (63Cx); a
    /// blocked reference answers 6983 without looking.
    fn check(&mut self, candidate: &[u8]) -> Result<(), Sw> {
        if self.is_blocked() {
            return Err(Sw::AUTHENTICATION_BLOCKED);
        }
        if bool::from(self.value.as_slice().ct_eq(candidate)) {
            self.tries_left = self.retries;
            Ok(())
        } else {
            self.tries_left -= 1;
            Err(Sw::tries_left(self.tries_left))
        }
    }

    /// Sets a new padded value and restores the counter.
    fn set(&mut self, padded: [u8; 8]) {
        self.value = padded;
        self.tries_left = self.retries;
    }
}

/// Pads a PIN or PUK of 6 to 8 bytes to 8 with 0xFF.
fn pad_reference(value: &[u8]) -> Option<[u8; 8]> {
    if !(6..=8).contains(&value.len()) || value.contains(&0xff) {
        return None;
    }
    let mut padded = [0xff; 8];
    padded[..value.len()].copy_from_slice(value);
    Some(padded)
}

/// Checks that a new reference value (8 bytes, 0xFF-padded) holds 6 to 8 bytes.
fn valid_new_reference(padded: &[u8]) -> Option<[u8; 8]> {
    let padded: [u8; 8] = padded.try_into().ok()?;
    let len = padded.iter().position(|&b| b == 0xff).unwrap_or(8);
    let unpadded_tail_clean = padded[len..].iter().all(|&b| b == 0xff);
    (unpadded_tail_clean && pad_reference(&padded[..len]).is_some()).then_some(padded)
}

/// The RSA-2048 key in slot 9A and its certificate.
struct RsaSlot {
    key: rsa::RsaPrivateKey,
    cert_der: Vec<u8>,
}

impl RsaSlot {
    fn load(key_path: &Path, cert_path: &Path) -> Result<Self, String> {
        let pem = read_text(key_path)?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
            .map_err(|e| format!("{}: not a PKCS#8 RSA key: {e}", key_path.display()))?;
        if key.size() != 256 {
            return Err(format!(
                "{}: slot 9A takes RSA-2048, not {} bits",
                key_path.display(),
                key.size() * 8
            ));
        }
        let spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| format!("{}: {e}", key_path.display()))?;
        let cert_der = load_cert(cert_path, spki.as_bytes())?;
        Ok(RsaSlot { key, cert_der })
    }

    /// The raw RSA private-key operation, input^d mod n (OpenSC pads before sending). Uses the
    /// CRT parameters when the key has them and checks the result against the public key.
    fn raw_private(&self, input: &[u8]) -> Reply {
        let size = self.key.size();
        if input.len() != size {
            return Err(Sw::WRONG_DATA);
        }
        let c = BigUint::from_bytes_be(input);
        if &c >= self.key.n() {
            return Err(Sw::WRONG_DATA);
        }
        let m = self
            .crt_private(&c)
            .unwrap_or_else(|| c.modpow(self.key.d(), self.key.n()));
        if m.modpow(self.key.e(), self.key.n()) != c {
            return Err(Sw::UNKNOWN_ERROR);
        }
        let bytes = m.to_bytes_be();
        let mut out = vec![0; size - bytes.len()];
        out.extend_from_slice(&bytes);
        Ok(out)
    }

    /// c^d mod n by the Chinese remainder theorem, for two-prime keys with precomputed values.
    fn crt_private(&self, c: &BigUint) -> Option<BigUint> {
        let [p, q] = self.key.primes() else {
            return None;
        };
        let (dp, dq) = (self.key.dp()?, self.key.dq()?);
        let q_inv = self.key.crt_coefficient()?;
        let m1 = c.modpow(dp, p);
        let m2 = c.modpow(dq, q);
        // h = q_inv * (m1 - m2) mod p, kept non-negative.
        let h = (&q_inv * ((&m1 + p) - (&m2 % p))) % p;
        Some(&m2 + &h * q)
    }
}

/// The EC P-256 key in slot 9C and its certificate.
struct EcSlot {
    key: p256::ecdsa::SigningKey,
    cert_der: Vec<u8>,
}

impl EcSlot {
    fn load(key_path: &Path, cert_path: &Path) -> Result<Self, String> {
        let pem = read_text(key_path)?;
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| format!("{}: not a PKCS#8 EC P-256 key: {e}", key_path.display()))?;
        let spki = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|e| format!("{}: {e}", key_path.display()))?;
        let cert_der = load_cert(cert_path, spki.as_bytes())?;
        Ok(EcSlot { key, cert_der })
    }

    /// ECDSA over the hash the host sent; a DER `ECDSA-Sig-Value`. A hash shorter than the
    /// curve is the same integer left-padded; a longer one is truncated, as FIPS 186 says.
    fn sign_prehash(&self, hash: &[u8]) -> Reply {
        if hash.is_empty() {
            return Err(Sw::WRONG_DATA);
        }
        let mut padded = vec![0; 32usize.saturating_sub(hash.len())];
        padded.extend_from_slice(hash);
        let signature: p256::ecdsa::Signature =
            self.key.sign_prehash(&padded).map_err(|_| Sw::WRONG_DATA)?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a PEM certificate and checks that it certifies the key whose SPKI is `spki`.
fn load_cert(path: &Path, spki: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text)
        .map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("{}: not a certificate: {e}", path.display()))?;
    if cert.public_key().raw != spki {
        return Err(format!(
            "{}: the certificate is not for the key given with it",
            path.display()
        ));
    }
    Ok(pem.contents)
}

/// The card holder unique identifier: a fixed FASC-N, the GUID OpenSC uses as the token's
/// serial number, an expiry date, an empty issuer signature and an empty error detection code.
fn chuid(guid: &[u8; 16]) -> Vec<u8> {
    /// The sample FASC-N of SP 800-73-4 (agency 9999, system 9999, credential 999999).
    const FASC_N: [u8; 25] = [
        0xd4, 0xe7, 0x39, 0xda, 0x73, 0x9c, 0xed, 0x39, 0xce, 0x73, 0x9d, 0x83, 0x68, 0x58, 0x21,
        0x08, 0x42, 0x10, 0x84, 0x21, 0xc8, 0x42, 0x10, 0xc3, 0xeb,
    ];
    [
        tlv(&[0x30], &FASC_N),
        tlv(&[0x34], guid),
        tlv(&[0x35], b"20991231"),
        tlv(&[0x3e], &[]),
        tlv(&[0xfe], &[]),
    ]
    .concat()
}

/// A certificate data object's content: the certificate, CertInfo 00 (not compressed) and an
/// empty error detection code.
fn cert_object(cert_der: &[u8]) -> Vec<u8> {
    [
        tlv(&[0x70], cert_der),
        tlv(&[0x71], &[0x00]),
        tlv(&[0xfe], &[]),
    ]
    .concat()
}

/// The application property template SELECT answers with: the PIX, the coexistent tag
/// allocation authority (NIST), a label and the algorithms the card supports.
fn application_property_template() -> Vec<u8> {
    let algorithms = [
        tlv(&[0x80], &[ALG_RSA_2048]),
        tlv(&[0x80], &[ALG_ECC_P256]),
        tlv(&[0x06], &[]),
    ]
    .concat();
    let content = [
        tlv(&[0x4f], &PIV_AID[PIV_RID_LEN..]),
        tlv(&[0x79], &tlv(&[0x4f], &PIV_AID[..PIV_RID_LEN])),
        tlv(&[0x50], b"certauth virtual PIV"),
        tlv(&[0xac], &algorithms),
    ]
    .concat();
    tlv(&[0x61], &content)
}

/// A command whose first parts arrived with the chaining bit set.
struct Chain {
    header: [u8; 3],
    data: Vec<u8>,
}

/// A PIV card with a 9A RSA-2048 key and/or a 9C EC P-256 key.
///
/// The PIN is the PIV application PIN (key reference 80), the PUK key reference 81. The 9A key
/// needs the PIN verified since the last reset; the 9C key needs it verified before each
/// signature (PIN policy "always"), so a 9C signature clears the verified state. Until the PIV
/// application is selected (after each power-on or reset), every other command is 6D00, as on a
/// card whose default application is another.
struct PivCard {
    atr: Vec<u8>,
    trace: bool,
    rsa: Option<RsaSlot>,
    ec: Option<EcSlot>,
    /// The CHUID's content, fixed at start.
    chuid: Vec<u8>,
    pin: ReferenceData,
    puk: ReferenceData,
    // Volatile state, cleared by a reset.
    selected: bool,
    pin_verified: bool,
    chain: Option<Chain>,
    /// The part of the last response not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
}

impl PivCard {
    fn new(atr: Vec<u8>, trace: bool, options: &PivOptions) -> Result<Self, String> {
        let rsa = match &options.rsa {
            Some((key, cert)) => Some(RsaSlot::load(key, cert)?),
            None => None,
        };
        let ec = match &options.ec {
            Some((key, cert)) => Some(EcSlot::load(key, cert)?),
            None => None,
        };
        let certs = rsa.iter().map(|slot| slot.cert_der.as_slice());
        let guid = guid_for(certs.chain(ec.iter().map(|slot| slot.cert_der.as_slice())));
        let pin = ReferenceData::new(&options.pin, options.retries).ok_or("bad --pin")?;
        let puk = ReferenceData::new(&options.puk, options.retries).ok_or("bad --puk")?;
        Ok(PivCard {
            atr,
            trace,
            rsa,
            ec,
            chuid: chuid(&guid),
            pin,
            puk,
            selected: false,
            pin_verified: false,
            chain: None,
            pending: Vec::new(),
        })
    }

    /// Parses, joins chained parts, runs the command and cuts a long response.
    fn answer(&mut self, apdu: &[u8]) -> Vec<u8> {
        let command = match Command::parse(apdu) {
            Ok(command) => command,
            Err(sw) => return sw.to_bytes().to_vec(),
        };
        if command.cla & !0x10 != 0 {
            return Sw::CLA_NOT_SUPPORTED.to_bytes().to_vec();
        }
        if command.ins == INS_GET_RESPONSE {
            return self.get_response(&command);
        }
        self.pending.clear();
        let command = match self.join_chain(command) {
            Ok(Some(command)) => command,
            Ok(None) => return Sw::OK.to_bytes().to_vec(),
            Err(sw) => return sw.to_bytes().to_vec(),
        };
        match self.dispatch(&command) {
            Ok(data) => self.respond(data, command.le),
            Err(sw) => sw.to_bytes().to_vec(),
        }
    }

    /// Joins chained parts; `Ok(None)` when this part is not the last.
    fn join_chain(&mut self, mut command: Command) -> Result<Option<Command>, Sw> {
        let header = [command.ins, command.p1, command.p2];
        // A command that does not continue the chain abandons it.
        let earlier = match self.chain.take() {
            Some(chain) if chain.header == header => chain.data,
            _ => Vec::new(),
        };
        let mut data = earlier;
        data.append(&mut command.data);
        if data.len() > 0xffff {
            return Err(Sw::WRONG_LENGTH);
        }
        if command.is_chained() {
            self.chain = Some(Chain { header, data });
            return Ok(None);
        }
        command.data = data;
        Ok(Some(command))
    }

    fn dispatch(&mut self, command: &Command) -> Reply {
        if command.ins == INS_SELECT {
            return self.select(command);
        }
        if !self.selected {
            return Err(Sw::INS_NOT_SUPPORTED);
        }
        match command.ins {
            INS_GET_DATA => self.get_data(command),
            INS_VERIFY => self.verify(command),
            INS_CHANGE_REFERENCE_DATA => self.change_reference_data(command),
            INS_RESET_RETRY_COUNTER => self.reset_retry_counter(command),
            INS_GENERAL_AUTHENTICATE => self.general_authenticate(command),
            _ => Err(Sw::INS_NOT_SUPPORTED),
        }
    }

    /// SELECT by AID (P1 04): the PIV AID or a prefix of it selects the application.
    fn select(&mut self, command: &Command) -> Reply {
        match (command.p1, command.p2) {
            (0x04, 0x00) => {}
            // Selecting a file (by identifier or path): this card has none.
            (0x00..=0x03 | 0x08 | 0x09, _) => return Err(Sw::NOT_FOUND),
            _ => return Err(Sw::WRONG_P1_P2),
        }
        let aid = command.data.as_slice();
        if aid.len() < PIV_RID_LEN || !PIV_AID.starts_with(aid) {
            // Another application: not here, and the current selection stays.
            return Err(Sw::NOT_FOUND);
        }
        self.selected = true;
        Ok(application_property_template())
    }

    /// GET DATA (P1P2 3FFF) of the CHUID or a certificate object; anything else is 6A82.
    fn get_data(&self, command: &Command) -> Reply {
        if (command.p1, command.p2) != (0x3f, 0xff) {
            return Err(Sw::WRONG_P1_P2);
        }
        let tlvs = parse_tlvs(&command.data).ok_or(Sw::WRONG_DATA)?;
        let [(&[0x5c], tag)] = tlvs.as_slice() else {
            return Err(Sw::WRONG_DATA);
        };
        let content = match *tag {
            TAG_CHUID => Some(self.chuid.clone()),
            TAG_CERT_9A => self.rsa.as_ref().map(|slot| cert_object(&slot.cert_der)),
            TAG_CERT_9C => self.ec.as_ref().map(|slot| cert_object(&slot.cert_der)),
            _ => None,
        };
        content
            .map(|content| tlv(&[0x53], &content))
            .ok_or(Sw::NOT_FOUND)
    }

    /// VERIFY the PIN (P2 80). Empty data asks for the state (9000 verified, 63Cx, or 6983);
    /// P1 FF resets the verified state.
    fn verify(&mut self, command: &Command) -> Reply {
        if command.p2 != KEY_REF_PIN {
            return Err(Sw::REFERENCE_NOT_FOUND);
        }
        match (command.p1, command.data.len()) {
            (0xff, 0) => {
                self.pin_verified = false;
                Ok(Vec::new())
            }
            (0x00, 0) if self.pin.is_blocked() => Err(Sw::AUTHENTICATION_BLOCKED),
            (0x00, 0) if self.pin_verified => Ok(Vec::new()),
            (0x00, 0) => Err(Sw::tries_left(self.pin.tries_left)),
            (0x00, 8) => {
                self.pin_verified = false;
                self.pin.check(&command.data)?;
                self.pin_verified = true;
                Ok(Vec::new())
            }
            (0x00, _) => Err(Sw::WRONG_DATA),
            _ => Err(Sw::WRONG_P1_P2),
        }
    }

    /// CHANGE REFERENCE DATA of the PIN (P2 80) or the PUK (P2 81): old value then new value,
    /// each padded to 8 bytes. A wrong old value costs a try, as in VERIFY.
    fn change_reference_data(&mut self, command: &Command) -> Reply {
        if command.p1 != 0x00 {
            return Err(Sw::WRONG_P1_P2);
        }
        let reference = match command.p2 {
            KEY_REF_PIN => &mut self.pin,
            KEY_REF_PUK => &mut self.puk,
            _ => return Err(Sw::REFERENCE_NOT_FOUND),
        };
        let (old, new) = split_pair(&command.data).ok_or(Sw::WRONG_DATA)?;
        let new = valid_new_reference(new).ok_or(Sw::WRONG_DATA)?;
        reference.check(old)?;
        reference.set(new);
        Ok(Vec::new())
    }

    /// RESET RETRY COUNTER of the PIN (P2 80) with the PUK: PUK then new PIN, each padded to
    /// 8 bytes. A wrong PUK costs one of the PUK's tries.
    fn reset_retry_counter(&mut self, command: &Command) -> Reply {
        if command.p1 != 0x00 {
            return Err(Sw::WRONG_P1_P2);
        }
        if command.p2 != KEY_REF_PIN {
            return Err(Sw::REFERENCE_NOT_FOUND);
        }
        let (puk, new_pin) = split_pair(&command.data).ok_or(Sw::WRONG_DATA)?;
        let new_pin = valid_new_reference(new_pin).ok_or(Sw::WRONG_DATA)?;
        self.puk.check(puk)?;
        self.pin.set(new_pin);
        self.pin_verified = false;
        Ok(Vec::new())
    }

    /// GENERAL AUTHENTICATE: signs the challenge of 7C { 82 00, 81 challenge } with the key in
    /// P2 (algorithm in P1) and answers 7C { 82 signature }.
    fn general_authenticate(&mut self, command: &Command) -> Reply {
        let challenge = signature_request(&command.data).ok_or(Sw::WRONG_DATA)?;
        let response = match (command.p2, command.p1) {
            (SLOT_AUTHENTICATION, ALG_RSA_2048) => {
                let slot = self.rsa.as_ref().ok_or(Sw::REFERENCE_NOT_FOUND)?;
                if !self.pin_verified {
                    return Err(Sw::SECURITY_STATUS_NOT_SATISFIED);
                }
                slot.raw_private(challenge)?
            }
            (SLOT_SIGNATURE, ALG_ECC_P256) => {
                let slot = self.ec.as_ref().ok_or(Sw::REFERENCE_NOT_FOUND)?;
                if !self.pin_verified {
                    return Err(Sw::SECURITY_STATUS_NOT_SATISFIED);
                }
                let signature = slot.sign_prehash(challenge)?;
                // PIN policy "always": the next signature needs a fresh VERIFY.
                self.pin_verified = false;
                signature
            }
            (SLOT_AUTHENTICATION | SLOT_SIGNATURE, _) => return Err(Sw::WRONG_P1_P2),
            _ => return Err(Sw::REFERENCE_NOT_FOUND),
        };
        Ok(tlv(&[0x7c], &tlv(&[0x82], &response)))
    }

    /// GET RESPONSE: the next part of a long response.
    fn get_response(&mut self, command: &Command) -> Vec<u8> {
        if (command.p1, command.p2) != (0x00, 0x00) {
            return Sw::WRONG_P1_P2.to_bytes().to_vec();
        }
        if self.pending.is_empty() {
            return Sw::CONDITIONS_NOT_SATISFIED.to_bytes().to_vec();
        }
        let rest = std::mem::take(&mut self.pending);
        self.respond(rest, command.le)
    }

    /// Sends what fits in `le` with 9000, or with 61xx when the rest waits for GET RESPONSE.
    fn respond(&mut self, mut data: Vec<u8>, le: Option<usize>) -> Vec<u8> {
        let limit = le.unwrap_or(SHORT_RESPONSE_MAX).min(VPCD_RESPONSE_MAX);
        let sw = if data.len() > limit {
            self.pending = data.split_off(limit);
            Sw::more_data(self.pending.len())
        } else {
            Sw::OK
        };
        data.extend_from_slice(&sw.to_bytes());
        data
    }

    fn log(&self, apdu: &[u8], response: &[u8]) {
        if !self.trace {
            return;
        }
        // Only the header and lengths: command data may hold a PIN or a PUK.
        let header: Vec<String> = apdu.iter().take(4).map(|b| format!("{b:02X}")).collect();
        let sw = response
            .len()
            .checked_sub(2)
            .map_or(&[][..], |i| &response[i..]);
        eprintln!(
            "certauth-virtual-card: {} ({} bytes) -> {:02X?} (+{} bytes)",
            header.join(" "),
            apdu.len(),
            sw,
            response.len().saturating_sub(2)
        );
    }
}

impl Card for PivCard {
    fn atr(&self) -> &[u8] {
        &self.atr
    }

    fn reset(&mut self) {
        self.selected = false;
        self.pin_verified = false;
        self.chain = None;
        self.pending.clear();
    }

    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = self.answer(apdu);
        self.log(apdu, &response);
        response
    }
}

/// Splits VERIFY-style reference data: two values of 8 bytes each.
fn split_pair(data: &[u8]) -> Option<(&[u8], &[u8])> {
    (data.len() == 16).then(|| data.split_at(8))
}

/// The challenge of a dynamic authentication template asking for a signature:
/// 7C { 82 00, 81 challenge } in any order.
fn signature_request(data: &[u8]) -> Option<&[u8]> {
    let outer = parse_tlvs(data)?;
    let [(&[0x7c], template)] = outer.as_slice() else {
        return None;
    };
    let mut challenge = None;
    let mut response_requested = false;
    for (tag, value) in parse_tlvs(template)? {
        match (tag, value.is_empty()) {
            ([0x81], false) => challenge = Some(value),
            ([0x82], true) => response_requested = true,
            _ => return None,
        }
    }
    challenge.filter(|_| response_requested)
}

/// A GUID for the CHUID from the certificates: the same certificates give the same card serial
/// number, and different ones a different serial (so no cache mixes two cards up).
fn guid_for<'a>(certs: impl Iterator<Item = &'a [u8]>) -> [u8; 16] {
    use rsa::sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for cert in certs {
        hasher.update(cert);
    }
    let digest = hasher.finalize();
    let mut guid = [0u8; 16];
    guid.copy_from_slice(&digest[..16]);
    guid
}

// ---------------------------------------------------------------------------------------------
// main

fn make_card(options: &Options) -> Result<Box<dyn Card>, String> {
    Ok(match &options.piv {
        None => Box::new(AtrCard {
            atr: options.atr.clone(),
        }),
        Some(piv) => Box::new(PivCard::new(options.atr.clone(), options.trace, piv)?),
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mut card = match make_card(&options) {
        Ok(card) => card,
        Err(message) => {
            eprintln!("certauth-virtual-card: {message}");
            return ExitCode::from(2);
        }
    };
    match serve(options.port, card.as_mut()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certauth-virtual-card: {e}");
            ExitCode::FAILURE
        }
    }
}
