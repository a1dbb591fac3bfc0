//! Issue 13, items 1, 2 and 7: the token identity goes only where the user sent it. A real
//! mutual-TLS server on loopback answers 302 and 307 towards another loopback origin (a listener
//! on another port, over https and over plain http) and the second origin must never see a
//! connection; `sign-in http://` is refused before any PIN or network contact; a server that shares
//! no TLS version with certauth is a TLS error (exit 6), not a refusal (exit 3).

#![allow(clippy::unwrap_used, reason = "a panic in a test is a failed test")]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::agent::{agent_command, AgentProcess, Client};
use support::echo_server::EchoServer;
use support::text;
use support::woodgrove::{woodgrove, Woodgrove};

const CERT: &str = "alice-rsa2048-mfa";
const TOKEN: &str = "Woodgrove Alice";

/// A second origin on loopback that records every connection and answers each with a forged
/// sign-in success (a token that "expires" in 2099), the way a hostile redirect target would.
struct Sink {
    port: u16,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Sink {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, bytes) = (Arc::clone(&connections), Arc::clone(&received));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                stream
                    .set_read_timeout(Some(Duration::from_secs(1)))
                    .unwrap();
                let mut buffer = [0u8; 16384];
                let n = stream.read(&mut buffer).unwrap_or(0);
                bytes.lock().unwrap().extend_from_slice(&buffer[..n]);
                let body = json!({
                    "status": "success",
                    "userPrincipalName": "mallory@evil.example",
                    "authenticationStrength": "multiFactor",
                    "token": "forged",
                    "expiresAt": "2099-01-01T00:00:00Z",
                })
                .to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            port,
            connections,
            received,
        }
    }

    fn https(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Asserts that nothing ever connected.
    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            self.connections.load(Ordering::SeqCst),
            0,
            "{what}: the other origin received a connection: {}",
            String::from_utf8_lossy(&self.received.lock().unwrap())
        );
    }
}

/// The echo server, redirecting: `/certauth/signin` 302 and `/r302` 302 to the https sink,
/// `/r307` 307 to the http sink, `/same307` 307 to `/landed` on itself.
fn redirecting_server(w: &Woodgrove, https_sink: &Sink, http_sink: &Sink) -> EchoServer {
    let to_https = https_sink.https("/certauth/signin");
    let to_http = http_sink.http("/certauth/signin");
    EchoServer::start(
        w,
        &[
            "--redirect",
            "/certauth/signin",
            "302",
            &to_https,
            "--redirect",
            "/r302",
            "302",
            &to_https,
            "--redirect",
            "/r307",
            "307",
            &to_http,
            "--redirect",
            "/same307",
            "307",
            "/landed",
        ],
    )
}

