//! `certauth-soak`: the load driver of `benches/soak.sh`. For SECONDS it runs mixed load against one
//! `certauth-verifier serve` process that it starts, restarts half-way (SIGTERM, wait, start again
//! on the same state directory) and stops at the end:
//!
//! - sign-ins over mutual TLS with software certificates from the fixture's issuing CA: a valid
//!   user, a wrong username, a revoked certificate and a user that does not exist;
//! - admin writes (users created, patched, deleted; the method policy patched) with a ledger of
//!   what was acknowledged, and admin reads;
//! - the issuing CA's CRL served from here, flipping between good (re-signed on each download with
//!   a nextUpdate a few seconds ahead, so the verifier keeps fetching), slow (trickled for longer
//!   than the verifier's `--crl-fetch-timeout`), garbage and HTTP 500;
//! - the verifier's VmRSS, sampled every second.
//!
//! At the end it checks the ledger against the directory and the policy, prints a table, and
//! exits 1 when a write was lost, an error was unexpected or memory grew by 10 MB or more after
//! warm-up.
//!
//! usage: certauth-soak VERIFIER_BIN FIXTURE_DIR POLICY_JSON WORK_DIR SECONDS

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use certauth::fixtures::crl::{sign_crl, CrlContents, RevokedEntry};
use certauth::fixtures::spec::{KeyAlgorithm, RevocationReason};
use certauth::x509::cert_info::CertInfo;
use rcgen::KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The verifier's CRL download limit and failure memory, set short so phases flip quickly.
const CRL_FETCH_TIMEOUT: &str = "2s";
const CRL_FAILURE_MEMORY: &str = "2s";
/// How long after a phase change the verifier may still act on the previous phase: a download
/// under way (2 s), a remembered failure (2 s), the cached good CRL's lifetime (3 s) and slack.
const GRACE: f64 = 8.0;
/// The good CRL's nextUpdate, from the moment it is served.
const CRL_LIFETIME: i64 = 3;
/// A sign-in or admin request without an answer by then is an unexpected error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Twice the CRL fetch timeout: a sign-in slower than this waited behind other downloads.
const SLOW_SIGN_IN: Duration = Duration::from_secs(4);
const SIGN_IN_CLIENTS: usize = 8;
const ADMIN_WRITERS: usize = 3;
const MEMORY_LIMIT_KB: i64 = 10 * 1024;
const POLICY_PATH: &str =
    "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/x509Certificate";
const CAS_PATH: &str = "/v1.0/directory/publicKeyInfrastructure/certificateBasedAuthConfigurations/default/certificateAuthorities";
/// The CRL failures a sign-in may meet while the CRL is slow or bad (fail closed).
const CRL_CODES: &[&str] = &[
    "AADSTS2205011",
    "AADSTS2205012",
    "AADSTS2205014",
    "AADSTS2205015",
    "AADSTS500172",
    "AADSTS500173",
    "AADSTS500174",
];

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// The schedule: CRL phases and the restart.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Good,
    Slow,
    Garbage,
    Http500,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Slow => "slow",
            Self::Garbage => "garbage",
            Self::Http500 => "HTTP 500",
        }
    }
}

struct Schedule {
    phases: Vec<(f64, f64, Phase)>,
    cycle: f64,
}

impl Schedule {
    /// Good 3u, slow u, good 2u, garbage u, good 2u, HTTP 500 u, repeated; u between 8 and 20 s.
    fn new(seconds: f64) -> Self {
        let unit = (seconds / 40.0).clamp(8.0, 20.0);
        let cycle = [
            (Phase::Good, 3.0),
            (Phase::Slow, 1.0),
            (Phase::Good, 2.0),
            (Phase::Garbage, 1.0),
            (Phase::Good, 2.0),
            (Phase::Http500, 1.0),
        ];
        let mut phases = Vec::new();
        let mut t = 0.0;
        'outer: loop {
            for (phase, units) in cycle {
                if t >= seconds {
                    break 'outer;
                }
                let end = t + units * unit;
                phases.push((t, end, phase));
                t = end;
            }
        }
        // After the run the CRL stays good.
        phases.push((t, f64::MAX, Phase::Good));
        Self {
            phases,
            cycle: 10.0 * unit,
        }
    }

    fn at(&self, t: f64) -> Phase {
        self.phases
            .iter()
            .find(|(start, end, _)| *start <= t && t < *end)
            .map_or(Phase::Good, |p| p.2)
    }

    /// Whether the CRL may have been unusable to the verifier at some point in [from, to].
    fn maybe_bad(&self, from: f64, to: f64) -> bool {
        self.phases
            .iter()
            .any(|(start, end, phase)| *phase != Phase::Good && *start <= to && from - GRACE < *end)
    }

    /// Whether the verifier can no longer hold a good CRL anywhere in [from, to]: all of it inside
    /// one bad phase, after the last good CRL served before it went stale.
    fn surely_bad(&self, from: f64, to: f64) -> bool {
        self.phases.iter().any(|(start, end, phase)| {
            *phase != Phase::Good && from >= start + CRL_LIFETIME as f64 + 1.5 && to <= *end
        })
    }
}

struct Clock(Instant);

impl Clock {
    fn t(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

// ---------------------------------------------------------------------------------------------
// The PKI: software client certificates and fresh CRLs from the fixture's issuing CA.

struct Pki {
    issuing_pem: String,
    issuing_der: Vec<u8>,
    issuing_info: CertInfo,
    issuing_key: KeyPair,
    algorithm: KeyAlgorithm,
    root_der: Vec<u8>,
    root_crl: Vec<u8>,
    revoked_serial: Vec<u8>,
    crl_number: AtomicU64,
}

fn pem_to_der(pem: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| e.to_string())?
        .1
        .contents)
}

