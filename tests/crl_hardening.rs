//! CRL hardening of the real verifier (issue 12): a CRL number persisted across a restart, so an
//! older, validly signed base and delta pair cannot un-revoke a certificate; and one shared CRL
//! download for concurrent sign-ins, whose failure is remembered. The issuing CA's CRLs come from a
//! server this test controls on loopback (the CA is re-uploaded through the admin API with CRL URLs
//! pointing at it); sign-ins are real `certauth sign-in` processes on the SoftHSM fixture.

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certauth::fixtures::spec::RevocationReason;
use serde_json::{json, Value};
use support::crl::TestCrl;
use support::verifier::Verifier;
use support::woodgrove::{woodgrove, Woodgrove};
use time::OffsetDateTime;

const CAS: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";
const BASE: &str = "/issuing.crl";
const DELTA: &str = "/issuing-delta.crl";

/// What the test server answers for a path.
#[derive(Clone)]
enum Answer {
    Crl(Vec<u8>),
    /// A 200 whose body comes one byte every 100 ms and never ends in time.
    Trickle,
}

/// A plain HTTP server on loopback that serves what the test sets, and counts requests by path.
struct CrlServer {
    addr: SocketAddr,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl CrlServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Self {
            addr: listener.local_addr().unwrap(),
            answers: Arc::default(),
            requests: Arc::default(),
            stop: Arc::default(),
        };
        let (answers, requests, stop) = (
            server.answers.clone(),
            server.requests.clone(),
            server.stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (answers, requests, stop) = (answers.clone(), requests.clone(), stop.clone());
                std::thread::spawn(move || answer(stream, &answers, &requests, &stop));
            }
        });
        server
    }

    fn set(&self, path: &str, answer: Answer) {
        self.answers.lock().unwrap().insert(path.to_owned(), answer);
    }

    fn serve_pair(&self, base: &[u8], delta: &[u8]) {
        self.set(BASE, Answer::Crl(base.to_vec()));
        self.set(DELTA, Answer::Crl(delta.to_vec()));
    }

    fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(
    mut stream: TcpStream,
    answers: &Mutex<HashMap<String, Answer>>,
    requests: &Mutex<HashMap<String, usize>>,
    stop: &AtomicBool,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    *requests.lock().unwrap().entry(path.clone()).or_default() += 1;
    let found = answers.lock().unwrap().get(&path).cloned();
    match found {
        Some(Answer::Crl(der)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                der.len()
            );
            let _ = stream.write_all(&der);
        }
        Some(Answer::Trickle) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
            );
            // Stops when the verifier hangs up (a write fails) or the test ends.
            for _ in 0..600 {
                if stop.load(Ordering::Relaxed)
                    || stream
                        .write_all(&[0x30])
                        .and_then(|()| stream.flush())
                        .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        None => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
}

/// A CRL for the fixture's issuing CA, signed with its key.
fn issuing_crl(
    w: &Woodgrove,
    number: u64,
    delta_of: Option<u64>,
    revoked: &[&str],
    this_update: OffsetDateTime,
) -> Vec<u8> {
    let entries: Vec<(&str, RevocationReason)> = revoked
        .iter()
        .map(|name| (*name, RevocationReason::KeyCompromise))
        .collect();
    TestCrl {
        ca: "woodgrove-issuing",
        signer: "woodgrove-issuing",
        number,
        delta_of,
        entries: &entries,
        revoked_at: this_update - time::Duration::hours(1),
        this_update,
        next_update: OffsetDateTime::now_utc() + time::Duration::days(7),
    }
    .sign(w)
}

/// `certauth sign-in` as `username` with the fixture certificate `name`; (exit code, answer).
fn sign_in(w: &Woodgrove, v: &Verifier, name: &str, username: &str) -> (i32, Value) {
    v.sign_in(w, name, username)
}

