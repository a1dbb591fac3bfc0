//! A real `certauth-verifier serve` process under connection abuse (issue 12): connection churn
//! leaves memory flat, running out of descriptors pauses `accept` (a few log lines, not a flood)
//! and serving resumes once they free up, a stalled request body is cut off after
//! `--body-timeout`, `--max-connections` refuses the connection over the cap at once, and SIGTERM
//! still waits for a request in flight.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::verifier::Verifier;
use support::woodgrove::woodgrove;

fn address(url: &str) -> String {
    url.trim_start_matches("https://").to_owned()
}

/// A TLS client trusting the verifier's server CA; with `client_cert`, it presents a self-signed
/// certificate (the certauth listener asks for one; the policy, not TLS, judges it).
fn tls_config(v: &Verifier, client_cert: bool) -> Arc<rustls::ClientConfig> {
    let roots = certauth::tls::client_config::trusted_roots(Some(&v.server_ca)).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = if client_cert {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        builder
            .with_client_auth_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS session over `tcp`, handshake done.
fn tls_over(config: &Arc<rustls::ClientConfig>, mut tcp: TcpStream) -> std::io::Result<Tls> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut connection =
        rustls::ClientConnection::new(config.clone(), "127.0.0.1".try_into().unwrap())
            .map_err(std::io::Error::other)?;
    while connection.is_handshaking() {
        connection.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(connection, tcp))
}

/// `GET /healthz` on a fresh connection: the whole response, or why there was none.
fn healthz(config: &Arc<rustls::ClientConfig>, address: &str) -> std::io::Result<String> {
    let mut tls = tls_over(config, TcpStream::connect(address)?)?;
    get_healthz(&mut tls)
}

fn get_healthz(tls: &mut Tls) -> std::io::Result<String> {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: verifier\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        // The server may close without close_notify once it has answered.
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// Retries `GET /healthz` for up to `patience`; the first 200.
fn healthz_within(
    config: &Arc<rustls::ClientConfig>,
    address: &str,
    patience: Duration,
) -> Result<String, String> {
    let deadline = Instant::now() + patience;
    let mut last = String::new();
    while Instant::now() < deadline {
        match healthz(config, address) {
            Ok(response) if response.starts_with("HTTP/1.1 200") => return Ok(response),
            Ok(response) => last = response,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// `count` plain TCP connections to `address`, each closed (reset, so no TIME_WAIT piles up on
/// this side) before the next is made.
fn churn(address: &str, count: usize) {
    for _ in 0..count {
        let stream = TcpStream::connect(address).unwrap();
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
    }
}

fn log_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn connection_churn_leaves_memory_flat() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start(w, state.path());
    let certauth = address(&v.certauth_url);
    let config = tls_config(&v, true);
    // Each round ends with a request through the same listener, so every connection before it
    // has been accepted; a moment more lets their tasks end.
    let round = |count| {
        churn(&certauth, count);
        healthz_within(&config, &certauth, Duration::from_secs(20)).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        rss_kib(v.pid())
    };
    let start = rss_kib(v.pid());
    let after_10k = round(10_000);
    let after_20k = round(10_000);
    eprintln!("VmRSS: {start} KiB at start, {after_10k} KiB after 10,000 connections, {after_20k} KiB after 20,000");
    // Kept finished tasks cost about 350 bytes each in a debug build (3.5 MB per 10,000 when
    // they piled up); freed, the figure moves by a few hundred KiB.
    assert!(
        after_20k.abs_diff(after_10k) < 2 * 1024,
        "memory grew from {after_10k} KiB to {after_20k} KiB over 10,000 closed connections"
    );
}

#[test]
fn out_of_descriptors_it_pauses_logs_a_little_and_serves_again() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("verifier.log");
    let v = Verifier::start_logging(w, state.path(), &[], std::fs::File::create(&log).unwrap());
    let admin = address(&v.admin_url);
    let admin_tls = tls_config(&v, false);
    // A connection opened before the descriptors run out, served throughout.
    let mut early = tls_over(&admin_tls, TcpStream::connect(&admin).unwrap()).unwrap();

    let limit = open_fds(v.pid()) + 16;
    let status = Command::new("prlimit")
        .arg(format!("--nofile={limit}:{limit}"))
        .arg("--pid")
        .arg(v.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "prlimit: {status}");
    let logged_before = log_lines(&log).len();

    // Far more connections than descriptors left: the kernel completes them all (the listen
    // backlog), the verifier can accept only some.
    let certauth = address(&v.certauth_url);
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&certauth).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        open_fds(v.pid()) >= limit - 1,
        "the descriptors never ran out: {} open, limit {limit}",
        open_fds(v.pid())
    );
    // The open connection is still served while `accept` fails.
    let answer = get_healthz(&mut early).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let during = log_lines(&log)[logged_before..].to_vec();

    drop(held);
    let answer = healthz_within(&admin_tls, &admin, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the verifier did not serve again: {e}"));
    assert!(answer.ends_with("ok\n"), "{answer}");
    // And the listener whose `accept` failed.
    let answer = healthz_within(&tls_config(&v, true), &certauth, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("the certauth listener did not serve again: {e}"));
    assert!(answer.ends_with("ok\n"), "{answer}");
    let after = log_lines(&log)[logged_before..].to_vec();
    eprintln!(
        "log lines while out of descriptors: {}; in all since: {}\n{}",
        during.len(),
        after.len(),
        after[..after.len().min(20)].join("\n")
    );
    assert!(
        after.len() <= 6,
        "{} log lines: {:#?}",
        after.len(),
        &after[..after.len().min(20)]
    );
    assert!(
        during
            .iter()
            .any(|l| l.contains("cannot accept connections")),
        "{during:#?}"
    );
}

/// Sends a request whose body stalls after a few of its `Content-Length: 100` bytes; the response
/// and how long it took.
fn stall_body(
    tls: &mut Tls,
    request_line: &str,
    authorization: Option<&str>,
) -> (String, Duration) {
    let mut head = format!("{request_line}\r\nHost: verifier\r\nContent-Type: application/json\r\nContent-Length: 100\r\n");
    if let Some(key) = authorization {
        head += &format!("Authorization: Bearer {key}\r\n");
    }
    head += "\r\n{\"user";
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    let sent = Instant::now();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "no answer and no close {:?} after the body stalled",
                    sent.elapsed()
                )
            }
            // A close without close_notify, or a reset.
            Err(_) => break,
        }
    }
    (
        String::from_utf8_lossy(&response).into_owned(),
        sent.elapsed(),
    )
}

