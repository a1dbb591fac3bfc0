//! `certauth-virtual-card`: a virtual smart card for the test rig. It connects to the
//! `vsmartcard-vpcd` reader driver of a running pcscd and answers as a card would.
//!
//! Built for tests (as an example, so it is never installed). Today it is a minimal card that
//! answers power-on with an ATR and refuses every command; the PIV card grows from here.
//!
//! The vpcd protocol: each message is a 2-byte big-endian length and a body. A 1-byte body is a
//! control code (0 power off, 1 power on, 2 reset, 4 get ATR); only "get ATR" is answered. Any
//! longer body is an APDU, answered with a response APDU.
//!
//! Inserting the card is starting this program; removing it is stopping it. It exits when pcscd
//! closes the connection.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
/// "Instruction not supported".
const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6d, 0x00];

struct Options {
    port: u16,
    atr: Vec<u8>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        port: DEFAULT_PORT,
        atr: DEFAULT_ATR.to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => options.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--atr" => options.atr = parse_hex(&value()?).ok_or("--atr takes hex bytes")?,
            "--help" | "-h" => {
                return Err("usage: certauth-virtual-card [--port PORT] [--atr HEX]\n\
                     Connects to vpcd on 127.0.0.1:PORT (default 35963) as a card."
                    .into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
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

fn serve(options: &Options) -> std::io::Result<()> {
    let mut stream = connect(options.port)?;
    stream.set_nodelay(true)?;
    while let Some(message) = read_message(&mut stream)? {
        match message.as_slice() {
            [CTRL_GET_ATR] => send(&mut stream, &options.atr)?,
            [CTRL_POWER_ON | CTRL_POWER_OFF | CTRL_RESET] => {}
            [other] => eprintln!("certauth-virtual-card: unknown control code {other:#04x}"),
            _apdu => send(&mut stream, &SW_INS_NOT_SUPPORTED)?,
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certauth-virtual-card: {e}");
            ExitCode::FAILURE
        }
    }
}