fn certauth(w: &Woodgrove, server: &EchoServer, home: &std::path::Path, args: &[&str]) -> Command {
    let mut command = server.certauth(w, home, args);
    command
        .args(["--cert", &w.sha256(CERT), "--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", w.pin(TOKEN));
    command
}

/// Asserts that `output` is certauth's exit 6 (a server it will not talk to) with `says` on stderr.
fn refused_with_6(output: &Output, says: &str) {
    assert_eq!(output.status.code(), Some(6), "{}", describe(output));
    assert!(text(&output.stderr).contains(says), "{}", describe(output));
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

#[test]
fn sign_in_follows_no_redirect() {
    let w = woodgrove();
    let (https_sink, http_sink) = (Sink::start(), Sink::start());
    let server = redirecting_server(w, &https_sink, &http_sink);
    let home = tempfile::tempdir().unwrap();

    let r307 = format!("{}/r307", server.url);
    for (url, says) in [
        // 302 to another https origin.
        (
            &server.url,
            ("HTTP 302", https_sink.https("/certauth/signin")),
        ),
        // 307 (which would re-send the POST body) to plain http.
        (&r307, ("HTTP 307", http_sink.http("/certauth/signin"))),
    ] {
        let output = certauth(
            w,
            &server,
            home.path(),
            &["sign-in", url, "--username", "alice@woodgrove.com"],
        )
        .output()
        .unwrap();
        assert_eq!(output.status.code(), Some(6), "{}", describe(&output));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(says.0) && stderr.contains(&says.1),
            "{stderr}"
        );
        assert!(!text(&output.stdout).contains("Signed in"));
    }
    https_sink.assert_untouched("sign-in, 302");
    http_sink.assert_untouched("sign-in, 307 to http");
}

#[test]
fn request_follows_only_same_origin_redirects_and_only_with_dash_l() {
    let w = woodgrove();
    let (https_sink, http_sink) = (Sink::start(), Sink::start());
    let server = redirecting_server(w, &https_sink, &http_sink);
    let home = tempfile::tempdir().unwrap();
    let request = |path: &str, extra: &[&str]| {
        let url = format!("{}{path}", server.url);
        let mut args = vec!["request", url.as_str(), "-H", "X-Secret: s3cret"];
        args.extend_from_slice(extra);
        certauth(w, &server, home.path(), &args).output().unwrap()
    };

    // Without -L nothing is followed: the 302 itself is the answer, and the user is told.
    let output = request("/r302", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("302") && stderr.contains("not followed"),
        "{stderr}"
    );
    let output = request("/same307", &["-X", "POST", "-d", "the body"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(text(&output.stdout).is_empty(), "{}", describe(&output));

    // With -L a same-origin 307 is followed, with the headers and the body.
    let output = request("/same307", &["-L", "-X", "POST", "-d", "the body"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let echo: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(echo["path"], "/landed", "{echo}");
    assert_eq!(echo["body"], "the body", "{echo}");
    assert_eq!(echo["headers"]["x-secret"], "s3cret", "{echo}");
    assert_eq!(echo["client"]["sha256"], w.sha256(CERT).as_str());

    // With -L, another origin and plain http are refused.
    let output = request("/r302", &["-L"]);
    refused_with_6(&output, "is another origin");
    let output = request("/r307", &["-L", "-X", "POST", "-d", "the body"]);
    refused_with_6(&output, "is not https");
    https_sink.assert_untouched("request, 302");
    http_sink.assert_untouched("request, 307 to http");
}

#[test]
fn sign_in_to_plain_http_is_refused_before_any_pin_or_connection() {
    let w = woodgrove();
    let sink = Sink::start();
    let home = tempfile::tempdir().unwrap();
    let url = sink.http("/");
    // With the right PIN available: nothing may connect.
    let started = Instant::now();
    let output = w
        .certauth()
        .args(["sign-in", &url, "--username", "alice@woodgrove.com"])
        .args(["--no-p11-kit", "--module"])
        .arg(w.module())
        .args(["--cert", &w.sha256(CERT), "--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", w.pin(TOKEN))
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    refused_with_6(&output, "is not an https URL");
    sink.assert_untouched("sign-in http://");

    // With a PIN source that cannot answer (and would fail with a PIN error, exit 5): the URL is
    // refused before any PIN is asked, and at once.
    let output = w
        .certauth()
        .args(["sign-in", "http://127.0.0.1:1/", "--username", "a@b.c"])
        .args(["--no-p11-kit", "--module"])
        .arg(w.module())
        .args(["--pin", "env:CERTAUTH_TEST_NO_SUCH_PIN"])
        .env_remove("CERTAUTH_TEST_NO_SUCH_PIN")
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("is not an https URL"), "{stderr}");
    assert!(!stderr.to_lowercase().contains("pin:"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// `sign-in` parameters for the agent against the echo server.
fn agent_params(w: &Woodgrove, server: &EchoServer, url: &str) -> Value {
    json!({
        "url": url,
        "username": "alice@woodgrove.com",
        "cert": w.sha256(CERT),
        "caFile": server.ca_file,
        "chain": [server.chain_file],
        "interactive": false,
    })
}

fn cached_sign_ins(agent: &AgentProcess) -> Value {
    let status = Client::connect(&agent.socket).call(json!({"method": "status"}));
    status["result"]["sessions"]["cachedSignIns"].clone()
}

#[test]
fn the_agent_follows_no_redirect_and_caches_nothing_from_one() {
    let w = woodgrove();
    let (https_sink, http_sink) = (Sink::start(), Sink::start());
    let server = redirecting_server(w, &https_sink, &http_sink);
    let mut command = agent_command(w);
    command.args(["--session-store", "memory"]);
    let agent = AgentProcess::start(command);
    let mut client = Client::connect(&agent.socket);
    for url in [server.url.clone(), format!("{}/r307", server.url)] {
        let (answer, _) = client.sign_in(agent_params(w, &server, &url), &w.pin(TOKEN));
        assert_eq!(answer["error"]["code"], "network", "{url}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("redirect"), "{message}");
    }
    assert_eq!(cached_sign_ins(&agent), 0);
    https_sink.assert_untouched("agent, 302");
    http_sink.assert_untouched("agent, 307 to http");
}

#[test]
fn the_agent_caps_a_cached_sign_in_at_its_maximum_lifetime() {
    let w = woodgrove();
    let answers = tempfile::tempdir().unwrap();
    let file = answers.path().join("answer.json");
    std::fs::write(
        &file,
        json!({"status": 200, "body": {
            "status": "success",
            "userPrincipalName": "alice@woodgrove.com",
            "authenticationStrength": "multiFactor",
            "token": "eyJ...",
            "expiresAt": "2099-01-01T00:00:00Z",
        }})
        .to_string(),
    )
    .unwrap();
    let server = EchoServer::start(w, &["--signin-response", file.to_str().unwrap()]);
    // The cache drops an entry 60 s before it expires: a 63 s cap leaves it about 3 s. The cap
    // is set on the command line, then in the config file.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.toml");
    std::fs::write(&config, "max_cache_lifetime = 63\n").unwrap();
    for how in ["flag", "config file"] {
        let mut command = agent_command(w);
        command.args(["--session-store", "memory"]);
        match how {
            "flag" => command.args(["--max-cache-lifetime", "63"]),
            _ => command.env("CERTAUTH_CONFIG", &config),
        };
        let agent = AgentProcess::start(command);
        let mut client = Client::connect(&agent.socket);
        let params = agent_params(w, &server, &server.url);
        let (first, _) = client.sign_in(params.clone(), &w.pin(TOKEN));
        assert_eq!(first["result"]["cached"], false, "{how}: {first}");
        let (second, _) = client.sign_in(params.clone(), &w.pin(TOKEN));
        assert_eq!(second["result"]["cached"], true, "{how}: {second}");
        std::thread::sleep(Duration::from_secs(4));
        let (third, _) = client.sign_in(params, &w.pin(TOKEN));
        assert_eq!(
            third["result"]["cached"], false,
            "{how}: a 2099 expiry outlived the cap: {third}"
        );
    }
}

/// `openssl s_server` speaking TLS 1.0 only, on a free loopback port.
struct OldTlsServer {
    child: std::process::Child,
    url: String,
    ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl OldTlsServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params.is_ca = rcgen::IsCa::NoCa;
        let cert = params.self_signed(&key).unwrap();
        let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args(["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0", "-www", "-quiet"])
            .arg("-cert")
            .arg(&cert_file)
            .arg("-key")
            .arg(&key_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl is needed for the TLS-mismatch test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            assert!(
                child.try_wait().unwrap().is_none(),
                "openssl s_server exited"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("https://127.0.0.1:{port}"),
            ca_file: cert_file,
            _dir: dir,
        }
    }
}

impl Drop for OldTlsServer {
    fn drop(&mut self) {
        support::rig::stop(&mut self.child);
    }
}

#[test]
fn a_tls_version_mismatch_is_a_tls_error_not_a_refusal() {
    let w = woodgrove();
    let server = OldTlsServer::start();
    let home = tempfile::tempdir().unwrap();
    let output = w
        .certauth()
        .args(["sign-in", &server.url, "--username", "alice@woodgrove.com"])
        .args(["--no-p11-kit", "--module"])
        .arg(w.module())
        .arg("--ca-file")
        .arg(&server.ca_file)
        .args(["--cert", &w.sha256(CERT), "--pin", "env:TOKEN_PIN"])
        .env("TOKEN_PIN", w.pin(TOKEN))
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("share no TLS version or cipher suite"),
        "{stderr}"
    );
    assert!(!stderr.contains("refused the sign-in"), "{stderr}");
}
