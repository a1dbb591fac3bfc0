//! The demo's CRL server: the fixture's CRLs served on loopback until stopped, and each fetched
//! back over HTTP and checked (signature, number, what it revokes) before any sign-in.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::error::{demo_error, DemoError, Step};
use crate::fixtures::crl_server::{CrlSite, PublishedCrl};
use crate::fixtures::Fixture;
use crate::pki::crl::{parse_crl, verify_crl_signature};

/// The fixture's CRLs, served on loopback until stopped.
pub struct CrlServer {
    pub addr: SocketAddr,
    site: CrlSite,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl CrlServer {
    pub async fn start(fixture: &Fixture, port: u16) -> Result<Self, DemoError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .step(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let site = CrlSite::for_fixture(fixture);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(site.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            site,
            stop,
            task,
        })
    }

    pub async fn stop(self) -> Result<(), DemoError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| demo_error!("the CRL server task failed: {e}"))?
            .step(|| "the CRL server failed".to_owned())
    }
}

/// Fetches each CRL back over HTTP and checks it.
pub async fn check_crls(
    out: &mut impl Write,
    fixture: &Fixture,
    server: &CrlServer,
) -> Result<(), DemoError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .step(|| "cannot make an HTTP client".to_owned())?;
    for crl in server.site.crls() {
        let url = CrlSite::local_url(server.addr, crl);
        let served = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .step(|| format!("cannot fetch {url}"))?
            .bytes()
            .await
            .step(|| format!("cannot read {url}"))?;
        let on_disk =
            std::fs::read(&crl.file).step(|| format!("cannot read {}", crl.file.display()))?;
        if served.as_ref() != on_disk.as_slice() {
            return Err(demo_error!(
                "{url} served other bytes than {}",
                crl.file.display()
            ));
        }
        let ca_der = issuer_certificate(fixture, crl)?;
        verify_crl_signature(&served, &ca_der).step(|| url.clone())?;
        let facts = parse_crl(&served).step(|| url.clone())?;
        let number = facts.number.as_deref().unwrap_or("?");
        let kind = match &facts.delta_of {
            Some(base) => format!("delta CRL #{number} (of base #{base})"),
            None => format!("base CRL #{number}"),
        };
        let revoked: Vec<&str> = facts.revoked.iter().map(|r| r.serial.as_str()).collect();
        writeln!(
            out,
            "  {url}\n      {kind}, signature verified, revoked: {}",
            if revoked.is_empty() {
                "none".to_owned()
            } else {
                revoked.join(", ")
            }
        )?;
    }
    Ok(())
}

/// The DER certificate of the CA that publishes `crl`.
fn issuer_certificate(fixture: &Fixture, crl: &PublishedCrl) -> Result<Vec<u8>, DemoError> {
    let authority = fixture
        .manifest
        .authorities
        .iter()
        .find(|a| a.crl.url == crl.url || a.delta_crl.as_ref().is_some_and(|d| d.url == crl.url))
        .ok_or_else(|| demo_error!("no authority publishes {}", crl.url))?;
    let path = fixture.path(&authority.certificate_der);
    std::fs::read(&path).step(|| format!("cannot read {}", path.display()))
}