impl Pki {
    fn load(fixture: &Path) -> Result<Self, Error> {
        let ca = fixture.join("pki/ca");
        let issuing_pem = std::fs::read_to_string(ca.join("woodgrove-issuing.pem"))?;
        let issuing_der = pem_to_der(issuing_pem.as_bytes())?;
        let issuing_info = CertInfo::from_der(&issuing_der)?;
        let issuing_key =
            KeyPair::from_pem(&std::fs::read_to_string(ca.join("woodgrove-issuing.key"))?)?;
        let algorithm = if issuing_info.key.bits == Some(384) {
            KeyAlgorithm::P384
        } else {
            KeyAlgorithm::P256
        };
        Ok(Self {
            issuing_pem,
            issuing_der,
            issuing_info,
            issuing_key,
            algorithm,
            root_der: pem_to_der(&std::fs::read(ca.join("woodgrove-root.pem"))?)?,
            root_crl: std::fs::read(fixture.join("pki/crl/woodgrove-root-ca.crl"))?,
            revoked_serial: vec![0x5a, 0x0a, 0x03],
            // Above the fixture's numbers, and only ever up.
            crl_number: AtomicU64::new(1000),
        })
    }

    /// A client certificate (PEM chain with the issuing CA, PEM key) for `upn`.
    fn client(&self, upn: &str, serial: &[u8]) -> Result<(String, String), Error> {
        let issuer = rcgen::Issuer::from_ca_cert_der(
            &self.issuing_der.clone().into(),
            KeyPair::from_pem(&self.issuing_key.serialize_pem())?,
        )?;
        let key = KeyPair::generate()?;
        let mut params = support::client_params(upn, "soak");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(serial));
        let cert = params.signed_by(&key, &issuer)?;
        Ok((
            format!("{}{}", cert.pem(), self.issuing_pem),
            key.serialize_pem(),
        ))
    }

    /// A fresh base CRL: the revoked client and 500 other serials, valid for a few seconds.
    fn fresh_crl(&self) -> Result<Vec<u8>, Error> {
        let now = OffsetDateTime::now_utc();
        let revoked = |serial: Vec<u8>| RevokedEntry {
            serial,
            revoked_at: now - time::Duration::days(1),
            reason: RevocationReason::KeyCompromise,
        };
        let mut entries = vec![revoked(self.revoked_serial.clone())];
        entries.extend((0..500u32).map(|i| {
            let mut serial = vec![0x6b];
            serial.extend(i.to_be_bytes());
            revoked(serial)
        }));
        let ski = self
            .issuing_info
            .subject_key_identifier
            .clone()
            .ok_or("the issuing CA has no SKI")?;
        Ok(sign_crl(
            &CrlContents {
                issuer_name: &self.issuing_info.subject_der,
                authority_key_id: &ski,
                number: self.crl_number.fetch_add(1, Ordering::Relaxed),
                this_update: now - time::Duration::minutes(1),
                next_update: now + time::Duration::seconds(CRL_LIFETIME),
                entries: &entries,
                delta_of: None,
                freshest_url: None,
            },
            &self.issuing_key,
            self.algorithm,
        )?)
    }
}

// ---------------------------------------------------------------------------------------------
// The CRL server.

#[derive(Default)]
struct CrlServed {
    by_phase: Mutex<BTreeMap<Phase, u64>>,
}

async fn crl_server(
    listener: tokio::net::TcpListener,
    pki: Arc<Pki>,
    schedule: Arc<Schedule>,
    clock: Arc<Clock>,
    served: Arc<CrlServed>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let pki = pki.clone();
        let phase = schedule.at(clock.t());
        let served = served.clone();
        tokio::spawn(async move {
            let _ = serve_crl(stream, &pki, phase, &served).await;
        });
    }
}