/// Re-uploads the issuing CA with its base and delta CRL URLs on `server` (first start only: the
/// store keeps it across restarts).
fn issuing_ca_crls_from(w: &Woodgrove, v: &Verifier, server: &CrlServer) {
    let subject = &w
        .fixture
        .manifest
        .authority("woodgrove-issuing")
        .unwrap()
        .subject;
    let (status, cas) = v.as_admin(reqwest::Method::GET, CAS, None);
    assert_eq!(status, 200, "{cas}");
    let mut ca = cas["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ca| ca["displayName"] == json!(subject))
        .unwrap_or_else(|| panic!("no `{subject}` in {cas}"))
        .clone();
    let id = ca["id"].as_str().unwrap().to_owned();
    let (status, body) = v.as_admin(reqwest::Method::DELETE, &format!("{CAS}/{id}"), None);
    assert_eq!(status, 204, "{body}");
    let fields = ca.as_object_mut().unwrap();
    fields.remove("id");
    fields.insert(
        "certificateRevocationListUrl".into(),
        json!(server.url(BASE)),
    );
    fields.insert(
        "deltaCertificateRevocationListUrl".into(),
        json!(server.url(DELTA)),
    );
    let (status, body) = v.as_admin(reqwest::Method::POST, CAS, Some(ca));
    assert_eq!(status, 201, "{body}");
}

fn refused(answer: &(i32, Value), code: &str) {
    let (exit, answer) = answer;
    assert_eq!(*exit, 3, "{answer}");
    assert_eq!(answer["errorCode"], code, "{answer}");
}

#[test]
fn trap_crl_replay_after_restart_does_not_unrevoke() {
    let w = woodgrove();
    let server = CrlServer::start();
    let now = OffsetDateTime::now_utc();
    // Both pairs validly signed by the issuing CA and unexpired; only the newer revokes Alice.
    let older_base = issuing_crl(w, 90, None, &[], now - time::Duration::hours(2));
    let older_delta = issuing_crl(w, 91, Some(90), &[], now - time::Duration::hours(2));
    let newer_base = issuing_crl(
        w,
        100,
        None,
        &["alice-p384"],
        now - time::Duration::hours(1),
    );
    let newer_delta = issuing_crl(w, 101, Some(100), &[], now - time::Duration::hours(1));
    let state = tempfile::tempdir().unwrap();

    // The older pair on its own signs Alice in: it is a usable pair.
    server.serve_pair(&older_base, &older_delta);
    let mut v = Verifier::start(w, state.path());
    issuing_ca_crls_from(w, &v, &server);
    let (code, answer) = sign_in(w, &v, "alice-p384", "alice@woodgrove.com");
    assert_eq!(code, 0, "{answer}");

    // After a restart the newer pair is published: it revokes her.
    v.kill_hard();
    server.serve_pair(&newer_base, &newer_delta);
    let mut v = Verifier::start(w, state.path());
    refused(
        &sign_in(w, &v, "alice-p384", "alice@woodgrove.com"),
        "AADSTS500171",
    );

    // Killed again, and the older pair is replayed: still refused, as a replay.
    v.kill_hard();
    server.serve_pair(&older_base, &older_delta);
    let v = Verifier::start(w, state.path());
    let answer = sign_in(w, &v, "alice-p384", "alice@woodgrove.com");
    refused(&answer, "AADSTS500174");
    let message = answer.1["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("CRL number 90, lower than the 100 already seen"),
        "{}",
        answer.1
    );
}

/// A software key and certificate for Alice from the Woodgrove issuing CA (DER both):
/// SoftHSM refuses one token to several `certauth` processes at once, and this test needs
/// sign-ins that are truly concurrent.
fn software_alice(w: &Woodgrove) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = support::software_cert::issued_alice(w, dir.path());
    let cert = x509_parser::pem::parse_x509_pem(&std::fs::read(cert).unwrap())
        .unwrap()
        .1
        .contents;
    let key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(key).unwrap()).unwrap();
    (cert, key.serialize_der())
}

/// One sign-in over its own mutual-TLS connection: (HTTP status, answer).
async fn sign_in_with(v: &Verifier, cert: &[u8], key: &[u8]) -> (u16, Value) {
    certauth::tls::install_crypto_provider();
    let roots = certauth::tls::client_config::trusted_roots(Some(&v.server_ca)).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![cert.to_vec().into()],
        rustls::pki_types::PrivatePkcs8KeyDer::from(key.to_vec()).into(),
    )
    .unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/certauth/signin", v.certauth_url))
        .json(&json!({"username": "alice@woodgrove.com"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[test]
fn slow_crl_server_four_sign_ins_share_one_download_and_its_failure() {
    let w = woodgrove();
    let server = CrlServer::start();
    server.set(BASE, Answer::Trickle);
    server.set(DELTA, Answer::Trickle);
    let timeout = Duration::from_secs(2);
    let memory = Duration::from_secs(8);
    let state = tempfile::tempdir().unwrap();
    let v = Verifier::start_with(
        w,
        state.path(),
        &["--crl-fetch-timeout", "2s", "--crl-failure-memory", "8s"],
    );
    issuing_ca_crls_from(w, &v, &server);
    let (cert, key) = software_alice(w);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = |(status, answer): &(u16, Value)| {
        assert_eq!(*status, 401, "{answer}");
        assert_eq!(answer["errorCode"], "AADSTS2205012", "{answer}");
    };

    let start = Instant::now();
    let outcomes: Vec<(Duration, (u16, Value))> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let runtime = tokio::runtime::Runtime::new().unwrap();
                    let answer = runtime.block_on(sign_in_with(&v, &cert, &key));
                    (start.elapsed(), answer)
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    // The failure was remembered before this, and after `start`.
    let failed_by = Instant::now();
    let timings: Vec<_> = outcomes.iter().map(|(at, _)| *at).collect();
    eprintln!("four concurrent sign-ins ended after {timings:?} (fetch timeout {timeout:?})");
    for (at, answer) in &outcomes {
        refused(answer);
        assert!(
            *at < 2 * timeout,
            "a sign-in waited {at:?}, not under twice the fetch timeout: {timings:?}"
        );
    }
    assert_eq!(server.requests(BASE), 1, "one download for the four");

    // Within the failure memory, a sign-in fails at once without another download.
    refused(&runtime.block_on(sign_in_with(&v, &cert, &key)));
    assert!(
        start.elapsed() < memory,
        "the check came too late to prove anything"
    );
    assert_eq!(server.requests(BASE), 1, "the failure was remembered");

    // Once the memory has passed, a new download is tried, and it succeeds.
    let now = OffsetDateTime::now_utc() - time::Duration::hours(1);
    server.serve_pair(
        &issuing_crl(w, 200, None, &[], now),
        &issuing_crl(w, 201, Some(200), &[], now),
    );
    std::thread::sleep(memory.saturating_sub(failed_by.elapsed()) + Duration::from_millis(500));
    let (status, answer) = runtime.block_on(sign_in_with(&v, &cert, &key));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(server.requests(BASE), 2);
}