#[test]
fn a_stalled_request_body_is_cut_off_after_the_body_timeout() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start_with(w, state.path(), &["--body-timeout", "1s"]);
    let key = v.admin_key.clone().unwrap();
    // Generous: the timeout is 1 s; the header timeout (10 s) must not be what ends it.
    let bound = Duration::from_secs(8);

    let certauth_tls = tls_config(&v, true);
    let tcp = TcpStream::connect(address(&v.certauth_url)).unwrap();
    let mut tls = tls_over(&certauth_tls, tcp).unwrap();
    let (response, took) = stall_body(&mut tls, "POST /certauth/signin HTTP/1.1", None);
    assert!(took < bound, "certauth listener: {took:?}");
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408"),
        "certauth listener: {response}"
    );

    let admin_tls = tls_config(&v, false);
    let tcp = TcpStream::connect(address(&v.admin_url)).unwrap();
    let mut tls = tls_over(&admin_tls, tcp).unwrap();
    let (response, took) = stall_body(
        &mut tls,
        "PATCH /v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate HTTP/1.1",
        Some(&key),
    );
    assert!(took < bound, "admin listener: {took:?}");
    assert!(
        response.is_empty() || response.starts_with("HTTP/1.1 408"),
        "admin listener: {response}"
    );
    eprintln!(
        "admin listener: {}",
        response.lines().next().unwrap_or("(closed)")
    );
}

#[test]
fn the_connection_over_the_cap_is_closed_and_serving_resumes_below_it() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start_with(w, state.path(), &["--max-connections", "5"]);
    let admin = address(&v.admin_url);
    let config = tls_config(&v, false);

    let held: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(&admin).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut sixth = TcpStream::connect(&admin).unwrap();
    sixth
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    let started = Instant::now();
    match sixth.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!(
            "the sixth connection was not closed: {other:?} after {:?}",
            started.elapsed()
        ),
    }

    // The five admitted ones are served.
    let mut held = held.into_iter();
    let mut first = tls_over(&config, held.next().unwrap()).unwrap();
    let answer = get_healthz(&mut first).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(first);
    drop(held);
    let answer = healthz_within(&config, &admin, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no answer below the cap again: {e}"));
    assert!(answer.ends_with("ok\n"), "{answer}");
}

/// Whether a child process has exited (a zombie until its parent reaps it).
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).map_or(true, |status| {
        status.lines().any(|l| l.starts_with("State:\tZ"))
    })
}

#[test]
fn sigterm_lets_a_request_in_flight_finish_before_exiting() {
    let w = woodgrove();
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start_with(w, state.path(), &["--body-timeout", "2s"]);
    let key = v.admin_key.clone().unwrap();
    let tcp = TcpStream::connect(address(&v.admin_url)).unwrap();
    let mut tls = tls_over(&tls_config(&v, false), tcp).unwrap();
    // A request in flight: its body stalls, so it ends only at the body timeout.
    let head = format!(
        "PATCH /v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate HTTP/1.1\r\nHost: verifier\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a"
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &v.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !exited(v.pid()),
        "the verifier exited with a request in flight"
    );
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !exited(v.pid()) {
        assert!(
            Instant::now() < deadline,
            "the verifier did not exit after its last request"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