async fn serve_crl(
    mut stream: tokio::net::TcpStream,
    pki: &Pki,
    phase: Phase,
    served: &CrlServed,
) -> Result<(), Error> {
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let ok = |body: &[u8]| {
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        answer.extend_from_slice(body);
        answer
    };
    if path == "/root.crl" {
        stream.write_all(&ok(&pki.root_crl)).await?;
        return Ok(());
    }
    if path != "/issuing.crl" {
        stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(());
    }
    *lock(&served.by_phase).entry(phase).or_default() += 1;
    match phase {
        Phase::Good => stream.write_all(&ok(&pki.fresh_crl()?)).await?,
        Phase::Garbage => {
            stream
                .write_all(&ok(&b"this is not a CRL\n".repeat(64)))
                .await?;
        }
        Phase::Http500 => {
            stream
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nConnection: close\r\n\r\nbroken")
                .await?;
        }
        Phase::Slow => {
            // A real CRL, 16 bytes every half second: far longer than the fetch timeout.
            let body = pki.fresh_crl()?;
            let answer = ok(&body);
            let started = Instant::now();
            for chunk in answer.chunks(16) {
                if started.elapsed() > Duration::from_secs(60) {
                    break;
                }
                stream.write_all(chunk).await?;
                stream.flush().await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    stream.shutdown().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The verifier process.

struct Verifier {
    bin: PathBuf,
    state: PathBuf,
    policy: PathBuf,
    work: PathBuf,
    child: Option<Child>,
    pid: u32,
    generation: u32,
    /// generation << 32 | pid, for the memory sampler, which must not wait on a restart.
    current: Arc<AtomicU64>,
    certauth_address: String,
    admin_address: String,
    admin_key: String,
}

impl Verifier {
    fn start(&mut self) -> Result<(), Error> {
        self.generation += 1;
        let (certauth, admin) = if self.certauth_address.is_empty() {
            ("127.0.0.1:0".to_owned(), "127.0.0.1:0".to_owned())
        } else {
            (self.certauth_address.clone(), self.admin_address.clone())
        };
        let stderr =
            std::fs::File::create(self.work.join(format!("verifier-{}.log", self.generation)))?;
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--policy")
            .arg(&self.policy)
            .args(["--certauth-listen", &certauth, "--admin-listen", &admin])
            .args(["--crl-fetch-timeout", CRL_FETCH_TIMEOUT])
            .args(["--crl-failure-memory", CRL_FAILURE_MEMORY])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        self.pid = child.id();
        self.current.store(
            u64::from(self.generation) << 32 | u64::from(self.pid),
            Ordering::SeqCst,
        );
        // For the script's clean-up, should this driver die first.
        std::fs::write(self.work.join("verifier.pid"), format!("{}\n", self.pid))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        self.child = Some(child);
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        loop {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("the verifier printed no banner within 60 s".into());
            }
            let Some(line) = lines.next() else {
                return Err(format!(
                    "the verifier exited before its banner; see {}",
                    self.work
                        .join(format!("verifier-{}.log", self.generation))
                        .display()
                )
                .into());
            };
            let line = line?;
            if let Some(url) = line.strip_prefix("  certauth endpoint  ") {
                self.certauth_address = url.trim_start_matches("https://").to_owned();
            } else if let Some(url) = line.strip_prefix("  admin API          ") {
                self.admin_address = url.trim_start_matches("https://").to_owned();
                if !self.admin_key.is_empty() {
                    break;
                }
            } else if let Some(key) = line.strip_prefix("  admin API key      ") {
                self.admin_key = key.trim().to_owned();
                break;
            }
        }
        // Keep reading stdout so the verifier never writes into a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(())
    }

    /// SIGTERM, then wait; SIGKILL after `patience`. Whether it stopped in time.
    fn stop(&mut self, patience: Duration) -> Result<bool, Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(true);
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        let started = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                return Ok(true);
            }
            if started.elapsed() > patience {
                child.kill()?;
                child.wait()?;
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn vm_rss_kb(pid: u32) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Results.

#[derive(Default)]
struct Stats {
    sign_ins_ok: u64,
    expected_denials: u64,
    expected_crl: u64,
    expected_restart: u64,
    sign_in_unexpected: u64,
    admin_requests: u64,
    admin_unexpected: u64,
    admin_expected_restart: u64,
    writes_acknowledged: u64,
    unexpected: BTreeMap<String, u64>,
    /// Sign-in latencies (seconds) by the CRL phase they started in.
    latencies: BTreeMap<Phase, Vec<f64>>,
    restart_windows: Vec<(f64, f64)>,
    stop_failures: u64,
}

impl Stats {
    fn in_restart(&self, from: f64, to: f64) -> bool {
        self.restart_windows
            .iter()
            .any(|(start, end)| from <= end + 2.0 && to >= *start)
    }

    fn note(&mut self, what: String) {
        *self.unexpected.entry(what).or_default() += 1;
    }
}

struct Shared {
    clock: Arc<Clock>,
    schedule: Arc<Schedule>,
    stats: Mutex<Stats>,
    stop: AtomicBool,
    /// Set while the verifier is being restarted (from SIGTERM until it is ready again).
    restarting: AtomicBool,
}

impl Shared {
    fn restart_overlaps(&self, from: f64, to: f64) -> bool {
        self.restarting.load(Ordering::SeqCst) || lock(&self.stats).in_restart(from, to)
    }
}

// ---------------------------------------------------------------------------------------------
// Sign-ins.

struct Scenario {
    name: &'static str,
    username: &'static str,
    config: Arc<rustls::ClientConfig>,
    /// None: must succeed. Some: the codes this refusal may carry when the CRL is good.
    denial: Option<&'static [&'static str]>,
    /// Whether the decision reaches the CRL check (a missing user is refused before it).
    reaches_crl: bool,
}

fn client_config(
    server_ca: &Path,
    chain_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server_ca)? {
        roots.add(cert?)?;
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
    Ok(support::client_config(roots, chain, key)?)
}

/// One sign-in on a fresh connection: (HTTP status, body), or a transport error.
async fn sign_in(address: &str, scenario: &Scenario) -> Result<(u16, String), String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(scenario.config.clone());
    let name = ServerName::try_from("127.0.0.1").map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let body = json!({"username": scenario.username}).to_string();
    let request = format!(
        "POST /certauth/signin HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    let read = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok());
    match (status, read) {
        (Some(status), _) => Ok((status, text)),
        (None, Err(e)) => Err(format!("read: {e}")),
        (None, Ok(_)) => Err("connection closed without an answer".into()),
    }
}

fn error_code(body: &str) -> Option<String> {
    let start = body.find("\"errorCode\":\"")? + "\"errorCode\":\"".len();
    let rest = &body[start..];
    Some(rest[..rest.find('"')?].to_owned())
}

async fn sign_in_client(
    shared: Arc<Shared>,
    address: String,
    scenarios: Arc<Vec<Scenario>>,
    index: usize,
) {
    let mut round = index;
    while !shared.stop.load(Ordering::Relaxed) {
        let scenario = &scenarios[round % scenarios.len()];
        round += 1;
        let from = shared.clock.t();
        let phase = shared.schedule.at(from);
        let result = tokio::time::timeout(REQUEST_TIMEOUT, sign_in(&address, scenario)).await;
        let to = shared.clock.t();
        let schedule = &shared.schedule;
        // (category, unexpected description)
        let verdict: Result<&str, String> = match result {
            Err(_) => Err(format!(
                "sign-in ({}): no answer within {} s",
                scenario.name,
                REQUEST_TIMEOUT.as_secs()
            )),
            Ok(Err(e)) => {
                if shared.restart_overlaps(from, to) {
                    Ok("restart")
                } else {
                    Err(format!("sign-in ({}): {e}", scenario.name))
                }
            }
            Ok(Ok((200, body))) => match scenario.denial {
                None if body.contains("\"status\":\"success\"") => {
                    if schedule.surely_bad(from, to) {
                        Err(format!(
                            "sign-in ({}): signed in while the CRL was {} (fail open)",
                            scenario.name,
                            phase.name()
                        ))
                    } else {
                        Ok("ok")
                    }
                }
                None => Err(format!(
                    "sign-in ({}): 200 without success: {}",
                    scenario.name,
                    body.chars().take(120).collect::<String>()
                )),
                Some(_) => Err(format!(
                    "sign-in ({}): signed in, and must not",
                    scenario.name
                )),
            },
            Ok(Ok((status @ (401 | 403), body))) => {
                let code = error_code(&body).unwrap_or_default();
                if scenario
                    .denial
                    .is_some_and(|codes| codes.contains(&code.as_str()))
                {
                    Ok("denial")
                } else if CRL_CODES.contains(&code.as_str())
                    && scenario.reaches_crl
                    && schedule.maybe_bad(from, to)
                {
                    Ok("crl")
                } else {
                    Err(format!(
                        "sign-in ({}): HTTP {status} {code} with the CRL {}",
                        scenario.name,
                        phase.name()
                    ))
                }
            }
            Ok(Ok((status, body))) => {
                if status == 503 && shared.restart_overlaps(from, to) {
                    Ok("restart")
                } else {
                    Err(format!(
                        "sign-in ({}): HTTP {status}: {}",
                        scenario.name,
                        body.chars().take(120).collect::<String>()
                    ))
                }
            }
        };
        let failed_transport = matches!(verdict, Ok("restart") | Err(_));
        {
            let mut stats = lock(&shared.stats);
            match verdict {
                Ok("ok") => stats.sign_ins_ok += 1,
                Ok("denial") => stats.expected_denials += 1,
                Ok("crl") => stats.expected_crl += 1,
                Ok(_) => stats.expected_restart += 1,
                Err(what) => {
                    stats.sign_in_unexpected += 1;
                    stats.note(what);
                }
            }
            stats.latencies.entry(phase).or_default().push(to - from);
        }
        if failed_transport {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admin.

#[derive(Clone)]
struct Admin {
    client: reqwest::Client,
    base: String,
    key: String,
}

/// An admin answer, or None when no answer came (transport error).
type Answer = Option<(u16, Value)>;

impl Admin {
    fn new(server_ca: &Path, address: &str, key: &str) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(server_ca)? {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(REQUEST_TIMEOUT)
            // A new connection for each request: nothing stale survives the restart.
            .pool_max_idle_per_host(0)
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            base: format!("https://{address}"),
            key: key.to_owned(),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let text = response.text().await.ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn must(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Value, Error> {
        match self.call(method.clone(), path, body).await {
            Some((status, value)) if status == expected => Ok(value),
            Some((status, value)) => {
                Err(format!("{method} {path}: HTTP {status} (wanted {expected}): {value}").into())
            }
            None => Err(format!("{method} {path}: no answer").into()),
        }
    }
}

/// What the ledger knows of one user the soak wrote.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    /// Created (201) and, if patched, the display name of the last acknowledged PATCH.
    Present(String),
    /// Deleted (204).
    Deleted,
    /// A write whose answer never came: either outcome is possible.
    Unknown,
    /// Already found missing (or back) by a later request: counted as lost once.
    Lost(&'static str),
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Counts one admin request, and any answer that is neither a success nor expected.
fn admin_outcome(shared: &Shared, what: &str, from: f64, answer: &Answer) {
    let to = shared.clock.t();
    let mut stats = lock(&shared.stats);
    stats.admin_requests += 1;
    match answer {
        None if stats.in_restart(from, to) || shared.restarting.load(Ordering::SeqCst) => {
            stats.admin_expected_restart += 1;
        }
        None => {
            stats.admin_unexpected += 1;
            stats.note(format!("admin {what}: no answer"));
        }
        Some((200 | 201 | 204, _)) => {}
        Some((status, body)) => {
            // A 404 on a PATCH or DELETE of an acknowledged user is a lost write, which the
            // writer counts; a GET of a set-up user must always find it.
            if *status != 404 || what.starts_with("GET") {
                stats.admin_unexpected += 1;
                let code = body["error"]["code"].as_str().unwrap_or_default();
                stats.note(format!("admin {what}: HTTP {status} {code}"));
            }
        }
    }
}

async fn admin_writer(shared: Arc<Shared>, admin: Admin, writer: usize) -> HashMap<String, Known> {
    let mut ledger: HashMap<String, Known> = HashMap::new();
    let mut live: Vec<String> = Vec::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((writer as u64 + 1) * 0x1234_5678));
    let mut created = 0u64;
    let mut acknowledged = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let roll = rng.below(100);
        let from = shared.clock.t();
        if live.len() < 5 || (roll < 45 && live.len() < 40) {
            created += 1;
            let upn = format!("soak-{writer}-{created}@woodgrove.com");
            let body = json!({
                "userPrincipalName": upn,
                "displayName": "created",
                "authorizationInfo": {"certificateUserIds": [format!("X509:<PN>{upn}")]},
                "memberOf": ["cba-users"],
            });
            let answer = admin
                .call(reqwest::Method::POST, "/v1.0/users", Some(&body))
                .await;
            admin_outcome(&shared, "POST user", from, &answer);
            match answer {
                Some((201, _)) => {
                    acknowledged += 1;
                    ledger.insert(upn.clone(), Known::Present("created".into()));
                    live.push(upn);
                }
                _ => {
                    ledger.insert(upn, Known::Unknown);
                }
            }
        } else if roll < 75 {
            let upn = live[rng.below(live.len())].clone();
            let display = format!("patched-{}", rng.next() % 1_000_000);
            let answer = admin
                .call(
                    reqwest::Method::PATCH,
                    &format!("/v1.0/users/{upn}"),
                    Some(&json!({"displayName": display})),
                )
                .await;
            admin_outcome(&shared, "PATCH user", from, &answer);
            match answer {
                Some((204, _)) => {
                    acknowledged += 1;
                    ledger.insert(upn, Known::Present(display));
                }
                Some((404, _)) if matches!(ledger.get(&upn), Some(Known::Present(_))) => {
                    ledger.insert(upn.clone(), Known::Lost("created, then missing at a PATCH"));
                    live.retain(|u| *u != upn);
                }
                _ => {
                    ledger.insert(upn.clone(), Known::Unknown);
                    live.retain(|u| *u != upn);
                }
            }
        } else {
            let upn = live.swap_remove(rng.below(live.len()));
            let answer = admin
                .call(reqwest::Method::DELETE, &format!("/v1.0/users/{upn}"), None)
                .await;
            admin_outcome(&shared, "DELETE user", from, &answer);
            match answer {
                Some((204, _)) => {
                    acknowledged += 1;
                    ledger.insert(upn, Known::Deleted);
                }
                Some((404, _)) if matches!(ledger.get(&upn), Some(Known::Present(_))) => {
                    ledger.insert(upn, Known::Lost("created, then missing at a DELETE"));
                }
                _ => {
                    ledger.insert(upn, Known::Unknown);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    lock(&shared.stats).writes_acknowledged += acknowledged;
    ledger
}

fn policy_patch(n: u64) -> Value {
    // A rule for a policy OID no soak certificate carries: sign-in outcomes do not change.
    json!({
        "@odata.type": "#microsoft.graph.x509CertificateAuthenticationMethodConfiguration",
        "authenticationModeConfiguration": {
            "x509CertificateAuthenticationDefaultMode": "x509CertificateSingleFactor",
            "x509CertificateDefaultRequiredAffinityLevel": "low",
            "rules": [
                {"x509CertificateRuleType": "issuerSubject", "identifier": "CN=Woodgrove Issuing CA 01, OU=PKI, O=Woodgrove Bank, C=US", "x509CertificateAuthenticationMode": "x509CertificateSingleFactor", "x509CertificateRequiredAffinityLevel": "low"},
                {"x509CertificateRuleType": "policyOID", "identifier": format!("1.2.3.4.{n}"), "x509CertificateAuthenticationMode": "x509CertificateMultiFactor", "x509CertificateRequiredAffinityLevel": "low"}
            ]
        }
    })
}

/// Patches the policy once a second; returns (last acknowledged n, the n with unknown outcomes).
async fn policy_writer(shared: Arc<Shared>, admin: Admin) -> (u64, Vec<u64>) {
    let mut n = 0;
    let mut last = 0;
    let mut unknown = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let from = shared.clock.t();
        let answer = admin
            .call(reqwest::Method::PATCH, POLICY_PATH, Some(&policy_patch(n)))
            .await;
        admin_outcome(&shared, "PATCH policy", from, &answer);
        match answer {
            Some((204, _)) => {
                last = n;
                lock(&shared.stats).writes_acknowledged += 1;
            }
            _ => unknown.push(n),
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    (last, unknown)
}

async fn admin_reader(shared: Arc<Shared>, admin: Admin) {
    let paths = [
        "/v1.0/users",
        POLICY_PATH,
        "/v1.0/auditLogs/signIns?$top=50",
        "/v1.0/groups",
        CAS_PATH,
        "/v1.0/users/alice@woodgrove.com",
    ];
    let mut i = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let path = paths[i % paths.len()];
        i += 1;
        let from = shared.clock.t();
        let answer = admin.call(reqwest::Method::GET, path, None).await;
        let what = format!("GET {}", path.split('?').next().unwrap_or(path));
        admin_outcome(&shared, &what, from, &answer);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

struct Options {
    verifier: PathBuf,
    fixture: PathBuf,
    policy: PathBuf,
    work: PathBuf,
    seconds: f64,
}

fn options() -> Result<Options, Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, verifier, fixture, policy, work, seconds] = args.as_slice() else {
        return Err(
            "usage: certauth-soak VERIFIER_BIN FIXTURE_DIR POLICY_JSON WORK_DIR SECONDS".into(),
        );
    };
    Ok(Options {
        verifier: verifier.into(),
        fixture: fixture.into(),
        policy: policy.into(),
        work: work.into(),
        seconds: seconds.parse()?,
    })
}

/// The tenant: groups, the two CAs (the issuing CA's CRL from here), alice and bob.
async fn set_up(admin: &Admin, pki: &Pki, fixture: &Path, crl_base: &str) -> Result<(), Error> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(fixture.join("fixture.json"))?)?;
    for group in manifest["groups"].as_array().into_iter().flatten() {
        admin
            .must(reqwest::Method::POST, "/v1.0/groups", Some(group), 201)
            .await?;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let root = json!({
        "@odata.type": "#microsoft.graph.certificateAuthorityDetail",
        "certificateAuthorityType": "root",
        "certificate": b64.encode(&pki.root_der),
        "certificateRevocationListUrl": format!("{crl_base}/root.crl"),
    });
    let issuing = json!({
        "@odata.type": "#microsoft.graph.certificateAuthorityDetail",
        "certificateAuthorityType": "intermediate",
        "certificate": b64.encode(&pki.issuing_der),
        "certificateRevocationListUrl": format!("{crl_base}/issuing.crl"),
    });
    for ca in [root, issuing] {
        admin
            .must(reqwest::Method::POST, CAS_PATH, Some(&ca), 201)
            .await?;
    }
    for user in manifest["users"].as_array().into_iter().flatten() {
        admin
            .must(reqwest::Method::POST, "/v1.0/users", Some(user), 201)
            .await?;
    }
    Ok(())
}

/// The ledger against what the verifier holds now: what was lost, by kind.
async fn check_ledger(
    admin: &Admin,
    ledger: &HashMap<String, Known>,
    policy_last: u64,
    policy_unknown: &[u64],
) -> Result<BTreeMap<String, u64>, Error> {
    let users = admin
        .must(reqwest::Method::GET, "/v1.0/users", None, 200)
        .await?;
    let held: HashMap<String, String> = users["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            Some((
                u["userPrincipalName"].as_str()?.to_ascii_lowercase(),
                u["displayName"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    let mut lost: BTreeMap<String, u64> = BTreeMap::new();
    for (upn, known) in ledger {
        let why = match (known, held.get(&upn.to_ascii_lowercase())) {
            (Known::Lost(why), _) => Some(*why),
            (Known::Present(_), None) => Some("created (201) but missing at the end"),
            (Known::Present(display), Some(now)) if display != now => {
                Some("patched (204) but the last acknowledged PATCH is not what is stored")
            }
            (Known::Deleted, Some(_)) => Some("deleted (204) but present at the end"),
            _ => None,
        };
        if let Some(why) = why {
            *lost.entry(why.to_owned()).or_default() += 1;
        }
    }
    for upn in ["alice@woodgrove.com", "bob@woodgrove.com"] {
        if !held.contains_key(upn) {
            *lost
                .entry("a set-up user (201) missing at the end".into())
                .or_default() += 1;
        }
    }
    let policy_now = admin
        .must(reqwest::Method::GET, POLICY_PATH, None, 200)
        .await?;
    let identifier = policy_now["authenticationModeConfiguration"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|r| {
            (r["x509CertificateRuleType"] == "policyOID").then(|| r["identifier"].clone())
        })
        .and_then(|i| i.as_str().map(str::to_owned))
        .unwrap_or_default();
    let policy_ok = policy_last == 0
        || identifier == format!("1.2.3.4.{policy_last}")
        || policy_unknown
            .iter()
            .any(|n| *n > policy_last && identifier == format!("1.2.3.4.{n}"));
    if !policy_ok {
        *lost
            .entry("the policy is not the last acknowledged PATCH".into())
            .or_default() += 1;
    }

    Ok(lost)
}

/// For each process: (generation, kB after warm-up, kB at its end, peak kB, seconds between),
/// each the median of the samples around that moment.
fn memory_summary(
    samples: &[(f64, u32, i64)],
    generations: u32,
    warm_up: f64,
) -> Vec<(u32, i64, i64, i64, f64)> {
    let mut memory = Vec::new();
    for generation in 1..=generations {
        let own: Vec<(f64, i64)> = samples
            .iter()
            .filter(|s| s.1 == generation)
            .map(|s| (s.0, s.2))
            .collect();
        let (Some(first), Some(last)) = (own.first(), own.last()) else {
            continue;
        };
        let warm_at = first.0 + warm_up;
        let mut warm: Vec<i64> = own
            .iter()
            .filter(|s| (s.0 - warm_at).abs() <= 2.5)
            .map(|s| s.1)
            .collect();
        let mut end: Vec<i64> = own
            .iter()
            .filter(|s| s.0 >= last.0 - 5.0)
            .map(|s| s.1)
            .collect();
        let peak = own.iter().map(|s| s.1).max().unwrap_or(0);
        if let (Some(warm), Some(end)) = (median(&mut warm), median(&mut end)) {
            memory.push((generation, warm, end, peak, last.0 - warm_at));
        }
    }
    memory
}

/// What the run found, besides the counters in [`Stats`].
struct Report {
    elapsed: f64,
    load_elapsed: f64,
    /// When the restart began and when the new process was ready.
    restart: (f64, f64),
    cycle: f64,
    lost: BTreeMap<String, u64>,
    memory: Vec<(u32, i64, i64, i64, f64)>,
    growth: i64,
    end_rss: Option<i64>,
    served: BTreeMap<Phase, u64>,
}

/// The table, and whether the run passed.
fn report(r: &Report, stats: &Stats) -> (String, bool) {
    let sign_ins = stats.sign_ins_ok
        + stats.expected_denials
        + stats.expected_crl
        + stats.expected_restart
        + stats.sign_in_unexpected;
    let unexpected = stats.sign_in_unexpected + stats.admin_unexpected + stats.stop_failures;
    let lost_total: u64 = r.lost.values().sum();
    let mb = |kb: i64| kb as f64 / 1024.0;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "soak: {:.0} s of mixed load on one certauth-verifier, restarted at {:.0} s (down {:.1} s); CRL phases of {:.0} s cycles (good / slow / garbage / HTTP 500), fetch timeout {CRL_FETCH_TIMEOUT}",
        r.elapsed, r.restart.0, r.restart.1 - r.restart.0, r.cycle
    ));
    line(String::new());
    let rows: [(&str, String); 13] = [
        ("sign-ins (mutual TLS, 4 kinds)", sign_ins.to_string()),
        ("  ok (signed in)", stats.sign_ins_ok.to_string()),
        (
            "  expected failures",
            (stats.expected_denials + stats.expected_crl + stats.expected_restart).to_string(),
        ),
        ("    policy denials", stats.expected_denials.to_string()),
        (
            "    CRL fail-closed (slow/bad CRL)",
            stats.expected_crl.to_string(),
        ),
        (
            "    connection errors, restart window",
            stats.expected_restart.to_string(),
        ),
        ("  unexpected errors", stats.sign_in_unexpected.to_string()),
        ("admin requests", stats.admin_requests.to_string()),
        (
            "  writes acknowledged (201/204)",
            stats.writes_acknowledged.to_string(),
        ),
        ("  writes lost", lost_total.to_string()),
        (
            "  no answer, restart window",
            stats.admin_expected_restart.to_string(),
        ),
        ("  unexpected errors", stats.admin_unexpected.to_string()),
        (
            "requests/s (sign-ins + admin)",
            format!(
                "{:.1} ({:.1} sign-ins/s)",
                (sign_ins + stats.admin_requests) as f64 / r.load_elapsed,
                sign_ins as f64 / r.load_elapsed
            ),
        ),
    ];
    for (label, value) in rows {
        line(format!("{label:<44} {value:>12}"));
    }
    for (generation, warm, end, peak, span) in &r.memory {
        line(format!(
            "{:<44} {:>9.1} MB",
            format!("VmRSS process {generation} after warm-up"),
            mb(*warm)
        ));
        line(format!(
            "{:<44} {:>9.1} MB",
            format!("VmRSS process {generation} at its end ({span:.0} s later)"),
            mb(*end)
        ));
        line(format!(
            "{:<44} {:>+9.1} MB",
            format!("  growth (peak {:.1} MB)", mb(*peak)),
            mb(end - warm)
        ));
    }
    if let Some(kb) = r.end_rss {
        line(format!(
            "{:<44} {:>9.1} MB",
            "VmRSS at the end, load stopped",
            mb(kb)
        ));
    }
    line(String::new());
    line("sign-in latency by the CRL phase it started in:".into());
    for (phase, latencies) in &stats.latencies {
        let mut sorted = latencies.clone();
        sorted.sort_by(f64::total_cmp);
        line(format!(
            "  {:<9} {:>7} sign-ins  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            phase.name(),
            sorted.len(),
            percentile(&sorted, 0.5) * 1000.0,
            percentile(&sorted, 0.99) * 1000.0,
            sorted.last().copied().unwrap_or(0.0) * 1000.0
        ));
    }
    let slow_limit = SLOW_SIGN_IN.as_secs_f64();
    let slow: usize = stats
        .latencies
        .values()
        .map(|l| l.iter().filter(|s| **s > slow_limit).count())
        .sum();
    line(format!(
        "sign-ins slower than {slow_limit:.0} s (twice the CRL fetch timeout): {slow}"
    ));
    line(format!(
        "issuing CA CRL downloads served: {}",
        r.served
            .iter()
            .map(|(p, n)| format!("{} {n}", p.name()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !stats.unexpected.is_empty() {
        line("unexpected errors:".into());
        for (what, n) in &stats.unexpected {
            line(format!("  {n:>7} x {what}"));
        }
    }
    if !r.lost.is_empty() {
        line("lost writes:".into());
        for (what, n) in &r.lost {
            line(format!("  {n:>7} x {what}"));
        }
    }
    let mut verdicts = Vec::new();
    if lost_total > 0 {
        verdicts.push(format!("{lost_total} lost writes"));
    }
    if unexpected > 0 {
        verdicts.push(format!("{unexpected} unexpected errors"));
    }
    if r.growth >= MEMORY_LIMIT_KB {
        verdicts.push(format!("memory grew {:.1} MB after warm-up", mb(r.growth)));
    }
    line(String::new());
    if verdicts.is_empty() {
        line("PASS: no lost writes, no unexpected errors, memory growth under 10 MB".into());
    } else {
        line(format!("FAIL: {}", verdicts.join(", ")));
    }
    (out, verdicts.is_empty())
}

fn median(values: &mut [i64]) -> Option<i64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

fn main() -> Result<(), Error> {
    let options = options()?;
    certauth::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passed = runtime.block_on(run(options))?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(options: Options) -> Result<bool, Error> {
    let pki = Arc::new(Pki::load(&options.fixture)?);
    let seconds = options.seconds;
    let schedule = Arc::new(Schedule::new(seconds));

    // The CRL server starts before the clock does: phases are relative to the start of the load.
    let crl_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let crl_base = format!("http://{}", crl_listener.local_addr()?);
    let state = options.work.join("state");
    let current = Arc::new(AtomicU64::new(0));
    let verifier = Arc::new(Mutex::new(Verifier {
        bin: options.verifier.clone(),
        state: state.clone(),
        policy: options.policy.clone(),
        work: options.work.clone(),
        child: None,
        pid: 0,
        generation: 0,
        current: current.clone(),
        certauth_address: String::new(),
        admin_address: String::new(),
        admin_key: String::new(),
    }));
    let v = verifier.clone();
    tokio::task::spawn_blocking(move || lock(&v).start()).await??;
    let (certauth_address, admin_address, admin_key) = {
        let v = lock(&verifier);
        (
            v.certauth_address.clone(),
            v.admin_address.clone(),
            v.admin_key.clone(),
        )
    };
    let server_ca = state.join("server-ca.pem");
    let admin = Admin::new(&server_ca, &admin_address, &admin_key)?;
    set_up(&admin, &pki, &options.fixture, &crl_base).await?;

    let scenario = |name, username, upn: &str, serial: &[u8], denial, reaches_crl| {
        let (chain, key) = pki.client(upn, serial)?;
        Ok::<_, Error>(Scenario {
            name,
            username,
            config: client_config(&server_ca, &chain, &key)?,
            denial,
            reaches_crl,
        })
    };
    let scenarios = Arc::new(vec![
        scenario(
            "valid user",
            "alice@woodgrove.com",
            "alice@woodgrove.com",
            &[0x5a, 0x0a, 0x01],
            None,
            true,
        )?,
        scenario(
            "wrong username",
            "bob@woodgrove.com",
            "alice@woodgrove.com",
            &[0x5a, 0x0a, 0x02],
            Some(&["AADSTS50034", "AADSTS1001003"]),
            true,
        )?,
        scenario(
            "revoked certificate",
            "bob@woodgrove.com",
            "bob@woodgrove.com",
            &pki.revoked_serial,
            Some(&["AADSTS500171"]),
            true,
        )?,
        scenario(
            "unknown user",
            "nobody@woodgrove.com",
            "nobody@woodgrove.com",
            &[0x5a, 0x0a, 0x04],
            Some(&["AADSTS50034"]),
            false,
        )?,
    ]);

    let clock = Arc::new(Clock(Instant::now()));
    let served = Arc::new(CrlServed::default());
    tokio::spawn(crl_server(
        crl_listener,
        pki.clone(),
        schedule.clone(),
        clock.clone(),
        served.clone(),
    ));
    // One sign-in that must work before the load starts.
    match sign_in(&certauth_address, &scenarios[0]).await {
        Ok((200, _)) => {}
        other => return Err(format!("the first sign-in failed: {other:?}").into()),
    }

    let shared = Arc::new(Shared {
        clock: clock.clone(),
        schedule: schedule.clone(),
        stats: Mutex::new(Stats::default()),
        stop: AtomicBool::new(false),
        restarting: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..SIGN_IN_CLIENTS)
        .map(|i| {
            tokio::spawn(sign_in_client(
                shared.clone(),
                certauth_address.clone(),
                scenarios.clone(),
                i,
            ))
        })
        .collect();
    let writers: Vec<_> = (0..ADMIN_WRITERS)
        .map(|w| tokio::spawn(admin_writer(shared.clone(), admin.clone(), w)))
        .collect();
    let policy = tokio::spawn(policy_writer(shared.clone(), admin.clone()));
    let reader = tokio::spawn(admin_reader(shared.clone(), admin.clone()));

    // Memory: (t, generation, kB) every second.
    let samples: Arc<Mutex<Vec<(f64, u32, i64)>>> = Arc::default();
    let sampler = {
        let (shared, current, samples) = (shared.clone(), current.clone(), samples.clone());
        tokio::spawn(async move {
            while !shared.stop.load(Ordering::Relaxed) {
                let current = current.load(Ordering::SeqCst);
                let (pid, generation) = ((current & 0xffff_ffff) as u32, (current >> 32) as u32);
                if !shared.restarting.load(Ordering::SeqCst) {
                    if let Some(kb) = vm_rss_kb(pid) {
                        lock(&samples).push((shared.clock.t(), generation, kb));
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // The restart, half-way.
    let restart_at = seconds / 2.0;
    tokio::time::sleep(Duration::from_secs_f64(restart_at)).await;
    shared.restarting.store(true, Ordering::SeqCst);
    let restart_began = clock.t();
    let v = verifier.clone();
    let restarted = tokio::task::spawn_blocking(move || {
        let mut v = lock(&v);
        let stopped = v.stop(Duration::from_secs(30))?;
        v.start()?;
        Ok::<_, Error>(stopped)
    })
    .await??;
    let restart_ended = clock.t();
    {
        let mut stats = lock(&shared.stats);
        stats.restart_windows.push((restart_began, restart_ended));
        if !restarted {
            stats.stop_failures += 1;
            stats.note("the verifier did not stop within 30 s of SIGTERM".into());
        }
    }
    shared.restarting.store(false, Ordering::SeqCst);

    let remaining = seconds - clock.t();
    if remaining > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(remaining)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let elapsed = clock.t();
    for client in clients {
        let _ = client.await;
    }
    let mut ledger: HashMap<String, Known> = HashMap::new();
    for writer in writers {
        ledger.extend(writer.await?);
    }
    let (policy_last, policy_unknown) = policy.await?;
    let _ = reader.await;
    let _ = sampler.await;
    let load_elapsed = clock.t();

    let lost = check_ledger(&admin, &ledger, policy_last, &policy_unknown).await?;

    let (final_pid, generations) = {
        let v = lock(&verifier);
        (v.pid, v.generation)
    };
    let end_rss = vm_rss_kb(final_pid);
    let v = verifier.clone();
    tokio::task::spawn_blocking(move || lock(&v).stop(Duration::from_secs(30))).await??;
    let _ = std::fs::remove_file(options.work.join("verifier.pid"));

    // Memory: for each process, the median around the end of its warm-up and over its last 5 s.
    let warm_up = schedule.cycle.min(seconds / 4.0);
    let memory = memory_summary(&lock(&samples).clone(), generations, warm_up);
    let growth = memory.iter().map(|m| m.2 - m.1).max().unwrap_or(0);

    let (out, passed) = report(
        &Report {
            elapsed,
            load_elapsed,
            restart: (restart_began, restart_ended),
            cycle: schedule.cycle,
            lost,
            memory,
            growth,
            end_rss,
            served: lock(&served.by_phase).clone(),
        },
        &lock(&shared.stats),
    );
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(passed)
}
