//! `certauth-load`: the load generator of `benches/signin_load.sh`. CLIENTS concurrent clients,
//! each doing full mutual-TLS handshakes (a fresh connection, no resumption) and one HTTP request,
//! for SECONDS. Prints handshakes per second, p50 and p99 latency, and failures.
//!
//! usage: certauth-load URL CA_PEM CERT_PEM KEY_PEM CLIENTS SECONDS [signin|get]

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Options {
    address: String,
    host: String,
    config: Arc<rustls::ClientConfig>,
    clients: usize,
    seconds: u64,
    request: Vec<u8>,
}

fn options() -> Result<Options, Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, ca, cert, key, clients, seconds, mode] = args.as_slice() else {
        return Err(
            "usage: certauth-load URL CA_PEM CERT_PEM KEY_PEM CLIENTS SECONDS signin|get".into(),
        );
    };
    let url = reqwest::Url::parse(url)?;
    let host = url.host_str().ok_or("no host")?.to_owned();
    let address = format!("{host}:{}", url.port_or_known_default().ok_or("no port")?);
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    // Every connection a full handshake.
    let config = support::client_config(roots, chain, key)?;
    let request = match mode.as_str() {
        "signin" => {
            let body = r#"{"username":"alice@woodgrove.com"}"#;
            format!(
                "POST /certauth/signin HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        _ => format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    };
    Ok(Options {
        address,
        host,
        config,
        clients: clients.parse()?,
        seconds: seconds.parse()?,
        request: request.into_bytes(),
    })
}

async fn one(options: &Options) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(&options.address)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(options.config.clone());
    let name = ServerName::try_from(options.host.clone()).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, stream)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(&options.request)
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    if response.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&response[..response.len().min(200)]).into_owned())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Arc::new(options()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (latencies, failures, elapsed) = runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..options.clients)
            .map(|_| {
                let options = options.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let begun = Instant::now();
                        match one(&options).await {
                            Ok(()) => latencies.push(begun.elapsed()),
                            Err(e) => failures.push(e),
                        }
                    }
                    (latencies, failures)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(options.seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut failures = Vec::new();
        for task in tasks {
            if let Ok((l, f)) = task.await {
                latencies.extend(l);
                failures.extend(f);
            }
        }
        (latencies, failures, started.elapsed())
    });
    let mut latencies = latencies;
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{} ok, {} failed in {:.1} s: {:.0} handshakes/s, p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        failures.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99)
    );
    if let Some(first) = failures.first() {
        println!("first failure: {first}");
    }
    Ok(())
}
